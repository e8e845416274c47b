"""Axion mass from a lensing image: regression models on independent simulated test sets, beside the published
DeepLense numbers.

    python benchmarks/axion_mass.py --model model_i=checkpoints/axion-mass-model-i \\
        --model model_ii=runs/axion-mass-model-ii --model model_iii=runs/axion-mass-model-iii

For each ``DATASET=MODEL`` pair, a DeepLense-layout test archive of ``--per-class`` images per class is simulated
with a seed used by no training recipe (``SEEDS``; only its vortex images carry an axion mass and are scored)
and the model is evaluated by ``lens-hf evaluate`` without and with ``--tta d4``. Writes
``results/axion_mass.{json,md}`` (mean absolute error, RMSE, R2 and bias of log10 m_a in dex, the fractions
within 0.1 and 0.3 dex, per dataset, beside the published rows of ``lens_hf/reference_results.json``) and copies
each model's scatter plot (predicted vs true log10 m_a, residuals) to ``docs/figures/axion_mass_<dataset>.png``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
FIGURES_DIR = ROOT / "docs" / "figures"
WORK_DIR = ROOT / "benchmarks" / "work" / "axion_mass"
NAME = "axion_mass"
# Test-set seeds: no recipe, config or other benchmark simulates with these.
SEEDS = {"model_i": 9301, "model_ii": 9302, "model_iii": 9303}
METRICS = ("mae", "rmse", "r2", "bias", "within_0.1", "within_0.3")


def parse_pairs(pairs: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pair in pairs:
        dataset, sep, folder = pair.partition("=")
        if not sep or dataset not in SEEDS:
            raise SystemExit(
                f"--model {pair!r}: expected DATASET=FOLDER with DATASET one of {', '.join(SEEDS)}"
            )
        out[dataset] = Path(folder)
    return out


def evaluate(dataset: str, model: Path, per_class: int, work: Path, tta: str) -> dict:
    """One model on its dataset's independent test archive: the metrics.json that ``lens-hf evaluate`` wrote,
    with the evaluation's wall time."""
    from lens_hf.cli import main as cli
    from lens_hf.data.simulate import write_deeplense

    data = work / f"{dataset}-seed{SEEDS[dataset]}-{per_class}"
    write_deeplense(data, dataset, per_class, SEEDS[dataset], progress=sys.stderr.isatty())
    out = work / f"eval-{dataset}-{tta}"
    start = time.perf_counter()
    code = cli(["evaluate", "--model", str(model), "--data", str(data), "--out", str(out), "--tta", tta])
    if code != 0:
        raise SystemExit(f"lens-hf evaluate failed on {dataset} (exit {code})")
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    metrics["folder"] = out
    return metrics


def _public(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return path.name


def make_markdown(rows: list[dict], published: dict, command: str) -> str:
    datasets = [d for d in SEEDS if any(r["dataset"] == d for r in rows)]
    from lens_hf.cards import dataset_title

    names = {d: dataset_title(d) for d in SEEDS}
    lines = [
        "# Axion mass: mean absolute error of log10 m_a (dex)",
        "",
        f"`{command}`",
        "",
        "lens_hf rows: independent simulated test archives (DeepLense layout), vortex images only; "
        "seed and number of images per row below. Published rows: "
        f"{published['evaluation']} ({published['source']}). Lower is better.",
        "",
        "| model | " + " | ".join(names[d] for d in SEEDS) + " |",
        "|---|" + "---|" * len(SEEDS),
    ]
    for tta in ("none", "d4"):
        cells = []
        for d in SEEDS:
            match = [r for r in rows if r["dataset"] == d and r["tta"] == tta]
            cells.append(f"**{match[0]['mae']:.3f}**" if match else "-")
        label = "lens_hf" + (" + D4 test-time augmentation" if tta == "d4" else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for entry in published["results"]:
        cells = [f"{entry['values'][d]:.3f}" if d in entry["values"] else "-" for d in SEEDS]
        lines.append(f"| {entry['model']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## lens_hf models in detail",
        "",
        "| dataset | model | test-time augmentation | vortex images | seed | MAE | RMSE | R2 | bias | "
        "within 0.1 dex | within 0.3 dex | s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {names[r['dataset']]} | `{r['model']}` | {r['tta']} | {r['num_samples']} | {r['seed']} | "
            f"{r['mae']:.3f} | {r['rmse']:.3f} | {r['r2']:.3f} | {r['bias']:+.3f} | {r['within_0.1']:.2f} | "
            f"{r['within_0.3']:.2f} | {r['seconds']:.0f} |"
        )
    lines += [
        "",
        "Scatter plots (predicted vs true log10 m_a with the 1:1 line, residuals vs true): "
        + ", ".join(f"`docs/figures/axion_mass_{d}.png`" for d in datasets)
        + ".",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, help="DATASET=MODEL_FOLDER (repeatable)")
    parser.add_argument("--per-class", type=int, default=1000, help="test images per class (vortices scored)")
    parser.add_argument("--work", type=Path, default=WORK_DIR)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    parser.add_argument("--figures", type=Path, default=FIGURES_DIR)
    args = parser.parse_args(argv)
    models = parse_pairs(args.model)
    from lens_hf.cards import published_regression

    published = published_regression()
    rows = []
    for dataset, model in models.items():
        for tta in ("none", "d4"):
            m = evaluate(dataset, model, args.per_class, args.work, tta)
            rows.append(
                {
                    "dataset": dataset,
                    "model": _public(model),
                    "split": "independent simulated test archive (vortex images)",
                    "seed": SEEDS[dataset],
                    "num_samples": m["num_samples"],
                    "tta": tta,
                    **{k: m[k] for k in METRICS},
                    "seconds": m["seconds"],
                }
            )
            if tta == "none":
                args.figures.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(m["folder"] / "regression.png", args.figures / f"axion_mass_{dataset}.png")
    command = "python benchmarks/axion_mass.py " + " ".join(
        f"--model {shlex.quote(d + '=' + _public(p))}" for d, p in models.items()
    )
    # Rows of the datasets not evaluated now are kept from the previous report, with the command that made them.
    previous = args.out / f"{NAME}.json"
    if previous.is_file():
        old = json.loads(previous.read_text())
        kept = [r for r in old.get("rows", []) if r["dataset"] not in models]
        if kept:
            rows = sorted(rows + kept, key=lambda r: (r["dataset"], r["tta"] != "none"))
            command += f" (rows of {', '.join(sorted({r['dataset'] for r in kept}))}: {old['command']})"
    report = {
        "command": command,
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU",
        "rows": rows,
        "published": published,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{NAME}.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{NAME}.md").write_text(make_markdown(rows, published, command))
    print((args.out / f"{NAME}.md").read_text())
    return report


if __name__ == "__main__":
    main()
