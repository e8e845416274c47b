"""The ``train()`` entry point every recipe calls: data -> model -> Trainer -> best weights -> test evaluation.

Files written to ``output_dir`` (main process only): ``checkpoint-*`` folders (by the Trainer), the final
model folder contents (``config.json``, ``model.safetensors``, the image processor and their code),
``metrics.json``, ``roc.png``, ``confusion_matrix.png`` (and ``predictions.csv`` for data read from files),
``learning_curves.png``, ``trainer_state.json`` and ``lens_hf_training.json`` (everything a model card needs).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
import transformers
from datasets import DatasetDict
from transformers import DeiTForImageClassificationWithTeacher, set_seed

from lens_hf.data.dataset import build_from_simulation, load_any, stratified_split
from lens_hf.errors import USER_ERRORS, LensHFError
from lens_hf.labels import LABELS
from lens_hf.metrics import softmax, write_evaluation
from lens_hf.models import factory
from lens_hf.plots import plot_learning_curves
from lens_hf.processing.file_io import NORMALIZATIONS
from lens_hf.processing.image_processing_lens import LensImageProcessor
from lens_hf.processing.saving import save_model_folder
from lens_hf.training.args import DataArguments, LensTrainingArguments, ModelArguments, parse_args
from lens_hf.training.augment import AUGMENTATIONS, BatchAugment, make_transforms
from lens_hf.training.trainer import DistillationTrainer, LensTrainer, lens_metrics, restore_weights
from lens_hf.utils import atomic_write_text

logger = logging.getLogger(__name__)

TRAINING_FILE = "lens_hf_training.json"
LEARNING_CURVES = "learning_curves.png"
SPLITS = ("train", "validation", "test")
# Seed offsets of the simulated splits, so that no image is shared between them.
SIM_SEED_OFFSETS = {"train": 0, "validation": 1, "test": 2}
_TRUE = {"true", "last", "1", "yes"}
_FALSE = {"false", "none", "0", "no", ""}


# ------------------------------------------------------------------------------------------------ data
def _simulate(data_args: DataArguments, progress: bool) -> tuple[DatasetDict, dict[str, Any]]:
    """Simulate train/validation/test with seeds ``sim_seed + 0/1/2``."""
    counts = {
        "train": data_args.train_per_class,
        "validation": data_args.eval_per_class,
        "test": data_args.test_per_class,
    }
    out = {}
    for split, per_class in counts.items():
        if per_class < 1:
            raise LensHFError(f"{split} needs at least 1 simulated image per class, got {per_class}")
        seed = data_args.sim_seed + SIM_SEED_OFFSETS[split]
        dd = build_from_simulation(
            data_args.preset,
            per_class,
            seed,
            splits={"train": per_class},
            workers=data_args.sim_workers,
            normalize=data_args.normalization,
            progress=progress,
        )
        out[split] = dd["train"]
    description = {
        "source": "simulated",
        "preset": data_args.preset,
        "per_class": counts,
        "seeds": {k: data_args.sim_seed + v for k, v in SIM_SEED_OFFSETS.items()},
    }
    return DatasetDict(out), description


def _complete_splits(dd: DatasetDict, seed: int, source: str) -> DatasetDict:
    """Make sure there are train, validation and test splits: a single split is divided 80/10/10 per class,
    a missing validation split is carved from train (10 % per class), a missing test split reuses validation."""

    def carve(ds: datasets.Dataset, spec: dict[str, float]) -> dict[str, datasets.Dataset]:
        names = ds.features["label"].names
        assignment = stratified_split([names[i] for i in ds["label"]], spec, seed)
        return {name: ds.select(sorted(idx)) for name, idx in assignment.items()}

    splits = dict(dd)
    if "train" not in splits:
        if len(splits) != 1:
            raise LensHFError(f"{source}: no train split (splits: {', '.join(splits)})")
        splits = carve(next(iter(splits.values())), {"train": 0.8, "validation": 0.1, "test": 0.1})
        logger.warning(
            "%s: one unlabelled split; divided it 80/10/10 per class into train/validation/test", source
        )
    if "validation" not in splits:
        parts = carve(splits["train"], {"train": 0.9, "validation": 0.1})
        splits.update(parts)
        logger.warning("%s: no validation split; using 10%% of train per class", source)
    if "test" not in splits:
        splits["test"] = splits["validation"]
        logger.warning("%s: no test split; the final evaluation uses the validation split", source)
    return DatasetDict({k: splits[k] for k in SPLITS})


def load_splits(
    data_args: DataArguments, seed: int, progress: bool = True
) -> tuple[DatasetDict, dict[str, Any]]:
    """The train/validation/test ``DatasetDict`` of the run and a JSON-ready description of it."""
    if data_args.dataset:
        dd = load_any(data_args.dataset, normalize=data_args.normalization, progress=progress)
        if not isinstance(dd, DatasetDict):
            dd = DatasetDict({"test": dd})
        dd = _complete_splits(dd, seed, data_args.dataset)
        description: dict[str, Any] = {"source": str(data_args.dataset)}
    else:
        dd, description = _simulate(data_args, progress)
    limits = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_test_samples,
    }
    for split, limit in limits.items():
        if limit is not None and limit < len(dd[split]):
            dd[split] = dd[split].shuffle(seed=seed).select(range(limit))
    for split, ds in dd.items():
        if len(ds) == 0:
            raise LensHFError(f"the {split} split is empty")
    first = dd["train"][0]["image"]
    width, height = (
        first.size if hasattr(first, "size") and not isinstance(first, np.ndarray) else np.shape(first)[::-1]
    )
    description.update(
        {
            "splits": {k: len(v) for k, v in dd.items()},
            "image_size": [int(height), int(width)],
            "normalization": data_args.normalization,
            "augment": data_args.augment,
            "random_crop": data_args.random_crop,
            "center_crop": data_args.center_crop,
        }
    )
    return dd, description


# ------------------------------------------------------------------------------------------------ model
def build_processor(resize: tuple[int, int], crop: int | None, normalization: str, num_channels: int):
    """The image processor saved with the model: resize to ``resize`` (px), centre-crop to ``crop``."""
    return LensImageProcessor(
        size={"height": resize[0], "width": resize[1]},
        do_resize=True,
        crop_size=None if crop is None else {"height": crop, "width": crop},
        do_center_crop=crop is not None,
        normalization=normalization,
        num_channels=num_channels,
    )


def config_overrides(value: str | dict | None) -> dict[str, Any]:
    """``--config_overrides`` as a dict: a JSON object string, or a mapping from a config file."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as err:
        raise LensHFError(f"--config_overrides is not valid JSON ({err.msg}): {value}") from None
    if not isinstance(parsed, dict):
        raise LensHFError(f"--config_overrides must be a JSON object of config fields, got {value}")
    return parsed


def build_model(model_args: ModelArguments, image_size: int) -> torch.nn.Module:
    """A preset built from scratch, or a checkpoint prepared for fine-tuning (1 channel, 3-class head)."""
    overrides = config_overrides(model_args.config_overrides)
    if model_args.model_name_or_path:
        if overrides:
            raise LensHFError(
                "--config_overrides applies to --model_preset, not to a --model_name_or_path checkpoint"
            )
        return factory.load_for_finetuning(
            model_args.model_name_or_path, image_size=image_size, num_channels=1
        )
    return factory.create_model(model_args.model_preset, image_size=image_size, num_channels=1, **overrides)


def checkpoint_is_complete(folder: Path) -> bool:
    """True when a Trainer checkpoint folder was fully written. The Trainer writes ``trainer_state.json``
    after the weights, optimizer, scheduler and RNG states (whatever the backend), so it must exist, parse
    and name the folder's step."""
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(state, dict) and str(state.get("global_step")) == folder.name.rpartition("-")[2]


def _resolve_resume(value: str | bool | None, output_dir: str) -> str | None:
    """``True``/``"last"`` -> the newest *complete* ``checkpoint-<step>`` in ``output_dir`` (None when there is
    none yet); a folder path is checked and returned.

    A job killed while saving leaves a newer, half-written checkpoint; it is renamed to
    ``incomplete-checkpoint-<step>`` (kept for inspection; the Trainer neither resumes from nor rotates it) and
    training resumes from the newest complete one.
    """
    if value is None or value is False:
        return None
    text = str(value).strip()
    if text.lower() in _FALSE:
        return None
    if text.lower() not in _TRUE:
        if not os.path.isdir(text):
            raise LensHFError(f"{text}: checkpoint folder to resume from not found")
        if not checkpoint_is_complete(Path(text)):
            raise LensHFError(
                f"{text}: incomplete checkpoint (no valid trainer_state.json); cannot resume from it"
            )
        return text
    out = Path(output_dir)
    found = (
        [p for p in out.iterdir() if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
        if out.is_dir()
        else []
    )
    for folder in sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True):
        if checkpoint_is_complete(folder):
            return str(folder)
        if int(os.environ.get("RANK", "0")) != 0:
            continue  # every process skips it; only the main one moves it aside
        aside = folder.with_name(f"incomplete-{folder.name}")
        n = 1
        while aside.exists():
            n += 1
            aside = folder.with_name(f"incomplete{n}-{folder.name}")
        os.replace(folder, aside)
        print(
            f"{folder} was not completely written (interrupted while saving); moved to {aside.name}",
            file=sys.stderr,
        )
    logger.warning("no checkpoint in %s to resume from: training from the start", output_dir)
    return None


def install_model_folder(model: torch.nn.Module, processor: Any, output_dir: Path) -> Path:
    """Write the final model folder (model, processor, their code) into ``output_dir``, keeping what else is
    there (checkpoints, logs). The folder is built and checked in a temporary sibling by
    :func:`lens_hf.processing.saving.save_model_folder`, then each file is renamed into place."""
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.model-", dir=output_dir.parent))
    try:
        built = save_model_folder(model, processor, staging / "model")
        for src in sorted(p for p in built.rglob("*") if p.is_file()):
            target = output_dir / src.relative_to(built)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output_dir


def _final_model(trainer: LensTrainer, output_dir: Path) -> torch.nn.Module | None:
    """The trained model as a plain ``PreTrainedModel`` on the main process (None elsewhere).

    Under DeepSpeed or FSDP the parameters are sharded: ``trainer.save_model`` (run by every process)
    gathers them into a temporary folder, which the main process loads back.
    """
    if not (trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled):
        return trainer.model
    export = output_dir / ".final-weights"
    trainer.save_model(str(export))
    model = factory.load_model(export) if trainer.is_world_process_zero() else None
    if trainer.is_world_process_zero():
        shutil.rmtree(export, ignore_errors=True)
    return model


def device_name(device: torch.device) -> str:
    """What the training ran on, for the record and the model card: the GPU's name, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} CPUs"
    except OSError:
        pass
    return platform.processor() or platform.machine() or device.type


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except TypeError:
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        return str(value)


# ------------------------------------------------------------------------------------------------ train
def check_args(model_args: ModelArguments, data_args: DataArguments) -> None:
    """Refuse bad option values before any data is simulated or read (LensHFError, one line)."""
    if not model_args.model_name_or_path and model_args.model_preset not in factory.MODEL_PRESETS:
        raise LensHFError(
            f"unknown model preset {model_args.model_preset!r}; choose one of: {', '.join(factory.list_presets())}"
        )
    if data_args.augment not in AUGMENTATIONS:
        raise LensHFError(
            f"unknown augmentation {data_args.augment!r} (choose from {', '.join(AUGMENTATIONS)})"
        )
    if data_args.normalization not in NORMALIZATIONS:
        raise LensHFError(
            f"unknown normalization {data_args.normalization!r} (choose from {', '.join(NORMALIZATIONS)})"
        )
    if not 0.0 <= model_args.distillation_alpha <= 1.0:
        raise LensHFError(f"distillation_alpha must be in [0, 1], got {model_args.distillation_alpha}")
    if model_args.teacher and not Path(model_args.teacher).is_dir():
        raise LensHFError(f"{model_args.teacher}: teacher model folder not found")
    if data_args.random_crop is not None and data_args.center_crop is not None:
        raise LensHFError("give --random_crop or --center_crop, not both")
    sizes = (
        ("image_size", model_args.image_size),
        ("random_crop", data_args.random_crop),
        ("center_crop", data_args.center_crop),
    )
    for name, value in sizes:
        if value is not None and value < 8:
            raise LensHFError(f"--{name} must be at least 8 px, got {value}")
    config_overrides(model_args.config_overrides)


def train(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: LensTrainingArguments,
    *,
    recipe: str | None = None,
    callbacks: list | None = None,
) -> dict[str, Any]:
    """Train, restore the best checkpoint, evaluate on the test split and write the model folder.

    Returns, on the main process, the test metrics written to ``metrics.json``
    (:func:`lens_hf.metrics.write_evaluation`: accuracy, ROC-AUC per class / macro / micro, confusion matrix,
    plus ``split`` and ``model``; for DeiT also ``cls_head`` and ``dist_head``, the flattened metrics of the
    class-token and distillation-token heads); an empty dict on the other processes.
    """
    check_args(model_args, data_args)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    log_level = training_args.get_process_log_level()
    logger.setLevel(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    datasets.utils.logging.set_verbosity(max(log_level, logging.WARNING))
    main = training_args.local_process_index == 0
    output_dir = Path(training_args.output_dir)

    set_seed(training_args.seed)
    dd, data_description = load_splits(data_args, training_args.seed, progress=main)
    data_size = tuple(data_description["image_size"])
    resize = (model_args.image_size, model_args.image_size) if model_args.image_size else data_size
    crop = data_args.random_crop or data_args.center_crop
    crop_name = "random_crop" if data_args.random_crop else "center_crop"
    if crop is not None and crop > min(resize):
        raise LensHFError(f"{crop_name} {crop} px is larger than the {resize[0]}x{resize[1]} px images")
    if crop is None and resize[0] != resize[1]:
        raise LensHFError(f"images of {resize[0]}x{resize[1]} px are not square: give --image_size")
    input_size = crop or resize[0]

    set_seed(training_args.seed)
    model = build_model(model_args, input_size)
    num_channels = int(getattr(model.config, "num_channels", 1) or 1)
    processor = build_processor(resize, crop, data_args.normalization, num_channels)
    random = data_args.center_crop is None
    train_tf, eval_tf = make_transforms(processor, random_crop=random)
    augmentation = BatchAugment.for_processor(processor, data_args.augment, random_crop=random)
    train_ds = dd["train"].with_transform(train_tf)
    eval_ds = dd["validation"].with_transform(eval_tf)
    test_ds = dd["test"].with_transform(eval_tf)

    distill = isinstance(model, DeiTForImageClassificationWithTeacher)
    teacher = None
    if model_args.teacher:
        if not distill:
            raise LensHFError(
                f"--teacher needs a DeiT student with a distillation token, got {type(model).__name__}"
            )
        teacher = factory.load_model(model_args.teacher)
    kwargs: dict[str, Any] = dict(
        model=model,
        args=training_args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        processing_class=processor,
        callbacks=callbacks,
        augmentation=augmentation,
    )
    trainer = (
        DistillationTrainer(teacher=teacher, alpha=model_args.distillation_alpha, **kwargs)
        if distill
        else LensTrainer(**kwargs)
    )

    resume = _resolve_resume(training_args.resume_from_checkpoint, str(output_dir))
    train_result = trainer.train(resume_from_checkpoint=resume)

    restored_from = None
    best = trainer.state.best_model_checkpoint
    if training_args.load_best_model_at_end and best and trainer.restorable(best):
        # The stock loader skips renamed ViT/DeiT/Swin tensors; from_pretrained maps them back.
        restore_weights(trainer.model, best)
        restored_from = os.path.basename(best)

    test = trainer.predict(test_ds, metric_key_prefix="test")
    preds = test.predictions
    main_logits = preds[0] if isinstance(preds, tuple) else preds
    y_true = np.asarray(test.label_ids)

    final_model = _final_model(trainer, output_dir)
    result: dict[str, Any] = {}
    if trainer.is_world_process_zero():
        install_model_folder(final_model, processor, output_dir)
        trainer.save_state()

        extra: dict[str, Any] = {"split": "test", "model": type(final_model).__name__}
        if distill:
            extra["cls_head"] = lens_metrics(preds[1], y_true)
            extra["dist_head"] = lens_metrics(preds[2], y_true)
        paths = None
        column = dd["test"]["path"] if "path" in dd["test"].column_names else None
        if column is not None and all(column) and len(column) == len(y_true):
            paths = column
        result = write_evaluation(
            output_dir, y_true, softmax(main_logits), labels=LABELS, paths=paths, extra=extra
        )

        history = trainer.state.log_history
        if any("loss" in e or any(k.startswith("eval_") for k in e) for e in history):
            plot_learning_curves(history, output_dir / LEARNING_CURVES)

        metrics = train_result.metrics
        record = {
            "recipe": recipe or Path(sys.argv[0]).stem,
            "command": shlex.join([Path(sys.executable).name, *sys.argv]),
            "model_args": dataclasses.asdict(model_args),
            "data_args": dataclasses.asdict(data_args),
            "training_args": _jsonable(training_args.to_dict()),
            "dataset": data_description,
            "model_class": type(final_model).__name__,
            "num_parameters": factory.count_parameters(final_model),
            "input_size": input_size,
            "teacher": model_args.teacher,
            "world_size": training_args.world_size,
            "device": str(training_args.device),
            "device_name": device_name(training_args.device),
            "global_step": trainer.state.global_step,
            "epochs": trainer.state.epoch,
            "train_runtime_s": metrics.get("train_runtime"),
            "train_images_per_second": metrics.get("train_samples_per_second"),
            "train_loss": metrics.get("train_loss"),
            "resumed_from": os.path.basename(resume) if resume else None,
            "stopped_by_time_limit": bool(trainer.time_limit and trainer.time_limit.stopped),
            "best_checkpoint": restored_from,
            "best_metric": trainer.state.best_metric,
            "test_metrics": {k: v for k, v in result.items() if k not in ("cls_head", "dist_head")},
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "datasets": datasets.__version__,
            },
        }
        atomic_write_text(output_dir / TRAINING_FILE, json.dumps(_jsonable(record), indent=2) + "\n")
        logger.info(
            "test metrics: accuracy %.4f, macro ROC-AUC %s", result["accuracy"], result["roc_auc_macro"]
        )
    trainer.accelerator.wait_for_everyone()
    return result


def run_recipe(recipe: str, defaults: dict[str, Any], argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line entry point of a recipe: parse arguments over ``defaults`` and :func:`train`.

    User errors (bad arguments, unreadable data) end the process with a one-line message and exit status 2.
    """
    try:
        model_args, data_args, training_args = parse_args(defaults, argv)
        return train(model_args, data_args, training_args, recipe=recipe)
    except USER_ERRORS as err:
        print(f"{recipe}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
