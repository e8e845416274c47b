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
