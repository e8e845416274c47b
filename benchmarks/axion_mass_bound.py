"""How well could anything measure the axion mass from a Model I image? An ideal-observer bound.

    python benchmarks/axion_mass_bound.py                 # 150 vortices of the axion-mass test seed
    python benchmarks/axion_mass_bound.py --num 400

For each simulated Model I vortex image (the test seed of ``benchmarks/axion_mass.py``), the observer knows every
parameter of the scene except the axion mass: the source position, the vortex angle and the exposure time. It
renders the noiseless image for a grid of log10 m_a values (the same renderer as the simulator), scores the noisy
image under Model I's noise (Poisson photon counts of ``exposure * (model + Gaussian-approximated Poisson +
background)``, approximated as a Gaussian of variance ``2 * exposure * model + (exposure * background_rms)^2``),
and answers the posterior median under the uniform prior in log10 m_a. No model that sees only the pixels can
beat its mean absolute error (it must also infer the source position and the angle), so the bound says how much
of a regression model's error is the data's and how much is the model's. Writes
``results/axion_mass_bound.{json,md}`` with the error per bin of the true value.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from tqdm import tqdm

from lens_hf.data import simulate
from lens_hf.data.presets import get_preset

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
NAME = "axion_mass_bound"
SEED = 9301  # the Model I test seed of benchmarks/axion_mass.py
BIN_WIDTH = 0.4  # dex


def with_axion_mass(preset, scene: simulate.Scene, log10_mass: float) -> simulate.Scene:
    """``scene`` (a vortex) with its line of point masses redrawn for another axion mass: same angle, same
    element masses, the half-length of ``log10_mass`` (:func:`lens_hf.data.simulate.vortex_half_length`)."""
    elements = scene.kwargs_lens[2:]
    dx = elements[-1]["center_x"] - elements[0]["center_x"]
    dy = elements[-1]["center_y"] - elements[0]["center_y"]
    angle = np.arctan2(dy, dx)
    half = simulate.vortex_half_length(10.0**log10_mass, preset.vortex_length_coeff)
    line = np.linspace(-half, half, len(elements))
    theta = elements[0]["theta_E"]
    kwargs = [
        {"theta_E": theta, "center_x": float(c * np.cos(angle)), "center_y": float(c * np.sin(angle))}
        for c in line
    ]
    return dataclasses.replace(scene, kwargs_lens=scene.kwargs_lens[:2] + kwargs, axion_mass=10.0**log10_mass)


def noise_variance(preset, scene: simulate.Scene, rate: np.ndarray) -> np.ndarray:
    """Per-pixel variance of the photon counts of a noiseless image ``rate`` (counts/s) under Model I's noise:
    Gaussian-approximated Poisson of ``exposure * (model + background)``, plus 1 for the count rounding."""
    t = scene.exposure_time
    return 2.0 * t * np.clip(rate, 0.0, None) + (t * preset.background_rms) ** 2 + 1.0


def write_results(out: Path, name: str, report: dict, lines: list[str]) -> None:
    """``out/<name>.json`` (the report) and ``out/<name>.md`` (the table's lines), which are also printed."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{name}.md").write_text("\n".join(lines))
    print("\n".join(lines))


def posterior_median(preset, scene: simulate.Scene, counts: np.ndarray, grid: np.ndarray) -> float:
    """The posterior median of log10 m_a on ``grid`` for the observed photon ``counts``."""
    t = scene.exposure_time
    loglike = []
    for value in grid:
        rate = simulate.noiseless_image(preset, with_axion_mass(preset, scene, value))  # counts/s per pixel
        mean = t * rate
        var = noise_variance(preset, scene, rate)
        loglike.append(-0.5 * float(np.sum((counts - mean) ** 2 / var + np.log(var))))
    loglike = np.asarray(loglike)
    post = np.exp(loglike - loglike.max())
    cdf = np.cumsum(post / post.sum())
    return float(grid[min(int(np.searchsorted(cdf, 0.5)), len(grid) - 1)])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num", type=int, default=150, help="vortex images (indices 0..num-1 of the seed)")
    parser.add_argument("--grid", type=int, default=61, help="log10 m_a grid points on the prior's range")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    preset = get_preset("model_i")
    lo, hi = preset.log10_axion_mass_range
    grid = np.linspace(lo, hi, args.grid)
    truth, estimate = [], []
    for index in tqdm(range(args.num), desc="ideal observer", unit="img"):
        scene = simulate.draw_scene(preset, "vortex", SEED, index)
        counts, meta = simulate.simulate_image(preset, "vortex", SEED, index)
        truth.append(float(np.log10(meta["axion_mass"])))
        estimate.append(posterior_median(preset, scene, np.asarray(counts, dtype=np.float64), grid))
    truth_a, err = np.asarray(truth), np.abs(np.asarray(estimate) - np.asarray(truth))
    bins = []
    for start in np.arange(lo, hi, BIN_WIDTH):
        sel = (truth_a >= start) & (truth_a < start + BIN_WIDTH)
        bins.append(
            {
                "low": round(float(start), 2),
                "high": round(float(start + BIN_WIDTH), 2),
                "num_samples": int(sel.sum()),
                "mae": float(err[sel].mean()) if sel.any() else None,
            }
        )
    report = {
        "command": "python benchmarks/axion_mass_bound.py"
        + (f" --num {args.num}" if args.num != 150 else ""),
        "date": dt.date.today().isoformat(),
        "dataset": "model_i",
        "split": "independent simulated vortices (the axion-mass test seed)",
        "seed": SEED,
        "num_samples": args.num,
        "grid_points": args.grid,
        "mae": float(err.mean()),
        "mae_binned": bins,
    }
    lines = [
        "# Axion mass on Model I: ideal-observer bound",
        "",
        f"`{report['command']}`",
        "",
        f"An observer that knows every scene parameter but m_a (source position, vortex angle, exposure) and "
        f"the noise model, answering the posterior median on a {args.grid}-point grid of log10 m_a: "
        f"**MAE {report['mae']:.3f} dex** on {args.num} Model I vortices (seed {SEED}). No pixel-only model can "
        "do better on average (up to the Gaussian approximation of the photon noise).",
        "",
        "| true log10 m_a | vortices | ideal-observer MAE (dex) |",
        "|---|---|---|",
        *[
            f"| [{b['low']:.1f}, {b['high']:.1f}) | {b['num_samples']} | "
            + ("-" if b["mae"] is None else f"{b['mae']:.3f}")
            + " |"
            for b in bins
        ],
        "",
    ]
    write_results(args.out, NAME, report, lines)
    return report


if __name__ == "__main__":
    main()
