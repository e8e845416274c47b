"""Reading, preprocessing and classifying lensing images; saving model folders that carry this code.

:class:`LensImageClassificationPipeline` and :class:`LensImageProcessor` are registered with transformers by
:func:`lens_hf.registration.register_auto_classes` (run by ``import lens_hf``).
"""

from __future__ import annotations

from .file_io import (
    NORMALIZATIONS,
    SUFFIXES,
    LensFileError,
    as_image_2d,
    is_image_file,
    normalize_image,
    read_array,
    read_image,
)
from .image_processing_lens import D4_ORDER, LensImageProcessor, d4_transform
from .pipeline_lens import (
    TTA_MODES,
    LensImageClassificationPipeline,
    register_pipeline,
    resolve_image_processor,
)
from .saving import processor_for_config, save_model_folder

__all__ = [
    "D4_ORDER",
    "NORMALIZATIONS",
    "SUFFIXES",
    "TTA_MODES",
    "LensFileError",
    "LensImageClassificationPipeline",
    "LensImageProcessor",
    "as_image_2d",
    "d4_transform",
    "is_image_file",
    "normalize_image",
    "processor_for_config",
    "read_array",
    "read_image",
    "register_pipeline",
    "resolve_image_processor",
    "save_model_folder",
]
