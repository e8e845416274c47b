"""On-the-fly augmentation and the dataset transform that feeds the Trainer.

Strong-lensing images have no preferred orientation, so the training set is augmented with the dihedral
group D4 (the 4 rotations by multiples of 90 degrees, each with or without a mirror flip), which maps
the pixel grid onto itself without interpolation (``d4_transform``, shared with test-time augmentation).
``d2`` keeps to the 4 of them that leave the grid's axes in place (mirror flips and the half turn): for data
whose lens is aligned with the grid, such as DeepLense simulations (SIE ellipticity and shear along x), where a
quarter turn makes an image the lens never produces.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from lens_hf.errors import LensHFError
from lens_hf.processing.file_io import CHANNEL_COLUMNS, NOT_IDEMPOTENT, as_image_2d, pil_to_array
from lens_hf.processing.image_processing_lens import D2_ELEMENTS, D4_ORDER, d4_transform

AUGMENTATIONS: tuple[str, ...] = ("d4", "d2", "none")
# The D4 elements each augmentation draws from, uniformly.
AUGMENTATION_ELEMENTS: dict[str, tuple[int, ...]] = {
    "d4": tuple(range(D4_ORDER)),
    "d2": D2_ELEMENTS,
    "none": (0,),
}
# The column of standardised regression targets (float32) that a regression run adds to its splits; when a row
# has it, it is the row's label instead of the class id.
TARGET_COLUMN = "regression_target"


def random_d4(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """One uniformly drawn D4 symmetry of ``x`` (..., H, W)."""
    element = int(torch.randint(D4_ORDER, (1,), generator=generator).item())
    return d4_transform(x, element)


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def random_crop(
    x: torch.Tensor, size: int | tuple[int, int], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Crop a random ``size`` (px, or (height, width)) window from ``x`` (..., H, W)."""
    (ch, cw), (h, w) = _hw(size), x.shape[-2:]
    if ch > h or cw > w:
        raise LensHFError(f"random crop of {ch}x{cw} px is larger than the {h}x{w} px images")
    top = int(torch.randint(h - ch + 1, (1,), generator=generator).item())
    left = int(torch.randint(w - cw + 1, (1,), generator=generator).item())
    return x[..., top : top + ch, left : left + cw]


def as_training_array(image: Any) -> np.ndarray:
    """A dataset cell (PIL image of mode F/I/L, array or nested list) -> float32 (H, W)."""
    if hasattr(image, "mode") and hasattr(image, "size"):
        image = pil_to_array(image)
    return as_image_2d(image, "dataset image")


class LensTransform:
    """``Dataset.with_transform`` callable: rows ``{"image": [...], "label": [...]}`` ->
    ``{"pixel_values": (batch, C, H, W) float32, "labels": (batch,) int64}``; rows with a
    :data:`TARGET_COLUMN` (regression) give ``"labels"`` (batch,) float32 from it instead.

    The image processor resizes and normalises exactly as at inference time (a normalisation that cannot be
    applied twice, :data:`~lens_hf.processing.file_io.NOT_IDEMPOTENT`, is skipped: the splits already hold its
    output; a multi-channel one stores each channel in a column of
    :data:`~lens_hf.processing.file_io.CHANNEL_COLUMNS`, and the channels are read from those). For training
    (``train=True``) its centre crop is skipped: :class:`BatchAugment` crops at random instead. Deterministic on
    purpose: the random part of the augmentation runs in the training step, where a resumed run draws the same
    random numbers as an uninterrupted one.
    """

    def __init__(self, processor: Any, *, train: bool, image_column: str = "image", random_crop: bool = True):
        self.processor = processor
        self.train = train
        self.image_column = image_column
        self.random_crop = random_crop

    def pixel_values(self, images: Sequence[Any], channel: int | None = None) -> torch.Tensor:
        """Images -> (batch, C, H, W) float32 model inputs (uncropped in training mode with random crops);
        with ``channel``, the stored images of that channel of a multi-channel normalisation ->
        (batch, 1, H, W)."""
        arrays = [as_training_array(im) for im in images]
        overrides: dict[str, Any] = {"do_center_crop": False} if self.train and self.random_crop else {}
        if getattr(self.processor, "normalization", None) in NOT_IDEMPOTENT:
            # The splits hold images already normalised with the processor's method (load_splits), and this one
            # cannot be applied twice.
            overrides["normalization"] = "none"
        if channel is not None:
            overrides["num_channels"] = 1
            mean, std = self.processor.image_mean, self.processor.image_std
            if mean is not None:
                overrides["image_mean"] = [mean[channel if len(mean) > 1 else 0]]
                overrides["image_std"] = [std[channel if len(std) > 1 else 0]]
        return self.processor(arrays, return_tensors="pt", **overrides)["pixel_values"]

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, torch.Tensor]:
        columns = CHANNEL_COLUMNS.get(getattr(self.processor, "normalization", None), (self.image_column,))
        missing = [name for name in columns if name not in batch]
        if missing:
            raise LensHFError(f"dataset has no {missing[0]!r} column (columns: {', '.join(batch)})")
        if len(columns) == 1:
            out = {"pixel_values": self.pixel_values(batch[self.image_column])}
        else:
            channels = [self.pixel_values(batch[name], channel=k) for k, name in enumerate(columns)]
            out = {"pixel_values": torch.cat(channels, dim=1)}
        if TARGET_COLUMN in batch:
            out["labels"] = torch.as_tensor(batch[TARGET_COLUMN], dtype=torch.float32)
        elif "label" in batch:
            out["labels"] = torch.as_tensor(batch["label"], dtype=torch.long)
        return out


class BatchAugment:
    """Random augmentation of a training batch ``(batch, C, H, W)``, drawn independently per image:
    a random ``crop`` window (when given) and a uniformly drawn D4 symmetry (``augment="d4"``) or one of the
    4 that keep the grid's axes (``"d2"``).

    Runs in the training step (see :class:`~lens_hf.training.trainer.LensTrainer`) on the global torch RNG,
    which the Trainer saves with every checkpoint and restores on resume.
    """

    def __init__(self, augment: str = "d4", crop: int | tuple[int, int] | None = None):
        if augment not in AUGMENTATIONS:
            raise LensHFError(f"unknown augmentation {augment!r} (choose from {', '.join(AUGMENTATIONS)})")
        self.augment = augment
        self.crop = None if crop is None else _hw(crop)

    @classmethod
    def for_processor(
        cls, processor: Any, augment: str = "d4", *, random_crop: bool = True
    ) -> BatchAugment | None:
        """The augmentation matching ``processor``: its centre-crop size becomes a random crop in training
        (unless ``random_crop=False``). None when there is nothing random to do."""
        crop = getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop", False) else None
        crop = crop if random_crop else None
        size = (
            (int(crop["height"]), int(crop["width"]))
            if isinstance(crop, dict)
            else (_hw(crop) if crop else None)
        )
        augmentation = cls(augment, size)
        return None if augment == "none" and size is None else augmentation

    def __call__(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = pixel_values
        if self.crop is not None:
            x = torch.stack([random_crop(img, self.crop) for img in x])
        if self.augment != "none":
            if x.shape[-1] != x.shape[-2]:
                raise LensHFError(f"D4 augmentation needs square images, got {x.shape[-2]}x{x.shape[-1]} px")
            group = torch.tensor(AUGMENTATION_ELEMENTS[self.augment])
            elements = group[torch.randint(len(group), (x.shape[0],))]
            out = torch.empty_like(x)
            for e in group.tolist():
                idx = (elements == e).nonzero().flatten().to(x.device)
                if idx.numel():
                    out[idx] = d4_transform(x[idx], e)
            x = out
        return x.contiguous()


def collate(examples: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack transformed rows into a batch: ``pixel_values`` (batch, C, H, W), ``labels`` (batch,): int64 class
    ids, or float32 regression targets."""
    batch = {"pixel_values": torch.stack([e["pixel_values"] for e in examples])}
    if "labels" in examples[0]:
        labels = [torch.as_tensor(e["labels"]) for e in examples]
        dtype = torch.float32 if labels[0].is_floating_point() else torch.long
        batch["labels"] = torch.stack([label.to(dtype) for label in labels])
    return batch


def make_transforms(processor: Any, *, random_crop: bool = True) -> tuple[Callable, Callable]:
    """(train transform, evaluation transform) for ``Dataset.with_transform``. With ``random_crop=False`` the
    processor's centre crop is applied in training too."""
    return LensTransform(processor, train=True, random_crop=random_crop), LensTransform(
        processor, train=False
    )
