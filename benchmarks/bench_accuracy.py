"""Accuracy of every model preset trained on the same simulated Model I data under the same wall-clock budget.

    python benchmarks/bench_accuracy.py                                  # CPU profile, results/accuracy.*
    python benchmarks/bench_accuracy.py --train-per-class 1000 --name accuracy_1k    # data efficiency
    python benchmarks/bench_accuracy.py --profile gpu                    # DeepLense scale on a CUDA device
    python benchmarks/bench_accuracy.py --quick                          # tiny everything, a minute on 2 CPUs

Every model is trained by its recipe in ``recipes/`` (the script's ``main()``, with the recipe's defaults), on one training set simulated once with ``lens_hf.data.build_from_simulation`` (seed ``S``),
validated on a simulated validation set (seed ``S+1``, used by the Trainer to keep the best epoch) and tested on
an independent test set (seed ``S+2``; or the folders given by ``--train-data`` / ``--test-data``). A
:class:`TimeBudget` callback stops each ``trainer.train()`` after ``--minutes-per-model`` of wall clock
(optimizer steps, the per-epoch validation and checkpoint saves all count); the recipe's epoch count caps it.
``deit-tiny-distilled`` is DeiT with hard distillation from the ``resnet-18`` trained earlier in the same run.

Per model: parameters; FLOPs per image (forward, and forward + backward) counted by
``benchmarks/bench_throughput.count_flops``; training images/s (images seen / time spent in training steps,
validation and checkpointing excluded); epochs and steps done in the budget; test accuracy and one-vs-rest
ROC-AUC per class, macro and micro (``lens_hf.metrics``). Results go to ``<out>/<name>.json`` and
``<out>/<name>.md`` (date, machine, the command), rewritten after each model; ``--resume`` skips the models a
killed run finished. Data and model folders go to ``<work>`` (default ``benchmarks/work``, not versioned).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import platform
import shlex
import shutil
import sys
import time
import traceback
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import datasets  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from bench_throughput import count_flops, machine_info  # noqa: E402
from datasets import Dataset, DatasetDict  # noqa: E402
from tqdm import tqdm  # noqa: E402
from transformers import HfArgumentParser  # noqa: E402

from lens_hf.cli import load_recipe  # noqa: E402
from lens_hf.data.dataset import (  # noqa: E402
    MARKER_FILE,
    build_from_simulation,
    load_any,
    save_dataset,
    stratified_split,
)
from lens_hf.errors import USER_ERRORS, LensHFError  # noqa: E402
from lens_hf.labels import LABELS  # noqa: E402
from lens_hf.models import factory  # noqa: E402
from lens_hf.training import (  # noqa: E402
    TRAINING_FILE,
    DataArguments,
    LensTrainingArguments,
    ModelArguments,
    parse_args,
)
from lens_hf.training.trainer import TimeLimit  # noqa: E402
from lens_hf.utils import atomic_write_text  # noqa: E402

RESULTS_DIR = ROOT / "benchmarks" / "results"
WORK_DIR = ROOT / "benchmarks" / "work"
SCRIPT = "benchmarks/bench_accuracy.py"
# Seed offsets of the simulated splits (as lens_hf.data.splits does), so no image is shared between them.
SEED_OFFSETS = {"train": 0, "validation": 1, "test": 2}


@dataclass(frozen=True)
class BenchModel:
    """One benchmarked model: a factory preset trained with the defaults of a recipe in ``recipes/``."""

    preset: str
    recipe: str
    distilled: bool = False
    description: str = ""
    # Input handling of its own (training arguments), e.g. the stem model's 100 px centre crop at 64 px.
    inputs: tuple[tuple[str, Any], ...] = ()


# Table order is run order, except that resnet-18 is moved before deit-tiny-distilled (its teacher).
BENCH_MODELS: dict[str, BenchModel] = {
    "vit-tiny": BenchModel("vit-tiny", "finetune_vit", description="stock ViT"),
    "vit-spt-lsa-tiny": BenchModel("vit-spt-lsa-tiny", "train_vit_spt_lsa", description="ViT + SPT + LSA"),
    "vit-spt-tiny": BenchModel("vit-spt-tiny", "train_vit_spt_lsa", description="ViT + SPT only"),
    "vit-lsa-tiny": BenchModel("vit-lsa-tiny", "train_vit_spt_lsa", description="ViT + LSA only"),
    "vit-spt-lsa-stem": BenchModel(
        "vit-spt-lsa-stem",
        "train_vit_spt_lsa",
        description="ViT + SPT + LSA behind a conv stem (the shipped model's architecture)",
        inputs=(("image_size", 96), ("center_crop", 64)),
    ),
    "swin-tiny": BenchModel("swin-tiny", "finetune_swin", description="stock Swin"),
    "deit-tiny": BenchModel("deit-tiny", "finetune_deit", description="DeiT from scratch, no teacher"),
    "deit-tiny-distilled": BenchModel(
        "deit-tiny", "finetune_deit", distilled=True, description="DeiT distilled from resnet-18"
    ),
    "resnet-18": BenchModel("resnet-18", "train_cnn_teacher", description="CNN baseline and teacher"),
}
TEACHER = "resnet-18"


@dataclass(frozen=True)
class Profile:
    """Default sizes of a benchmark run (each overridable on the command line)."""

    train_per_class: int
    val_per_class: int
    test_per_class: int
    minutes_per_model: float
    batch_size: int
    eval_batch_size: int
    dataloader_workers: int
    device: str


PROFILES: dict[str, Profile] = {
    "cpu": Profile(5000, 100, 1000, 15.0, 64, 128, 0, "cpu"),
    # DeepLense archive scale: 30,000 training images per class.
    "gpu": Profile(30000, 1000, 5000, 20.0, 64, 256, 8, "cuda"),
}
# --quick: tiny data, 32 px inputs, one-layer models, a few seconds of training per model (on the device and
# with the data loader workers of --profile).
QUICK = Profile(8, 4, 4, 0.05, 8, 16, 0, "cpu")
QUICK_IMAGE_SIZE = 32
QUICK_MAX_EPOCHS = 100_000  # the budget, not the epoch count, ends every quick run
_TINY_VIT = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "patch_size": 8,
}
QUICK_OVERRIDES: dict[str, dict[str, Any]] = {
    "vit": _TINY_VIT,
    "vit_spt_lsa": _TINY_VIT,
    "deit": _TINY_VIT,
    # no window_size: the factory clamps the preset's window to what the input size allows
    "swin": {"embed_dim": 8, "depths": [1, 1], "num_heads": [1, 2], "patch_size": 4},
    "resnet": {"embedding_size": 8, "hidden_sizes": [8, 16], "depths": [1, 1]},
}
# Settings that must match for --resume to reuse the models of an earlier run.
RESUME_KEYS = (
    "profile",
    "quick",
    "minutes_per_model",
    "sim_preset",
    "sim_seed",
    "train_per_class",
    "val_per_class",
    "test_per_class",
    "train_data",
    "test_data",
    "image_size",
    "random_crop",
    "batch_size",
    "max_epochs",
    "device",
    "extra_args",
)


# ------------------------------------------------------------------------------------------------ budget
class TimeBudget(TimeLimit):
    """The library's :class:`~lens_hf.training.trainer.TimeLimit` (stop ``trainer.train()`` after ``seconds``),
    also measuring the time spent in training steps alone: the wall time between consecutive step ends,
    except that an interval holding an evaluation, a checkpoint save or an epoch boundary counts only from its
    step begin. A run ends at most one step (plus the evaluation and save the Trainer does at the end of the
    interrupted epoch) after the budget.
    """

    def __init__(self, seconds: float):
        super().__init__(seconds)
        self.last_end = self.step_begin = 0.0
        self.interrupted = False
        self.step_seconds = 0.0
        self.total_seconds = 0.0
        self.steps = 0

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201 - Trainer signature
        super().on_train_begin(args, state, control, **kwargs)
        self.last_end = self.step_begin = self.start
        self.interrupted = False

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
        self.step_begin = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
        now = time.perf_counter()
        self.step_seconds += now - (self.step_begin if self.interrupted else self.last_end)
        self.last_end = now
        self.interrupted = False
        self.steps += 1
        return super().on_step_end(args, state, control, **kwargs)

    def _pause(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
        self.interrupted = True

    on_evaluate = on_save = on_epoch_end = _pause

    def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
        self.total_seconds = time.perf_counter() - self.start


# ------------------------------------------------------------------------------------------------ data
def _digest(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:12]


def _marker(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def simulated_split(
    work: Path, preset: str, split: str, per_class: int, seed: int, workers: int | None, progress: bool
) -> Path:
    """The ``save_to_disk`` folder of one simulated split, simulated and saved (``save_dataset``) on first use.

    Images depend only on (preset, class, seed, index): the first ``n`` images per class of a larger set are
    the set of ``n``, so training sets of different sizes are nested.
    """
    folder = work / "data" / f"{preset}-{split}-seed{seed}-{per_class}perclass"
    info = {"preset": preset, "per_class": per_class, "seed": seed, "normalization": "minmax"}
    marker = _marker(folder)
    if marker is None or any(marker.get(k) != v for k, v in info.items()) or split not in marker["splits"]:
        tqdm.write(f"simulating {split}: {per_class} {preset} images per class, seed {seed} -> {folder}")
        dd = build_from_simulation(
            preset, per_class, seed, splits={split: per_class}, workers=workers, progress=progress
        )
        save_dataset(dd, folder, info={**info, "source": "simulated", "command": f"python {SCRIPT}"})
    return folder / split


def _pick_split(dd: DatasetDict, wanted: str, source: str) -> str | None:
    """The split of ``dd`` to use as ``wanted``: that name, else the only split (None: absent)."""
    if wanted in dd:
        return wanted
    if len(dd) == 1 and wanted != "validation":
        return next(iter(dd))
    if wanted == "validation":
        return None
    raise LensHFError(f"{source}: no {wanted!r} split to use (splits: {', '.join(dd)})")


def imported_split(
    work: Path, source: str, wanted: str, per_class: int | None, seed: int, progress: bool
) -> Path | None:
    """A ``save_to_disk`` folder holding split ``wanted`` of the data at ``source`` (any ``load_any`` input),
    reduced to ``per_class`` images per class when given. A split of a ``save_to_disk`` folder is used in
    place; anything else is written once under ``work/data``. None when ``wanted`` is "validation" and the
    source has none."""
    path = Path(source).expanduser().resolve()
    dd = load_any(path, progress=progress)
    if not isinstance(dd, DatasetDict):
        dd = DatasetDict({"test": dd})
    name = _pick_split(dd, wanted, str(path))
    if name is None:
        return None
    ds: Dataset = dd[name]
    if per_class is not None:
        label_names = ds.features["label"].names
        labels = [label_names[i] for i in ds["label"]]
        smallest = min(labels.count(c) for c in set(labels))
        if per_class < smallest:
            keep = stratified_split(labels, {wanted: per_class}, seed)[wanted]
            ds = ds.select(keep)
        elif per_class > smallest:
            raise LensHFError(
                f"{path}: split {name!r} has only {smallest} images of some class, {per_class} asked for"
            )
        else:
            per_class = None
    if per_class is None and (path / "dataset_dict.json").is_file() and (path / name).is_dir():
        return path / name
    folder = work / "data" / f"import-{_digest(path, name, per_class, seed)}-{wanted}"
    if not (folder / "state.json").is_file():
        tmp = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            ds.save_to_disk(str(tmp))
            shutil.rmtree(folder, ignore_errors=True)
            os.rename(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def combine_splits(folder: Path, splits: dict[str, Path]) -> Path:
    """A ``DatasetDict`` folder (what ``datasets.load_from_disk`` and ``lens_hf.data.load_any`` read) whose
    split folders are symbolic links to ``splits`` (copies where links are not allowed). Built in a temporary
    sibling, then renamed into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    old = folder.with_name(f".{folder.name}.old-{uuid.uuid4().hex[:8]}")
    tmp.mkdir()
    try:
        for name, target in splits.items():
            try:
                (tmp / name).symlink_to(target.resolve(), target_is_directory=True)
            except OSError:
                shutil.copytree(target, tmp / name)
        (tmp / "dataset_dict.json").write_text(json.dumps({"splits": list(splits)}) + "\n", encoding="utf-8")
        if folder.exists() or folder.is_symlink():
            os.rename(folder, old)
        os.rename(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return folder


def split_summary(dd: DatasetDict) -> dict[str, Any]:
    """Images per split and per class, and the image size (px)."""
    out: dict[str, Any] = {}
    for name, ds in dd.items():
        names = ds.features["label"].names
        counts = {label: 0 for label in names}
        for i in ds["label"]:
            counts[names[i]] += 1
        out[name] = {"images": len(ds), "per_class": counts}
    first = dd[next(iter(dd))][0]["image"]
    out["image_size"] = list(getattr(first, "size", (None, None)))[::-1]
    return out


def prepare_data(
    args: argparse.Namespace, settings: dict[str, Any], work: Path, run_dir: Path
) -> dict[str, Any]:
    """Simulate or import the train/validation/test splits once (under ``work/data``, shared by every run)
    and link them into ``run_dir/dataset``."""
    progress = not args.quick
    seeds = {split: settings["sim_seed"] + offset for split, offset in SEED_OFFSETS.items()}
    sim = (settings["sim_preset"], args.sim_workers, progress)
    splits: dict[str, Path] = {}
    sources: dict[str, str] = {}
    if args.train_data:
        splits["train"] = imported_split(
            work, args.train_data, "train", args.train_per_class, seeds["train"], progress
        )
        sources["train"] = str(args.train_data)
        validation = imported_split(work, args.train_data, "validation", None, seeds["train"], progress)
        if validation is not None:
            splits["validation"] = validation
            sources["validation"] = str(args.train_data)
        else:
            sources["validation"] = "10% of each class carved from train by lens_hf.data.splits"
    else:
        for split in ("train", "validation"):
            per_class = settings[f"{'val' if split == 'validation' else split}_per_class"]
            splits[split] = simulated_split(work, sim[0], split, per_class, seeds[split], *sim[1:])
            sources[split] = f"simulated {sim[0]}, seed {seeds[split]}"
    if args.test_data:
        splits["test"] = imported_split(
            work, args.test_data, "test", args.test_per_class, seeds["test"], progress
        )
        sources["test"] = str(args.test_data)
    else:
        test_n = settings["test_per_class"]
        splits["test"] = simulated_split(work, sim[0], "test", test_n, seeds["test"], *sim[1:])
        sources["test"] = f"simulated {sim[0]}, seed {seeds['test']}"
    folder = combine_splits(run_dir / "dataset", splits)
    dd = load_any(folder, progress=False)
    assert isinstance(dd, DatasetDict)
    return {"folder": str(folder), "sources": sources, **split_summary(dd)}


# ------------------------------------------------------------------------------------------------ models
def recipe_defaults(recipe: str) -> dict[str, Any]:
    """``DEFAULTS`` of ``recipes/<recipe>.py``: the hyperparameters users get from that recipe."""
    return dict(load_recipe(recipe).DEFAULTS)


def run_order(names: Sequence[str]) -> list[str]:
    """``names`` with resnet-18 moved just before deit-tiny-distilled when it came after it."""
    order = list(dict.fromkeys(names))
    if "deit-tiny-distilled" in order and TEACHER in order:
        if order.index(TEACHER) > order.index("deit-tiny-distilled"):
            order.remove(TEACHER)
            order.insert(order.index("deit-tiny-distilled"), TEACHER)
    return order


def training_defaults(
    entry: BenchModel, settings: dict[str, Any], dataset: str, output_dir: Path, teacher: str | None
) -> dict[str, Any]:
    """Argument values of one model's run: its recipe's defaults, then the benchmark's data and sizes."""
    values = recipe_defaults(entry.recipe)
    if teacher is not None:
        values["teacher"] = teacher  # finetune_deit.py's DistillationArguments
    values.update(
        model_preset=entry.preset,
        dataset=dataset,
        output_dir=str(output_dir),
        image_size=settings["image_size"],
        random_crop=settings["random_crop"],
        per_device_train_batch_size=settings["batch_size"],
        per_device_eval_batch_size=settings["eval_batch_size"],
        dataloader_num_workers=settings["dataloader_workers"],
        save_total_limit=1,
        disable_tqdm=settings["quick"],
    )
    if (
        entry.inputs
        and not settings["quick"]
        and settings["image_size"] is None
        and settings["random_crop"] is None
    ):
        values.update(dict(entry.inputs))
    if settings["dataloader_workers"] > 0:
        values["dataloader_persistent_workers"] = True  # no worker start-up at every epoch
    if settings["max_epochs"] is not None:
        values["num_train_epochs"] = settings["max_epochs"]
    if settings["device"] == "cpu":
        values["use_cpu"] = True
    if settings["quick"]:
        family = factory.MODEL_PRESETS[entry.preset].family
        values.update(
            config_overrides=json.dumps(QUICK_OVERRIDES[family]),
            logging_steps=1,
        )
    return values


def images_seen(steps: int, train_images: int, batch: int) -> int:
    """Training images processed in ``steps`` optimizer steps of ``batch`` images over ``train_images``
    (the last batch of every full epoch is the remainder)."""
    steps_per_epoch = math.ceil(train_images / batch)
    epochs, rest = divmod(steps, steps_per_epoch)
    return epochs * train_images + min(rest * batch, train_images)


def flops_per_image(model_dir: Path, input_size: int) -> tuple[float, float]:
    """(forward, forward + backward) FLOPs per image of the saved model, counted on the CPU."""
    model = factory.load_model(model_dir)
    pixels = torch.zeros(1, int(model.config.num_channels), input_size, input_size)
    return count_flops(model, pixels, torch.zeros(1, dtype=torch.long))


def bench_model(
    name: str, settings: dict[str, Any], dataset: str, run_dir: Path, teacher: str | None, extra: list[str]
) -> dict[str, Any]:
    """Train one model under the budget into ``run_dir/models/<name>`` and evaluate it on the test split;
    the JSON-ready result row."""
    entry = BENCH_MODELS[name]
    output_dir = run_dir / "models" / name
    shutil.rmtree(output_dir, ignore_errors=True)  # a model a killed run left half-trained starts over
    config = run_dir / "models" / f"{name}.json"  # the recipe's arguments for this model, as a --config file
    atomic_write_text(
        config, json.dumps(training_defaults(entry, settings, dataset, output_dir, teacher), indent=2)
    )
    budget = TimeBudget(settings["minutes_per_model"] * 60.0)
    started = time.perf_counter()
    metrics = load_recipe(entry.recipe).main(["--config", str(config), *extra], callbacks=[budget])
    record = json.loads((output_dir / TRAINING_FILE).read_text(encoding="utf-8"))
    training_args = record["training_args"]
    for checkpoint in output_dir.glob("checkpoint-*"):  # the model folder holds the best weights already
        shutil.rmtree(checkpoint, ignore_errors=True)
    forward, train_flops = flops_per_image(output_dir, record["input_size"])
    batch = training_args["per_device_train_batch_size"] * record["world_size"]
    batch *= training_args["gradient_accumulation_steps"]
    seen = images_seen(record["global_step"], record["dataset"]["splits"]["train"], batch)
    row: dict[str, Any] = {
        "model": name,
        "preset": entry.preset,
        "description": entry.description,
        "recipe": entry.recipe,
        "teacher": teacher,
        "status": "ok",
        "parameters": record["num_parameters"],
        "input_size": record["input_size"],
        "gflops_forward_per_image": forward / 1e9,
        "gflops_train_per_image": train_flops / 1e9,
        "learning_rate": training_args["learning_rate"],
        "weight_decay": training_args["weight_decay"],
        "batch_size": batch,
        "max_epochs": training_args["num_train_epochs"],
        "budget_s": budget.seconds,
        "stopped_by": "budget" if budget.stopped else "epochs",
        "train_seconds": budget.total_seconds,
        "train_step_seconds": budget.step_seconds,
        "steps": record["global_step"],
        "epochs": record["epochs"],
        "train_images_seen": seen,
        "train_images_per_s": seen / budget.step_seconds if budget.step_seconds > 0 else None,
        "best_checkpoint": record["best_checkpoint"],
        "best_validation_roc_auc_macro": record["best_metric"],
        "accuracy": metrics["accuracy"],
        "roc_auc_macro": metrics["roc_auc_macro"],
        "roc_auc_micro": metrics["roc_auc_micro"],
        "roc_auc_per_class": metrics["roc_auc_per_class"],
        "confusion_matrix": metrics["confusion_matrix"],
        "num_test_images": metrics["num_samples"],
        "model_dir": str(output_dir),
        "wall_seconds": time.perf_counter() - started,
    }
    for head in ("cls_head", "dist_head"):
        if head in metrics:
            row[head] = metrics[head]
    return row


# ------------------------------------------------------------------------------------------------ report
def _count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 100_000 else f"{n / 1e3:.1f}k"


def _fmt(value: Any, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return format(value, spec)


def render_markdown(report: dict[str, Any]) -> str:
    """The results table, headed by the command that reproduces it."""
    s, m, data = report["settings"], report["machine"], report["data"]
    caps = sorted({r["max_epochs"] for r in report["results"] if "max_epochs" in r})
    epochs = "/".join(f"{c:g}" for c in caps) or "the recipe's"
    hardware = (
        m.get("gpu") or f"{m.get('cpu', '')} ({m['cpu_count']} CPUs, {m['torch_threads']} torch threads)"
    )
    lines = [
        f"# Accuracy under a {s['minutes_per_model']:g}-minute training budget per model ({report['name']})",
        "",
        f"    {report['command']}",
        "",
        f"- date: {report['date']}",
        f"- machine: {hardware}, device {s['device']}; {m['platform']}; 1-min load average "
        f"{_fmt(m.get('load_average_1min'), '.2f')} at start",
        f"- versions: Python {m['python']}, torch {m['torch']}, transformers {report['versions']['transformers']}, "
        f"datasets {report['versions']['datasets']}",
        f"- data: train {data['train']['images']} images ({data['sources']['train']}), validation "
        f"{data['validation']['images'] if 'validation' in data else 'carved from train'} "
        f"({data['sources']['validation']}), test {data['test']['images']} images ({data['sources']['test']}); "
        f"{data['image_size'][0]}x{data['image_size'][1]} px, model input "
        f"{s['random_crop'] or s['image_size'] or data['image_size'][0]} px",
        f"- training: each model's recipe defaults (learning rate, weight decay, step decay, D4 augmentation), "
        f"batch {s['batch_size']}, at most {epochs} epochs, stopped after "
        f"{s['minutes_per_model']:g} min of wall clock (steps + per-epoch validation + saves); the epoch with "
        f"the best validation macro ROC-AUC is kept",
        "- one training seed per model: differences of about 0.01 AUC are within run-to-run noise",
    ]
    if s["quick"]:
        lines.append("- **quick mode**: tiny one-layer models and a few images; the numbers mean nothing")
    lines += [
        "",
        "| model | params | GFLOPs/img | train img/s | epochs | test accuracy | ROC-AUC macro | ROC-AUC micro | "
        + " | ".join(f"AUC {label}" for label in LABELS)
        + " |",
        "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(LABELS),
    ]
    for r in report["results"]:
        if r["status"] != "ok":
            lines.append(f"| {r['model']} | failed: {r['error']} |" + " |" * (6 + len(LABELS)))
            continue
        per_class = " | ".join(_fmt(r["roc_auc_per_class"].get(label), ".4f") for label in LABELS)
        lines.append(
            f"| {r['model']} | {_count(r['parameters'])} | {r['gflops_forward_per_image']:.4g} "
            f"| {_fmt(r['train_images_per_s'], '.1f')} | {r['epochs']:.2f} | {r['accuracy']:.4f} "
            f"| {_fmt(r['roc_auc_macro'], '.4f')} | {_fmt(r['roc_auc_micro'], '.4f')} | {per_class} |"
        )
    lines += [
        "",
        "GFLOPs/img: forward pass of one image (torch FlopCounterMode, eager attention). train img/s: images "
        "seen / time in training steps (validation and checkpoint saves excluded); the distilled DeiT also "
        "runs its teacher. ROC-AUC: one-vs-rest on softmax probabilities of the independent test set.",
    ]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"{report['name']}.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out / f"{report['name']}.md", render_markdown(report))


# ------------------------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Arguments after `--` go to every model's training run (lens_hf.training.args), e.g. "
        "`-- --bf16 true --seed 1`.",
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu", help="default sizes (cpu)")
    parser.add_argument(
        "--name",
        default=None,
        help="results name (default accuracy, accuracy_1k for --train-per-class 1000, accuracy_gpu...; "
        "--quick adds _quick)",
    )
    parser.add_argument(
        "--presets",
        default=",".join(BENCH_MODELS),
        help=f"comma-separated models (default all: {', '.join(BENCH_MODELS)})",
    )
    parser.add_argument("--minutes-per-model", type=float, default=None, help="training wall-clock budget")
    parser.add_argument("--train-per-class", type=int, default=None, help="training images per class")
    parser.add_argument(
        "--val-per-class", type=int, default=None, help="simulated validation images per class"
    )
    parser.add_argument("--test-per-class", type=int, default=None, help="test images per class")
    parser.add_argument("--train-data", default=None, help="existing data folder for train (and validation)")
    parser.add_argument("--test-data", default=None, help="existing data folder for the test set")
    parser.add_argument("--sim-preset", default="model_i", help="simulation preset (model_i)")
    parser.add_argument(
        "--seed", type=int, default=0, help="simulation seed: train S, validation S+1, test S+2"
    )
    parser.add_argument("--image-size", type=int, default=None, help="model input size, px (default: data's)")
    parser.add_argument(
        "--random-crop", type=int, default=None, help="train on random crops of this size, px"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="training batch per device")
    parser.add_argument(
        "--max-epochs", type=float, default=None, help="epoch cap (default: the recipe's, 50)"
    )
    parser.add_argument("--teacher", default=None, help="teacher folder when resnet-18 is not in --presets")
    parser.add_argument(
        "--sim-workers", type=int, default=None, help="simulation processes (default all CPUs)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default torch's)")
    parser.add_argument(
        "--work", type=Path, default=WORK_DIR, help="data and model folders (benchmarks/work)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder (benchmarks/results)")
    parser.add_argument("--resume", action="store_true", help="keep the models an earlier run finished")
    parser.add_argument("--quick", action="store_true", help="tiny data and models, seconds per model")
    return parser


def default_name(settings: dict[str, Any]) -> str:
    """``accuracy``, plus ``_gpu`` for the gpu profile and ``_<n>`` (``_1k``) for a non-default training size."""
    profile, per_class = settings["profile"], settings["train_per_class"]
    name = "accuracy" if profile == "cpu" else f"accuracy_{profile}"
    usual = (QUICK if settings["quick"] else PROFILES[profile]).train_per_class
    if per_class is not None and not settings["train_data"] and per_class != usual:
        name += f"_{per_class // 1000}k" if per_class % 1000 == 0 else f"_{per_class}"
    return name


def resolve_settings(args: argparse.Namespace, extra: list[str]) -> dict[str, Any]:
    profile = PROFILES[args.profile]
    if args.quick:
        profile = dataclasses.replace(
            QUICK, device=profile.device, dataloader_workers=profile.dataloader_workers
        )

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    settings = {
        "profile": args.profile,
        "quick": args.quick,
        "minutes_per_model": pick(args.minutes_per_model, profile.minutes_per_model),
        "sim_preset": args.sim_preset,
        "sim_seed": args.seed,
        "train_per_class": None if args.train_data else pick(args.train_per_class, profile.train_per_class),
        "val_per_class": None if args.train_data else pick(args.val_per_class, profile.val_per_class),
        "test_per_class": None if args.test_data else pick(args.test_per_class, profile.test_per_class),
        "train_data": args.train_data,
        "test_data": args.test_data,
        "image_size": pick(args.image_size, QUICK_IMAGE_SIZE if args.quick else None),
        "random_crop": args.random_crop,
        "batch_size": pick(args.batch_size, profile.batch_size),
        "eval_batch_size": profile.eval_batch_size,
        "dataloader_workers": profile.dataloader_workers,
        "max_epochs": pick(args.max_epochs, QUICK_MAX_EPOCHS if args.quick else None),
        "device": profile.device,
        "extra_args": extra,
    }
    if args.train_data and args.train_per_class is not None:
        settings["train_per_class"] = args.train_per_class
    if args.test_data and args.test_per_class is not None:
        settings["test_per_class"] = args.test_per_class
    for key in ("train_per_class", "val_per_class", "test_per_class", "batch_size"):
        if settings[key] is not None and settings[key] < 1:
            raise LensHFError(f"--{key.replace('_', '-')} must be at least 1, got {settings[key]}")
    if not settings["minutes_per_model"] > 0:
        raise LensHFError(f"--minutes-per-model must be positive, got {settings['minutes_per_model']}")
    return settings


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = build_parser()
    args = parser.parse_args(own)
    try:
        return run(args, own, extra)
    except USER_ERRORS as err:
        parser.exit(2, f"bench_accuracy.py: error: {err}\n")


def run(args: argparse.Namespace, own: list[str], extra: list[str]) -> dict[str, Any]:
    names = [n.strip() for n in args.presets.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCH_MODELS]
    if unknown or not names:
        raise LensHFError(f"unknown models {unknown}; choose from {', '.join(BENCH_MODELS)}")
    names = run_order(names)
    if "deit-tiny-distilled" in names and TEACHER not in names and not args.teacher:
        raise LensHFError("deit-tiny-distilled needs resnet-18 in --presets, or --teacher FOLDER")
    if args.teacher and not Path(args.teacher).is_dir():
        raise LensHFError(f"{args.teacher}: teacher model folder not found")
    settings = resolve_settings(args, extra)
    if settings["device"] == "cuda" and not torch.cuda.is_available():
        raise LensHFError("--profile gpu: no CUDA device visible to torch")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    name = args.name or default_name(settings)
    if args.quick:
        name += "_quick"
    work = args.work.resolve()
    run_dir = work / name
    # Refuse bad pass-through arguments before anything is simulated.
    parser = HfArgumentParser((ModelArguments, DataArguments, LensTrainingArguments))
    parse_args(parser, {"output_dir": str(run_dir / "check")}, extra)

    kept: dict[str, dict[str, Any]] = {}
    json_path = args.out / f"{name}.json"
    if args.resume and json_path.is_file():
        previous = json.loads(json_path.read_text(encoding="utf-8"))
        changed = [k for k in RESUME_KEYS if previous["settings"].get(k) != settings[k]]
        if changed:
            raise LensHFError(
                f"{json_path}: --resume with different settings ({', '.join(changed)}); drop --resume to start over"
            )
        kept = {r["model"]: r for r in previous["results"] if r.get("status") == "ok"}
        kept = {n: r for n, r in kept.items() if n in names and Path(r["model_dir"]).is_dir()}

    device = torch.device(settings["device"])
    machine = machine_info(device)
    machine["load_average_1min"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    command_args = [a for a in own if a != "--resume"] + (["--", *extra] if extra else [])
    report: dict[str, Any] = {
        "benchmark": "accuracy",
        "name": name,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join(["python", SCRIPT, *command_args]),
        "machine": machine,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "datasets": datasets.__version__,
        },
        "settings": settings,
        "models": names,
        "resumed": sorted(kept),
        "data": prepare_data(args, settings, work, run_dir),
        "results": [],
    }
    dataset = report["data"]["folder"]

    def publish() -> None:
        report["results"] = [r for n in names for r in [results.get(n)] if r is not None]
        write_report(report, args.out)

    results: dict[str, dict[str, Any]] = dict(kept)
    failed = []
    for model_name in tqdm(names, desc="models", unit="model"):
        if model_name in results:
            tqdm.write(f"{model_name}: kept from the earlier run (--resume)")
            continue
        teacher = None
        if BENCH_MODELS[model_name].distilled:
            row = results.get(TEACHER)
            teacher = args.teacher or (row["model_dir"] if row and row["status"] == "ok" else None)
            if teacher is None:
                results[model_name] = {"model": model_name, "status": "failed", "error": "no trained teacher"}
                failed.append(model_name)
                publish()
                continue
        try:
            results[model_name] = bench_model(model_name, settings, dataset, run_dir, teacher, extra)
        except (*USER_ERRORS, RuntimeError, ValueError, OSError) as err:
            traceback.print_exc()
            message = " ".join(str(err).split()) or type(err).__name__
            results[model_name] = {"model": model_name, "status": "failed", "error": message[:300]}
            failed.append(model_name)
        publish()
        row = results[model_name]
        if row["status"] == "ok":
            tqdm.write(
                f"{model_name}: accuracy {row['accuracy']:.4f}, macro ROC-AUC {_fmt(row['roc_auc_macro'], '.4f')}, "
                f"{row['epochs']:.2f} epochs in {row['train_seconds']:.0f} s"
            )
    publish()
    print(render_markdown(report))
    print(f"wrote {args.out / (name + '.json')} and {args.out / (name + '.md')}")
    if failed:
        raise LensHFError(f"{len(failed)} model(s) failed: {', '.join(failed)} (see {json_path})")
    return report


__all__ = [
    "BENCH_MODELS",
    "PROFILES",
    "TimeBudget",
    "combine_splits",
    "images_seen",
    "main",
    "render_markdown",
    "run_order",
]


if __name__ == "__main__":
    main()
