"""lens_hf.data.splits: independent simulated splits, completing a data folder's splits, never a fake test split."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from lens_hf.data.splits import complete_splits, limit_splits, simulate_splits
from lens_hf.errors import LensHFError
from lens_hf.labels import LABELS


def labelled(per_class: int, start: int = 0) -> Dataset:
    """Rows ``{"id": k, "label": class}``, ``per_class`` of each class; ids count from ``start``."""
    labels = [k for k in range(len(LABELS)) for _ in range(per_class)]
    features = Features({"id": Value("int64"), "label": ClassLabel(names=list(LABELS))})
    ids = list(range(start, start + len(labels)))
    return Dataset.from_dict({"id": ids, "label": labels}, features=features)


def per_class(ds: Dataset) -> list[int]:
    return np.bincount(ds["label"], minlength=len(LABELS)).tolist()


def test_one_split_is_divided_80_10_10_per_class():
    dd = complete_splits(DatasetDict({"test": labelled(20)}), seed=0, source="folder")
    assert list(dd) == ["train", "validation", "test"]
    assert [per_class(dd[s]) for s in dd] == [[16] * 3, [2] * 3, [2] * 3]
    ids = [set(dd[s]["id"]) for s in dd]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2]) and len(set.union(*ids)) == 60
    again = complete_splits(DatasetDict({"test": labelled(20)}), seed=0, source="folder")
    assert again["test"]["id"] == dd["test"]["id"]  # seeded


def test_missing_validation_is_carved_from_train_and_a_missing_test_stays_missing(caplog):
    dd = complete_splits(DatasetDict({"train": labelled(10), "extra": labelled(1)}), seed=1, source="folder")
    assert list(dd) == ["train", "validation"]  # no test split is made up, unknown splits are dropped
    assert per_class(dd["train"]) == [9] * 3 and per_class(dd["validation"]) == [1] * 3
    assert any("no test split" in r.getMessage() for r in caplog.records)

    test = labelled(2, start=100)
    dd = complete_splits(DatasetDict({"train": labelled(10), "test": test}), seed=1, source="folder")
    assert list(dd) == ["train", "validation", "test"] and dd["test"]["id"] == test["id"]
    with pytest.raises(LensHFError, match="folder: no train split"):
        complete_splits(
            DatasetDict({"validation": labelled(2), "test": labelled(2)}), seed=0, source="folder"
        )


def test_limit_splits_cuts_and_refuses_empty_splits():
    dd = DatasetDict({"train": labelled(4), "validation": labelled(2)})
    cut = limit_splits(dd, {"train": 5, "validation": None}, seed=0)
    assert len(cut["train"]) == 5 and len(cut["validation"]) == 6
    assert set(cut["train"]["id"]) <= set(dd["train"]["id"])
    with pytest.raises(LensHFError, match="the validation split is empty"):
        limit_splits(dd, {"validation": 0}, seed=0)


def test_simulated_splits_use_independent_seeds():
    dd = simulate_splits(
        "model_ii", {"train": 1, "validation": 1, "test": 0}, seed=5, workers=1, progress=False
    )
    assert list(dd) == ["train", "validation"]  # test_per_class 0: no test split
    assert dd["train"]["seed"] != dd["validation"]["seed"]
    with pytest.raises(LensHFError, match="validation needs at least 1 simulated image per class"):
        simulate_splits("model_ii", {"train": 1, "validation": 0}, seed=5, workers=1, progress=False)
