"""The smooth-lens residual of Model I images (normalization="residual_model_i"): the fit finds the source and the
exposure, the residual is noise where there is no substructure and shows a vortex, bad input is refused in one
line, and stored residuals are not fitted twice. With the fitted lens as a second channel
("residual_lens_model_i"): stored in two columns, read back as the processor makes it from the raw counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lens_hf.data import simulate
from lens_hf.data.dataset import build_from_simulation
from lens_hf.errors import LensHFError
from lens_hf.processing.file_io import LensFileError, normalize_image
from lens_hf.processing.image_processing_lens import LensImageProcessor
from lens_hf.processing.smooth_lens import smooth_lens_model
from lens_hf.training.augment import LensTransform

SEED = 31


def _light_and_heavy_vortex(seed: int = SEED) -> tuple[int, int]:
    """Indices of a light (long line, m_a < 10^-23.7 eV) and a heavy (m_a > 10^-22.5 eV) vortex of ``seed``."""
    masses = [np.log10(simulate.draw_scene("model_i", "vortex", seed, i).axion_mass) for i in range(40)]
    return next(i for i, m in enumerate(masses) if m < -23.7), next(
        i for i, m in enumerate(masses) if m > -22.5
    )


@pytest.mark.parametrize("label", ["no_substructure", "vortex"])
def test_fit_finds_the_source_centre_and_the_exposure(label):
    index = _light_and_heavy_vortex()[1] if label == "vortex" else 0
    counts, meta = simulate.simulate_image("model_i", label, SEED, index)
    fit = smooth_lens_model("model_i").fit(counts.astype(np.float64))
    assert abs(fit.center_x - meta["source_x"]) < 0.02 and abs(fit.center_y - meta["source_y"]) < 0.02
    assert fit.exposure_time == pytest.approx(meta["exposure_time"], rel=0.05)
    # Both within 0.02", a quarter of the start grid's step (0.175"): the Nelder-Mead refinement did its work.
    assert fit.residual.shape == (150, 150) and fit.residual.dtype == np.float32


def test_residual_is_noise_for_a_heavy_axion_and_shows_a_light_one():
    """A heavy axion's vortex is nearly the smooth model's central point mass: its residual is unit noise where
    the lensed light is (the exposure time right to about 1 %); a light axion's long line stands out."""
    light, heavy = _light_and_heavy_vortex()
    scene = simulate.draw_scene("model_i", "vortex", SEED, heavy)
    counts, meta = simulate.simulate_image("model_i", "vortex", SEED, heavy)
    fit = smooth_lens_model("model_i").fit(counts.astype(np.float64))
    assert fit.exposure_time == pytest.approx(meta["exposure_time"], rel=0.015)
    # Pixels chosen by the noiseless image (choosing them by the counts would pick the upward fluctuations).
    noiseless = simulate.noiseless_image("model_i", scene)
    ring = noiseless > 0.05 * noiseless.max()
    assert abs(float(fit.residual[ring].mean())) < 0.1 and 0.85 < float(fit.residual[ring].std()) < 1.15
    long_line = normalize_image(
        simulate.simulate_image("model_i", "vortex", SEED, light)[0], "residual_model_i", "x"
    )
    chi2_light = float(np.square(long_line[ring]).sum())
    chi2_heavy = float(np.square(fit.residual[ring]).sum())
    assert chi2_light > chi2_heavy + 200, (chi2_light, chi2_heavy)


def _two_stored_vortices(normalize: str, workers: int):
    """A training split of the first two vortices of SEED, normalised by ``normalize`` in the simulation workers."""
    return build_from_simulation(
        "model_i",
        2,
        SEED,
        splits={"train": 2},
        workers=workers,
        normalize=normalize,
        labels=["vortex"],
        progress=False,
    )


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda c: normalize_image(c, "minmax", "x"), "raw photon counts"),
        (lambda c: c[:100, :100], "150x150 px"),
        (lambda c: c - 5, "raw photon counts"),
        (lambda c: c + 0.5, "raw photon counts"),
    ],
)
def test_residual_refuses_anything_but_raw_counts(make, message):
    counts, _ = simulate.simulate_image("model_i", "no_substructure", SEED, 0)
    with pytest.raises(LensFileError, match=message) as err:
        normalize_image(make(counts), "residual_model_i", "lens.npy")
    assert str(err.value).startswith("lens.npy: ") and "\n" not in str(err.value)
    processor = LensImageProcessor(size=96, normalization="residual_model_i", num_channels=1)
    with pytest.raises(LensFileError, match=message):
        processor(make(counts))


def test_simulated_residuals_are_fitted_in_the_workers_and_not_fitted_again_in_training():
    dd = _two_stored_vortices("residual_model_i", workers=2)
    stored = [np.asarray(im, dtype=np.float32) for im in dd["train"]["image"]]
    for i, image in enumerate(stored):
        counts, _ = simulate.simulate_image("model_i", "vortex", SEED, i)
        np.testing.assert_array_equal(image, normalize_image(counts, "residual_model_i", "x"))
    assert min(float(im.min()) for im in stored) < 0  # residuals: not raw counts any more
    processor = LensImageProcessor(
        size=96, crop_size=64, do_center_crop=True, normalization="residual_model_i", num_channels=1
    )
    # The training transform gives the processor's output without a second fit (which would refuse them).
    out = LensTransform(processor, train=False)(dd["train"][:2])["pixel_values"]
    direct = processor(stored, normalization="none", return_tensors="pt")["pixel_values"]
    assert out.shape == (2, 1, 64, 64) and torch.equal(out, direct)


def test_residual_lens_is_the_residual_and_the_fitted_lens_in_noise_units():
    _, heavy = _light_and_heavy_vortex()
    counts, _ = simulate.simulate_image("model_i", "vortex", SEED, heavy)
    both = normalize_image(counts, "residual_lens_model_i", "x")
    assert both.shape == (2, 150, 150) and both.dtype == np.float32
    np.testing.assert_array_equal(both[0], normalize_image(counts, "residual_model_i", "x"))
    fit = smooth_lens_model("model_i").fit(counts.astype(np.float64))
    rate = smooth_lens_model("model_i").rate(fit.center_x, fit.center_y)
    sigma = np.sqrt(smooth_lens_model("model_i").variance(rate, fit.exposure_time))
    # residual + lens = counts / sigma: the two channels together hold the image, in units of its noise
    np.testing.assert_allclose((both[0] + both[1]) * sigma, counts, rtol=1e-4, atol=1e-3)
    r = np.hypot(*np.meshgrid(np.arange(150) - 74.5, np.arange(150) - 74.5)) * 0.05
    assert float(both[1][np.abs(r - 1.28) < 0.1].max()) > 5  # the ring stands out of the noise
    assert float(both[1][r > 3].max()) < 0.05  # nothing of the lens far from it


def test_residual_lens_needs_two_channels():
    with pytest.raises(ValueError, match="num_channels=2"):
        LensImageProcessor(size=96, normalization="residual_lens_model_i", num_channels=1)
    processor = LensImageProcessor(size=96, normalization="residual_lens_model_i", num_channels=2)
    with pytest.raises(LensFileError, match="raw photon counts"):
        processor(np.full((150, 150), 0.5, dtype=np.float32))


def test_two_channel_residuals_are_stored_in_two_columns_and_read_back_as_the_processor_makes_them():
    dd = _two_stored_vortices("residual_lens_model_i", workers=1)
    assert {"image", "smooth_lens"} <= set(dd["train"].column_names)
    processor = LensImageProcessor(
        size=96, crop_size=64, do_center_crop=True, normalization="residual_lens_model_i", num_channels=2
    )
    stored = LensTransform(processor, train=False)(dd["train"][:2])["pixel_values"]
    raw = [simulate.simulate_image("model_i", "vortex", SEED, i)[0] for i in range(2)]
    direct = processor(raw, return_tensors="pt")["pixel_values"]
    assert stored.shape == (2, 2, 64, 64)
    torch.testing.assert_close(stored, direct, rtol=0, atol=1e-6)
    assert not torch.equal(stored[:, 0], stored[:, 1])
    with pytest.raises(LensHFError, match="smooth_lens"):
        LensTransform(processor, train=False)(dd["train"].remove_columns("smooth_lens")[:2])


@pytest.mark.slow
@pytest.mark.parametrize("normalization", ["residual_model_i", "residual_lens_model_i"])
def test_regressor_on_residuals_from_raw_stored_counts_then_predicts_raw_archive_files(
    tmp_path, normalization
):
    """A dataset that stores raw Model I counts, trained with --normalization residual_model_i (or with the lens as
    a second channel): the residuals are fitted once before training, the saved processor fits them for new
    files, and `lens-hf predict` answers for raw DeepLense axion files and refuses a normalised one in one line."""
    import json
    import subprocess
    import sys

    from datasets import DatasetDict

    from lens_hf.cli import load_recipe
    from lens_hf.data.dataset import save_dataset
    from lens_hf.data.simulate import write_deeplense

    raw = build_from_simulation(
        "model_i",
        6,
        SEED,
        splits={"train": 4, "validation": 1, "test": 1},
        workers=1,
        normalize="none",
        labels=["vortex"],
        progress=False,
    )
    data = tmp_path / "raw-counts"
    save_dataset(DatasetDict(raw), data, info={"normalization": "none"}, parquet=False)
    out = tmp_path / "model"
    args = [
        "--config",
        "recipes/configs/smoke_test.yaml",
        "--dataset",
        str(data),
        "--normalization",
        normalization,
        "--image_size",
        "32",
        "--output_dir",
        str(out),
        "--config_overrides",
        json.dumps(
            {
                "hidden_size": 16,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 32,
                "patch_size": 8,
            }
        ),
    ]
    metrics = load_recipe("train_regressor").main(args)
    assert metrics["num_samples"] == 1 and np.isfinite(metrics["mae"])  # the one stored test vortex
    processor = json.loads((out / "preprocessor_config.json").read_text())
    assert processor["normalization"] == normalization
    channels = 2 if normalization == "residual_lens_model_i" else 1
    assert processor["num_channels"] == channels
    assert json.loads((out / "config.json").read_text())["num_channels"] == channels

    archive = tmp_path / "archive"
    write_deeplense(archive, "model_i", 2, SEED + 1, workers=1, progress=False)
    csv_path = tmp_path / "p.csv"
    cli = [sys.executable, "-m", "lens_hf.cli", "predict", "--model", str(out)]
    done = subprocess.run(
        [*cli, str(archive / "axion"), "--output", str(csv_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    rows = csv_path.read_text().splitlines()
    assert rows[0] == "file,log10_axion_mass,axion_mass,error" and len(rows) == 3
    assert all(-30 < float(r.split(",")[1]) < -16 for r in rows[1:])

    counts, _ = simulate.simulate_image("model_i", "vortex", SEED, 0)
    bad = tmp_path / "normalised.npy"
    np.save(bad, normalize_image(counts, "minmax", "x"))
    done = subprocess.run(
        [*cli, str(bad), "--output", str(tmp_path / "q.csv")], capture_output=True, text=True
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "raw photon counts" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "q.csv").exists()
