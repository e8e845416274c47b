"""Image processor for single-channel floating-point lensing images, and the D4 symmetries of an image.

Stock image processors assume 8-bit RGB photographs: they convert to RGB, rescale by 1/255 and clip. Lensing
images are single-channel counts or fluxes whose values may lie anywhere (Model I: Poisson counts up to ~10^4).
:class:`LensImageProcessor` keeps them as float32 from input to ``pixel_values``:

    input -> (H, W) float32 -> per-image normalisation (file_io.normalize_image) -> resize (bilinear,
          antialiased) -> centre crop -> replicate to ``num_channels`` -> optional dataset standardisation
          -> (batch, C, H', W') float32

A multi-channel normalisation (``residual_lens_model_i``: the smooth-lens residual and the fitted lens) gives
its own channels instead of replicated ones, and needs ``num_channels`` equal to their count.

The module travels with saved models as remote code: it imports only numpy, torch, transformers, PIL and
its sibling ``file_io``.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers.image_processing_base import ImageProcessingMixin
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.processing_utils import ImagesKwargs

from .file_io import (
    DEFAULT_ASINH_SOFTENING,
    NORMALIZATIONS,
    STRETCHES,
    LensFileError,
    as_image_2d,
    normalization_channels,
    normalize_image,
    pil_to_array,
    read_image,
    stretch_image,
)

# The dihedral group D4: the 4 rotations by multiples of 90 degrees, each with or without a mirror flip. Lensing
# images have no preferred orientation, and these map the pixel grid onto itself without interpolation.
D4_ORDER = 8
# The D4 elements that keep the pixel grid's axes as they are (identity, mirror, half turn, mirror + half turn):
# the symmetries of a lens whose ellipticity and external shear are aligned with the grid, as in every DeepLense
# simulation (SIE e1 and shear gamma1 along x). Rotations by a quarter turn swap those axes.
D2_ELEMENTS: tuple[int, ...] = (0, 1, 4, 5)


def d4_transform(x: torch.Tensor, element: int) -> torch.Tensor:
    """Apply D4 element ``element`` (0-7) to the last two axes of ``x`` (..., H, W).

    ``element = 2 * k + f``: rotate by ``k`` quarter turns (counter-clockwise), after mirroring the
    columns when ``f == 1``. Element 0 is the identity. Needs ``H == W`` for the odd rotations to keep the shape.
    """
    if not 0 <= element < D4_ORDER:
        raise ValueError(f"D4 element must be in 0..7, got {element}")
    k, flip = divmod(element, 2)
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, k, dims=(-2, -1)) if k else x


class LensImageProcessorKwargs(ImagesKwargs, total=False):
    """Keyword arguments :class:`LensImageProcessor` adds to the stock image-processor ones."""

    normalization: str | None
    stretch: str | None
    asinh_softening: float | None
    num_channels: int | None


def _size_dict(size: Any, name: str) -> dict[str, int] | None:
    """``150``, ``(150, 150)`` or ``{"height": 150, "width": 150}`` -> ``{"height": 150, "width": 150}``."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        height = width = int(size)
    elif isinstance(size, dict) and {"height", "width"} <= set(size):
        height, width = int(size["height"]), int(size["width"])
    elif isinstance(size, dict) and set(size) == {"shortest_edge"}:
        # Lensing cut-outs are square, so the shortest edge fixes both sides.
        height = width = int(size["shortest_edge"])
    elif isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2:
        height, width = int(size[0]), int(size[1])
    else:
        raise ValueError(
            f"{name} must be an int, (height, width) or {{'height': h, 'width': w}}, got {size!r}"
        )
    if height < 1 or width < 1:
        raise ValueError(f"{name} must be positive, got {height}x{width}")
    return {"height": height, "width": width}


def _stats(values: Any, name: str) -> list[float] | None:
    """Scalar or per-channel mean/std -> list of floats (``None`` stays ``None``)."""
    if values is None:
        return None
    out = [float(v) for v in np.atleast_1d(np.asarray(values, dtype=np.float64)).ravel()]
    if not out or not all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite numbers, got {values!r}")
    return out


def _describe(item: Any) -> str:
    return type(item).__name__


def _is_path(item: Any) -> bool:
    return isinstance(item, (str, os.PathLike))


def _is_pil(item: Any) -> bool:
    # Duck-typed so PIL is imported only when a PIL image is actually passed in.
    return hasattr(item, "getbands") and hasattr(item, "mode") and hasattr(item, "size")


def _is_array(item: Any) -> bool:
    return isinstance(item, (np.ndarray, torch.Tensor))


def _to_numpy(item: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(item, torch.Tensor):
        return item.detach().cpu().numpy()
    return item


def _split_array(array: np.ndarray, source: str) -> list[tuple[np.ndarray, str]] | None:
    """Split a batch array (B, H, W), (B, 1, H, W) or (B, H, W, 1) into images; None when it is one image.

    A 3-D array is one image when it has a singleton first or last axis; a colour image (last axis 3 or 4) is
    left to :func:`as_image_2d` to refuse; anything else 3-D is a batch (B, H, W)."""
    if array.ndim == 3 and not (1 in (array.shape[0], array.shape[-1]) or array.shape[-1] in (3, 4)):
        return [(array[i], f"{source}[{i}]") for i in range(array.shape[0])]
    if array.ndim == 4:
        return [(array[i], f"{source}[{i}]") for i in range(array.shape[0])]
    return None


class LensImageProcessor(BaseImageProcessor):
    r"""Turns lensing images into ``pixel_values`` of shape ``(batch, num_channels, height, width)``, float32.

    Accepted inputs, alone or in a list: NumPy arrays and torch tensors of shape (H, W), (1, H, W) or (H, W, 1),
    any integer or float dtype; batch arrays (B, H, W), (B, 1, H, W) or (B, H, W, 1); PIL images of any mode
    (``F`` and ``I;16`` keep their values exactly); file paths (``.npy``, ``.npz``, ``.fits``/``.fit``, ``.png``,
    ``.tif``/``.tiff``), read with the safe loader of ``file_io``. Invalid images (NaN pixels, colour arrays, 1-D
    arrays, constant images under min-max normalisation, ...) raise :class:`LensFileError` with a one-line message.

    Args:
        size: output size after resizing, ``{"height": h, "width": w}``, an int or ``(h, w)``, in pixels.
        do_resize: resize every image to ``size`` (bilinear with antialiasing).
        crop_size: centre-crop size applied after resizing, same formats as ``size``; ``None`` for no crop.
        do_center_crop: apply the centre crop.
        normalization: per-image normalisation, ``"minmax"`` (to [0, 1]), ``"none"``, or ``"residual_model_i"``
            (the raw photon counts of a Model I image minus its fitted smooth lens, in units of the noise; needs
            lens_hf installed, see ``lens_hf.processing.smooth_lens``).
        stretch: intensity stretch after min-max normalisation, ``"none"`` or ``"asinh"``
            (``asinh(x / a) / asinh(1 / a)``, ``a = asinh_softening``; needs ``normalization="minmax"``).
        asinh_softening: the softening ``a`` of the asinh stretch, as a fraction of the image's peak.
        image_mean: dataset mean subtracted after per-image normalisation (scalar or one per channel).
        image_std: dataset standard deviation divided by after subtracting the mean (scalar or per channel).
        num_channels: channels of ``pixel_values``; values above 1 replicate the grey image (RGB checkpoints).
    """

    model_input_names = ["pixel_values"]
    valid_kwargs = LensImageProcessorKwargs
    # The processor is custom code: saved folders always carry it so they load where lens_hf is not installed.
    _auto_class = "AutoImageProcessor"

    _CONFIG_KEYS: tuple[str, ...] = (
        "size",
        "do_resize",
        "crop_size",
        "do_center_crop",
        "normalization",
        "stretch",
        "asinh_softening",
        "image_mean",
        "image_std",
        "num_channels",
    )

    def __init__(
        self,
        size: dict[str, int] | int | tuple[int, int] | None = None,
        do_resize: bool = True,
        crop_size: dict[str, int] | int | tuple[int, int] | None = None,
        do_center_crop: bool = False,
        normalization: str = "minmax",
        stretch: str = "none",
        asinh_softening: float = DEFAULT_ASINH_SOFTENING,
        image_mean: float | Sequence[float] | None = None,
        image_std: float | Sequence[float] | None = None,
        num_channels: int = 1,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("image_processor_type", None)
        super().__init__(**kwargs)
        settings = self._resolve(
            size={"height": 150, "width": 150} if size is None else size,
            do_resize=do_resize,
            crop_size=crop_size,
            do_center_crop=do_center_crop,
            normalization=normalization,
            stretch=stretch,
            asinh_softening=asinh_softening,
            image_mean=image_mean,
            image_std=image_std,
            num_channels=num_channels,
        )
        for key, value in settings.items():
            setattr(self, key, value)
        self._valid_kwargs_names = list(self._CONFIG_KEYS)

    # ------------------------------------------------------------------------------------------ settings
    @classmethod
    def _resolve(cls, **settings: Any) -> dict[str, Any]:
        """Validate and canonicalise processor settings (sizes as dicts, statistics as lists)."""
        out = dict(settings)
        out["size"] = _size_dict(settings["size"], "size")
        out["crop_size"] = _size_dict(settings["crop_size"], "crop_size")
        out["do_resize"] = bool(settings["do_resize"])
        out["do_center_crop"] = bool(settings["do_center_crop"])
        if out["do_resize"] and out["size"] is None:
            raise ValueError("do_resize=True needs a size")
        if out["do_center_crop"] and out["crop_size"] is None:
            raise ValueError("do_center_crop=True needs a crop_size")
        if out["do_resize"] and out["do_center_crop"]:
            size, crop = out["size"], out["crop_size"]
            if crop["height"] > size["height"] or crop["width"] > size["width"]:
                raise ValueError(f"crop_size {crop} is larger than size {size}")
        if settings["normalization"] not in NORMALIZATIONS:
            raise ValueError(
                f"unknown normalization {settings['normalization']!r} (choose from {', '.join(NORMALIZATIONS)})"
            )
        if settings["stretch"] not in STRETCHES:
            raise ValueError(f"unknown stretch {settings['stretch']!r} (choose from {', '.join(STRETCHES)})")
        if settings["stretch"] != "none" and settings["normalization"] != "minmax":
            raise ValueError(f"stretch {settings['stretch']!r} needs normalization='minmax'")
        softening = settings["asinh_softening"]
        if isinstance(softening, bool) or not isinstance(softening, (int, float)) or not 0 < softening <= 1:
            raise ValueError(f"asinh_softening must be a number in (0, 1], got {softening!r}")
        out["asinh_softening"] = float(softening)
        channels = settings["num_channels"]
        if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
            raise ValueError(f"num_channels must be a positive integer, got {channels!r}")
        out["num_channels"] = int(channels)
        produced = normalization_channels(out["normalization"])
        if produced > 1 and out["num_channels"] != produced:
            raise ValueError(
                f"normalization {out['normalization']!r} gives {produced} channels; set num_channels={produced}"
            )
        out["image_mean"] = _stats(settings["image_mean"], "image_mean")
        out["image_std"] = _stats(settings["image_std"], "image_std")
        mean, std = out["image_mean"], out["image_std"]
        if (mean is None) != (std is None):
            raise ValueError("give both image_mean and image_std, or neither")
        if mean is not None:
            for name, values in (("image_mean", mean), ("image_std", std)):
                if len(values) not in (1, out["num_channels"]):
                    raise ValueError(
                        f"{name} has {len(values)} values; expected 1 or num_channels={out['num_channels']}"
                    )
            if min(std) <= 0:
                raise ValueError(f"image_std must be positive, got {std}")
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings, plus ``image_processor_type`` (and ``auto_map`` once saved as remote code)."""
        output = ImageProcessingMixin.to_dict(self)
        return {key: value for key, value in output.items() if not key.startswith("_")}

    def settings(self) -> dict[str, Any]:
        """The preprocessing settings alone, JSON-ready: ``LensImageProcessor(**processor.settings())`` rebuilds
        the processor (this is what a model records in ``config.lens_preprocessing``)."""
        return {key: copy.deepcopy(getattr(self, key)) for key in self._CONFIG_KEYS}

    @property
    def output_size(self) -> tuple[int, int] | None:
        """(height, width) in pixels of every ``pixel_values`` image, or None when it follows the input size."""
        if self.do_center_crop:
            return self.crop_size["height"], self.crop_size["width"]
        if self.do_resize:
            return self.size["height"], self.size["width"]
        return None

    # ------------------------------------------------------------------------------------------ inputs
    def _collect(self, images: Any) -> list[tuple[Any, str]]:
        """Flatten the input into ``(raw image, source name)`` pairs, one per image."""
        if _is_array(images):
            array = _to_numpy(images)
            return _split_array(array, "array") or [(array, "array")]
        if _is_path(images) or _is_pil(images):
            return [(images, str(images) if _is_path(images) else "PIL image")]
        if isinstance(images, (list, tuple)):
            if not images:
                raise LensFileError("images", "empty list: nothing to process")
            out = []
            for i, item in enumerate(images):
                if _is_path(item):
                    out.append((item, str(item)))
                elif _is_pil(item):
                    out.append((item, f"PIL image {i}"))
                elif _is_array(item) or isinstance(item, (list, tuple)):
                    out.append((item, f"image {i}"))
                else:
                    raise LensFileError(f"image {i}", f"unsupported input type {_describe(item)}")
            return out
        raise LensFileError(
            "images",
            f"unsupported input type {_describe(images)} (expected arrays, tensors, PIL images or file paths)",
        )

    @staticmethod
    def _load_one(item: Any, source: str) -> np.ndarray:
        """One raw image -> validated (H, W) float32 array."""
        if _is_path(item):
            image, _ = read_image(item)
            return image
        if _is_pil(item):
            return as_image_2d(pil_to_array(item), f"{source} (mode {item.mode})")
        if isinstance(item, torch.Tensor):
            item = item.detach().cpu().numpy()
        return as_image_2d(item, source)

    def _load(self, images: Any) -> list[tuple[np.ndarray, str]]:
        """Load and validate all images -> ``(image, source name)`` pairs, each image (H, W) float32."""
        items = self._collect(images)
        raw = [item for item, _ in items]
        sources = [source for _, source in items]
        if (
            all(isinstance(a, np.ndarray) and a.ndim == 2 and a.dtype.kind in "biuf" for a in raw)
            and len({a.shape for a in raw}) == 1
        ):
            # Training path: equal-sized 2-D arrays are validated once as a stack instead of one by one.
            stack = np.stack(raw).astype(np.float32, copy=False)
            finite = np.isfinite(stack).reshape(len(raw), -1).all(axis=1)
            if not finite.all():
                bad = int(np.flatnonzero(~finite)[0])
                as_image_2d(raw[bad], sources[bad])  # raises the one-line error naming the image
            as_image_2d(stack[0], sources[0])  # size limits, shared by the whole stack
            return list(zip(stack, sources))
        return [(self._load_one(item, source), source) for item, source in items]

    def _to_batch(
        self,
        images: Any,
        normalization: str,
        stretch: str = "none",
        softening: float = DEFAULT_ASINH_SOFTENING,
    ) -> list[tuple[torch.Tensor, list[str], list[int]]]:
        """Load, validate, normalise and stretch all images -> groups of equal-sized images: ((n, H, W) float32
        tensor, source names, positions in the input order)."""
        arrays, sources = [], []
        for image, source in self._load(images):
            arrays.append(stretch_image(normalize_image(image, normalization, source), stretch, softening))
            sources.append(source)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, array in enumerate(arrays):
            groups.setdefault(array.shape, []).append(i)
        return [
            (
                torch.from_numpy(np.stack([arrays[i] for i in positions])),
                [sources[i] for i in positions],
                positions,
            )
            for positions in groups.values()
        ]

    # ------------------------------------------------------------------------------------------ transforms
    @staticmethod
    def _center_crop(batch: torch.Tensor, crop: dict[str, int], sources: list[str]) -> torch.Tensor:
        height, width = batch.shape[-2:]
        if crop["height"] > height or crop["width"] > width:
            raise LensFileError(
                sources[0],
                f"image of {height}x{width} px is smaller than crop_size {crop['height']}x{crop['width']}",
            )
        top = (height - crop["height"]) // 2
        left = (width - crop["width"]) // 2
        return batch[..., top : top + crop["height"], left : left + crop["width"]]

    def _transform(self, batch: torch.Tensor, sources: list[str], settings: dict[str, Any]) -> torch.Tensor:
        """(n, H, W) or, from a multi-channel normalisation, (n, C, H, W) normalised float32 ->
        (n, C, H', W') float32 following ``settings``."""
        if batch.ndim == 3:
            batch = batch.unsqueeze(1)  # (n, 1, H, W)
        if settings["do_resize"]:
            target = (settings["size"]["height"], settings["size"]["width"])
            if tuple(batch.shape[-2:]) != target:
                batch = F.interpolate(
                    batch, size=target, mode="bilinear", align_corners=False, antialias=True
                )
        if settings["do_center_crop"]:
            batch = self._center_crop(batch, settings["crop_size"], sources)
        channels = settings["num_channels"]
        if channels > 1 and batch.shape[1] == 1:
            batch = batch.expand(-1, channels, -1, -1)
        if settings["image_mean"] is not None:
            mean = torch.tensor(settings["image_mean"], dtype=torch.float32).view(1, -1, 1, 1)
            std = torch.tensor(settings["image_std"], dtype=torch.float32).view(1, -1, 1, 1)
            batch = (batch - mean) / std
        return batch.contiguous()

    # ------------------------------------------------------------------------------------------ public
    def preprocess(self, images: Any, return_tensors: str | None = "pt", **overrides: Any) -> BatchFeature:
        """Images -> ``BatchFeature`` with ``pixel_values`` (batch, num_channels, height, width) float32.

        ``overrides`` replace this processor's settings for this call only (``size``, ``do_resize``,
        ``crop_size``, ``do_center_crop``, ``normalization``, ``image_mean``, ``image_std``, ``num_channels``).
        ``return_tensors``: ``"pt"`` (torch) or ``"np"``/``None`` (NumPy).
        """
        unknown = sorted(set(overrides) - set(self._CONFIG_KEYS))
        if unknown:
            raise ValueError(
                f"unknown LensImageProcessor option(s) {', '.join(unknown)} (valid: {', '.join(self._CONFIG_KEYS)})"
            )
        settings = self._resolve(**{key: overrides.get(key, getattr(self, key)) for key in self._CONFIG_KEYS})
        groups = self._to_batch(
            images, settings["normalization"], settings["stretch"], settings["asinh_softening"]
        )
        outputs = [self._transform(batch, sources, settings) for batch, sources, _ in groups]
        if len(outputs) == 1:
            pixel_values = outputs[0]
        else:
            shapes = {tuple(out.shape[-2:]) for out in outputs}
            if len(shapes) > 1:
                sizes = ", ".join(f"{h}x{w}" for h, w in sorted(shapes))
                raise LensFileError(
                    "images", f"images have different sizes ({sizes}); set do_resize=True to batch them"
                )
            merged = torch.cat(outputs)
            pixel_values = torch.empty_like(merged)
            pixel_values[torch.tensor([i for _, _, positions in groups for i in positions])] = merged
        if return_tensors in (None, "np"):
            return BatchFeature(data={"pixel_values": pixel_values.numpy()})
        if return_tensors != "pt":
            raise ValueError(f"return_tensors must be 'pt', 'np' or None, got {return_tensors!r}")
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type="pt")

    def __call__(self, images: Any = None, *args: Any, **kwargs: Any) -> BatchFeature:
        """Same as :meth:`preprocess`; ``images`` may also be passed by keyword."""
        return self.preprocess(images, *args, **kwargs)


__all__ = ["D2_ELEMENTS", "D4_ORDER", "LensImageProcessor", "LensImageProcessorKwargs", "d4_transform"]
