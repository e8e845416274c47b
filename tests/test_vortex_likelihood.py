"""The axion mass by likelihood (lens_hf.processing.vortex_likelihood): the closed-form line deflection is the
simulator's 100 point masses, a long vortex's mass is recovered and a short one is not taken for a long one, and
`--refine likelihood` answers with it through predict (in one process or several, the same answers) and refuses
models it does not apply to in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lens_hf.data import simulate
from lens_hf.processing.file_io import read_image
from lens_hf.processing.vortex_likelihood import (
    GRID,
    likelihood_log10_mass,
    posterior_median,
    vortex_observer,
)

ROOT = Path(__file__).resolve().parents[1]
SEED = 31


def _vortex(light: bool) -> tuple[np.ndarray, float]:
    """Raw counts and true log10 m_a of a light (m_a < 10^-23.7 eV) or heavy (> 10^-22.5 eV) vortex of SEED."""
    for i in range(60):
        mass = np.log10(simulate.draw_scene("model_i", "vortex", SEED, i).axion_mass)
        if (mass < -23.7) if light else (mass > -22.5):
            counts, _ = simulate.simulate_image("model_i", "vortex", SEED, i)
            return counts.astype(np.float64), float(mass)
    raise AssertionError("no such vortex in the first 60")


def test_line_deflection_is_the_simulators_point_masses():
    observer = vortex_observer()
    scene = simulate.draw_scene("model_i", "vortex", SEED, 0)
    elements = scene.kwargs_lens[2:]
    xs = np.array([e["center_x"] for e in elements])
    ys = np.array([e["center_y"] for e in elements])
    theta2 = sum(e["theta_E"] ** 2 for e in elements)
    assert theta2 == pytest.approx(observer._theta_e2, rel=1e-9)
    half_length = float(np.hypot(xs[-1], ys[-1]))
    angle = float(np.arctan2(ys[-1] - ys[0], xs[-1] - xs[0]))
    z = observer._z
    ring = np.abs(np.abs(z) - 1.28) < 0.05
    points = xs + 1j * ys
    exact = (theta2 / len(points) / np.conj(z[ring, None] - points[None, :])).sum(axis=1)
    closed = observer._line(half_length, angle)[ring] + observer._point[ring]
    assert np.abs(closed - exact).max() < 1e-5  # arcsec, against deflections of ~0.04"


def test_a_long_vortex_is_measured_and_a_short_one_not_taken_for_a_long_one():
    counts, truth = _vortex(light=True)
    loglike = vortex_observer().log_likelihood(counts)
    assert loglike.shape == (len(GRID), 18) and np.isfinite(loglike).all()
    assert abs(posterior_median(loglike) - truth) < 0.1
    assert likelihood_log10_mass(counts) == pytest.approx(posterior_median(loglike))
    # tempering widens the posterior: the median of the untempered one is no farther from the sharp peak
    assert abs(posterior_median(loglike, temperature=1.0) - truth) < 0.1
    counts, truth = _vortex(light=False)
    assert likelihood_log10_mass(counts) > -23.2  # a short vortex is not taken for a long one
    with pytest.raises(ValueError, match="raw photon counts"):
        likelihood_log10_mass(counts / counts.max())


@pytest.mark.slow
def test_refine_likelihood_through_predict(tmp_path):
    from lens_hf.data.simulate import write_deeplense

    archive = tmp_path / "archive"
    write_deeplense(archive, "model_i", 2, SEED, workers=1, progress=False)
    cli = [sys.executable, "-m", "lens_hf.cli", "predict", str(archive / "axion")]
    model = str(ROOT / "checkpoints" / "axion-mass-model-i")
    plain, refined, parallel = tmp_path / "plain.csv", tmp_path / "refined.csv", tmp_path / "parallel.csv"
    for out, extra in (
        (plain, []),
        (refined, ["--refine", "likelihood"]),
        (parallel, ["--refine", "likelihood", "--workers", "2"]),  # two processes: the same answers
    ):
        done = subprocess.run(
            [*cli, "--model", model, "--output", str(out), *extra], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
    rows = [line.split(",") for line in plain.read_text().splitlines()[1:]]
    refined_rows = [line.split(",") for line in refined.read_text().splitlines()[1:]]
    assert [r[0] for r in rows] == [r[0] for r in refined_rows] and len(rows) == 2
    for row in refined_rows:  # the likelihood's answer, in both columns
        assert float(row[1]) == pytest.approx(likelihood_log10_mass(read_image(row[0])[0]), abs=1e-9)
        assert float(row[2]) == pytest.approx(10 ** float(row[1]), rel=1e-9)
    assert parallel.read_text() == refined.read_text()
    classifier = str(ROOT / "checkpoints" / "vit-spt-lsa-model-i")
    done = subprocess.run(
        [*cli, "--model", classifier, "--refine", "likelihood", "--output", str(tmp_path / "c.csv")],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "axion-mass regression models" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c.csv").exists()
    done = subprocess.run(
        [*cli, "--model", model, "--refine", "likelihood", "--workers", "0"], capture_output=True, text=True
    )
    assert done.returncode != 0 and done.stderr.strip().splitlines() == [
        "lens-hf: error: --workers must be at least 1, got 0"
    ]
