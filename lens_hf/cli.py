"""The ``lens-hf`` command: simulate, build-dataset, show, train, evaluate, predict, card, push.

Every sub-command reports bad input as one line on stderr and exits with status 2 (``--debug`` shows the
traceback); outputs are written under temporary names and renamed when complete.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections import Counter
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


# ----------------------------------------------------------------------------------------------- commands
def cmd_simulate(args: argparse.Namespace) -> int:
    from lens_hf.data.dataset import build_from_simulation, parse_splits, save_dataset
    from lens_hf.data.simulate import write_deeplense

    if args.per_class < 1:
        raise _user_error("--per-class must be at least 1")
    if args.format == "deeplense":
        summary = write_deeplense(args.out, args.preset, args.per_class, args.seed, workers=args.workers)
        print(f"wrote {summary.get('written', 0)} file(s), kept {summary.get('skipped_existing', 0)} existing, in {args.out}")
        return 0
    splits = parse_splits(args.splits) if args.splits else None
    dd = build_from_simulation(args.preset, args.per_class, args.seed, splits=splits, workers=args.workers)
    info = {
        "preset": args.preset,
        "per_class": args.per_class,
        "seed": args.seed,
        "splits": {name: len(ds) for name, ds in dd.items()},
        "normalization": "minmax",
        "source": f"simulation ({args.preset})",
        "command": _command_line(),
    }
    save_dataset(dd, args.out, info=info)
    print(f"wrote a DatasetDict ({', '.join(f'{k}: {len(v)}' for k, v in dd.items())}) to {args.out}")
    return 0


def cmd_build_dataset(args: argparse.Namespace) -> int:
    from lens_hf.data.dataset import build_from_folder, parse_splits, save_dataset

    splits = parse_splits(args.splits) if args.splits else None
    dd, skipped = build_from_folder(args.src, splits=splits, seed=args.seed, normalize=args.normalization, skip_bad=args.skip_bad)
    info = {
        "source": str(args.src),
        "seed": args.seed,
        "splits": {name: len(ds) for name, ds in dd.items()},
        "normalization": args.normalization,
        "command": _command_line(),
        "skipped": [{"path": p, "error": r} for p, r in skipped],
    }
    save_dataset(dd, args.out, info=info)
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    print(f"wrote a DatasetDict ({', '.join(f'{k}: {len(v)}' for k, v in dd.items())}) to {args.out}" + (f"; skipped {len(skipped)} bad file(s)" if skipped else ""))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from lens_hf.data.dataset import load_any
    from lens_hf.labels import LABELS
    from lens_hf.plots import plot_examples

    data = load_any(args.data, skip_bad=True)
    ds = data if not hasattr(data, "keys") else next(iter(data.values()))
    names = ds.features["label"].names
    by_label: dict[str, list] = {name: [] for name in LABELS}
    import numpy as np

    for row in ds:
        label = names[row["label"]]
        if len(by_label[label]) < args.per_class:
            by_label[label].append(np.asarray(row["image"], dtype=np.float32))
        if all(len(v) >= args.per_class for v in by_label.values()):
            break
    plot_examples({k: v for k, v in by_label.items() if v}, args.out)
    print(f"wrote {args.out}")
    return 0


def cmd_train(args: argparse.Namespace, extra: list[str]) -> int:
    from lens_hf.training.run import main as train_main

    return int(train_main(extra, recipe=args.recipe) or 0)


def cmd_predict(args: argparse.Namespace) -> int:
    from lens_hf.inference import collect_files, load_classifier, predict_files

    files = collect_files(args.paths)
    loaded = load_classifier(args.model)
    preds = predict_files(loaded, files, batch_size=args.batch_size, skip_bad=args.skip_bad)
    rows = preds.rows()
    if args.output:
        _write_predictions(Path(args.output), rows, preds.labels, preds.skipped)
    else:
        _print_rows(rows, preds.labels)
    counts = Counter(r["label"] for r in rows)
    summary = ", ".join(f"{name}: {counts.get(name, 0)}" for name in preds.labels)
    print(f"{len(rows)} image(s) classified ({summary})" + (f"; {len(preds.skipped)} skipped" if preds.skipped else ""), file=sys.stderr)
    for path, reason in preds.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if args.output:
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from lens_hf.inference import evaluate_data, load_classifier
    from lens_hf.metrics import format_table, write_evaluation

    loaded = load_classifier(args.model)
    y_true, preds = evaluate_data(loaded, args.data, split=args.split, batch_size=args.batch_size, skip_bad=args.skip_bad)
    extra = {"model": str(loaded.path), "data": str(args.data), "split": args.split}
    if preds.skipped:
        extra["skipped"] = [{"path": p, "error": r} for p, r in preds.skipped]
    metrics = write_evaluation(args.out, y_true, preds.probs, labels=loaded.labels, paths=preds.sources, extra=extra)
    print(format_table(metrics))
    print(f"wrote metrics.json, roc.png, confusion_matrix.png, predictions.csv to {args.out}")
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from lens_hf.cards import write_model_card
    from lens_hf.hub import resolve_model_path

    path = write_model_card(resolve_model_path(args.model))
    print(f"wrote {path}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from lens_hf.hub import push_folder

    url = push_folder(args.model, args.repo_id, private=args.private, repo_type="dataset" if args.dataset else "model")
    print(f"pushed {args.model} to {url}")
    return 0


# ----------------------------------------------------------------------------------------------- helpers
def _user_error(message: str) -> Exception:
    from lens_hf.errors import LensHFError

    return LensHFError(message)


def _command_line() -> str:
    return " ".join(["lens-hf", *sys.argv[1:]])


def _write_predictions(path: Path, rows: list[dict], labels: list[str], skipped: list[tuple[str, str]]) -> None:
    from lens_hf.utils import atomic_write_text

    if path.suffix.lower() == ".json":
        text = json.dumps({"labels": labels, "predictions": rows, "skipped": [{"path": p, "error": r} for p, r in skipped]}, indent=2)
    else:
        buf = io.StringIO()
        fields = ["path", "label", "score", *[f"p_{name}" for name in labels], "error"]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "error": ""})
        for p, reason in skipped:
            writer.writerow({"path": p, "label": "", "score": "", "error": reason})
        text = buf.getvalue()
    atomic_write_text(path, text)


def _print_rows(rows: list[dict], labels: list[str]) -> None:
    header = ["label", "score", *[f"p_{n}" for n in labels], "path"]
    print("\t".join(header))
    for r in rows:
        print("\t".join([r["label"], f"{r['score']:.4f}", *[f"{r[f'p_{n}']:.4f}" for n in labels], r["path"]]))


# ----------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from lens_hf.data.presets import PRESETS

    parser = argparse.ArgumentParser(
        prog="lens-hf",
        description="Find dark matter substructure in strong gravitational lenses: simulate DeepLense data, "
        "build datasets, train vision transformers, evaluate and predict.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("simulate", help="simulate a DeepLense-faithful lensing dataset with lenstronomy",
                       description="Simulate no_substructure / subhalo / vortex lensing images (per_class each). "
                       "Re-running an interrupted --format deeplense command completes it.")
    p.add_argument("--preset", choices=sorted(PRESETS), default="model_i", help="instrument/physics preset (default: model_i)")
    p.add_argument("--per-class", type=int, required=True, help="images per class")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same pixels)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", choices=["deeplense", "hf"], default="deeplense",
                   help="deeplense: {axion,cdm,no_sub}/*.npy archive layout; hf: a datasets.DatasetDict (default: deeplense)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--splits", default=None, help="hf only: split fractions or per-class counts, e.g. 0.8,0.1,0.1 or 800,100,100")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("build-dataset", help="turn a folder of lensing images into a Hugging Face DatasetDict",
                       description="Read a DeepLense archive (Model I-III), the ML4SCI common test layout, or any folder of "
                       "class sub-folders (no_sub/cdm/axion, no/sphere/vort, ...) into a DatasetDict saved with "
                       "save_to_disk plus parquet shards and a dataset card.")
    p.add_argument("src", help="input folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--splits", default=None, help="split fractions or per-class counts when the input has no split folders")
    p.add_argument("--seed", type=int, default=0, help="seed of the random split")
    p.add_argument("--normalization", choices=["minmax", "none"], default="minmax", help="per-image normalisation (default: minmax)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable files (they are listed) instead of failing")
    p.set_defaults(func=cmd_build_dataset)

    p = sub.add_parser("show", help="plot a grid of example images per class", description="Plot a grid of examples per class.")
    p.add_argument("data", help="a saved DatasetDict or any folder build-dataset reads")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--per-class", type=int, default=6, help="examples per class (default: 6)")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("train", help="train a model (same options as the recipes; see `lens-hf train --help`)",
                       description="Train with the Hugging Face Trainer. All recipe and TrainingArguments flags are accepted, "
                       "e.g. --output_dir, --dataset, --model_preset, --num_train_epochs.", add_help=False)
    p.add_argument("--recipe", default="vit_spt_lsa", choices=["vit_spt_lsa", "vit", "deit", "swin", "cnn_teacher"],
                   help="which recipe's defaults to start from (default: vit_spt_lsa)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="ROC-AUC, confusion matrix and predictions of a model on labelled data",
                       description="Evaluate a model on labelled data; writes metrics.json, roc.png, confusion_matrix.png, predictions.csv.")
    p.add_argument("--model", default=None, help="model folder or Hub id (default: the shipped checkpoint)")
    p.add_argument("--data", required=True, help="a saved DatasetDict or any folder build-dataset reads")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", default="test", help="split of a saved DatasetDict (default: test)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable files (listed in metrics.json)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify new image files", description="Classify .npy/.npz/.fits/.png/.tif files and folders.")
    p.add_argument("paths", nargs="+", help="files and folders (searched recursively)")
    p.add_argument("--model", default=None, help="model folder or Hub id (default: the shipped checkpoint)")
    p.add_argument("--output", default=None, help="write predictions to this .csv or .json (default: print a table)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable files (listed in the output) instead of failing")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("card", help="write a model's README.md card from its metrics", description="Generate the model card.")
    p.add_argument("--model", required=True, help="model folder")
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("push", help="upload a model (or dataset) folder to the Hugging Face Hub",
                       description="Upload the files a fresh process needs (safetensors weights, config, processor, code, card).")
    p.add_argument("--model", required=True, help="model (or dataset, with --dataset) folder")
    p.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    p.add_argument("--private", action="store_true")
    p.add_argument("--dataset", action="store_true", help="push a dataset folder instead of a model")
    p.set_defaults(func=cmd_push)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from lens_hf.errors import USER_ERRORS

        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if args.command == "train":
            return cmd_train(args, extra)
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("lens-hf: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # argparse: usage errors already printed on one line
        return int(exc.code or 0) if isinstance(exc.code, int) else EXIT_USER_ERROR
    except Exception as err:
        if debug:
            raise
        user = isinstance(err, USER_ERRORS) if "USER_ERRORS" in locals() else False
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if user:
            print(f"lens-hf: error: {message}", file=sys.stderr)
            return EXIT_USER_ERROR
        if isinstance(err, (OSError, MemoryError)):
            print(f"lens-hf: error: {message}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(f"lens-hf: internal error: {type(err).__name__}: {message} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
