"""check_normalization: a processor saved with a model reproduces the normalisation of the images it trained on."""

from __future__ import annotations

import pytest

from lens_hf.errors import LensHFError
from lens_hf.processing import LensImageProcessor
from lens_hf.processing.checks import check_normalization


@pytest.mark.parametrize(
    ("dataset", "processor"),
    [(None, "minmax"), (None, "none"), ("none", "minmax"), ("none", "none"), ("minmax", "minmax")],
)
def test_consistent_pairs_pass(dataset, processor):
    check_normalization(dataset, LensImageProcessor(normalization=processor))


def test_normalised_dataset_with_a_raw_processor_is_refused():
    with pytest.raises(LensHFError) as err:
        check_normalization("minmax", LensImageProcessor(normalization="none"))
    message = str(err.value)
    assert "minmax-normalised" in message and "'none'" in message and "--normalization minmax" in message
    assert "\n" not in message


def test_training_refuses_a_processor_normalisation_the_saved_dataset_does_not_have(tmp_path):
    """A dataset saved min-max normalised, trained with --normalization none: refused before training."""
    from lens_hf.data.dataset import build_from_simulation, save_dataset
    from lens_hf.training.args import DataArguments
    from lens_hf.training.run import load_splits, recorded_normalization

    dd = build_from_simulation("model_ii", 10, 0, splits={"train": 1.0}, progress=False)
    save_dataset(dd, tmp_path / "ds", info={"normalization": "minmax"})
    assert recorded_normalization(tmp_path / "ds") == "minmax"
    with pytest.raises(LensHFError, match="--normalization minmax"):
        load_splits(DataArguments(dataset=str(tmp_path / "ds"), normalization="none"), seed=0, progress=False)
    splits, info = load_splits(DataArguments(dataset=str(tmp_path / "ds")), seed=0, progress=False)
    assert info["normalization"] == "minmax" and len(splits["train"]) > 0
