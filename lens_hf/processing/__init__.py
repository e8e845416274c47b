"""Reading, preprocessing and classifying lensing images; saving model folders that carry this code.

Importing this package registers :class:`LensImageClassificationPipeline` as the ``image-classification``
pipeline and :class:`LensImageProcessor` with ``AutoImageProcessor`` (for the SPT+LSA config; that also lets
``AutoImageProcessor`` find the class by the name saved in any ``preprocessor_config.json``).
"""

from __future__ import annotations

from transformers import AutoImageProcessor

from .file_io import (
    SUFFIXES,
    LensFileError,
    as_image_2d,
    is_image_file,
    normalize_image,
    read_array,
    read_image,
)
from .image_processing_lens import LensImageProcessor
from .pipeline_lens import LensImageClassificationPipeline, register_pipeline
from .saving import load_pipeline, processor_for_config, save_model_folder


def register_image_processor(config_class: type) -> None:
    """Register :class:`LensImageProcessor` with ``AutoImageProcessor`` for ``config_class``.

    Once registered under any config, ``AutoImageProcessor.from_pretrained`` resolves the name
    ``LensImageProcessor`` in ViT, DeiT, Swin or ResNet folders too, without ``trust_remote_code``."""
    AutoImageProcessor.register(
        config_class,
        image_processor_classes={"torchvision": LensImageProcessor, "pil": LensImageProcessor},
        exist_ok=True,
    )


def register_auto_classes() -> bool:
    """Register the pipeline and, when lens_hf.models imports, the processor for the SPT+LSA config.

    Returns True when the processor was registered. Safe to call again (e.g. after ``import lens_hf.models``
    when this package was first imported from inside that import)."""
    register_pipeline()
    try:
        from lens_hf.models.vit_spt_lsa import ViTSPTLSAConfig
    except ImportError:
        # lens_hf.models absent, or importing it now would be circular (lens_hf.errors -> file_io -> here).
        return False
    register_image_processor(ViTSPTLSAConfig)
    return True


register_auto_classes()

__all__ = [
    "SUFFIXES",
    "LensFileError",
    "LensImageClassificationPipeline",
    "LensImageProcessor",
    "as_image_2d",
    "is_image_file",
    "load_pipeline",
    "normalize_image",
    "processor_for_config",
    "read_array",
    "read_image",
    "register_auto_classes",
    "register_image_processor",
    "register_pipeline",
    "save_model_folder",
]
