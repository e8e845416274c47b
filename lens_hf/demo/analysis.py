"""What the web demo shows for each file, without the web page: the image, the prediction, the attention map.

:class:`LensDemo` holds one loaded model (one pipeline, loaded once) and turns files into :class:`FileResult`
objects. Files are read with :func:`lens_hf.processing.file_io.read_image`, the safe reader ``lens-hf predict``
uses, and classified by :func:`lens_hf.inference.classify`, the code ``lens-hf predict`` runs, so the page shows
the same probabilities as the command. A bad file gives the command's one-line message and never stops the
other files.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image, ImageDraw

from lens_hf.attention import attention_map
from lens_hf.errors import USER_ERRORS
from lens_hf.inference import LoadedModel, classify, load_classifier
from lens_hf.labels import LABELS
from lens_hf.processing.file_io import LensFileError, normalize_image, read_image, stretch_image
from lens_hf.processing.image_processing_lens import LensImageProcessor
from lens_hf.processing.targets import TargetScaling, apply_transform
from lens_hf.redact import public_path

logger = logging.getLogger(__name__)

# One simulated Model I image per class (`lens-hf simulate --preset model_i --per-class 1 --seed 1`), shipped
# inside the package so an installed wheel has them too.
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
EXAMPLES: dict[str, Path] = {label: EXAMPLES_DIR / f"{label}.npy" for label in LABELS}
# Units of the simulated parameters a regression model may predict (the metadata columns of lens_hf.data).
TARGET_UNITS: dict[str, str] = {
    "axion_mass": "eV",
    "subhalo_mass_total": "Msun",
    "source_x": "arcsec",
    "source_y": "arcsec",
    "exposure_time": "s",
}
DISPLAY_PX = 320  # longer side of the pictures on the page, in screen pixels
IMAGE_CMAP = "inferno"
ATTENTION_CMAP = "jet"
ATTENTION_ALPHA = 0.7  # opacity of the map where it peaks


@dataclass
class FileResult:
    """What the page shows for one file: either ``error`` (one line, as ``lens-hf`` prints it) or the rest.

    ``image`` and ``attention`` are (h, w, 3) uint8 pictures at display size: the image with an asinh stretch,
    and the same image in grey under the attention map, drawn over the region the model sees (outlined).
    ``probabilities`` maps each class to its softmax probability (classifiers); ``value`` is a regression
    model's prediction in physical units; ``note`` says why there is no attention map.
    """

    name: str
    image: np.ndarray | None = None
    attention: np.ndarray | None = None
    probabilities: dict[str, float] | None = None
    value: str | None = None
    note: str | None = None
    error: str | None = None

    @property
    def label(self) -> str | None:
        """The most probable class, or None (regression model, or a file that could not be read)."""
        if not self.probabilities:
            return None
        return max(self.probabilities, key=self.probabilities.get)

    @property
    def summary(self) -> str:
        """The probabilities to 4 decimals, as ``lens-hf predict`` prints them; or the regression value."""
        if self.probabilities is None:
            return self.value or ""
        return ", ".join(f"{name} {p:.4f}" for name, p in self.probabilities.items())


def one_line(text: str) -> str:
    """``text`` on one line: backslashes, tabs and line breaks written as ``\\``, ``\\t``, ``\\n``, ``\\r``
    (as ``lens-hf`` writes file names in its messages)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def error_message(err: BaseException, name: str) -> str:
    """The line ``lens-hf`` prints for ``err``, naming the file ``name`` (the uploaded file's name, not the
    server's copy of it)."""
    if isinstance(err, LensFileError):
        return f"lens-hf: error: {name}: {err.reason}"
    message = " ".join(line.strip() for line in str(err).strip().splitlines() if line.strip())
    if isinstance(err, USER_ERRORS) or isinstance(err, (OSError, MemoryError)):
        return f"lens-hf: error: {name}: {message or type(err).__name__}"
    return f"lens-hf: internal error: {name}: {type(err).__name__}: {message}"


def value_text(scaling: TargetScaling, value: float) -> str:
    """A regression prediction in physical units, with the learnt quantity for log10 targets:
    ``axion_mass = 1.561e-23 eV (log10_axion_mass = -22.8065)`` (the digits ``lens-hf predict`` prints)."""
    unit = TARGET_UNITS.get(scaling.target)
    text = f"{scaling.target} = {value:.4g}" + (f" {unit}" if unit else "")
    if scaling.transform != "none":
        text += f" ({scaling.name} = {float(apply_transform([value], scaling.transform)[0]):.4f})"
    return text


def field_of_view(processor: LensImageProcessor, shape: tuple[int, int]) -> tuple[float, float, float, float]:
    """The part of an input image of ``shape`` (H, W) that the model sees after the processor's resize and
    centre crop: ``(top, left, height, width)`` in input pixels."""
    height, width = shape
    if processor.do_resize:
        resized = processor.size["height"], processor.size["width"]
    else:
        resized = height, width
    scale_y, scale_x = height / resized[0], width / resized[1]
    if processor.do_center_crop:
        crop = processor.crop_size["height"], processor.crop_size["width"]
        top, left = (resized[0] - crop[0]) // 2, (resized[1] - crop[1]) // 2  # as the processor crops
    else:
        crop, top, left = resized, 0, 0
    return top * scale_y, left * scale_x, crop[0] * scale_y, crop[1] * scale_x


def _display_size(shape: tuple[int, int]) -> tuple[int, int]:
    """(height, width) in screen pixels: the longer side DISPLAY_PX."""
    scale = DISPLAY_PX / max(shape)
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def _resize(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) float -> (height, width) float32, bilinear."""
    image = Image.fromarray(np.asarray(values, dtype=np.float32), mode="F")
    return np.asarray(image.resize((size[1], size[0]), Image.Resampling.BILINEAR), dtype=np.float32)


def stretched(image: np.ndarray, name: str = "image") -> np.ndarray:
    """(H, W) image -> (H, W) float32 in [0, 1]: min-max normalised, then the asinh stretch of lens_hf
    (:func:`~lens_hf.processing.file_io.stretch_image`), so faint arcs show next to the bright ring."""
    return stretch_image(normalize_image(image, "minmax", name), "asinh")


def render_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """(H, W) image -> (h, w, 3) uint8 picture at display size, asinh stretch, ``IMAGE_CMAP`` colours."""
    values = np.clip(_resize(stretched(image, name), _display_size(image.shape)), 0.0, 1.0)
    return (colormaps[IMAGE_CMAP](values)[..., :3] * 255).round().astype(np.uint8)


def render_attention(
    image: np.ndarray, weights: np.ndarray, view: tuple[float, float, float, float], name: str = "image"
) -> np.ndarray:
    """The image (H, W) in grey with the attention ``weights`` (grid, grid) upsampled over ``view`` (top, left,
    height, width in image pixels: the region the model sees), outlined -> (h, w, 3) uint8 at display size.
    The map is scaled to its peak; its opacity follows it, so the image shows through where weights are low."""
    size = _display_size(image.shape)
    grey = np.clip(_resize(stretched(image, name), size), 0.0, 1.0)
    picture = np.repeat(grey[..., None], 3, axis=-1)
    scale = size[0] / image.shape[0]
    top, left, height, width = (round(v * scale) for v in view)
    top, left = max(top, 0), max(left, 0)
    bottom, right = min(top + height, size[0]), min(left + width, size[1])
    peak = float(weights.max())
    heat = _resize(weights / peak if peak > 0 else weights, (bottom - top, right - left))
    heat = np.clip(heat, 0.0, 1.0)[..., None]
    colour = colormaps[ATTENTION_CMAP](heat[..., 0])[..., :3]
    alpha = ATTENTION_ALPHA * heat  # the image stays visible where the model hardly looks
    picture[top:bottom, left:right] = (1 - alpha) * picture[top:bottom, left:right] + alpha * colour
    out = Image.fromarray((picture * 255).round().astype(np.uint8))
    ImageDraw.Draw(out).rectangle((left, top, right - 1, bottom - 1), outline=(255, 255, 255))
    return np.asarray(out)


class LensDemo:
    """One model, loaded once, and what the page shows for the files given to it."""

    def __init__(self, loaded: LoadedModel):
        self.loaded = loaded

    @classmethod
    def from_model(cls, name_or_path: str | os.PathLike | None = None) -> LensDemo:
        """Load a model folder or Hub id; None: the default model, found as ``lens-hf predict`` finds it."""
        return cls(load_classifier(name_or_path))

    @property
    def scaling(self) -> TargetScaling | None:
        return self.loaded.scaling

    def describe(self) -> str:
        """One Markdown paragraph about the model: where it comes from, what it predicts, what it sees."""
        loaded = self.loaded
        config = loaded.model.config
        size = loaded.processor.output_size
        seen = f" at {size[0]}x{size[1]} px" if size else ""
        if self.scaling is None:
            task = "classifies each image as " + ", ".join(f"`{name}`" for name in loaded.labels)
        else:
            unit = TARGET_UNITS.get(self.scaling.target)
            task = f"predicts `{self.scaling.target}`" + (f" in {unit}" if unit else "")
        return (
            f"Model `{public_path(loaded.path)}` ({type(loaded.model).__name__}, `{config.model_type}`) {task}. "
            f"It sees the outlined part of each image{seen}; the attention map shows which patches its "
            "prediction draws on (attention rollout)."
        )

    def analyse(self, paths: Sequence[str | os.PathLike]) -> list[FileResult]:
        """One :class:`FileResult` per file, in order; a file that cannot be read or classified gets its
        one-line error and the others are still classified."""
        results = [FileResult(name=one_line(Path(p).name)) for p in paths]
        images: dict[int, np.ndarray] = {}
        for i, (path, result) in enumerate(zip(paths, results)):
            try:
                images[i], _ = read_image(path)
            except Exception as err:
                result.error = self._failure(err, result.name)
        if not images:
            return results
        try:
            probs, sources, skipped = classify(
                self.loaded, ((str(i), image) for i, image in images.items()), skip_bad=True, progress=False
            )
        except Exception as err:  # the model itself failed: every file gets the message
            for i in images:
                results[i].error = self._failure(err, results[i].name)
            return results
        for source, reason in skipped:
            result = results[int(source)]
            result.error = error_message(LensFileError(result.name, reason), result.name)
        good = [int(s) for s in sources]
        for i, p in zip(good, probs):
            if self.scaling is None:
                results[i].probabilities = {name: float(v) for name, v in zip(self.loaded.labels, p)}
            else:
                results[i].value = value_text(self.scaling, float(p[0]))
            results[i].image = render_image(images[i], results[i].name)
        self._add_attention(good, images, results)
        return results

    def _add_attention(
        self, good: list[int], images: dict[int, np.ndarray], results: list[FileResult]
    ) -> None:
        """Attention maps of the classified images, drawn over the region the model sees."""
        if not good:
            return
        pipe = self.loaded.pipeline
        try:
            pixel_values = torch.cat([pipe.preprocess(images[i])["pixel_values"] for i in good])
            maps = attention_map(self.loaded.model, pixel_values)
        except Exception:  # an explanation must never hide the prediction
            logger.exception("attention maps failed")
            maps = None
        for k, i in enumerate(good):
            if maps is None:
                results[i].note = (
                    f"No attention map: {type(self.loaded.model).__name__} has no attention over image patches "
                    "that attention rollout can follow."
                )
                continue
            view = field_of_view(self.loaded.processor, images[i].shape)
            results[i].attention = render_attention(images[i], maps[k], view, results[i].name)

    @staticmethod
    def _failure(err: Exception, name: str) -> str:
        if not (isinstance(err, USER_ERRORS) or isinstance(err, (OSError, MemoryError))):
            logger.exception("unexpected failure on %s", name)
        return error_message(err, name)


__all__ = [
    "EXAMPLES",
    "EXAMPLES_DIR",
    "TARGET_UNITS",
    "FileResult",
    "LensDemo",
    "error_message",
    "field_of_view",
    "render_attention",
    "render_image",
    "value_text",
]
