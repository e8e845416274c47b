"""Tests of the DeepLense simulator: physics tables, samplers, lenstronomy agreement, determinism, archives."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from lens_hf.data.presets import (
    PRESETS,
    einstein_radius,
    get_preset,
    subhalo_mass_quantile,
    vortex_half_length,
)
from lens_hf.data.simulate import (
    META_KEYS,
    draw_scene,
    instrument_kwargs,
    iter_simulations,
    noiseless_image,
    point_mass_deflection,
    resolve_label,
    simulate_image,
    write_deeplense,
)
from lens_hf.errors import LensHFError
from lens_hf.labels import DEEPLENSE_FOLDERS, LABELS
from lens_hf.processing.file_io import read_image


# ------------------------------------------------------------------------------------------- physics
def test_einstein_radius_matches_direct_astropy_formula():
    from astropy import units as u
    from astropy.constants import G, M_sun, c
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=70, Om0=0.3, Ob0=0.05)
    d_l = cosmo.luminosity_distance(0.5).to(u.m)
    d_s = cosmo.luminosity_distance(1.0).to(u.m)
    expected = (np.sqrt(4 * G * 1e12 * M_sun / c**2 * (d_s - d_l) / (d_l * d_s)) * u.rad).to(u.arcsec).value

    theta = einstein_radius(1e12)
    assert theta == pytest.approx(expected, rel=1e-5)  # 206265 vs 206264.8 arcsec/rad
    assert theta == pytest.approx(1.28, abs=0.01)
    masses = np.array([1e6, 1e8, 1e10])
    np.testing.assert_allclose(einstein_radius(masses), theta * np.sqrt(masses / 1e12), rtol=1e-12)
    assert einstein_radius(1e12, 0.5, 2.0) > theta
    with pytest.raises(LensHFError, match="behind the lens"):
        einstein_radius(1e12, z_lens=1.0, z_source=0.5)


def test_preset_tables_match_the_reference():
    m1, m2, m3 = PRESETS["model_i"], PRESETS["model_ii"], PRESETS["model_iii"]
    assert (m1.num_pix, m1.pixel_scale, m1.psf_fwhm, m1.psf_truncation) == (150, 0.05, 0.087, 3.0)
    assert (m1.background_rms, m1.log10_exposure_range, m1.output_dtype) == (0.01, (3.0, 3.5), "int64")
    assert (m1.source_amp, m1.source_magnitude) == (20.0, None)
    assert (
        m2.num_pix,
        m2.instrument,
        m2.instrument_band,
        m2.instrument_psf_type,
        m2.instrument_coadd_years,
    ) == (
        64,
        "Euclid",
        "VIS",
        "GAUSSIAN",
        6,
    )
    assert (m3.num_pix, m3.instrument, m3.instrument_band, m3.instrument_psf_type) == (
        64,
        "HST",
        "WFC3_F160W",
        "GAUSSIAN",
    )
    for preset in (m2, m3):
        assert (preset.source_magnitude, preset.source_amp, preset.output_dtype, preset.add_noise) == (
            20.0,
            None,
            "float64",
            True,
        )
    assert instrument_kwargs(m2)["pixel_scale"] == 0.101 and instrument_kwargs(m2)["seeing"] == 0.16
    assert instrument_kwargs(m3)["pixel_scale"] == 0.08 and instrument_kwargs(m3)["seeing"] == 0.08
    for p in PRESETS.values():
        assert (p.H0, p.Om0, p.Ob0, p.z_lens, p.z_source) == (70.0, 0.3, 0.05, 0.5, 1.0)
        assert (p.main_halo_mass, p.sie_e1, p.sie_e2, p.shear_gamma1, p.shear_gamma2) == (
            1e12,
            0.1,
            0.0,
            0.05,
            0.0,
        )
        assert (p.source_r_sersic, p.source_n_sersic, p.source_e1, p.source_e2, p.source_center_max) == (
            0.25,
            1.0,
            -0.1,
            0.1,
            0.35,
        )
        assert (p.n_subhalos, p.subhalo_mass_min, p.subhalo_mass_max, p.subhalo_beta) == (25, 1e6, 1e10, -0.9)
        assert (p.subhalo_r_min, p.subhalo_r_max) == (0.25, 2.0)
        assert (p.vortex_mass, p.vortex_n_elements, p.log10_axion_mass_range) == (3e10, 100, (-24.0, -22.0))
    assert get_preset("Model-II") is m2 and get_preset(m3) is m3
    with pytest.raises(LensHFError, match="model_i, model_ii, model_iii"):
        get_preset("model_iv")


def test_subhalo_mass_sampler_follows_the_power_law():
    beta, lo, hi = -0.9, 1e6, 1e10
    u = np.random.default_rng(1).uniform(size=200_000)
    masses = subhalo_mass_quantile(u, lo, hi, beta)
    assert masses.min() >= lo and masses.max() <= hi
    # Analytic quantiles from a numerical integral of m^beta (independent of the closed form).
    grid = np.geomspace(lo, hi, 200_001)
    pdf = grid**beta
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    probs = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    analytic = np.interp(probs, cdf, grid)
    np.testing.assert_allclose(np.quantile(masses, probs), analytic, rtol=0.03)
    # Kolmogorov-Smirnov distance of the sample against the analytic CDF.
    sorted_m = np.sort(masses)
    model_cdf = (sorted_m ** (beta + 1) - lo ** (beta + 1)) / (hi ** (beta + 1) - lo ** (beta + 1))
    ks = np.max(np.abs(np.arange(1, sorted_m.size + 1) / sorted_m.size - model_cdf))
    assert ks < 1.63 / np.sqrt(sorted_m.size)  # 1 % level


def test_subhalo_scene_has_25_point_masses_in_range():
    preset = get_preset("model_i")
    scene = draw_scene(preset, "subhalo", seed=3, index=4)
    assert scene.n_point_masses == 25 and scene.subhalo_masses.shape == (25,)
    assert np.all((scene.subhalo_masses >= 1e6) & (scene.subhalo_masses <= 1e10))
    pm = scene.kwargs_lens[2:]
    radii = np.hypot([k["center_x"] for k in pm], [k["center_y"] for k in pm])
    assert np.all((radii >= 0.25) & (radii <= 2.0))
    np.testing.assert_allclose([k["theta_E"] for k in pm], einstein_radius(scene.subhalo_masses), rtol=1e-12)
    assert scene.kwargs_lens[0]["theta_E"] == pytest.approx(einstein_radius(1e12))
    assert draw_scene(preset, "no_substructure", 3, 4).n_point_masses == 0


def test_vortex_is_a_line_with_the_de_broglie_half_length():
    assert vortex_half_length(1e-22) == pytest.approx(0.03)
    assert vortex_half_length(1e-24) == pytest.approx(3.0)
    np.testing.assert_allclose(vortex_half_length(np.array([1e-23, 2e-23])), [0.3, 0.15])
    for index in range(3):
        scene = draw_scene("model_i", "vortex", seed=0, index=index)
        assert 1e-24 <= scene.axion_mass <= 1e-22
        pm = scene.kwargs_lens[2:]
        assert len(pm) == 100
        x = np.array([k["center_x"] for k in pm])
        y = np.array([k["center_y"] for k in pm])
        half = vortex_half_length(scene.axion_mass)
        assert np.hypot(x[0], y[0]) == pytest.approx(half) and np.hypot(x[-1], y[-1]) == pytest.approx(half)
        assert abs(x.mean()) < 1e-12 and abs(y.mean()) < 1e-12  # centred on the lens
        np.testing.assert_allclose(
            np.hypot(np.diff(x), np.diff(y)), 2 * half / 99, rtol=1e-9
        )  # evenly spaced
        cross = (x[-1] - x[0]) * (y[50] - y[0]) - (y[-1] - y[0]) * (x[50] - x[0])
        assert abs(cross) < 1e-12  # collinear
        np.testing.assert_allclose([k["theta_E"] for k in pm], einstein_radius(3e8), rtol=1e-12)


def test_point_mass_kernel_and_model_i_renderer_match_plain_lenstronomy():
    from lenstronomy.Data.imaging_data import ImageData
    from lenstronomy.Data.psf import PSF
    from lenstronomy.ImSim.image_model import ImageModel
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LightModel.light_model import LightModel
    from lenstronomy.Util import util

    rng = np.random.default_rng(0)
    x, y = rng.uniform(-2, 2, 500), rng.uniform(-2, 2, 500)
    te, cx, cy = rng.uniform(0.001, 0.05, 7), rng.uniform(-1, 1, 7), rng.uniform(-1, 1, 7)
    ref = LensModel(["POINT_MASS"] * 7).alpha(
        x, y, [{"theta_E": t, "center_x": a, "center_y": b} for t, a, b in zip(te, cx, cy)]
    )
    np.testing.assert_allclose(point_mass_deflection(x, y, te, cx, cy), ref, rtol=1e-12)

    _, _, ra0, dec0, _, _, pix2angle, _ = util.make_grid_with_coordtransform(
        num_pix=150, delta_pix=0.05, center_ra=0, center_dec=0, subgrid_res=1, inverse=False
    )
    data = ImageData(
        background_rms=0.01,
        exposure_time=1000.0,
        ra_at_xy_0=ra0,
        dec_at_xy_0=dec0,
        transform_pix2angle=pix2angle,
        image_data=np.zeros((150, 150)),
    )
    psf = PSF(psf_type="GAUSSIAN", fwhm=0.087, pixel_size=0.05, truncation=3)
    for label in ("subhalo", "vortex"):
        scene = draw_scene("model_i", label, seed=11, index=2)
        plain = ImageModel(
            data,
            psf,
            lens_model_class=LensModel(scene.lens_model_list),
            source_model_class=LightModel(["SERSIC_ELLIPSE"]),
            kwargs_numerics={"supersampling_factor": 1, "supersampling_convolution": False},
        ).image(scene.kwargs_lens, [scene.kwargs_source])
        np.testing.assert_allclose(
            noiseless_image("model_i", scene), plain, rtol=1e-9, atol=1e-12 * plain.max()
        )


# ------------------------------------------------------------------------------------------- images
@pytest.mark.parametrize(
    ("preset", "shape", "dtype"),
    [
        ("model_i", (150, 150), np.int64),
        ("model_ii", (64, 64), np.float64),
        ("model_iii", (64, 64), np.float64),
    ],
)
def test_image_shapes_dtypes_and_meta(preset, shape, dtype):
    for label in LABELS:
        image, meta = simulate_image(preset, label, seed=5, index=1)
        assert image.shape == shape and image.dtype == dtype and np.isfinite(image).all()
        assert tuple(meta) == META_KEYS
        assert (meta["label"], meta["preset"], meta["seed"], meta["index"]) == (label, preset, 5, 1)
        assert abs(meta["source_x"]) <= 0.35 and abs(meta["source_y"]) <= 0.35
        assert (meta["axion_mass"] is not None) == (label == "vortex")
        assert meta["n_subhalos"] == (25 if label == "subhalo" else 0)
        assert (meta["subhalo_mass_total"] > 0) == (label == "subhalo")
        if preset == "model_i":
            assert image.min() >= 0 and image.max() > 50  # photon counts of a bright arc
            assert 10**3 <= meta["exposure_time"] <= 10**3.5
        else:
            noise = image - noiseless_image(preset, draw_scene(preset, label, 5, 1))
            assert 0 < noise.std() < 0.1 * image.max()  # noise_for_model was added
            assert meta["exposure_time"] == pytest.approx(
                instrument_kwargs(get_preset(preset))["exposure_time"]
                * instrument_kwargs(get_preset(preset))["num_exposures"]
            )


def test_same_request_same_pixels_whatever_the_workers():
    one = list(iter_simulations("model_i", 2, seed=7, workers=1, progress=False))
    two = list(iter_simulations("model_i", 2, seed=7, workers=2, progress=False))
    assert [m["label"] for _, m in one] == [label for label in LABELS for _ in range(2)]
    assert [m["index"] for _, m in one] == [0, 1] * 3
    for (a, meta_a), (b, meta_b) in zip(one, two, strict=True):
        assert np.array_equal(a, b) and meta_a == meta_b
    again, _ = simulate_image("model_i", "vortex", seed=7, index=1)
    assert np.array_equal(again, one[5][0])
    other_seed, _ = simulate_image("model_i", "vortex", seed=8, index=1)
    assert not np.array_equal(other_seed, again)
    only_vortex = list(iter_simulations("model_i", 1, seed=7, labels=["vort"], workers=1, progress=False))
    assert len(only_vortex) == 1 and np.array_equal(only_vortex[0][0], one[4][0])


def test_substructure_changes_the_image():
    for label in ("subhalo", "vortex"):
        scene = draw_scene("model_i", label, seed=2, index=0)
        with_sub = noiseless_image("model_i", scene)
        scene.kwargs_lens = scene.kwargs_lens[:2]  # same source and main lens, substructure removed
        smooth = noiseless_image("model_i", scene)
        assert np.abs(with_sub - smooth).max() > 0.01 * smooth.max()
    images = [simulate_image("model_i", label, seed=2, index=0)[0] for label in LABELS]
    assert not np.array_equal(images[0], images[1]) and not np.array_equal(images[0], images[2])


def test_bad_requests_raise_one_line_errors():
    assert (
        resolve_label("cdm") == "subhalo"
        and resolve_label(2) == "vortex"
        and resolve_label("no") == "no_substructure"
    )
    for bad in ("halo", 3, -1, True):
        with pytest.raises(LensHFError):
            resolve_label(bad)
    with pytest.raises(LensHFError, match="seed"):
        simulate_image("model_i", 0, seed=-1, index=0)
    with pytest.raises(LensHFError, match="workers"):
        list(iter_simulations("model_i", 1, seed=0, workers=0, progress=False))


# ------------------------------------------------------------------------------------------- archives
def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_write_deeplense_layout_and_readable_files(tmp_path):
    out = tmp_path / "archive"
    summary = write_deeplense(out, "model_i", per_class=2, seed=4, workers=1, progress=False)
    assert (summary["files"], summary["written"], summary["skipped"]) == (6, 6, 0)
    assert {p.name for p in out.iterdir()} == {
        "axion",
        "cdm",
        "no_sub",
        "metadata.csv",
        "lens_hf_simulation.json",
    }
    with open(out / "metadata.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and list(rows[0]) == ["path", *META_KEYS]
    for row in rows:
        folder = DEEPLENSE_FOLDERS[row["label"]]
        path = out / row["path"]
        assert path.parent.name == folder and re.fullmatch(rf"{folder}_sim_\d+\.npy", path.name)
        assert int(path.name.split("_sim_")[1][:-4]) < 2**128
        image, meta = read_image(path)
        expected, _ = simulate_image("model_i", row["label"], 4, int(row["index"]))
        np.testing.assert_array_equal(image, expected.astype(np.float32))
        if row["label"] == "vortex":
            assert meta["axion_mass"] == float(row["axion_mass"])
            raw = np.load(path, allow_pickle=True)  # our own file, written just above
            assert raw.dtype == object and raw.shape == (2,) and raw[0].dtype == np.int64
        else:
            assert meta == {} and row["axion_mass"] == "" and np.load(path).dtype == np.int64


def test_resume_after_damage_is_byte_identical(tmp_path):
    clean, damaged = tmp_path / "clean", tmp_path / "damaged"
    write_deeplense(clean, "model_i", per_class=3, seed=1, workers=1, progress=False)
    write_deeplense(damaged, "model_i", per_class=3, seed=1, workers=2, progress=False)
    assert _tree_bytes(clean) == _tree_bytes(damaged)  # the pool writes the same bytes

    axion = sorted((damaged / "axion").glob("*.npy"))
    cdm = sorted((damaged / "cdm").glob("*.npy"))
    axion[0].write_bytes(axion[0].read_bytes()[:500])  # truncated object array
    cdm[1].write_bytes(cdm[1].read_bytes()[:-100])  # truncated plain array
    (damaged / "no_sub" / sorted((damaged / "no_sub").glob("*.npy"))[2].name).unlink()
    (damaged / "cdm" / f".{cdm[0].name}.999.tmp").write_bytes(b"partial")  # left by a killed worker
    (damaged / "metadata.csv").unlink()

    summary = write_deeplense(damaged, "model_i", per_class=3, seed=1, workers=2, progress=False)
    assert (summary["skipped"], summary["replaced"], summary["written"], summary["removed_temp"]) == (
        6,
        2,
        1,
        1,
    )
    assert _tree_bytes(clean) == _tree_bytes(damaged)

    smaller = write_deeplense(damaged, "model_i", per_class=2, seed=1, workers=1, progress=False)
    assert smaller["trimmed"] == 3 and len(list(damaged.rglob("*.npy"))) == 6


def test_refuses_to_mix_presets_or_seeds(tmp_path):
    out = tmp_path / "set"
    write_deeplense(out, "model_ii", per_class=1, seed=0, workers=1, progress=False)
    for preset, seed in (("model_iii", 0), ("model_ii", 1)):
        with pytest.raises(LensHFError, match="refusing to mix") as err:
            write_deeplense(out, preset, per_class=1, seed=seed, workers=1, progress=False)
        assert "\n" not in str(err.value)
    foreign = tmp_path / "foreign"
    (foreign / "cdm").mkdir(parents=True)
    np.save(foreign / "cdm" / "cdm_sim_1.npy", np.zeros((64, 64)))
    with pytest.raises(LensHFError, match="not written by lens_hf"):
        write_deeplense(foreign, "model_ii", per_class=1, seed=0, workers=1, progress=False)
