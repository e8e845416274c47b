"""Teach transformers lens_hf's classes: the one place where they are registered (``import lens_hf`` calls it).

After :func:`register_auto_classes`:

- ``AutoConfig``, ``AutoModel`` and ``AutoModelForImageClassification`` load ``model_type="vit_spt_lsa"`` folders
  with lens_hf's classes (no ``trust_remote_code``);
- ``AutoImageProcessor`` resolves ``LensImageProcessor`` (saved in any lens_hf folder, ViT/DeiT/Swin/ResNet too);
- ``pipeline("image-classification", ...)`` is :class:`LensImageClassificationPipeline`, which reads lensing files;
- saving the SPT+LSA model or the processor copies their code into the folder (``auto_map``), and the model's
  ``save_pretrained`` also copies the pipeline (``custom_pipelines``), so saved folders load with
  ``trust_remote_code=True`` where lens_hf is not installed.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoModelForImageClassification

from lens_hf.models.vit_spt_lsa import ViTSPTLSAConfig, ViTSPTLSAForImageClassification, ViTSPTLSAModel
from lens_hf.processing.image_processing_lens import LensImageProcessor
from lens_hf.processing.pipeline_lens import register_pipeline


def register_auto_classes() -> None:
    """Register the SPT+LSA model, the lensing image processor and the lensing pipeline with transformers.
    Idempotent."""
    AutoConfig.register(ViTSPTLSAConfig.model_type, ViTSPTLSAConfig, exist_ok=True)
    AutoModel.register(ViTSPTLSAConfig, ViTSPTLSAModel, exist_ok=True)
    AutoModelForImageClassification.register(ViTSPTLSAConfig, ViTSPTLSAForImageClassification, exist_ok=True)
    # Registered under one config, AutoImageProcessor finds the class by the name any preprocessor_config.json
    # saves, whatever the model type of the folder.
    AutoImageProcessor.register(
        ViTSPTLSAConfig,
        image_processor_classes={"torchvision": LensImageProcessor, "pil": LensImageProcessor},
        exist_ok=True,
    )
    ViTSPTLSAConfig.register_for_auto_class()
    ViTSPTLSAModel.register_for_auto_class("AutoModel")
    ViTSPTLSAForImageClassification.register_for_auto_class("AutoModelForImageClassification")
    register_pipeline()


__all__ = ["register_auto_classes"]
