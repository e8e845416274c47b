"""How much does the axion mass change a Model I image? The signal a regressor has to read, per vortex.

    python benchmarks/axion_mass_signal.py                       # vortices of [-23.6, -23.2) among the first 60
    python benchmarks/axion_mass_signal.py --low -24 --high -22 --num 200 --step 0.2

For each vortex of the axion-mass test seed (``benchmarks/axion_mass.py``) whose true log10 m_a lies in
[``--low``, ``--high``), the noiseless image is rendered again with log10 m_a moved by ``--step`` dex (same source,
angle and element masses: :func:`axion_mass_bound.with_axion_mass`), and the change is scored under Model I's noise
(:func:`axion_mass_bound.noise_variance`): its total signal-to-noise ratio over the image at the
native 0.05"/px and after summing 2x2 pixels (0.1"/px; never more than the native one), and its largest pixel
change as a fraction of the image's peak. A total signal-to-noise of a few for a 0.2 dex step is what an observer
that knows everything else needs to measure the mass to a few hundredths of a dex; a model that sees only the
pixels must also infer the source. Writes ``results/axion_mass_signal.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import axion_mass_bound as bound  # noqa: E402 - the sibling benchmark's scene editing, noise and seed

from lens_hf.data import simulate  # noqa: E402
from lens_hf.data.presets import get_preset  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
NAME = "axion_mass_signal"


def bin2(x: np.ndarray) -> np.ndarray:
    """Sum of 2x2 pixel blocks (an odd last row or column is dropped)."""
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    return x[:h, :w].reshape(h // 2, 2, w // 2, 2).sum(axis=(1, 3))


def signal(preset, scene: simulate.Scene, step: float) -> dict[str, float]:
    """The change of ``scene``'s noiseless image when log10 m_a moves by ``step``, scored under the noise."""
    log10_mass = float(np.log10(scene.axion_mass))
    t = scene.exposure_time
    rate = simulate.noiseless_image(preset, bound.with_axion_mass(preset, scene, log10_mass))
    moved = simulate.noiseless_image(preset, bound.with_axion_mass(preset, scene, log10_mass + step))
    var = bound.noise_variance(preset, scene, rate)
    diff = t * (moved - rate)
    return {
        "log10_axion_mass": log10_mass,
        "snr_native": float(np.sqrt(np.sum(diff**2 / var))),
        "snr_binned_2x2": float(np.sqrt(np.sum(bin2(diff) ** 2 / bin2(var)))),
        "max_change_of_peak": float(np.abs(moved - rate).max() / rate.max()),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--low", type=float, default=-23.6, help="lowest true log10 m_a kept")
    parser.add_argument("--high", type=float, default=-23.2, help="highest true log10 m_a (excluded)")
    parser.add_argument("--num", type=int, default=60, help="vortex images looked at (indices 0..num-1)")
    parser.add_argument("--step", type=float, default=0.2, help="change of log10 m_a (dex)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    preset = get_preset("model_i")
    rows = []
    for index in range(args.num):
        scene = simulate.draw_scene(preset, "vortex", bound.SEED, index)
        if args.low <= np.log10(scene.axion_mass) < args.high:
            rows.append({"index": index, **signal(preset, scene, args.step)})
    if not rows:
        raise SystemExit(f"no vortex with log10 m_a in [{args.low}, {args.high}) among the first {args.num}")
    kept = [r["snr_binned_2x2"] / r["snr_native"] for r in rows]
    report = {
        "command": "python benchmarks/axion_mass_signal.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": dt.date.today().isoformat(),
        "dataset": "model_i",
        "seed": bound.SEED,
        "range": [args.low, args.high],
        "step_dex": args.step,
        "num_samples": len(rows),
        "rows": rows,
    }
    lines = [
        "# Axion mass on Model I: how much the mass changes the image",
        "",
        f"`{report['command'].strip()}`",
        "",
        f"{len(rows)} vortices with true log10 m_a in [{args.low}, {args.high}) among the first {args.num} of seed "
        f"{bound.SEED}; each noiseless image rendered again with log10 m_a + {args.step:g} (nothing else changed). "
        f"Median total signal-to-noise of the change: {np.median([r['snr_native'] for r in rows]):.1f} at "
        f'0.05"/px; 2x2-summed pixels keep {min(kept):.0%}-{max(kept):.0%} of it.',
        "",
        '| vortex | true log10 m_a | SNR, 0.05"/px | SNR, 0.1"/px | largest pixel change / peak |',
        "|---|---|---|---|---|",
        *[
            f"| {r['index']} | {r['log10_axion_mass']:.2f} | {r['snr_native']:.1f} | {r['snr_binned_2x2']:.1f} "
            f"| {r['max_change_of_peak']:.1%} |"
            for r in rows
        ],
        "",
    ]
    bound.write_results(args.out, NAME, report, lines)
    return report


if __name__ == "__main__":
    main()
