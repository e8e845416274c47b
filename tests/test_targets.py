"""lens_hf.processing.targets: the transform of a regression target and its standardisation, both ways."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import ViTConfig

from lens_hf.processing.targets import (
    TargetScaling,
    apply_transform,
    default_transform,
    invert_transform,
    is_regression,
    transformed_name,
)


def test_log10_round_trip_through_the_scaling():
    rng = np.random.default_rng(0)
    masses = 10.0 ** rng.uniform(-24, -22, 50)  # eV
    scaling = TargetScaling.fit("axion_mass", "log10", masses)
    scaled = scaling.scale(masses)
    assert scaled.dtype == np.float32
    # Standardised: mean 0 and std 1 over the training targets.
    assert abs(float(scaled.mean())) < 1e-5 and float(scaled.std()) == pytest.approx(1.0, rel=1e-5)
    assert scaling.mean == pytest.approx(np.log10(masses).mean())
    np.testing.assert_allclose(scaling.unscale(scaled), np.log10(masses), atol=1e-5)
    np.testing.assert_allclose(scaling.to_physical(scaled[:, None]), masses, rtol=2e-5)
    np.testing.assert_allclose(
        invert_transform(apply_transform(masses, "log10"), "log10"), masses, rtol=1e-12
    )


def test_none_transform_is_the_identity_and_constant_targets_keep_std_one():
    values = np.array([2.0, 2.0, 2.0])
    scaling = TargetScaling.fit("source_x", "none", values)
    assert (scaling.mean, scaling.std) == (2.0, 1.0)
    np.testing.assert_array_equal(scaling.scale(values), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(scaling.to_physical([1.5]), [3.5])


def test_undefined_values_become_nan_and_cannot_be_fitted():
    out = apply_transform([1e-23, 0.0, -1.0, np.nan, np.inf], "log10")
    assert out[0] == pytest.approx(-23.0) and np.isnan(out[1:]).all()
    assert np.isnan(apply_transform([np.nan, np.inf], "none")).all()
    with pytest.raises(ValueError, match="finite log10"):
        TargetScaling.fit("axion_mass", "log10", [1e-23, 0.0])
    with pytest.raises(ValueError, match="unknown target transform"):
        apply_transform([1.0], "ln")


def test_defaults_and_names():
    assert default_transform("axion_mass") == "log10" and default_transform("source_x") == "none"
    assert transformed_name("axion_mass", "log10") == "log10_axion_mass"
    assert transformed_name("source_x", "none") == "source_x"


def test_scaling_read_back_from_a_model_config():
    scaling = TargetScaling("axion_mass", "log10", -23.0, 0.5)
    config = ViTConfig(num_labels=1, problem_type="regression", lens_regression=scaling.to_dict())
    reloaded = ViTConfig.from_dict(config.to_dict())
    assert is_regression(reloaded) and TargetScaling.from_config(reloaded) == scaling
    assert TargetScaling.from_config(ViTConfig()) is None and not is_regression(ViTConfig())
    with pytest.raises(ValueError, match="lens_regression"):
        TargetScaling.from_config(ViTConfig(num_labels=1, problem_type="regression"))
    with pytest.raises(ValueError, match="positive std"):
        TargetScaling("axion_mass", "log10", -23.0, 0.0)
