"""``image-classification`` pipeline for lensing images: arrays, tensors and lensing files go in as floats.

The stock :class:`~transformers.ImageClassificationPipeline` sends every non-array input through
``load_image``, which converts to 8-bit RGB (a float ``F`` image is clipped to 0-255) and cannot open ``.npy``
or ``.fits`` files. This subclass reads file paths with the safe loader of ``file_io``, hands arrays, tensors
and PIL images to the lensing image processor untouched, can average its predictions over the D4 symmetries of
the image (test-time augmentation), refuses to run a model with preprocessing it was not trained with, and
never returns NaN scores. A regression model (``config.problem_type == "regression"``) answers
``[{"label": <target>, "score": <predicted value in physical units>}]``: the same task and output shape as a
classifier, so ``pipeline("image-classification", ...)``, the Hub widget and every caller keep working, with the
standardised output turned back into physical units through ``config.lens_regression``.

The module travels with saved models as remote code: it imports only numpy, torch, transformers and its
siblings.
"""

from __future__ import annotations

import json
import logging
import math
import os
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForImageClassification
from transformers.image_utils import load_image
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES
from transformers.pipelines import PIPELINE_REGISTRY, ImageClassificationPipeline
from transformers.pipelines.base import Pipeline

from .file_io import LensFileError, as_image_2d
from .image_processing_lens import D2_ELEMENTS, D4_ORDER, LensImageProcessor, d4_transform
from .targets import CONFIG_FIELD, TargetScaling

logger = logging.getLogger(__name__)

TASK = "image-classification"
# Test-time augmentation: "d4" averages the softmax probabilities over the 8 rotations/flips of the image, "d2"
# over the 4 of them that keep the grid's axes (mirror flips and the half turn; for models trained with
# ``--augment d2``, on lenses aligned with the grid).
TTA_MODES: tuple[str, ...] = ("none", "d4", "d2")
TTA_ELEMENTS: dict[str, tuple[int, ...]] = {"d4": tuple(range(D4_ORDER)), "d2": D2_ELEMENTS}
PREPROCESSOR_FILE = "preprocessor_config.json"
# The model config field that records the preprocessing a model was trained with (LensImageProcessor settings).
RECORD_FIELD = "lens_preprocessing"


def _is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def _mismatch(config: Any, processor: Any) -> str | None:
    """Why ``processor`` cannot feed a model with ``config`` (its output size or channels differ), else None."""
    size = getattr(config, "image_size", None)
    expected = (
        (size, size) if isinstance(size, int) else tuple(size) if isinstance(size, (list, tuple)) else None
    )
    output = processor.output_size
    if expected is not None and output is not None and tuple(output) != expected:
        return (
            f"gives {output[0]}x{output[1]} px images but the model takes {expected[0]}x{expected[1]} px "
            "(config.image_size)"
        )
    channels = getattr(config, "num_channels", None)
    if isinstance(channels, int) and processor.num_channels != channels:
        return f"gives {processor.num_channels}-channel images but the model takes {channels} (config.num_channels)"
    return None


def _missing_reason(folder: str) -> str:
    """Why a model folder gave no lensing image processor, read from its preprocessor_config.json."""
    path = os.path.join(folder, PREPROCESSOR_FILE)
    if not os.path.isfile(path):
        return "no such file"
    try:
        with open(path, encoding="utf-8") as f:
            kind = json.load(f).get("image_processor_type")
    except (OSError, ValueError, AttributeError):
        return "cannot be read as an image processor config"
    return f"holds a {kind or 'non-lensing'} image processor, not a LensImageProcessor"


def resolve_image_processor(model: Any, image_processor: Any) -> LensImageProcessor:
    """The :class:`LensImageProcessor` ``model`` runs with, never a guess.

    ``image_processor`` (usually the folder's ``preprocessor_config.json``) when it is a LensImageProcessor whose
    output fits the model (``config.image_size``, ``config.num_channels``). Otherwise (missing, a stock processor,
    the wrong size) the preprocessing recorded in the model's config (``config.lens_preprocessing``), with a
    warning. Without a record, :class:`LensFileError` naming the processor file: a model fed images resized
    differently from its training images gives wrong answers without any sign.
    """
    config = model.config
    folder = str(getattr(config, "_name_or_path", "") or "")
    source = os.path.join(folder, PREPROCESSOR_FILE) if folder else "image_processor"
    if image_processor is None:
        problem = _missing_reason(folder) if folder else "no image processor given"
    elif type(image_processor).__name__ != LensImageProcessor.__name__:
        problem = f"is a {type(image_processor).__name__}, not a LensImageProcessor"
    else:
        problem = _mismatch(config, image_processor)
        if problem is None:
            return image_processor
    record = getattr(config, RECORD_FIELD, None)
    if not isinstance(record, dict):
        raise LensFileError(
            source,
            f"{problem}, and the model config records no {RECORD_FIELD}: refusing to guess how its images "
            "were resized (save the model with its LensImageProcessor)",
        )
    try:
        rebuilt = LensImageProcessor(**record)
    except (TypeError, ValueError) as err:
        raise LensFileError(source, f"{problem}, and config {RECORD_FIELD} is invalid ({err})") from None
    mismatch = _mismatch(config, rebuilt)
    if mismatch is not None:
        raise LensFileError(source, f"{problem}, and config {RECORD_FIELD} {mismatch}")
    logger.warning(
        "%s: %s; using the preprocessing recorded in the model config (%s)", source, problem, RECORD_FIELD
    )
    return rebuilt


class LensImageClassificationPipeline(ImageClassificationPipeline):
    """Classify one lensing image (or a list of them) into the model's labels.

    Inputs: a NumPy array or torch tensor of shape (H, W), (1, H, W) or (H, W, 1) in any numeric dtype; a PIL
    image of any mode; a path to a ``.npy``, ``.npz``, ``.fits``/``.fit``, ``.png`` or ``.tif``/``.tiff`` file;
    an http(s) URL (read as an ordinary picture); or a list of these. Each output is a list of
    ``{"label": str, "score": float}`` sorted by score (softmax probabilities for single-label models).

    Call parameters, besides the stock ``top_k``, ``function_to_apply``, ``timeout`` and ``batch_size``:

    - ``tta="d4"``: test-time augmentation. The model sees the 8 rotations by multiples of 90 degrees and their
      mirror images (the dihedral group D4, under which a lens has no preferred orientation) and the scores are
      the mean of the 8 softmax probabilities, which makes the prediction exactly invariant to rotating or
      flipping the input. 8 forward passes per image. ``tta="d2"``: the 4 of these views that keep the image's
      axes (the two mirror flips and the half turn), for a model trained with ``--augment d2`` on lenses whose
      ellipticity and shear are aligned with the pixel grid (DeepLense simulations); 4 passes.
      ``tta="none"`` (default): one pass.

    The image processor must be the one the model was trained with; see :func:`resolve_image_processor`. A model
    that gives NaN or infinite logits raises :class:`LensFileError` naming the image instead of returning NaN.

    A regression model returns one ``{"label": target, "score": value}`` per image, ``value`` in the target's
    physical units (e.g. ``axion_mass`` in eV) from ``config.lens_regression`` (:attr:`target_scaling`); with
    ``tta="d4"`` (``"d2"``) the standardised outputs of the 8 (4) views are averaged (so log10 m_a is averaged for a log10
    target).
    """

    # Only the image processor: the base class would otherwise probe the folder for a video processor too.
    # None (not True): a folder without a processor reaches __init__, which rebuilds or refuses it.
    _load_image_processor = None
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
        self.image_processor = resolve_image_processor(self.model, self.image_processor)
        try:
            self.target_scaling: TargetScaling | None = TargetScaling.from_config(self.model.config)
        except ValueError as err:
            folder = str(getattr(self.model.config, "_name_or_path", "") or "")
            raise LensFileError(
                os.path.join(folder, "config.json") if folder else CONFIG_FIELD, str(err)
            ) from None

    def __call__(self, inputs: Any = None, **kwargs: Any) -> Any:
        """Classify ``inputs`` (one image or a list; see the class docstring).

        Keyword arguments: ``tta`` (``"none"``, ``"d4"`` or ``"d2"``), ``top_k`` (labels returned, default 5),
        ``function_to_apply``, ``timeout`` (for URLs), ``batch_size`` (images per forward pass).
        """
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        function_to_apply: Any = None,
        timeout: float | None = None,
        tta: str | None = None,
    ) -> tuple[dict, dict, dict]:
        preprocess_params, _, postprocess_params = super()._sanitize_parameters(
            top_k=top_k, function_to_apply=function_to_apply, timeout=timeout
        )
        forward_params = {}
        if tta is not None:
            if tta not in TTA_MODES:
                raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
            forward_params["tta"] = tta
        return preprocess_params, forward_params, postprocess_params

    def preprocess(self, image: Any, timeout: float | None = None) -> dict[str, Any]:
        """One image -> ``{"pixel_values": (1, C, H, W) in the model's dtype, "source": name for errors}``."""
        if isinstance(image, (str, os.PathLike)) and not (isinstance(image, str) and _is_url(image)):
            source = str(image)  # the processor reads it with the safe loader; its errors name the file
        elif isinstance(image, str):
            source, image = image, load_image(image, timeout=timeout)
        elif isinstance(image, (np.ndarray, torch.Tensor)):
            # A single input must be one image: refuse batches and colour arrays here rather than classify
            # only the first of several images.
            source, image = "input array", as_image_2d(image, "input array")
        else:
            source = type(image).__name__
        pixel_values = self.image_processor(images=image, return_tensors="pt")["pixel_values"]
        return {"pixel_values": pixel_values.to(self.dtype), "source": source}

    def _forward(self, model_inputs: dict[str, Any], tta: str = "none") -> dict[str, torch.Tensor]:
        """``{"pixel_values": (n, C, H, W), "source": name or n names}`` -> ``{"logits": (n, num_labels)}``.

        With ``tta="d4"`` (``"d2"``) the logits are the log of the mean softmax probabilities of the 8 D4 views
        (the 4 D2 views; log-mean-exp of their log-softmax), so the usual softmax in :meth:`postprocess` gives
        exactly those means."""
        pixel_values = model_inputs["pixel_values"]
        sources = model_inputs.get("source", "input")
        sources = [sources] if isinstance(sources, str) else list(sources)
        if tta == "none":
            return {"logits": self._checked_logits(pixel_values, sources)}
        if tta not in TTA_ELEMENTS:
            raise ValueError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
        if pixel_values.shape[-1] != pixel_values.shape[-2]:
            raise ValueError(f"tta={tta!r} needs square model inputs, got {tuple(pixel_values.shape[-2:])}")
        elements = TTA_ELEMENTS[tta]
        if self.target_scaling is not None:  # regression: the mean standardised output of the views
            views = [self._checked_logits(d4_transform(pixel_values, e), sources).float() for e in elements]
            return {"logits": torch.stack(views).mean(dim=0)}
        log_probs = torch.stack(
            [
                self._checked_logits(d4_transform(pixel_values, element), sources).float().log_softmax(-1)
                for element in elements
            ]
        )  # (views, n, num_labels)
        return {"logits": torch.logsumexp(log_probs, dim=0) - math.log(len(elements))}

    def postprocess(
        self, model_outputs: dict[str, Any], function_to_apply: Any = None, top_k: int = 5
    ) -> Any:
        """``{"logits": (1, num_labels)}`` -> ``[{"label", "score"}]``: the stock scores for a classifier; for a
        regression model the one prediction in physical units."""
        if self.target_scaling is None:
            return super().postprocess(model_outputs, function_to_apply=function_to_apply, top_k=top_k)
        value = self.target_scaling.to_physical(model_outputs["logits"][0].float().numpy())
        return [{"label": self.target_scaling.target, "score": float(value[0])}]

    def _checked_logits(self, pixel_values: torch.Tensor, sources: list[str]) -> torch.Tensor:
        """The model's logits (n, num_labels); :class:`LensFileError` naming the first image whose logits are NaN
        or infinite (broken weights or input values beyond what the model handles)."""
        logits = self.model(pixel_values=pixel_values).logits
        finite = torch.isfinite(logits).all(dim=-1)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0])
            raise LensFileError(
                sources[bad] if bad < len(sources) else sources[0],
                "the model gave non-finite logits (NaN or inf) for this image; no prediction",
            )
        return logits


def register_pipeline() -> None:
    """Make :class:`LensImageClassificationPipeline` the ``image-classification`` pipeline of this process.

    Also what lets ``save_pretrained`` record it in ``config.json`` (``custom_pipelines``)."""
    if (
        LensImageClassificationPipeline.__dict__.get("_registered_impl")
        and PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl") is LensImageClassificationPipeline
    ):
        return
    # Replacing the stock task is the point, so silence transformers' "already registered" warning.
    pipelines_logger = logging.getLogger("transformers.pipelines.base")
    level = pipelines_logger.level
    pipelines_logger.setLevel(logging.ERROR)
    try:
        PIPELINE_REGISTRY.register_pipeline(
            TASK, pipeline_class=LensImageClassificationPipeline, pt_model=AutoModelForImageClassification
        )
    finally:
        pipelines_logger.setLevel(level)


__all__ = [
    "RECORD_FIELD",
    "TASK",
    "TTA_MODES",
    "LensImageClassificationPipeline",
    "register_pipeline",
    "resolve_image_processor",
]
