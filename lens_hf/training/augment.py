"""On-the-fly augmentation and the dataset transform that feeds the Trainer.

Strong-lensing images have no preferred orientation, so the training set is augmented with the dihedral
group D4 (the 4 rotations by multiples of 90 degrees, each with or without a mirror flip), which maps
the pixel grid onto itself without interpolation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from lens_hf.errors import LensHFError
from lens_hf.processing.file_io import as_image_2d, pil_to_array

AUGMENTATIONS: tuple[str, ...] = ("d4", "none")
D4_ORDER = 8


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


def random_d4(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One uniformly drawn D4 symmetry of ``x`` (..., H, W)."""
    element = int(torch.randint(D4_ORDER, (1,), generator=generator).item())
    return d4_transform(x, element)


def random_crop(x: torch.Tensor, size: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop a random ``size`` x ``size`` window from ``x`` (..., H, W)."""
    h, w = x.shape[-2:]
    if size > h or size > w:
        raise LensHFError(f"random_crop {size} px is larger than the {h}x{w} px images")
    top = int(torch.randint(h - size + 1, (1,), generator=generator).item())
    left = int(torch.randint(w - size + 1, (1,), generator=generator).item())
    return x[..., top : top + size, left : left + size]


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size`` x ``size`` window of ``x`` (..., H, W)."""
    h, w = x.shape[-2:]
    if size > h or size > w:
        raise LensHFError(f"crop {size} px is larger than the {h}x{w} px images")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


def _as_array(image: Any) -> np.ndarray:
    """A dataset cell (PIL image of mode F/I/L, array or nested list) -> float32 (H, W)."""
    if hasattr(image, "mode") and hasattr(image, "size"):
        image = pil_to_array(image)
    return as_image_2d(image, "dataset image")


class LensTransform:
    """``Dataset.with_transform`` callable: rows ``{"image": [...], "label": [...]}`` ->
    ``{"pixel_values": (batch, C, H, W) float32, "labels": (batch,) int64}``.

    The image processor resizes and normalises exactly as at inference time. In training mode
    (``train=True``) the processor's centre crop is replaced by a random crop of the same size and a random
    D4 symmetry is applied per image; in evaluation mode the images are left as the processor makes them.
    """

    def __init__(self, processor: Any, *, train: bool, augment: str = "d4", image_column: str = "image"):
        if augment not in AUGMENTATIONS:
            raise LensHFError(f"unknown augmentation {augment!r} (choose from {', '.join(AUGMENTATIONS)})")
        self.processor = processor
        self.train = train
        self.augment = augment
        self.image_column = image_column
        crop = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else None
        self.crop = int(crop["height"]) if isinstance(crop, dict) else (int(crop) if crop else None)

    def pixel_values(self, images: Sequence[Any]) -> torch.Tensor:
        """Images -> (batch, C, H, W) float32 model inputs, augmented in training mode."""
        arrays = [_as_array(im) for im in images]
        if not self.train:
            return self.processor(arrays, return_tensors="pt")["pixel_values"]
        pixels = self.processor(arrays, return_tensors="pt", do_center_crop=False)["pixel_values"]
        out = []
        for x in pixels:  # x: (C, H, W)
            if self.crop is not None:
                x = random_crop(x, self.crop)
            if self.augment == "d4":
                x = random_d4(x)
            out.append(x)
        return torch.stack(out).contiguous()

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, torch.Tensor]:
        if self.image_column not in batch:
            raise LensHFError(f"dataset has no {self.image_column!r} column (columns: {', '.join(batch)})")
        out = {"pixel_values": self.pixel_values(batch[self.image_column])}
        if "label" in batch:
            out["labels"] = torch.as_tensor(batch["label"], dtype=torch.long)
        return out


def collate(examples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack transformed rows into a batch: ``pixel_values`` (batch, C, H, W), ``labels`` (batch,)."""
    batch = {"pixel_values": torch.stack([e["pixel_values"] for e in examples])}
    if "labels" in examples[0]:
        batch["labels"] = torch.stack([torch.as_tensor(e["labels"], dtype=torch.long) for e in examples])
    return batch


def make_transforms(processor: Any, augment: str = "d4") -> tuple[Callable, Callable]:
    """(train transform, evaluation transform) for ``Dataset.with_transform``."""
    return LensTransform(processor, train=True, augment=augment), LensTransform(processor, train=False)
