"""Axion mass on Model I: a likelihood observer that knows neither the source nor the vortex angle, beside the
regression model.

    python benchmarks/axion_mass_observer.py --model checkpoints/axion-mass-model-i   # 1,000 + 300 vortices
    python benchmarks/axion_mass_observer.py --model checkpoints/axion-mass-model-i --num 200 --val-num 100

For each vortex of a DeepLense-layout Model I archive (the test seed of ``benchmarks/axion_mass.py``, 9301, and a
validation archive of seed 9302 for choosing the likelihood's temperature), the observer of
``lens_hf.processing.vortex_likelihood`` fits the smooth lens (source centre and exposure time), renders the
vortex on a grid of log10 m_a (41 values on [-24, -22]) and of its angle (18 values on [0, pi)), scores each
rendering with the source and exposure profiled, and answers the median of the posterior of log10 m_a under the
simulator's uniform prior, the angle marginalised.

About 0.5 s per vortex on one core (the first about 3 s). The likelihood's temperature (``TEMPERATURE`` of the module: the
log-likelihood is divided by it before the posterior is formed) is chosen on the validation vortices and scored on
the test vortices; ``lens-hf evaluate --refine likelihood`` gives the same answers. Writes
``results/axion_mass_observer.{json,md,png}``; the per-vortex likelihood grids are cached in ``--work`` so that a
rerun only scores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from tqdm import tqdm

from lens_hf.processing.vortex_likelihood import ANGLES, GRID, posterior_median, vortex_observer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from axion_mass import _public  # noqa: E402 - the sibling benchmark's repository-relative path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
WORK_DIR = ROOT / "benchmarks" / "work" / "axion_mass_observer"
NAME = "axion_mass_observer"
TEST_SEED = 9301  # the Model I test seed of benchmarks/axion_mass.py
VAL_SEED = 9302  # Model I vortices for choosing the temperature (no recipe simulates Model I with it)
TEMPERATURES = (1.0, 1.5, 2.0, 2.5, 3.0)
BINS = np.arange(-24.0, -21.99, 0.4)


def _observe(path: str) -> tuple[str, float, np.ndarray]:
    from lens_hf.processing.file_io import read_image
    from lens_hf.processing.smooth_lens import check_counts

    image, meta = read_image(path)
    counts = check_counts(image, (150, 150), "the observer")
    return Path(path).name, float(np.log10(meta["axion_mass"])), vortex_observer().log_likelihood(counts)


def observe_archive(archive: Path, cache: Path, workers: int) -> dict[str, tuple[float, np.ndarray]]:
    """{file name: (true log10 m_a, log-likelihood grid)} of every vortex of ``archive``, cached in ``cache``."""
    done: dict[str, tuple[float, np.ndarray]] = {}
    if cache.exists():
        with np.load(cache) as saved:
            done = {str(n): (float(t), ll) for n, t, ll in zip(saved["names"], saved["truth"], saved["ll"])}
    files = sorted(str(p) for p in (archive / "axion").glob("*.npy") if p.name not in done)

    def save() -> None:
        names = sorted(done)
        np.savez(
            cache,
            names=names,
            truth=[done[n][0] for n in names],
            ll=np.array([done[n][1] for n in names]),
        )

    with ProcessPoolExecutor(max_workers=workers) as pool:
        for k, (name, truth, ll) in enumerate(
            tqdm(pool.map(_observe, files), total=len(files), desc=f"observer {archive.name}")
        ):
            done[name] = (truth, ll)
            if k % 50 == 49:
                save()
    save()
    return done


def model_answers(model: Path, archive: Path, work: Path) -> dict[str, float]:
    """{file name: log10 m_a} of the regression model on the archive's vortices (``lens-hf evaluate``)."""
    vortices = work / f"{archive.name}-vortices"
    vortices.mkdir(parents=True, exist_ok=True)
    link = vortices / "axion"
    if link.is_symlink() and not link.exists():  # the archive moved: point at it again
        link.unlink()
    if not link.exists():
        link.symlink_to((archive / "axion").resolve(), target_is_directory=True)
    out = work / f"{archive.name}-model"
    if not (out / "predictions.csv").exists():
        cli = [
            sys.executable,
            "-m",
            "lens_hf.cli",
            "evaluate",
            "--model",
            str(model),
            "--data",
            str(vortices),
        ]
        subprocess.run([*cli, "--out", str(out)], check=True)
    answers = {}
    for line in (out / "predictions.csv").read_text().splitlines()[1:]:
        fields = line.split(",")
        answers[Path(fields[0]).name] = float(fields[4])
    return answers


def scores(truth: np.ndarray, answer: np.ndarray, draws: int = 2000) -> dict:
    err = np.abs(answer - truth)
    rng = np.random.default_rng(0)
    boot = err[rng.integers(0, len(err), (draws, len(err)))].mean(axis=1)
    bins = []
    for lo in BINS[:-1]:
        sel = (truth >= lo) & (truth < lo + 0.4)
        bins.append(
            {"low": float(lo), "high": float(lo + 0.4), "num": int(sel.sum()), "mae": float(err[sel].mean())}
        )
    low, high = np.quantile(boot, [0.025, 0.975])
    return {"mae": float(err.mean()), "mae_95": [float(low), float(high)], "num": int(len(err)), "bins": bins}


def plot(path: Path, rows: dict[str, dict], num: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    centres = BINS[:-1] + 0.2
    for k, (label, row) in enumerate(rows.items()):
        ax.bar(
            centres + (k - 1) * 0.12,
            [b["mae"] for b in row["bins"]],
            width=0.12,
            label=f"{label} ({row['mae']:.3f})",
        )
    ax.axhline(0.20, color="k", lw=0.8, ls="--")
    ax.set_xlabel("true log10 m_a (bins of 0.4 dex)")
    ax.set_ylabel("MAE (dex)")
    ax.set_title(f"Axion mass, Model I: {num} test vortices (seed {TEST_SEED})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=ROOT / "checkpoints" / "axion-mass-model-i")
    parser.add_argument("--num", type=int, default=1000, help="test vortices (seed 9301)")
    parser.add_argument("--val-num", type=int, default=300, help="validation vortices (seed 9302)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", type=Path, default=WORK_DIR)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    from lens_hf.data.simulate import write_deeplense

    args.work.mkdir(parents=True, exist_ok=True)
    sets = {}
    for split, seed, num in (("validation", VAL_SEED, args.val_num), ("test", TEST_SEED, args.num)):
        archive = args.work / f"model_i-seed{seed}-{num}"
        if not (archive / "axion").is_dir():
            write_deeplense(archive, "model_i", num, seed, workers=args.workers, progress=sys.stderr.isatty())
        observed = observe_archive(archive, args.work / f"observer-seed{seed}-{num}.npz", args.workers)
        answers = model_answers(args.model, archive, args.work)
        names = sorted(observed)
        sets[split] = {
            "truth": np.array([observed[n][0] for n in names]),
            "ll": [observed[n][1] for n in names],
            "model": np.array([answers[n] for n in names]),
        }
    for data in sets.values():
        data["observer"] = {
            tau: np.array([posterior_median(ll, temperature=tau) for ll in data["ll"]])
            for tau in TEMPERATURES
        }
    val = sets["validation"]
    val_tau = {tau: scores(val["truth"], val["observer"][tau])["mae"] for tau in TEMPERATURES}
    tau = min(val_tau, key=val_tau.get)
    test = sets["test"]
    rows = {
        "the network (the regression model)": scores(test["truth"], test["model"]),
        "likelihood as it is": scores(test["truth"], test["observer"][1.0]),
        f"likelihood / {tau:g} (--refine likelihood)": scores(test["truth"], test["observer"][tau]),
    }
    model_name = _public(args.model)
    report = {
        "date": dt.date.today().isoformat(),
        "command": "python benchmarks/axion_mass_observer.py --model " + model_name,
        "model": model_name,
        "test": {"seed": TEST_SEED, "vortices": int(len(test["truth"]))},
        "validation": {
            "seed": VAL_SEED,
            "vortices": int(len(val["truth"])),
            "temperature_mae": {str(k): v for k, v in val_tau.items()},
        },
        "temperature": tau,
        "grid": {"log10_axion_mass": [float(GRID[0]), float(GRID[-1]), len(GRID)], "angles": len(ANGLES)},
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{NAME}.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(args.out / f"{NAME}.png", rows, len(test["truth"]))
    head = (
        "| | "
        + " | ".join(f"[{b['low']:.1f}, {b['high']:.1f})" for b in next(iter(rows.values()))["bins"])
        + " | all (bootstrap 95 % interval) |"
    )
    lines = [
        "# Axion mass on Model I: a likelihood observer that fits the source and marginalises the vortex angle",
        "",
        f"`{report['command']}`",
        "",
        f"MAE of log10 m_a (dex) on {len(test['truth'])} Model I test vortices (seed {TEST_SEED}), per bin of the "
        f"true value. The observer (`lens_hf/processing/vortex_likelihood.py`) answers the posterior "
        f"median over a {len(GRID)}-point grid of log10 m_a and {len(ANGLES)} vortex angles, after fitting the "
        "smooth lens. The likelihood's temperature (its log divided by it before the posterior is formed: "
        f"{', '.join(f'{k:g}' for k in TEMPERATURES)}) was chosen on {len(val['truth'])} validation vortices "
        f"(seed {VAL_SEED}) by their MAE: {tau:g}, the module's `TEMPERATURE`, which "
        "`lens-hf evaluate --refine likelihood` uses.",
        "",
        head,
        "|---" * (len(BINS) + 1) + "|",
    ]
    for label, row in rows.items():
        lines.append(
            f"| {label} | "
            + " | ".join(f"{b['mae']:.3f}" for b in row["bins"])
            + f" | **{row['mae']:.3f}** [{row['mae_95'][0]:.3f}, {row['mae_95'][1]:.3f}] |"
        )
    lines.append("")
    (args.out / f"{NAME}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return report


if __name__ == "__main__":
    main()
