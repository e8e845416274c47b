"""Checks that keep the preprocessing of training and of inference the same.

Not imported by ``lens_hf.processing`` itself: its errors are :class:`~lens_hf.errors.LensHFError`, and
``lens_hf.errors`` imports this package (``file_io``). Import it as ``lens_hf.processing.checks``.
"""

from __future__ import annotations

from typing import Any

from lens_hf.errors import LensHFError


def check_normalization(dataset_normalization: str | None, processor: Any) -> None:
    """Refuse to pair a dataset with a processor that would save a model with the wrong preprocessing.

    ``dataset_normalization`` is what the dataset recorded for its stored images (``lens_hf_dataset.json``,
    ``None`` when it records nothing). Images stored normalised (e.g. ``"minmax"``) train the model on normalised
    pixels, so the processor saved with it must apply that normalisation to new raw images too; a processor with
    ``"none"`` would feed the model raw counts at inference. Images stored raw (``"none"``) can take any
    processor normalisation (it is applied in training and inference alike). ``processor`` is the image
    processor or the name of its normalisation. Raises :class:`LensHFError`.
    """
    wanted = processor if isinstance(processor, str) else processor.normalization
    if dataset_normalization in (None, "none") or dataset_normalization == wanted:
        return
    raise LensHFError(
        f"the dataset stores {dataset_normalization}-normalised images but the image processor normalises with "
        f"{wanted!r}: the saved model would see differently scaled images at inference; train with "
        f"--normalization {dataset_normalization}, or rebuild the dataset with --normalization none"
    )


__all__ = ["check_normalization"]
