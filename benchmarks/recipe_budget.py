"""Does each recipe learn in a few minutes with its defaults? Runs the recipes as a user would, one after another.

    python benchmarks/recipe_budget.py                      # Model II, 1,000 per class, 4 minutes each
    python benchmarks/recipe_budget.py --recipes finetune_vit,finetune_swin --minutes 4

Each recipe runs as ``python recipes/<recipe>.py --preset model_ii --train_per_class 1000 --max_train_minutes 4
--output_dir ...`` with nothing else set (its defaults, its simulated training, validation and test sets), on all
the machine's cores; the row records the best validation macro ROC-AUC (the epoch the recipe keeps), the test
macro ROC-AUC of that model, the epochs done in the budget, and wall and CPU time of the whole command (simulation
included). Results: ``benchmarks/results/recipe_budget.{md,json}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "benchmarks" / "work" / "recipe_budget"
RECIPES = ("finetune_vit", "finetune_deit", "finetune_swin", "train_vit_spt_lsa")


def command(recipe: str, args: argparse.Namespace, out: Path) -> list[str]:
    cmd = [sys.executable, str(ROOT / "recipes" / f"{recipe}.py"), "--preset", args.preset]
    cmd += ["--train_per_class", str(args.train_per_class), "--max_train_minutes", f"{args.minutes:g}"]
    cmd += ["--output_dir", str(out), "--disable_tqdm", "true", *args.extra]
    return cmd


def run_one(recipe: str, args: argparse.Namespace) -> dict[str, Any]:
    from lens_hf.training.run import config_overrides  # noqa: PLC0415 - lens_hf loads only for a run

    out = args.work / recipe
    cmd = command(recipe, args, out)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "run.log", "w", encoding="utf-8") as log:
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        tail = (out / "run.log").read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise SystemExit(f"{recipe}: exit {done.returncode}: {tail[0]}")
    state = json.loads((out / "trainer_state.json").read_text())
    evals = [e for e in state["log_history"] if "eval_roc_auc_macro" in e]
    best = max(evals, key=lambda e: e["eval_roc_auc_macro"])
    test = json.loads((out / "metrics.json").read_text())
    record = json.loads((out / "lens_hf_training.json").read_text())
    return {
        "recipe": recipe,
        # what a user types (the output folder and progress-bar flags left out)
        "command": " ".join(
            ["python", f"recipes/{recipe}.py", *cmd[2 : cmd.index("--output_dir")], *args.extra]
        ),
        "dataset": args.preset,
        "train_per_class": args.train_per_class,
        "budget_minutes": args.minutes,
        "model_preset": record["model_args"]["model_preset"],
        # the record keeps the flag's JSON text
        "config_overrides": config_overrides(record["model_args"].get("config_overrides")),
        "training_precision": record.get("training_precision", "fp32"),
        "device": record.get("device_name"),
        "epochs_done": round(float(evals[-1]["epoch"]), 2),
        "validation_roc_auc_macro": round(best["eval_roc_auc_macro"], 4),
        "validation_best_epoch": round(float(best["epoch"]), 2),
        "validation_images": record["dataset"]["splits"].get("validation"),
        "test_roc_auc_macro": round(test["roc_auc_macro"], 4),
        "test_images": test["num_samples"],
        "wall_minutes": round(wall / 60, 2),
        "cpu_minutes": round(cpu / 60, 2),
    }


def _model(row: dict[str, Any]) -> str:
    """The preset and the config fields the recipe set on it, e.g. ``vit-tiny (patch_size 4, num_hidden_layers 4)``."""
    fields = ", ".join(f"{k} {v}" for k, v in row.get("config_overrides", {}).items())
    return f"{row['model_preset']} ({fields})" if fields else row["model_preset"]


def report(rows: list[dict[str, Any]], out: Path, name: str, goal: float) -> None:
    lines = [
        "# Recipes on a time budget: defaults only",
        "",
        f"- date: {dt.date.today().isoformat()}",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "- each recipe as a user runs it: its defaults, simulated training, validation and test sets "
        "(validation: the recipe's default size; test: independent, its size in the table)",
        f"- goal: validation macro ROC-AUC >= {goal:.2f}",
        "",
        "| recipe | model | data | processor, precision | budget (min) | epochs done | best val AUC (epoch) "
        "| test AUC (images) | wall / CPU min (whole command) | goal |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['recipe']}` | {_model(r)} | {r['dataset']}, {r['train_per_class']:,}/class "
            f"| {r.get('device') or 'not recorded'}, {r.get('training_precision', 'fp32')} | {r['budget_minutes']:g} | {r['epochs_done']:g} | {r['validation_roc_auc_macro']:.3f} "
            f"({r['validation_best_epoch']:g}; {r['validation_images']:,} images) | {r['test_roc_auc_macro']:.3f} ({r['test_images']:,}) "
            f"| {r['wall_minutes']:.1f} / {r['cpu_minutes']:.1f} "
            f"| {'met' if r['validation_roc_auc_macro'] >= goal else 'not met'} |"
        )
    lines += ["", "Commands (each with `--output_dir DIR`):", ""] + [f"    {r['command']}" for r in rows]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    (out / f"{name}.json").write_text(json.dumps(rows, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated recipe modules")
    p.add_argument("--preset", default="model_ii")
    p.add_argument("--train-per-class", type=int, default=1000)
    p.add_argument("--minutes", type=float, default=4.0)
    p.add_argument("--goal", type=float, default=0.90)
    p.add_argument("--work", type=Path, default=WORK)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--name", default="recipe_budget")
    p.add_argument("--report", action="store_true", help="only rewrite the table from the rows so far")
    p.add_argument("extra", nargs="*", help="after --: more recipe flags (tests only)")
    args = p.parse_args(argv)
    rows_file = args.work / "rows.json"
    rows = {r["recipe"]: r for r in json.loads(rows_file.read_text())} if rows_file.is_file() else {}
    for recipe in [] if args.report else args.recipes.split(","):
        if recipe not in RECIPES:
            raise SystemExit(f"unknown recipe {recipe!r} (one of {', '.join(RECIPES)})")
        print(f"[run] {recipe}", flush=True)
        rows[recipe] = run_one(recipe, args)
        print(json.dumps(rows[recipe]), flush=True)
        rows_file.write_text(json.dumps(list(rows.values()), indent=1))
    report([rows[r] for r in RECIPES if r in rows], args.out, args.name, args.goal)
    return 0


if __name__ == "__main__":
    sys.exit(main())
