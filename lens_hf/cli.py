"""The ``lens-hf`` command: simulate, build-dataset, show, train, evaluate, predict, export, demo, card, push,
cache-model.

Every sub-command reports bad input as one line on stderr (``lens-hf: error: <file>: <problem>``) and exits
with status 2; an unexpected failure is one line too and exits with status 1; ``--debug`` shows the traceback.
Outputs are written under temporary names and renamed when complete, so a failed or interrupted command never
leaves a half-written file or folder. Progress bars are shown when stderr is a terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib
import importlib.util
import json
import logging
import os
import shutil
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from lens_hf.redact import public_path
from lens_hf.utils import check_output_location, make_temporary_folder, remove_stale_temporaries

EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130

REPO_ROOT = Path(__file__).resolve().parent.parent
# `lens-hf train --recipe NAME` -> the recipe script whose main() it runs (recipes/<script>.py).
RECIPES: dict[str, str] = {
    "vit_spt_lsa": "train_vit_spt_lsa",
    "vit": "finetune_vit",
    "deit": "finetune_deit",
    "swin": "finetune_swin",
    "cnn_teacher": "train_cnn_teacher",
    "regressor": "train_regressor",
}
PREDICTION_FORMATS: tuple[str, ...] = (".csv", ".json")


# ----------------------------------------------------------------------------------------------- commands
def cmd_simulate(args: argparse.Namespace) -> int:
    """Simulate a DeepLense archive (resumable) or a DatasetDict."""
    from lens_hf.data.dataset import build_from_simulation, parse_splits, save_dataset
    from lens_hf.data.simulate import write_deeplense

    if args.per_class < 1:
        raise _user_error(f"--per-class must be at least 1, got {args.per_class}")
    if args.workers is not None and args.workers < 1:
        raise _user_error(f"--workers must be at least 1, got {args.workers}")
    if args.format == "deeplense":
        if args.splits:
            raise _user_error("--splits applies to --format hf only (the DeepLense layout has no splits)")
        if not args.parquet:
            raise _user_error("--no-parquet applies to --format hf only (the DeepLense layout is .npy files)")
        check_output_location(args.out, inside=True)
        if Path(args.out).exists() and not Path(args.out).is_dir():
            raise _user_error(f"{args.out}: exists and is not a folder")
        summary = write_deeplense(
            args.out, args.preset, args.per_class, args.seed, workers=args.workers, progress=_tty()
        )
        kept = summary.get("skipped", 0)
        replaced = summary.get("replaced", 0)
        print(
            f"wrote {summary.get('written', 0) + replaced} file(s)"
            + (f" ({replaced} replacing corrupt ones)" if replaced else "")
            + f", kept {kept} complete one(s), in {args.out}"
        )
        return EXIT_OK
    _check_output_folder(Path(args.out))
    splits = parse_splits(args.splits) if args.splits else None
    remove_stale_temporaries(args.out)  # a killed earlier run's half-written dataset, before hours of work
    dd = build_from_simulation(
        args.preset, args.per_class, args.seed, splits=splits, workers=args.workers, progress=_tty()
    )
    info = {
        "preset": args.preset,
        "per_class": args.per_class,
        "seed": args.seed,
        "splits": {name: len(ds) for name, ds in dd.items()},
        "normalization": "minmax",
        "source": f"simulation ({args.preset})",
        "command": _command_line(),
    }
    save_dataset(dd, args.out, info=info, parquet=args.parquet)
    print(f"wrote a DatasetDict ({_sizes(dd)}) to {args.out}")
    return EXIT_OK


def _add_no_parquet(p: argparse.ArgumentParser, prefix: str = "") -> None:
    p.add_argument(
        "--no-parquet",
        dest="parquet",
        action="store_false",
        help=f"{prefix}write the save_to_disk (Arrow) copy only, without the Parquet shards: half the disk for "
        "large sets; lens_hf and datasets.load_from_disk read it, datasets.load_dataset and the Hub viewer need "
        "the shards",
    )


def cmd_build_dataset(args: argparse.Namespace) -> int:
    """Read an image folder into a DatasetDict (save_to_disk + parquet + card)."""
    from lens_hf.data.dataset import build_from_folder, parse_splits, save_dataset

    _check_output_folder(Path(args.out))
    splits = parse_splits(args.splits) if args.splits else None
    remove_stale_temporaries(args.out)
    dd, skipped = build_from_folder(
        args.src,
        splits=splits,
        seed=args.seed,
        normalize=args.normalization,
        skip_bad=args.skip_bad,
        progress=_tty(),
    )
    info = {
        "source": public_path(args.src),
        "seed": args.seed,
        "splits": {name: len(ds) for name, ds in dd.items()},
        "normalization": args.normalization,
        "command": _command_line(),
        # relative to the source folder, like the dataset's path column; the messages below name them as read
        "skipped": [{"path": Path(p).relative_to(args.src).as_posix(), "error": r} for p, r in skipped],
    }
    save_dataset(dd, args.out, info=info, parquet=args.parquet)
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(
        f"wrote a DatasetDict ({_sizes(dd)}) to {args.out}"
        + (
            f"; skipped {len(skipped)} bad file(s), listed in {Path(args.out) / 'lens_hf_dataset.json'}"
            if skipped
            else ""
        )
    )
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    """Plot the first ``--per-class`` images of each class; only those files are read."""
    import numpy as np

    from lens_hf.data.dataset import load_any
    from lens_hf.data.readers import scan_folder
    from lens_hf.inference import is_saved_dataset
    from lens_hf.labels import LABELS
    from lens_hf.plots import plot_examples
    from lens_hf.processing.file_io import normalize_image, read_image

    if args.per_class < 1:
        raise _user_error(f"--per-class must be at least 1, got {args.per_class}")
    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise _user_error(f"{out}: the output must be a .png file")
    if out.is_dir():
        raise _user_error(f"{out}: is a folder; give a .png file name")
    by_label: dict[str, list[np.ndarray]] = {name: [] for name in LABELS}
    data = Path(args.data)
    if is_saved_dataset(data):
        loaded = load_any(data)
        ds = next(iter(loaded.values())) if hasattr(loaded, "keys") else loaded
        names = ds.features["label"].names
        for row in ds:
            label = names[row["label"]]
            if label in by_label and len(by_label[label]) < args.per_class:
                by_label[label].append(np.asarray(row["image"], dtype=np.float32))
            if all(len(v) >= args.per_class for v in by_label.values()):
                break
    else:
        for rec in scan_folder(data):
            if len(by_label[rec.label]) < args.per_class:
                image, _ = read_image(rec.path)
                by_label[rec.label].append(normalize_image(image, "minmax", rec.path))
    plot_examples({k: v for k, v in by_label.items() if v}, out)
    print(f"wrote {out} ({', '.join(f'{k}: {len(v)}' for k, v in by_label.items())})")
    return EXIT_OK


def load_recipe(script: str) -> ModuleType:
    """The recipe module ``recipes/<script>.py``: the file next to this lens_hf in a source checkout, else the
    copy installed with the package as ``lens_hf.recipes.<script>``."""
    name = f"lens_hf.recipes.{script}"
    if name in sys.modules:
        return sys.modules[name]
    path = REPO_ROOT / "recipes" / f"{script}.py"
    if not path.is_file():
        return importlib.import_module(name)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a class's module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def cmd_train(args: argparse.Namespace, extra: list[str]) -> int:
    """Run a recipe's ``main()`` with the remaining arguments: the function ``python recipes/<script>.py``
    runs (its defaults, then ``--config FILE``, then the flags)."""
    metrics = load_recipe(RECIPES[args.recipe]).main(extra)
    if metrics and "mae" in metrics:
        print(
            f"trained: {metrics.get('split')} MAE {metrics['mae']:.4f}, RMSE {metrics['rmse']:.4f} ({metrics['quantity']})"
        )
    elif metrics:
        auc = metrics.get("roc_auc_macro")
        print(
            f"trained: {metrics.get('split')} accuracy {metrics.get('accuracy', float('nan')):.4f}, "
            f"macro ROC-AUC {'n/a' if auc is None else f'{auc:.4f}'}"
        )
    return EXIT_OK


REFINEMENTS: tuple[str, ...] = ("none", "likelihood")  # the choices of --refine
WORKERS_HELP = (
    "processes for --refine likelihood (default: 1; each takes about 3 s and 265 MB to start, then answers an "
    "image in about 0.5 s)"
)


@contextlib.contextmanager
def _refiner(loaded: Any, args: argparse.Namespace) -> Iterator[Any]:
    """The ``refine`` callable of ``--refine`` (None for ``none``) in ``--workers`` processes, ended on the way
    out; a one-line error for a model it does not apply to (:func:`lens_hf.inference.likelihood_refiner`)."""
    if args.workers < 1:
        raise _user_error(f"--workers must be at least 1, got {args.workers}")
    if args.refine == "none":
        yield None
        return
    from lens_hf.inference import likelihood_refiner

    with likelihood_refiner(loaded, workers=args.workers) as refiner:
        yield refiner


REFINE_HELP = (
    "likelihood: for a Model I axion-mass model, answer with the posterior median of a likelihood fit of the "
    "vortex instead (source and exposure fitted, vortex angle marginalised; about 0.5 s per image on one core; 0.190 dex "
    "against the shipped model's 0.224 on 1,000 test vortices); none: the model's answer (default)"
)


def cmd_predict(args: argparse.Namespace) -> int:
    """Classify files and folders; a table on stdout or a .csv/.json file."""
    from lens_hf.inference import collect_files, load_classifier, predict_files

    output = Path(args.output) if args.output else None
    if output is not None:
        if output.suffix.lower() not in PREDICTION_FORMATS:
            raise _user_error(f"{output}: --output must end in {' or '.join(PREDICTION_FORMATS)}")
        check_output_location(output)
        if output.is_dir():
            raise _user_error(f"{output}: is a folder; give a .csv or .json file name")
    files = collect_files(args.paths)
    loaded = load_classifier(args.model)
    with _refiner(loaded, args) as refine:
        preds = predict_files(
            loaded,
            files,
            batch_size=args.batch_size,
            tta=args.tta,
            skip_bad=args.skip_bad,
            progress=_tty(),
            refine=refine,
        )
    rows = preds.rows(include_skipped=True)
    if output is not None:
        _write_predictions(output, rows, preds.labels, preds.columns)
    else:
        _print_rows(rows, preds.columns)
    if preds.scaling is None:
        counts = Counter(r["label"] for r in rows if r["error"] is None)
        summary = "classified (" + ", ".join(f"{name}: {counts.get(name, 0)}" for name in preds.labels) + ")"
    else:
        summary = f"predicted ({preds.scaling.target})"
    for path, reason in preds.skipped:
        print(f"skipped {_escape(path)}: {reason}", file=sys.stderr)
    print(
        f"{len(preds.sources)} image(s) {summary}"
        + (f" with test-time augmentation {args.tta}" if args.tta != "none" else "")
        + (f"; {len(preds.skipped)} skipped" if preds.skipped else "")
        + (f"; wrote {_escape(str(output))}" if output is not None else ""),
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Metrics, ROC and confusion-matrix figures and per-image predictions of a model on labelled data."""
    from lens_hf.inference import evaluate_data, evaluate_regression_data, load_classifier
    from lens_hf.metrics import (
        format_regression_table,
        format_table,
        write_evaluation,
        write_regression_evaluation,
    )
    from lens_hf.processing.targets import apply_transform

    out = Path(args.out)
    check_output_location(out, inside=True)
    if out.exists() and not out.is_dir():
        raise _user_error(f"{out}: exists and is not a folder")
    if not Path(args.data).exists():
        raise _user_error(f"{args.data}: no such file or folder")
    loaded = load_classifier(args.model)
    options = dict(split=args.split, batch_size=args.batch_size, tta=args.tta, skip_bad=args.skip_bad)
    scaling = loaded.scaling
    with _refiner(loaded, args) as refine:
        if scaling is None:
            y_true, preds = evaluate_data(loaded, args.data, progress=_tty(), **options)
        else:
            y_true, preds, without = evaluate_regression_data(
                loaded, args.data, progress=_tty(), refine=refine, **options
            )
    from lens_hf.cards import simulation_of

    extra: dict[str, Any] = {
        "model": str(loaded.path),
        "data": str(args.data),
        "simulation": simulation_of(args.data),
        "split": args.split,
        "tta": args.tta,
        "refine": args.refine,
        "skipped": [{"file": p, "error": r} for p, r in preds.skipped],
    }
    with _staged_folder(out) as staging:
        if scaling is None:
            metrics = write_evaluation(
                staging, y_true, preds.probs, labels=loaded.labels, paths=preds.sources, extra=extra
            )
            figures = "roc.png, confusion_matrix.png"
        else:
            extra["num_without_target"] = without
            metrics = write_regression_evaluation(
                staging,
                apply_transform(y_true, scaling.transform),
                apply_transform(preds.probs[:, 0], scaling.transform),
                target=scaling.target,
                transform=scaling.transform,
                paths=preds.sources,
                extra=extra,
            )
            figures = "regression.png"
    print(format_table(metrics) if scaling is None else format_regression_table(metrics))
    if scaling is not None and without:
        print(f"{without} image(s) have no {scaling.target} value: not evaluated", file=sys.stderr)
    for path, reason in preds.skipped:
        print(f"skipped {_escape(path)}: {reason}", file=sys.stderr)
    print(
        f"wrote metrics.json, {figures}, predictions.csv to {_escape(str(out))}"
        + (f"; {len(preds.skipped)} file(s) skipped (listed in metrics.json)" if preds.skipped else ""),
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Export a model to an ONNX folder that predict and evaluate run with ONNX Runtime."""
    from lens_hf.export import export_onnx

    result = export_onnx(args.model, args.out, fmt=args.format, opset=args.opset)
    batch, *shape = result.input_shape
    print(
        f"exported to {_escape(str(result.path))}: model.onnx (opset {result.opset}, input pixel_values "
        f"({batch}, {', '.join(map(str, shape))}), output logits ({batch}, {result.num_labels})), "
        f"preprocessor_config.json, config.json, README.md; ONNX Runtime matches PyTorch within "
        f"{result.max_abs_diff:.1e}"
    )
    return EXIT_OK


def cmd_card(args: argparse.Namespace) -> int:
    """Write README.md of a local model folder from its config, training record and metrics; first make the
    folder's JSON records publishable (secrets masked, absolute paths made relative)."""
    from lens_hf.cards import write_model_card
    from lens_hf.hub import redact_records

    model = Path(args.model)
    if not model.is_dir():
        raise _user_error(f"{model}: not a local model folder (the card is written into it)")

    def read_metrics(name: str | None) -> dict | None:
        if not name:
            return None
        metrics_path = Path(name)
        try:
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise _user_error(f"{metrics_path}: no such file") from None
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise _user_error(
                f"{metrics_path}: not a readable metrics JSON file ({_first_line(err)})"
            ) from None
        if not isinstance(metrics, dict):
            raise _user_error(f"{metrics_path}: expected a JSON object of metrics")
        return metrics

    metrics, tta_metrics = read_metrics(args.metrics), read_metrics(args.tta_metrics)
    refine_metrics = read_metrics(args.refine_metrics)
    if not (model / "config.json").is_file():
        raise _user_error(f"{model}: no config.json; not a saved model folder")
    cleaned = redact_records(model)
    path = write_model_card(
        model,
        metrics=metrics,
        tta_metrics=tta_metrics,
        refine_metrics=refine_metrics,
        repo_id=args.repo_id,
    )
    if cleaned:
        print(f"masked secrets and local paths in {', '.join(p.name for p in cleaned)}")
    print(f"wrote {path}")
    return EXIT_OK


def cmd_push(args: argparse.Namespace) -> int:
    """Upload the files a fresh process needs to the Hub, after checking that none holds a secret or a local
    path."""
    from lens_hf.hub import push_folder

    url = push_folder(
        args.model, args.repo_id, private=args.private, repo_type="dataset" if args.dataset else "model"
    )
    print(f"pushed {args.model} to {url}")
    return EXIT_OK


def cmd_cache_model(args: argparse.Namespace) -> int:
    """Put a model folder into the local Hugging Face cache as a snapshot of a Hub repo id."""
    from lens_hf.hub import CHECKOUT_MODEL_DIR, cache_model_folder

    model = Path(args.model) if args.model else CHECKOUT_MODEL_DIR
    if not model.is_dir():
        raise _user_error(
            f"{model}: no such model folder"
            + ("" if args.model else " (this lens_hf is not a source checkout); pass --model FOLDER")
        )
    snapshot = cache_model_folder(model, args.repo_id)
    print(f"cached {model} as {args.repo_id} in {snapshot}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve the web demo (a Gradio page) with one model, loaded once, until interrupted."""
    if importlib.util.find_spec("gradio") is None:
        raise _user_error('the web demo needs Gradio: pip install "lens_hf[demo]"')
    if not 0 < args.port < 65536:
        raise _user_error(f"--port must be in 1..65535, got {args.port}")
    from lens_hf.demo.page import launch

    launch(args.model, host=args.host, port=args.port, share=args.share)
    return EXIT_OK


# ----------------------------------------------------------------------------------------------- helpers
def _user_error(message: str) -> Exception:
    from lens_hf.errors import LensHFError

    return LensHFError(message)


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def _tty() -> bool:
    """Progress bars only on a terminal: in logs and pipes they would bury the messages."""
    return sys.stderr.isatty()


def _sizes(dd: Any) -> str:
    return ", ".join(f"{k}: {len(v)}" for k, v in dd.items())


def _command_line() -> str:
    """The command as it can be recorded and published: secrets masked, local paths made relative."""
    from lens_hf.redact import redact_argv

    return " ".join(["lens-hf", *redact_argv(sys.argv[1:])])


def _check_output_folder(out: Path) -> None:
    """Fail before any work when ``out`` cannot become an output dataset folder: not a folder, a foreign
    non-empty folder, a name too long for the file system, or a location this process cannot write."""
    from lens_hf.data.dataset import MARKER_FILE

    check_output_location(out)
    if out.exists() and not out.is_dir():
        raise _user_error(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER_FILE).is_file():
        raise _user_error(
            f"{out}: folder is not empty and is not a lens_hf dataset; choose another output folder"
        )


@contextlib.contextmanager
def _staged_folder(out: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``out`` to write into; on success its files are renamed into ``out``
    (created if needed), on failure it is removed and ``out`` is left as it was."""
    tmp = make_temporary_folder(out)
    try:
        yield tmp
        out.mkdir(exist_ok=True)
        for src in sorted(tmp.iterdir()):
            os.replace(src, out / src.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_predictions(path: Path, rows: list[dict], labels: list[str], columns: list[str]) -> None:
    """``rows`` (with an ``error`` column, empty for classified images) as CSV or JSON, atomically. The CSV is
    RFC 4180 (the csv module quotes paths holding commas, quotes, tabs or line breaks)."""
    from lens_hf.utils import atomic_path

    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        if path.suffix.lower() == ".json":
            skipped = sum(r["error"] is not None for r in rows)
            json.dump({"labels": labels, "num_skipped": skipped, "predictions": rows}, f, indent=2)
            f.write("\n")
            return
        fields = ["file", *columns, "error"]
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def _escape(text: str) -> str:
    """``text`` on one line and free of tabs: backslashes, tabs and line breaks written as ``\\``, ``\\t``,
    ``\\n``, ``\\r`` (file names may hold them; the table is tab-separated, messages are one line)."""
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _print_rows(rows: list[dict], columns: list[str]) -> None:
    """A tab-separated table on stdout, one line per image (paths escaped with :func:`_escape`): the
    prediction ``columns`` (label, score and probabilities; or a regression target), then the file."""
    print("\t".join([*columns, "file"]))
    for r in rows:
        if r["error"] is not None:
            print("\t".join(["skipped", *[""] * (len(columns) - 1), _escape(r["file"])]))
            continue
        cells = [_cell(name, r[name]) for name in columns]
        print("\t".join([*cells, _escape(r["file"])]))


def _cell(column: str, value: Any) -> str:
    """A table cell: a label as it is, a probability or log10 value to 4 decimals, a physical value (which may
    be 1e-23 eV) to 4 significant digits."""
    if isinstance(value, str):
        return value
    return f"{value:.4f}" if column == "score" or column.startswith(("p_", "log10_")) else f"{value:.4g}"


# ----------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from lens_hf.data.presets import PRESETS
    from lens_hf.processing.file_io import NORMALIZATIONS
    from lens_hf.processing.pipeline_lens import TTA_MODES

    tta_help = (
        "test-time augmentation: d4 averages the softmax probabilities over the 8 rotations and flips of each "
        "image (8x the compute); d2 over the 4 that keep the image's axes (flips and the half turn), for models "
        "trained with --augment d2; none: one pass (default: none)"
    )

    parser = argparse.ArgumentParser(
        prog="lens-hf",
        description="Find dark matter substructure in strong gravitational lenses: simulate DeepLense data, "
        "build datasets, train vision transformers, evaluate and predict. Bad input is reported in one line "
        "(exit status 2); --debug shows the traceback.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "simulate",
        help="simulate a DeepLense-faithful lensing dataset with lenstronomy",
        description="Simulate no_substructure / subhalo / vortex lensing images (--per-class of each). "
        "Re-running an interrupted --format deeplense command completes it: complete files are kept, "
        "corrupt or partial ones are rewritten, and the result is byte-identical to an uninterrupted run.",
    )
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="model_i",
        help="instrument/physics preset (default: model_i)",
    )
    p.add_argument("--per-class", type=int, required=True, help="images per class")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same pixels)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--format",
        choices=["deeplense", "hf"],
        default="deeplense",
        help="deeplense: {axion,cdm,no_sub}/*.npy archive layout; hf: a datasets.DatasetDict (default: deeplense)",
    )
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument(
        "--splits",
        default=None,
        help="hf only: split fractions or per-class counts, e.g. 0.8,0.1,0.1 or 800,100,100",
    )
    _add_no_parquet(p, "hf only: ")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "build-dataset",
        help="turn a folder of lensing images into a Hugging Face DatasetDict",
        description="Read a DeepLense archive (Model I-III), the ML4SCI common test layout, or any folder of "
        "class sub-folders (no_sub/cdm/axion, no/sphere/vort, ...) into a DatasetDict saved with "
        "save_to_disk plus parquet shards and a dataset card. A bad file stops the build (naming it) unless "
        "--skip-bad.",
    )
    p.add_argument("src", help="input folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--splits",
        default=None,
        help="split fractions or per-class counts when the input has no split folders",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random split")
    _add_no_parquet(p)
    p.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        default="minmax",
        help="per-image normalisation: minmax, none, residual_model_i (raw Model I photon counts minus the "
        "fitted smooth lens, in units of the noise; 50-150 ms per image), or residual_lens_model_i (that "
        "residual and the fitted lens in noise units, stored as the image and smooth_lens columns) "
        "(default: minmax)",
    )
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip unreadable files (listed on stderr and in lens_hf_dataset.json)",
    )
    p.set_defaults(func=cmd_build_dataset)

    p = sub.add_parser(
        "show",
        help="plot a grid of example images per class",
        description="Plot the first --per-class images of each class of a dataset or image folder as a PNG.",
    )
    p.add_argument("data", help="a saved DatasetDict or any folder build-dataset reads")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--per-class", type=int, default=6, help="examples per class (default: 6)")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "train",
        help="train a model (the recipes' options; see `lens-hf train --help`)",
        description="Train with the Hugging Face Trainer: runs the main() of the recipe script "
        "(recipes/<recipe>.py) with the other arguments. All its flags and every TrainingArguments flag are "
        "accepted, e.g. --output_dir, --dataset, --model_preset, --num_train_epochs, --config FILE, "
        "--resume_from_checkpoint last.",
        add_help=False,
    )
    p.add_argument(
        "--recipe",
        default="vit_spt_lsa",
        choices=sorted(RECIPES),
        help="which recipe to run (default: vit_spt_lsa)",
    )
    p.set_defaults(func=cmd_train, usage=p.format_help)

    p = sub.add_parser(
        "evaluate",
        help="ROC-AUC, confusion matrix and predictions of a model on labelled data",
        description="Evaluate a model on labelled data; writes metrics.json, roc.png, confusion_matrix.png and "
        "predictions.csv into --out. A regression model is scored against the target in the data's metadata "
        "(MAE, RMSE, R2, bias, MAE per bin of the true value; regression.png) on the images that have one. A bad "
        "file stops the run (naming it) unless --skip-bad.",
    )
    p.add_argument("--model", default=None, help="model folder or Hub id (default: the shipped checkpoint)")
    p.add_argument("--data", required=True, help="a saved DatasetDict or any folder build-dataset reads")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--split", default="test", help="split of a saved DatasetDict or split folder (default: test)"
    )
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--tta", choices=TTA_MODES, default="none", help=tta_help)
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable files (listed in metrics.json)")
    p.add_argument("--refine", choices=REFINEMENTS, default="none", help=REFINE_HELP)
    p.add_argument("--workers", type=int, default=1, help=WORKERS_HELP)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "predict",
        help="classify new image files",
        description="Classify .npy/.npz/.fits/.png/.tif files and folders (searched recursively); a regression "
        "model gives its target instead (log10_<target> and <target> in physical units). A bad file stops the "
        "run (naming it) unless --skip-bad.",
    )
    p.add_argument("paths", nargs="+", help="files and folders")
    p.add_argument("--model", default=None, help="model folder or Hub id (default: the shipped checkpoint)")
    p.add_argument(
        "--output", default=None, help="write predictions to this .csv or .json (default: print a table)"
    )
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default: 64)")
    p.add_argument("--tta", choices=TTA_MODES, default="none", help=tta_help)
    p.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip unreadable files (rows with an error column) instead of failing",
    )
    p.add_argument("--refine", choices=REFINEMENTS, default="none", help=REFINE_HELP)
    p.add_argument("--workers", type=int, default=1, help=WORKERS_HELP)
    p.set_defaults(func=cmd_predict)

    from lens_hf.export import DEFAULT_OPSET, EXPORT_FORMATS, OPSETS

    p = sub.add_parser(
        "export",
        help="export a model to ONNX (predict and evaluate run the folder with ONNX Runtime)",
        description="Export a model folder or Hub id to --out: model.onnx (torch.onnx.export, dynamo exporter; "
        "input pixel_values (batch, C, H, W) float32 with a dynamic batch axis and the image processor's fixed "
        "size, output logits (batch, num_labels)), the image processor, config.json and a README. ONNX Runtime "
        "is checked against PyTorch before anything is written. `lens-hf predict/evaluate --model OUT` then run "
        "ONNX Runtime with the same preprocessing and outputs.",
    )
    p.add_argument("--model", default=None, help="model folder or Hub id (default: the shipped checkpoint)")
    p.add_argument("--format", choices=EXPORT_FORMATS, default="onnx", help="export format (default: onnx)")
    p.add_argument("--out", required=True, help="output folder (an earlier export there is replaced)")
    p.add_argument(
        "--opset",
        type=int,
        choices=OPSETS,
        default=DEFAULT_OPSET,
        metavar="N",
        help=f"ONNX opset, {OPSETS[0]} to {OPSETS[-1]} (default: {DEFAULT_OPSET})",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "demo",
        help="serve the web demo: drop lensing files, see the prediction and the attention map",
        description="Start a Gradio page that classifies dropped .npy/.npz/.fits/.png/.tif files (or bundled "
        "simulated examples) with one model, showing each image, its class probabilities (or a regression "
        "model's value) and the model's attention map. Needs `pip install \"lens_hf[demo]\"`. Works offline; "
        "a public share link is made only with --share.",
    )
    p.add_argument("--model", default=None, help="model folder or Hub id (default: the shipped checkpoint)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    p.add_argument(
        "--share", action="store_true", help="also make a public gradio.live link (off by default)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "card",
        help="write a model's README.md card from its metrics",
        description="Generate README.md (Hub model card with model-index metrics) in a local model folder, "
        "after masking secrets and making absolute paths relative in its JSON records (training record, "
        "metrics), so the folder is ready for `push`.",
    )
    p.add_argument("--model", required=True, help="local model folder")
    p.add_argument(
        "--metrics", default=None, help="metrics.json to report (default: the folder's metrics.json)"
    )
    p.add_argument(
        "--tta-metrics",
        default=None,
        help="metrics.json of the same evaluation with --tta d4, shown beside it (default: the folder's "
        "metrics_tta_d4.json when the card reads the folder's metrics.json)",
    )
    p.add_argument(
        "--refine-metrics",
        default=None,
        help="metrics.json of the same evaluation of a regression model with --refine likelihood, shown beside "
        "it (default: the folder's metrics_refine_likelihood.json when the card reads the folder's metrics.json)",
    )
    p.add_argument("--repo-id", default=None, help="Hub id used in the card's usage snippets")
    p.set_defaults(func=cmd_card)

    p = sub.add_parser(
        "push",
        help="upload a model (or dataset) folder to the Hugging Face Hub",
        description="Upload the files a fresh process needs (safetensors weights, config, processor, code, card). "
        "Refuses, before any network call, a folder whose files still hold a token-like string or an absolute "
        "local path, naming the file.",
    )
    p.add_argument("--model", required=True, help="model (or dataset, with --dataset) folder")
    p.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--dataset", action="store_true", help="push a dataset folder instead of a model")
    p.set_defaults(func=cmd_push)

    from lens_hf.hub import DEFAULT_MODEL_ID

    p = sub.add_parser(
        "cache-model",
        help="put a model folder into the local Hugging Face cache under a Hub id",
        description="Copy the files `push` would upload into the Hugging Face cache (HF_HUB_CACHE or "
        f"HF_HOME/hub) as the main snapshot of --repo-id, so that `predict --model REPO_ID` and, for "
        f"{DEFAULT_MODEL_ID}, `predict` without --model find it offline, also where lens_hf is installed "
        "without this checkout.",
    )
    p.add_argument(
        "--model", default=None, help="model folder (default: the checkout's checkpoints/vit-spt-lsa-model-i)"
    )
    p.add_argument(
        "--repo-id", default=DEFAULT_MODEL_ID, help=f"Hub id to cache it as (default: {DEFAULT_MODEL_ID})"
    )
    p.set_defaults(func=cmd_cache_model)
    return parser


def _split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """Remove ``--debug`` (lens-hf's own flag) from ``argv``; after ``train`` it belongs to the Trainer."""
    command = next((i for i, a in enumerate(argv) if not a.startswith("-")), len(argv))
    scope = command if command < len(argv) and argv[command] == "train" else len(argv)
    debug = "--debug" in argv[:scope]
    return [a for i, a in enumerate(argv) if not (i < scope and a == "--debug")], debug


@contextlib.contextmanager
def _quiet_libraries(command: str, debug: bool) -> Iterator[None]:
    """Library warnings and progress bars would bury the one-line messages: transformers logs only errors and
    (off a terminal) no library shows progress bars, for the duration of the command; lens_hf's own warnings
    are one ``lens-hf: warning: ...`` line each. Training keeps its logs; ``--debug`` keeps everything."""
    if command == "train" or debug:
        yield
        return
    import datasets
    import transformers

    hf_logging = transformers.utils.logging
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled(), datasets.utils.logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    if not sys.stderr.isatty():
        hf_logging.disable_progress_bar()
        datasets.disable_progress_bars()
    warnings_handler = logging.StreamHandler(sys.stderr)
    warnings_handler.setLevel(logging.WARNING)
    warnings_handler.setFormatter(logging.Formatter("lens-hf: warning: %(message)s"))
    lens_logger = logging.getLogger("lens_hf")
    lens_logger.addHandler(warnings_handler)
    try:
        yield
    finally:
        lens_logger.removeHandler(warnings_handler)
        hf_logging.set_verbosity(verbosity)
        if bars[0]:
            hf_logging.enable_progress_bar()
        if bars[1]:
            datasets.enable_progress_bars()


def main(argv: list[str] | None = None) -> int:
    """Run ``lens-hf`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    argv, debug = _split_debug(list(sys.argv[1:] if argv is None else argv))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if args.command == "train":
            return cmd_train(args, extra)
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        with _quiet_libraries(args.command, debug):
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("lens-hf: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exc:  # argparse (usage errors already printed) and --help
        return exc.code if isinstance(exc.code, int) else EXIT_USER_ERROR
    except BrokenPipeError:  # e.g. `lens-hf predict ... | head`
        sys.stderr.close()
        return EXIT_OK
    except Exception as err:
        if debug:
            raise
        from lens_hf.errors import USER_ERRORS

        message = " ".join(line.strip() for line in str(err).strip().splitlines() if line.strip())
        if isinstance(err, USER_ERRORS) or isinstance(err, (OSError, MemoryError)):
            if isinstance(err, OSError) and err.filename and str(err.filename) not in message:
                message = f"{err.filename}: {message}"
            print(f"lens-hf: error: {message or type(err).__name__}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(
            f"lens-hf: internal error: {type(err).__name__}: {message} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
