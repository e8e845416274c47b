"""The train / validation / test splits of a training run: simulated with one independent seed per split, or
completed from the splits a data folder holds.

A test split is only ever a real one (held out from training and from model selection): data without one get
none, and the run evaluates on validation and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from datasets import Dataset, DatasetDict

from lens_hf.data.dataset import build_from_simulation, stratified_split
from lens_hf.errors import LensHFError
from lens_hf.labels import LABELS

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "validation", "test")
# Seed offsets of the simulated splits, so that no image is shared between them.
SIM_SEED_OFFSETS: dict[str, int] = {"train": 0, "validation": 1, "test": 2}
# A data folder with a single unnamed split is divided per class into these fractions.
SINGLE_SPLIT_FRACTIONS: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}
# Fraction of each class of train carved out as validation when the data has no validation split.
VALIDATION_FRACTION = 0.1


def simulate_splits(
    preset: Any,
    per_class: Mapping[str, int],
    seed: int,
    *,
    workers: int | None = None,
    normalize: str = "minmax",
    progress: bool = True,
    labels: Sequence[str] = LABELS,
) -> DatasetDict:
    """Simulate each split independently: ``per_class[split]`` images of every class in ``labels`` (default:
    all three) with seed ``seed + SIM_SEED_OFFSETS[split]``. Train and validation need at least one image per class; a test split
    of 0 images per class is left out."""
    out = {}
    for split in SPLITS:
        count = int(per_class.get(split, 0))
        if split == "test" and count == 0:
            continue
        if count < 1:
            raise LensHFError(f"{split} needs at least 1 simulated image per class, got {count}")
        dd = build_from_simulation(
            preset,
            count,
            seed + SIM_SEED_OFFSETS[split],
            splits={"train": count},
            workers=workers,
            normalize=normalize,
            progress=progress,
            labels=labels,
        )
        out[split] = dd["train"]
    return DatasetDict(out)


def _carve(ds: Dataset, fractions: Mapping[str, float], seed: int) -> dict[str, Dataset]:
    """``ds`` divided per class into ``fractions`` (seeded, stratified)."""
    names = ds.features["label"].names
    assignment = stratified_split([names[i] for i in ds["label"]], fractions, seed)
    return {name: ds.select(idx) for name, idx in assignment.items()}


def complete_splits(dd: DatasetDict, seed: int, source: str) -> DatasetDict:
    """``train`` and ``validation`` splits, plus ``test`` when the data hold one.

    - a single split not called train is divided 80/10/10 per class into train/validation/test;
    - without a validation split, 10 % of each class of train becomes validation;
    - without a test split there is none (and a warning): the caller evaluates on validation.
    Other splits are dropped.
    """
    splits = dict(dd)
    if "train" not in splits:
        if len(splits) != 1:
            raise LensHFError(f"{source}: no train split (splits: {', '.join(splits) or 'none'})")
        splits = _carve(next(iter(splits.values())), SINGLE_SPLIT_FRACTIONS, seed)
        logger.warning("%s: one split only; divided it 80/10/10 per class into train/validation/test", source)
    if "validation" not in splits:
        fractions = {"train": 1.0 - VALIDATION_FRACTION, "validation": VALIDATION_FRACTION}
        splits.update(_carve(splits["train"], fractions, seed))
        logger.warning("%s: no validation split; using 10%% of train per class", source)
    if "test" not in splits:
        logger.warning("%s: no test split; the final evaluation is on the validation split", source)
    return DatasetDict({name: splits[name] for name in SPLITS if name in splits})


def limit_splits(dd: DatasetDict, limits: Mapping[str, int | None], seed: int) -> DatasetDict:
    """Each split cut to at most ``limits[split]`` rows (a seeded random subset; None: no limit)."""
    out = {}
    for name, ds in dd.items():
        limit = limits.get(name)
        out[name] = (
            ds.shuffle(seed=seed).select(range(limit)) if limit is not None and limit < len(ds) else ds
        )
        if len(out[name]) == 0:
            raise LensHFError(f"the {name} split is empty")
    return DatasetDict(out)


__all__ = [
    "SIM_SEED_OFFSETS",
    "SPLITS",
    "complete_splits",
    "limit_splits",
    "simulate_splits",
]
