"""Write docs/results.md: the task, example images, the shipped model's evaluation on an independent Model I
test set (ROC curves, confusion matrix, learning curves, attention maps) and the benchmark tables.

    python benchmarks/make_report.py --test-data data/model_i_test   # a Model I folder lens_hf reads
    python benchmarks/make_report.py --simulate-test 1000            # simulate one (seed 999) first
    python benchmarks/make_report.py --simulate-test 1000 --also cpu-hour=runs/model-i-cpu   # compare models
    python benchmarks/make_report.py --simulate-test 5000 --test-seed 8800 --tta d4   # the Model I record table

With ``--tta d4`` every model is also evaluated with D4 test-time augmentation (the mean softmax over the 8
rotations and flips), shown beside the plain numbers.

Every figure is regenerated from the model folder and the data; the benchmark tables are the committed
``benchmarks/results/*.md`` files, each headed by the command that produced it.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Benchmark tables in the report, in order (benchmarks/results/<name>.md); missing ones are named as missing.
BENCH_TABLES = (
    "family_study",
    "recipe_budget",
    "recipe_search",
    "axion_mass",
    "axion_mass_bound",
    "axion_mass_bound_fit",
    "axion_mass_signal",
    "accuracy",
    "accuracy_1k",
    "accuracy_gpu",
    "throughput",
    "gpu/throughput",
    "inference_speed",
    "onnx",
    "simulation",
)
OPTIONAL_TABLES = {
    "accuracy_gpu",
    "family_study",
    "recipe_budget",
    "recipe_search",
    "axion_mass",
    "axion_mass_bound",
    "axion_mass_bound_fit",
    "axion_mass_signal",
    "inference_speed",
}  # left out silently when absent
# Benchmark figures shown under their table (benchmarks/results/<name>.png, copied to docs/figures/).
BENCH_FIGURES = {
    "family_study": "Test macro ROC-AUC against training images, one line per family (error bars: std over seeds)",
    "axion_mass_bound_fit": "MAE per bin of the true log10 m_a: the two ideal observers and the shipped regressor",
}


def benchmark_sections(results: Path, docs: Path) -> list[str]:
    """The report's benchmark tables (``results/<name>.md``, one heading level down), each with its figure
    (copied to ``docs/figures/``); a missing required table is named as missing."""
    bench = []
    for name in BENCH_TABLES:
        md = results / f"{name}.md"
        if md.is_file():
            text = md.read_text().strip()
            if name == "gpu/throughput":
                text = text.replace("# Model throughput", "# Model throughput on a GPU", 1)
            # One heading level down: the tables sit under "## Benchmarks".
            text = "\n".join("#" + line if line.startswith("#") else line for line in text.splitlines())
            summary = accuracy_summary(results / f"{name}.json") if name.startswith("accuracy") else ""
            figure = results / f"{name}.png"
            if name in BENCH_FIGURES and figure.is_file():
                (docs / "figures").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(figure, docs / "figures" / figure.name)
                summary = f"![{BENCH_FIGURES[name]}](figures/{figure.name})"
            if name == "axion_mass":  # benchmarks/axion_mass.py puts its scatter plots in docs/figures/
                plots = sorted((docs / "figures").glob("axion_mass_*.png"))
                summary = "\n".join(
                    f"![predicted vs true log10 m_a: {p.stem}](figures/{p.name})" for p in plots
                )
            bench.append(text + (f"\n\n{summary}" if summary else ""))
        elif name not in OPTIONAL_TABLES:
            bench.append(
                f"_`benchmarks/results/{name}.md` has not been produced yet (see benchmarks/README.md)._"
            )
    return bench


BENCH_START, BENCH_END = "\n## Benchmarks\n", "\n## Published reference numbers\n"


def refresh_tables(docs: Path) -> None:
    """Rewrite only the benchmark tables of an existing ``docs/results.md`` from ``benchmarks/results/``
    (``--tables-only``: no model is evaluated)."""
    from lens_hf.utils import atomic_write_text

    report = docs / "results.md"
    if not report.is_file():
        raise SystemExit(
            f"make_report.py: error: {report} not found (run make_report.py without --tables-only)"
        )
    head, sep, rest = report.read_text().partition(BENCH_START)
    _, sep2, tail = rest.partition(BENCH_END)
    if not sep or not sep2:
        raise SystemExit(f"make_report.py: error: {report} has no benchmark section to refresh")
    bench = benchmark_sections(ROOT / "benchmarks" / "results", docs)
    # the closing list follows the benchmark results too
    before, found, _ = tail.partition(MISSING_HEAD)
    if found:
        tail = before + MISSING_HEAD + missing_section(ROOT / "benchmarks" / "results") + "\n"
    atomic_write_text(report, head + BENCH_START + "\n" + "\n\n".join(bench) + "\n" + BENCH_END + tail)


def main(argv: list[str] | None = None) -> int:
    import lens_hf  # noqa: F401  (registers the model classes)
    from lens_hf.attention import attention_map
    from lens_hf.cards import simulation_of
    from lens_hf.data.readers import load_images, scan_folder
    from lens_hf.data.simulate import write_deeplense
    from lens_hf.inference import DEFAULT_MODEL_DIR, evaluate_data, load_classifier
    from lens_hf.metrics import format_table, write_evaluation
    from lens_hf.plots import plot_attention_maps, plot_examples

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=str(DEFAULT_MODEL_DIR), help="model folder (default: the shipped one)"
    )
    parser.add_argument(
        "--test-data", default=None, help="labelled Model I folder (any layout lens_hf reads)"
    )
    parser.add_argument(
        "--simulate-test", type=int, default=0, help="simulate this many test images per class"
    )
    parser.add_argument("--test-seed", type=int, default=999)
    parser.add_argument("--work", default=str(ROOT / "benchmarks" / "work"), help="where simulated data goes")
    parser.add_argument("--docs", default=str(ROOT / "docs"), help="where results.md and figures/ go (docs)")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="another model folder to evaluate on the same test set, for the comparison table (repeatable)",
    )
    parser.add_argument(
        "--tta",
        choices=("none", "d4"),
        default="none",
        help="d4: also evaluate every model with D4 test-time augmentation (8x the compute)",
    )
    parser.add_argument(
        "--tables-only",
        action="store_true",
        help="only rewrite the benchmark tables of an existing results.md from benchmarks/results/ (no evaluation)",
    )
    args = parser.parse_args(argv)
    docs = Path(args.docs)
    if args.tables_only:
        refresh_tables(docs)
        return 0
    figures = docs / "figures"
    others = []
    for item in args.also:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            parser.error(f"--also wants NAME=FOLDER, got {item!r}")
        others.append((name, folder))

    test_dir = Path(args.test_data) if args.test_data else None
    if test_dir is None:
        if args.simulate_test < 1:
            parser.error("give --test-data or --simulate-test N")
        test_dir = Path(args.work) / f"model_i_test_seed{args.test_seed}"
        write_deeplense(test_dir, "model_i", args.simulate_test, args.test_seed)

    figures.mkdir(parents=True, exist_ok=True)
    records = scan_folder(test_dir)
    by_label: dict[str, list] = {}
    for r in records:
        by_label.setdefault(r.label, [])
        if len(by_label[r.label]) < 6:
            by_label[r.label].append(r)
    picked = [r for rs in by_label.values() for r in rs]
    images, kept, _ = load_images(picked, normalize="minmax", progress=False)
    examples: dict[str, list] = {}
    for image, rec in zip(images, kept):
        examples.setdefault(rec.label, []).append(image)
    plot_examples(
        examples, figures / "examples.png", title=f"Simulated Model I images (lens_hf, seed {args.test_seed})"
    )

    evaluated_on = {"data": _rel(test_dir), "simulation": simulation_of(test_dir)}

    def evaluate_tta(model, folder: Path):
        """(metrics, predictions) of the model with D4 test-time augmentation (only metrics.json kept), or
        (None, None) without --tta."""
        shutil.rmtree(folder, ignore_errors=True)
        if args.tta == "none":
            return None, None
        y, with_tta = evaluate_data(model, test_dir, tta=args.tta)
        found = write_evaluation(
            folder, y, with_tta.probs, labels=model.labels, extra={**evaluated_on, "tta": args.tta}
        )
        for name in ("predictions.csv", "roc.png", "confusion_matrix.png"):
            (folder / name).unlink(missing_ok=True)
        return found, with_tta

    loaded = load_classifier(args.model)
    y_true, preds = evaluate_data(loaded, test_dir)
    shipped = figures / "shipped"
    metrics = write_evaluation(shipped, y_true, preds.probs, labels=loaded.labels, extra=evaluated_on)
    (shipped / "predictions.csv").unlink(missing_ok=True)
    tta_metrics, tta_preds = evaluate_tta(loaded, figures / "shipped-tta")
    curves = loaded.path / "learning_curves.png"
    if curves.is_file():
        shutil.copyfile(curves, shipped / "learning_curves.png")
    runs = {"without TTA": preds} | ({f"--tta {args.tta}": tta_preds} if tta_preds is not None else {})
    by_mass = vortex_recall_by_mass(records, runs, loaded.labels, shipped)

    # Attention maps: two correctly classified test images per class.
    pick_images, captions = [], []
    for label in loaded.labels:
        idx = [
            i
            for i, s in enumerate(preds.sources)
            if loaded.labels[y_true[i]] == label and preds.probs[i].argmax() == y_true[i]
        ][:2]
        for i in idx:
            from lens_hf.processing.file_io import read_image

            pick_images.append(read_image(preds.sources[i])[0])
            captions.append(f"{label} (p={preds.probs[i].max():.2f})")
    pixel_values = loaded.processor(pick_images, return_tensors="pt")["pixel_values"]
    maps = attention_map(loaded.model, pixel_values)  # attention rollout: (batch, grid, grid)
    plot_attention_maps(
        [p[0].numpy() for p in pixel_values],
        list(maps),
        captions,
        figures / "attention_maps.png",
        title="Attention rollout of the shipped model (what the pooled tokens draw on)",
    )

    training = _training_record(loaded.path)
    compared = [("shipped", loaded.path, metrics, training, tta_metrics)]
    for name, folder in others:
        other = load_classifier(folder)
        y_other, preds_other = evaluate_data(other, test_dir)
        other_metrics = write_evaluation(
            figures / f"also-{name}",
            y_other,
            preds_other.probs,
            labels=other.labels,
            extra=evaluated_on,
        )
        (figures / f"also-{name}" / "predictions.csv").unlink(missing_ok=True)
        other_tta, _ = evaluate_tta(other, figures / f"also-{name}-tta")
        compared.append((name, other.path, other_metrics, _training_record(other.path), other_tta))
    test_set = {"seed": args.test_seed if not args.test_data else None, "folder": test_dir}
    write_markdown(
        docs, metrics, training, loaded, test_dir, format_table(metrics), compared, test_set, by_mass
    )
    print(format_table(metrics))
    print(f"wrote {docs / 'results.md'}")
    return 0


def _training_record(folder: Path) -> dict:
    from lens_hf.training.record import TRAINING_FILE

    record = Path(folder) / TRAINING_FILE
    return json.loads(record.read_text()) if record.is_file() else {}


def _rel(path: Path) -> str:
    """The path relative to the checkout, else its last component: the report publishes no local path."""
    from lens_hf.redact import public_path

    return public_path(Path(path).resolve(), cwd=ROOT)


def training_summary(training: dict) -> str:
    """'4.6 min of training on cuda:0 (NVIDIA H100 80GB HBM3), 15 epochs, 4871 images/s; data: ...'"""
    if not training:
        return "no training record in the model folder"
    from lens_hf.cards import training_device

    parts = []
    runtime = training.get("train_runtime_s")
    if isinstance(runtime, (int, float)):
        parts.append(f"{runtime / 60:.1f} min of training on {training_device(training)}")
    if training.get("epochs") is not None:
        parts.append(f"{float(training['epochs']):g} epochs")
    if training.get("train_images_per_second"):
        parts.append(f"{float(training['train_images_per_second']):.0f} images/s")
    splits = (training.get("dataset") or {}).get("splits")
    if splits:
        parts.append("images: " + ", ".join(f"{k} {v:,}" for k, v in splits.items()))
    return ", ".join(parts)


def comparison_table(compared: list, labels: list[str]) -> str:
    with_tta = any(c[4] is not None for c in compared)
    head = "| model | folder | parameters | trained | macro | micro | " + " | ".join(labels) + " | accuracy |"
    if with_tta:
        head += " macro, `--tta d4` | " + " | ".join(f"{k}, `--tta d4`" for k in labels) + " |"
    rows = [head, "|" + "---|" * (7 + len(labels) + (1 + len(labels) if with_tta else 0))]
    for name, folder, m, training, tta in compared:
        params = training.get("num_parameters")
        per_class = " | ".join(f"{m['roc_auc_per_class'][k]:.4f}" for k in labels)
        row = (
            f"| {name} | `{_rel(folder)}` | {f'{params / 1e6:.2f}M' if params else '?'} | "
            f"{training_summary(training)} | {m['roc_auc_macro']:.4f} | {m['roc_auc_micro']:.4f} | "
            f"{per_class} | {m['accuracy']:.4f} |"
        )
        if with_tta:
            row += (
                " n/a |" * (1 + len(labels))
                if tta is None
                else f" {tta['roc_auc_macro']:.4f} | "
                + " | ".join(f"{tta['roc_auc_per_class'][k]:.4f}" for k in labels)
                + " |"
            )
        rows.append(row)
    return "\n".join(rows)


def vortex_recall_by_mass(
    records: list, runs: dict, labels: list[str], out: Path, width: float = 0.25
) -> str:
    """Where the vortex errors are: the share of test vortices classified `vortex`, per bin of log10 m_a (the
    axion mass sets the vortex length), for each evaluation in ``runs`` (name -> Predictions). Writes
    vortex_recall_by_mass.json and .png into ``out``; returns the markdown (empty when no vortex has a mass)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from lens_hf.utils import atomic_write_text

    mass = {str(r.path): r.meta.get("axion_mass") for r in records if r.label == "vortex"}
    vortex = labels.index("vortex")
    edges = np.arange(-24.0, -22.0 + width / 2, width)
    table: dict[str, list[dict]] = {}
    for name, preds in runs.items():
        rows = [
            (np.log10(float(mass[src])), int(p.argmax()) == vortex, float(p[vortex]))
            for src, p in zip(preds.sources, preds.probs)
            if mass.get(src)
        ]
        if not rows:
            return ""
        log_m, hit, p_vortex = (np.array(x) for x in zip(*rows))
        table[name] = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = (log_m >= lo) & ((log_m < hi) | (hi == edges[-1]))
            if sel.any():
                table[name].append(
                    {
                        "log10_axion_mass_low": round(float(lo), 3),
                        "log10_axion_mass_high": round(float(hi), 3),
                        "vortices": int(sel.sum()),
                        "recall": float(hit[sel].mean()),
                        "mean_p_vortex": float(p_vortex[sel].mean()),
                    }
                )
    atomic_write_text(out / "vortex_recall_by_mass.json", json.dumps(table, indent=2) + "\n")
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, rows in table.items():
        centres = [(r["log10_axion_mass_low"] + r["log10_axion_mass_high"]) / 2 for r in rows]
        ax.plot(centres, [r["recall"] for r in rows], marker="o", label=name)
    ax.set_xlabel("log10 axion mass m_a (eV); lighter axions make longer vortices")
    ax.set_ylabel("vortex recall")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "vortex_recall_by_mass.png", dpi=120)
    plt.close(fig)
    names = list(table)
    first = table[names[0]]
    lines = [
        "| log10 m_a (eV) | vortices | " + " | ".join(f"recall, {n}" for n in names) + " | mean p(vortex) |",
        "|---|---|" + "---|" * len(names) + "---|",
    ]
    for i, r in enumerate(first):
        recalls = " | ".join(f"{table[n][i]['recall']:.3f}" for n in names)
        lines.append(
            f"| [{r['log10_axion_mass_low']:.2f}, {r['log10_axion_mass_high']:.2f}) | {r['vortices']} | {recalls} | "
            f"{r['mean_p_vortex']:.3f} |"
        )
    return (
        "Where the vortex errors are: the share of the test vortices classified `vortex`, per bin of the axion "
        'mass (the vortex half-length is 0.06" / (2 m_a / 1e-22 eV): the lightest axions make vortices several '
        "arcseconds long, the heaviest a near point mass):\n\n"
        + "\n".join(lines)
        + f"\n\n![vortex recall by axion mass](figures/{out.name}/vortex_recall_by_mass.png)"
    )


def record_table(compared: list, test_set: dict) -> str:
    """The models of this report beside the published Model I results, each with its test set."""
    from lens_hf.cards import published_results

    (group,) = published_results("model_i")
    official = f"official DeepLense Model I, {group['test_images_per_class']:,}/class"
    rows = [  # (macro AUC, table row)
        (r["value"], f"| {r['model']} | {r.get('start') or 'not stated'} | {official} | {r['value']} | |")
        for r in group["results"]
    ]
    m = compared[0][2]
    where = f"lens_hf simulation, {m['num_samples'] // len(m['labels']):,}/class" + (
        f", seed {test_set['seed']}"
        if test_set.get("seed") is not None
        else f", `{_rel(test_set['folder'])}`"
    )
    for name, _, m, _, tta in compared:
        with_tta = f"**{tta['roc_auc_macro']:.4f}**" if tta is not None else "not measured"
        rows.append(
            (
                m["roc_auc_macro"],
                f"| **lens_hf {name}** | from scratch | {where} | **{m['roc_auc_macro']:.4f}** | {with_tta} |",
            )
        )
    body = "\n".join(row for _, row in sorted(rows, key=lambda r: -r[0]))
    return "| model | start | test set | macro ROC-AUC | with `--tta d4` |\n|---|---|---|---|---|\n" + body


def accuracy_summary(path: Path, chance_below: float = 0.65) -> str:
    """One line of reading from an accuracy benchmark's JSON: the best model, and which stayed near chance."""
    if not path.is_file():
        return ""
    rows = [r for r in json.loads(path.read_text()).get("results", []) if r.get("roc_auc_macro") is not None]
    if not rows:
        return ""
    best = max(rows, key=lambda r: r["roc_auc_macro"])
    near_chance = [r["model"] for r in rows if r["roc_auc_macro"] < chance_below]
    text = (
        f"Reading: the best model under this budget is `{best['model']}` (macro ROC-AUC "
        f"{best['roc_auc_macro']:.4f} after {best.get('epochs') or 0:.1f} epochs)."
    )
    if near_chance:
        text += (
            f" {len(near_chance)} of {len(rows)} models are still near chance (macro ROC-AUC below "
            f"{chance_below}): {', '.join(f'`{m}`' for m in near_chance)}."
        )
    return text


def _best_published(dataset: str) -> str:
    """'CoAtNet-nano 0.9955': the best published result on a DeepLense data set (lens_hf/reference_results.json)."""
    from lens_hf.cards import published_results

    rows = [row for group in published_results(dataset) for row in group["results"]]
    best = max(rows, key=lambda r: r["value"])
    return f"{best['model']} {best['value']}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def published_section() -> str:
    """The published DeepLense numbers (lens_hf/reference_results.json, the file the model cards read too)."""
    from lens_hf.cards import dataset_title, published_regression, published_results

    parts = []
    for group in published_results():
        per_class = group.get("test_images_per_class")
        where = group["evaluation"] + (f", {per_class:,} images per class" if per_class else "")
        text = f"### {dataset_title(group['dataset'])}\n\n{_sentence(group['metric_name'])}, {where}."
        if group["results"]:
            rows = "\n".join(
                f"| {r['model']} | {r.get('start') or 'not stated'} | {r['value']} |"
                for r in group["results"]
            )
            text += f"\n\n| model | start | macro ROC-AUC |\n|---|---|---|\n{rows}"
        if group.get("note"):
            text += f"\n\n{group['note']}"
        parts.append(text)
    regression = published_regression()
    names = regression["datasets"]
    rows = "\n".join(
        f"| {r['model']} | " + " | ".join(f"{r['values'][d]:.3f}" for d in names) + " |"
        for r in regression["results"]
    )
    parts.append(
        f"### Axion mass\n\n{_sentence(regression['metric_name'])}, {regression['evaluation']}.\n\n"
        f"| model | {' | '.join(dataset_title(d) for d in names)} |\n|---|{'---|' * len(names)}\n{rows}\n\n"
        f"{regression['note']}"
    )
    return "\n\n".join(parts)


MISSING_HEAD = "## What is still missing\n\n"


def missing_section(results: Path) -> str:
    """What the report cannot show yet, from what is (not) in benchmarks/results."""
    items = []
    if not (results / "accuracy_gpu.md").is_file():
        items.append(
            "The accuracy benchmark at DeepLense scale (`bench_accuracy.py --profile gpu`: 30,000 images per class, "
            "20 min per model on a GPU) has not been run; the CPU tables above compare architectures under a small "
            "budget, not converged accuracy."
        )
    study = results / "family_study.json"
    if study.is_file():
        report = json.loads(study.read_text())
        missing = report.get("missing", [])
        if missing:
            by_cell: dict[str, int] = {}
            for run in missing:
                by_cell[run.split("/")[0]] = by_cell.get(run.split("/")[0], 0) + 1
            cells = ", ".join(f"{cell} {n}" for cell, n in by_cell.items())
            items.append(
                f"The family study has {len(missing)} of {len(missing) + len(report['rows'])} planned CPU runs to go "
                f"(per cell: {cells}); `python benchmarks/family_study.py` resumes them, and the reading says, per "
                "cell, which families still lack seeds."
            )
    if not (results / "family_study_gpu.json").is_file():
        items.append(
            "The GPU profile of the family study (`family_study.py --profile gpu`: Model I at the full 150 px, "
            "about 8 minutes on one H100/H200-class GPU) has not been run."
        )
    items += [
        "Every number here is on lens_hf-simulated images. The official DeepLense archives (and real observations) "
        "were not available to evaluate on; `lens-hf evaluate --data <archive folder>` reads them as they are.",
        "Only Model I has shipped checkpoints (the classifier and the axion-mass regressor). Models II "
        "(Euclid-like) and III (HST-like) simulate and train with the same commands (`--preset model_ii`, "
        "`model_iii`); their classifiers are measured in the family study and their axion-mass regressors in the "
        "axion-mass table, but none is shipped.",
        "No ImageNet-pretrained starting point was available, so the published pretrained numbers "
        f"({_best_published('model_i')}) are compared against models trained from scratch.",
    ]
    return "\n".join(f"- {item}" for item in items)


def write_markdown(
    docs: Path,
    metrics: dict,
    training: dict,
    loaded,
    test_dir: Path,
    table: str,
    compared: list,
    test_set: dict | None = None,
    by_mass: str = "",
) -> None:
    from lens_hf.utils import atomic_write_text

    columns = [metrics] + ([compared[0][4]] if compared[0][4] is not None else [])
    head = "| class | ROC-AUC |" + (" with `--tta d4` |" if len(columns) > 1 else "")
    head += "\n|---|" + "---|" * len(columns)

    def row(name: str, values: list[float], bold: bool = False) -> str:
        cells = [f"**{v:.4f}**" if bold else f"{v:.4f}" for v in values]
        return f"| {f'**{name}**' if bold else name} | " + " | ".join(cells) + " |"

    rows = "\n".join(
        [row(name, [c["roc_auc_per_class"][name] for c in columns]) for name in metrics["labels"]]
        + [
            row("macro", [c["roc_auc_macro"] for c in columns], bold=True),
            row("micro", [c["roc_auc_micro"] for c in columns]),
            row("accuracy", [c["accuracy"] for c in columns]),
        ]
    )
    results = ROOT / "benchmarks" / "results"
    bench = benchmark_sections(results, docs)
    params = training.get("num_parameters")
    command = training.get("command", "")
    text = (
        f"""# lens_hf results

Generated by `python benchmarks/make_report.py` on {_dt.date.today().isoformat()} ({platform.machine()},
{torch.get_num_threads()} threads, Python {platform.python_version()}, torch {torch.__version__}).

## The task

Strong-lensing images of DeepLense **Model I** (150x150 px at 0.05"/px, Gaussian PSF, Poisson noise; simulated
with lenstronomy by `lens-hf simulate --preset model_i`) are classified into three classes: `no_substructure`
(a smooth SIE halo with shear), `subhalo` (25 point-mass subhalos, cold dark matter) and `vortex` (a line of 100
point masses, superfluid dark matter). The metric is the one-vs-rest ROC-AUC computed on softmax probabilities,
per class, macro- and micro-averaged.

![examples](figures/examples.png)

## The shipped model: `{_rel(loaded.path)}`

{type(loaded.model).__name__}, {f"{params:,}" if params else "?"} parameters; {training_summary(training)}. Trained with

```
{command}
```

Independent test set: `{_rel(test_dir)}` ({metrics["num_samples"]} images, a seed the model never saw).

{head}
{rows}

```
{table}
```

![roc](figures/shipped/roc.png) ![confusion](figures/shipped/confusion_matrix.png)

Learning curves:

![curves](figures/shipped/learning_curves.png)

{by_mass}

Attention maps (attention rollout over the layers, mean over the pooled tokens; top: model input, bottom: overlay):

![attention](figures/attention_maps.png)

### Beside the published Model I results

The published numbers are on the official DeepLense Model I test set (best: {_best_published("model_i")}), the
numbers of this report on lens_hf-simulated images of the same recipe: different test sets, so the comparison is
indicative. All sources under "Published reference numbers" below.

{record_table(compared, test_set or {"folder": test_dir})}

### Models on the same test set

{comparison_table(compared, list(metrics["labels"]))}

## Benchmarks

"""
        + "\n\n".join(bench)
        + "\n\n## Published reference numbers\n\nFrom `lens_hf/reference_results.json` (the numbers the model cards "
        + "quote).\n\n"
        + published_section()
        + "\n\n"
        + MISSING_HEAD
        + missing_section(results)
        + "\n"
    )
    atomic_write_text(docs / "results.md", text)


if __name__ == "__main__":
    sys.exit(main())
