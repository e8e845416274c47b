"""How a Model I axion-mass model answers when only the mass changes: ``--scenes`` vortex scenes (seed 777), each
re-rendered at 11 values of log10 m_a from -24 to -22 (same source, exposure and vortex angle), with the
simulator's noise and without it (its mean counts, rounded, background included), and the model's mean answer and its spread
over the scenes per true value. A model that reads the ring's distortion follows the 1:1 line; one that does not
gives the same answer from some mass up.

    python benchmarks/axion_mass_response.py --model checkpoints/axion-mass-model-i
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from axion_mass_bound import with_axion_mass  # noqa: E402

from lens_hf.data import simulate  # noqa: E402
from lens_hf.data.presets import get_preset  # noqa: E402
from lens_hf.inference import load_classifier, predict_arrays  # noqa: E402

SEED = 777  # no recipe, config or other benchmark simulates with it
GRID = np.linspace(-24.0, -22.0, 11)


def expected_counts(rate: np.ndarray, exposure: float, background_rms: float) -> np.ndarray:
    """The simulator's mean photon counts, rounded: E[max(0, t * rate + N(0, s^2))] with s^2 = t * rate +
    (t * rms)^2 (its Gaussian photon and background noise before the clip and the Poisson draw), so that the
    background pixels hold their mean clipped counts as in a real exposure."""
    from scipy.special import ndtr

    mu = exposure * np.clip(rate, 0.0, None)
    sigma = np.sqrt(mu + (exposure * background_rms) ** 2)
    z = mu / sigma
    return np.round(mu * ndtr(z) + sigma * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi))


def responses(model: str, scenes: int) -> dict[str, np.ndarray]:
    """Predicted log10 m_a, (scenes, 11), for the noisy and the noiseless images."""
    preset = get_preset("model_i")
    rng = np.random.default_rng(0)
    images: dict[str, list[np.ndarray]] = {"noisy": [], "noiseless": []}
    renderer = simulate._renderer(preset, preset.vortex_n_elements)
    for index in range(scenes):
        scene = simulate.draw_scene(preset, "vortex", SEED, index)
        for value in GRID:
            moved = with_axion_mass(preset, scene, float(value))
            rate = renderer.model(moved)
            images["noiseless"].append(expected_counts(rate, moved.exposure_time, preset.background_rms))
            images["noisy"].append(renderer.observe(rate, moved, rng).astype(np.float64))
    loaded = load_classifier(model)
    return {
        kind: np.log10(predict_arrays(loaded, ims, progress=False)[:, 0]).reshape(scenes, len(GRID))
        for kind, ims in images.items()
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--scenes", type=int, default=30)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--name", default=None, help="results file stem (default: axion_mass_response_<folder>)"
    )
    args = parser.parse_args(argv)
    pred = responses(args.model, args.scenes)
    report = {
        "command": f"python benchmarks/axion_mass_response.py --model {args.model} --scenes {args.scenes}"
        + (f" --name {args.name}" if args.name else ""),
        "seed": SEED,
        "scenes": args.scenes,
        "true_log10_axion_mass": GRID.round(2).tolist(),
        **{
            kind: {"mean": p.mean(0).round(3).tolist(), "sd": p.std(0).round(3).tolist()}
            for kind, p in pred.items()
        },
    }
    name = args.name or f"axion_mass_response_{Path(args.model).name}"
    lines = [
        f"# Axion mass on Model I: the answer of `{Path(args.model).name}` when only the mass changes",
        "",
        f"`{report['command']}`",
        "",
        f"Predicted log10 m_a (mean +- spread over {args.scenes} scenes, seed {SEED}) when only the mass changes.",
        "",
        "| true | " + " | ".join(f"{v:.1f}" for v in GRID) + " |",
        "|---" * (len(GRID) + 1) + "|",
    ]
    for kind in ("noisy", "noiseless"):
        cells = [f"{m:.2f} +- {s:.2f}" for m, s in zip(report[kind]["mean"], report[kind]["sd"])]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return report


if __name__ == "__main__":
    main()
