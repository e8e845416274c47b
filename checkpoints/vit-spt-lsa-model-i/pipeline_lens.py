"""``image-classification`` pipeline for lensing images: arrays, tensors and lensing files go in as floats.

The stock :class:`~transformers.ImageClassificationPipeline` sends every non-array input through
``load_image``, which converts to 8-bit RGB (a float ``F`` image is clipped to 0-255) and cannot open ``.npy``
or ``.fits`` files. This subclass reads file paths with the safe loader of ``file_io`` and hands arrays,
tensors and PIL images to the image processor untouched.

The module travels with saved models as remote code: it imports only numpy, torch, transformers and its
siblings.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForImageClassification
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES
from transformers.pipelines import PIPELINE_REGISTRY, ImageClassificationPipeline
from transformers.pipelines.base import Pipeline

from .file_io import as_image_2d, read_image


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


class LensImageClassificationPipeline(ImageClassificationPipeline):
    """Classify one lensing image (or a list of them) into the model's labels.

    Inputs: a NumPy array or torch tensor of shape (H, W), (1, H, W) or (H, W, 1) in any numeric dtype; a PIL
    image of any mode; a path to a ``.npy``, ``.npz``, ``.fits``/``.fit``, ``.png`` or ``.tif``/``.tiff`` file;
    an http(s) URL (read as an ordinary picture); or a list of these. Each output is a list of
    ``{"label": str, "score": float}`` sorted by score (softmax probabilities for single-label models).
    """

    # Only the image processor: the base class would otherwise probe the folder for a video processor too.
    _load_video_processor = False
    _load_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # ImageClassificationPipeline.__init__ checks the model against the stock names only, which logs an
        # error for registered or remote-code models; check against the registered classes too.
        Pipeline.__init__(self, *args, **kwargs)
        supported = [
            name
            for names in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES.values()
            for name in ((names,) if isinstance(names, str) else names)
        ]
        for registered in AutoModelForImageClassification._model_mapping._extra_content.values():
            supported += [
                cls.__name__ for cls in (registered if isinstance(registered, tuple) else (registered,))
            ]
        self.check_model_type(supported)

    def preprocess(self, image: Any, timeout: float | None = None) -> dict[str, torch.Tensor]:
        """One image -> model inputs ``{"pixel_values": (1, C, H, W)}`` in the model's dtype."""
        if isinstance(image, (str, os.PathLike)) and not (isinstance(image, str) and _is_url(image)):
            image, _ = read_image(image)
        elif isinstance(image, str):
            from transformers.image_utils import load_image

            image = load_image(image, timeout=timeout)
        elif isinstance(image, (np.ndarray, torch.Tensor)):
            # A single input must be one image: refuse batches and colour arrays here rather than classify
            # only the first of several images.
            image = as_image_2d(image, "input array")
        model_inputs = self.image_processor(images=image, return_tensors="pt")
        return model_inputs.to(self.dtype)


def register_pipeline() -> None:
    """Make :class:`LensImageClassificationPipeline` the ``image-classification`` pipeline of this process.

    Also what lets ``pipeline.save_pretrained`` record it in ``config.json`` (``custom_pipelines``)."""
    if (
        LensImageClassificationPipeline.__dict__.get("_registered_impl")
        and PIPELINE_REGISTRY.supported_tasks.get("image-classification", {}).get("impl")
        is LensImageClassificationPipeline
    ):
        return
    # Replacing the stock task is the point, so silence transformers' "already registered" warning.
    pipelines_logger = logging.getLogger("transformers.pipelines.base")
    level = pipelines_logger.level
    pipelines_logger.setLevel(logging.ERROR)
    try:
        PIPELINE_REGISTRY.register_pipeline(
            "image-classification",
            pipeline_class=LensImageClassificationPipeline,
            pt_model=AutoModelForImageClassification,
        )
    finally:
        pipelines_logger.setLevel(level)


__all__ = ["LensImageClassificationPipeline", "register_pipeline"]
