"""The steps of a training recipe, one call each: set up logging, load the splits (for regression, keep the rows
with a target and standardise it), build the image processor and the model, and, after ``trainer.train()`` and
``trainer.predict()``, :func:`finish_run`.

:func:`finish_run` writes, on the main process, into ``output_dir`` next to the Trainer's ``checkpoint-*``
folders: the model folder (``config.json``, ``model.safetensors``, the image processor and their code),
``metrics.json``, ``roc.png`` and ``confusion_matrix.png`` (a regression model: ``regression.png``),
``predictions.csv`` (for data read from files), ``learning_curves.png``, ``trainer_state.json``,
``lens_hf_training.json`` (the run record) and ``README.md`` (the model card).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
import transformers
from datasets import DatasetDict
from transformers.trainer_utils import PredictionOutput, TrainOutput

from lens_hf.data.dataset import MARKER_FILE, load_any, split_channels
from lens_hf.data.splits import SIM_SEED_OFFSETS, complete_splits, limit_splits, simulate_splits
from lens_hf.errors import USER_ERRORS, LensHFError
from lens_hf.labels import LABELS
from lens_hf.metrics import softmax, write_evaluation, write_regression_evaluation
from lens_hf.models import factory
from lens_hf.plots import plot_learning_curves
from lens_hf.processing.checks import check_normalization
from lens_hf.processing.file_io import (
    CHANNEL_COLUMNS,
    NORMALIZATIONS,
    NOT_IDEMPOTENT,
    STRETCHES,
    normalization_channels,
    normalize_image,
)
from lens_hf.processing.image_processing_lens import LensImageProcessor
from lens_hf.processing.saving import install_model_folder
from lens_hf.processing.targets import (
    TARGET_TRANSFORMS,
    TASKS,
    TargetScaling,
    apply_transform,
    default_transform,
    is_regression,
)
from lens_hf.redact import public_path
from lens_hf.training.args import (
    DataArguments,
    DistillationArguments,
    LensTrainingArguments,
    ModelArguments,
    saved_processor,
)
from lens_hf.training.augment import AUGMENTATIONS, TARGET_COLUMN, as_training_array
from lens_hf.training.record import TRAINING_FILE, training_record, write_json, write_trainer_state
from lens_hf.training.trainer import LensTrainer, check_distillation, lens_metrics

logger = logging.getLogger(__name__)

LEARNING_CURVES = "learning_curves.png"


# ------------------------------------------------------------------------------------------------ set-up
@contextlib.contextmanager
def exit_on_user_error(program: str) -> Iterator[None]:
    """Around a recipe's ``main()`` run as a script: a user error (bad option, unreadable data) ends the process
    with one line ``<program>: error: <message>`` on stderr and exit status 2 instead of a traceback."""
    try:
        yield
    except USER_ERRORS as err:
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"{Path(program).name}: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None


def single_process_warning(world_size: int, environ: Mapping[str, str] | None = None) -> str | None:
    """Why this run looks like it was meant to have several processes while its world size is 1, or None.

    ``accelerate launch --num_processes N --cpu`` (N > 1) prepares a rendezvous (``MASTER_ADDR``) but starts a
    single plain process (no ``WORLD_SIZE``); ``ACCELERATE_NUM_PROCESSES`` or ``LOCAL_WORLD_SIZE`` above 1 say
    the same.
    """
    env = os.environ if environ is None else environ
    if world_size > 1:
        return None
    for name in ("ACCELERATE_NUM_PROCESSES", "LOCAL_WORLD_SIZE", "WORLD_SIZE"):
        value = env.get(name, "").strip()
        if value.isdigit() and int(value) > 1:
            return f"{name}={value} but this run has world size 1: it trains in a single process"
    if "ACCELERATE_USE_CPU" in env and "MASTER_ADDR" in env and "WORLD_SIZE" not in env:
        return (
            "accelerate was asked for several processes but started only this one (`accelerate launch "
            "--num_processes N --cpu` runs a single process): it trains in a single process; for N CPU "
            "processes use `torchrun --nproc_per_node N` or `accelerate launch --config_file "
            "recipes/configs/accelerate_multi_cpu.yaml`"
        )
    return None


def setup_logging(training_args: LensTrainingArguments) -> None:
    """Log at the Trainer's level for this process (info on the main one), and warn when a launcher was asked
    for more processes than the run has."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    log_level = training_args.get_process_log_level()
    logging.getLogger("lens_hf").setLevel(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    datasets.utils.logging.set_verbosity(max(log_level, logging.WARNING))
    warning = single_process_warning(training_args.world_size)
    if warning:
        logger.warning(warning)


def check_args(model_args: ModelArguments, data_args: DataArguments) -> None:
    """Refuse bad option values before any data is simulated or read (LensHFError, one line)."""
    if not model_args.model_name_or_path and model_args.model_preset not in factory.MODEL_PRESETS:
        raise LensHFError(
            f"unknown model preset {model_args.model_preset!r}; choose one of: {', '.join(factory.list_presets())}"
        )
    if model_args.task not in TASKS:
        raise LensHFError(f"unknown task {model_args.task!r} (choose from {', '.join(TASKS)})")
    if model_args.task == "regression" and not data_args.target:
        raise LensHFError(
            "--task regression needs --target COLUMN (a numeric metadata column, e.g. axion_mass)"
        )
    if data_args.target_transform is not None and data_args.target_transform not in TARGET_TRANSFORMS:
        raise LensHFError(
            f"unknown target_transform {data_args.target_transform!r} (choose from {', '.join(TARGET_TRANSFORMS)})"
        )
    if data_args.augment not in AUGMENTATIONS:
        raise LensHFError(
            f"unknown augmentation {data_args.augment!r} (choose from {', '.join(AUGMENTATIONS)})"
        )
    if data_args.normalization not in NORMALIZATIONS:
        raise LensHFError(
            f"unknown normalization {data_args.normalization!r} (choose from {', '.join(NORMALIZATIONS)})"
        )
    if data_args.stretch not in STRETCHES:
        raise LensHFError(f"unknown stretch {data_args.stretch!r} (choose from {', '.join(STRETCHES)})")
    if data_args.stretch != "none" and data_args.normalization != "minmax":
        raise LensHFError(f"--stretch {data_args.stretch} needs --normalization minmax")
    if not 0 < data_args.asinh_softening <= 1:
        raise LensHFError(f"--asinh_softening must be in (0, 1], got {data_args.asinh_softening}")
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


# ------------------------------------------------------------------------------------------------ data
def _image_size(image: Any) -> tuple[int, int]:
    """(height, width) in px of a dataset cell (PIL image or array)."""
    if hasattr(image, "size") and not isinstance(image, np.ndarray):
        width, height = image.size
        return int(height), int(width)
    height, width = np.shape(image)[-2:]
    return int(height), int(width)


def recorded_normalization(folder: str | Path) -> str | None:
    """The normalisation a saved lens_hf dataset records for its stored images (None when it records none)."""
    marker = Path(folder) / MARKER_FILE
    try:
        value = json.loads(marker.read_text(encoding="utf-8")).get("normalization")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _normalize_rows(batch: dict[str, list[Any]], method: str) -> dict[str, list[Any]]:
    names = batch.get("path") or [None] * len(batch["image"])
    images = [
        normalize_image(as_training_array(image), method, name or "a stored image")
        for image, name in zip(batch["image"], names)
    ]
    return split_channels(images, method)


def normalize_stored(dd: DatasetDict, method: str, workers: int | None = None) -> DatasetDict:
    """``dd`` with every stored image normalised by ``method`` (for the costly ones of
    :data:`~lens_hf.processing.file_io.NOT_IDEMPOTENT`, which the training transforms do not apply), in
    ``workers`` processes (default: all cores). The further channels of a multi-channel method become their own
    columns (:data:`~lens_hf.processing.file_io.CHANNEL_COLUMNS`)."""
    num_proc = _resolve_num_proc(workers, sum(len(ds) for ds in dd.values()))
    extra = CHANNEL_COLUMNS.get(method, ("image",))[1:]
    return DatasetDict(
        {
            name: ds.map(
                _normalize_rows,
                batched=True,
                batch_size=16,
                fn_kwargs={"method": method},
                num_proc=num_proc,
                features=datasets.Features({**ds.features, **{column: datasets.Image() for column in extra}}),
                desc=f"{method} ({name})",
            )
            for name, ds in dd.items()
        }
    )


def _resolve_num_proc(workers: int | None, n: int) -> int | None:
    """Processes for ``n`` rows in batches of 16 (the simulator's worker count rule); None for one."""
    from lens_hf.data.simulate import _resolve_workers

    count = _resolve_workers(workers, max(1, n // 16))
    return None if count == 1 else count


def load_splits(
    data_args: DataArguments, seed: int, progress: bool = True, labels: Sequence[str] = LABELS
) -> tuple[DatasetDict, dict[str, Any]]:
    """The run's ``DatasetDict`` (``train``, ``validation``, and ``test`` when the data have one) and a
    publishable description of it for the run record.

    With ``--dataset`` the folder's splits are completed by :func:`lens_hf.data.splits.complete_splits`;
    without, each split is simulated with its own seed (:func:`lens_hf.data.splits.simulate_splits`), for the
    classes in ``labels`` (default: all three; a regression simulates only the classes that carry its target).
    """
    if data_args.dataset:
        # A saved lens_hf dataset records how its stored images were normalised; the processor saved with the
        # model must apply the same normalisation to new images.
        recorded = recorded_normalization(data_args.dataset)
        check_normalization(recorded, data_args.normalization)
        dd = load_any(data_args.dataset, normalize=data_args.normalization, progress=progress)
        if not isinstance(dd, DatasetDict):
            dd = DatasetDict({"test": dd})
        if data_args.normalization in NOT_IDEMPOTENT and recorded != data_args.normalization:
            from lens_hf.inference import is_saved_dataset

            if is_saved_dataset(Path(data_args.dataset)):  # stored raw: normalise once here, not every epoch
                dd = normalize_stored(dd, data_args.normalization, data_args.sim_workers)
        dd = complete_splits(dd, seed, data_args.dataset)
        info: dict[str, Any] = {"source": public_path(data_args.dataset)}
    else:
        per_class = {
            "train": data_args.train_per_class,
            "validation": data_args.eval_per_class,
            "test": data_args.test_per_class,
        }
        dd = simulate_splits(
            data_args.preset,
            per_class,
            data_args.sim_seed,
            workers=data_args.sim_workers,
            normalize=data_args.normalization,
            progress=progress,
            labels=labels,
        )
        info = {
            "source": "simulated",
            "preset": data_args.preset,
            "classes": list(labels),
            "per_class": {split: per_class[split] for split in dd},
            "seeds": {split: data_args.sim_seed + SIM_SEED_OFFSETS[split] for split in dd},
        }
    limits = {
        "train": data_args.max_train_samples,
        "validation": data_args.max_eval_samples,
        "test": data_args.max_test_samples,
    }
    dd = limit_splits(dd, limits, seed)
    info.update(
        {
            "splits": {name: len(ds) for name, ds in dd.items()},
            "image_size": list(_image_size(dd["train"][0]["image"])),
            "normalization": data_args.normalization,
            "stretch": data_args.stretch,
            "augment": data_args.augment,
            "random_crop": data_args.random_crop,
            "center_crop": data_args.center_crop,
        }
    )
    return dd, info


def regression_targets(
    splits: DatasetDict, data_args: DataArguments
) -> tuple[DatasetDict, TargetScaling, dict[str, Any]]:
    """The splits of a regression run, the target's scaling and a publishable description of both.

    ``data_args.target`` must be a numeric column of the data (else :class:`LensHFError`, one line). Each split
    keeps only its rows whose target has a finite transform (``--target_transform``, default per target:
    log10 for the masses, so for ``axion_mass`` the vortex rows), the number skipped is logged, and the
    standardised targets (mean and std of the transformed training targets) are added as the
    ``regression_target`` column that the dataset transforms turn into float ``labels``.
    """
    target = str(data_args.target)
    transform = data_args.target_transform or default_transform(target)
    source = public_path(data_args.dataset) if data_args.dataset else "the simulated data"
    features = splits["train"].features
    if target not in features:
        numeric = [name for name, f in features.items() if _is_numeric(f)]
        raise LensHFError(
            f"{source}: no column {target!r} to regress on (numeric columns: {', '.join(numeric)})"
        )
    if not _is_numeric(features[target]):
        raise LensHFError(
            f"{source}: column {target!r} is not numeric ({features[target]}); cannot regress on it"
        )
    kept: dict[str, Any] = {}
    values: dict[str, np.ndarray] = {}
    skipped: dict[str, int] = {}
    for name, split in splits.items():
        raw = np.array([np.nan if v is None else v for v in split[target]], dtype=np.float64)
        keep = np.flatnonzero(np.isfinite(apply_transform(raw, transform)))
        skipped[name] = int(len(raw) - len(keep))
        if skipped[name]:
            logger.info(
                "%s split: skipped %d of %d rows without a finite %s %s",
                name,
                skipped[name],
                len(raw),
                transform,
                target,
            )
        if len(keep) == 0:
            raise LensHFError(f"{source}: the {name} split has no row with a finite {transform} {target}")
        kept[name], values[name] = split.select(keep), raw[keep]
    scaling = TargetScaling.fit(target, transform, values["train"])
    out = DatasetDict(
        {
            name: split.add_column(TARGET_COLUMN, scaling.scale(values[name]).tolist())
            for name, split in kept.items()
        }
    )
    info = {**scaling.to_dict(), "skipped": skipped, "splits": {name: len(ds) for name, ds in out.items()}}
    return out, scaling, info


def _is_numeric(feature: Any) -> bool:
    dtype = getattr(feature, "dtype", "")
    return isinstance(feature, datasets.Value) and dtype.startswith(("int", "uint", "float"))


# ------------------------------------------------------------------------------------------------ model
def build_processor(
    model_args: ModelArguments,
    data_args: DataArguments,
    image_size: Sequence[int],
    train_split: datasets.Dataset | None = None,
) -> LensImageProcessor:
    """The image processor saved with the model, for data of ``image_size`` (height, width) px: resize to
    ``--image_size`` (default: the data's size), centre-crop to ``--random_crop``/``--center_crop``, per-image
    ``--normalization``, one channel (or the channels of a multi-channel normalisation)."""
    resize = (model_args.image_size,) * 2 if model_args.image_size else tuple(int(v) for v in image_size)
    crop = data_args.random_crop or data_args.center_crop
    if crop is not None and crop > min(resize):
        name = "random_crop" if data_args.random_crop else "center_crop"
        raise LensHFError(f"{name} {crop} px is larger than the {resize[0]}x{resize[1]} px images")
    if crop is None and resize[0] != resize[1]:
        raise LensHFError(f"images of {resize[0]}x{resize[1]} px are not square: give --image_size")
    processor = LensImageProcessor(
        size={"height": resize[0], "width": resize[1]},
        do_resize=True,
        crop_size=None if crop is None else {"height": crop, "width": crop},
        do_center_crop=crop is not None,
        normalization=data_args.normalization,
        stretch=data_args.stretch,
        asinh_softening=data_args.asinh_softening,
        num_channels=normalization_channels(data_args.normalization),
    )
    kept = _checkpoint_statistics(model_args.model_name_or_path, processor) if data_args.standardize else None
    if kept is not None:
        # Fine-tuning a standardised checkpoint on its own inputs: keep the statistics it was trained with.
        processor.image_mean, processor.image_std = [kept[0]], [kept[1]]
    elif data_args.standardize:
        if processor.num_channels > 1:
            raise LensHFError(
                f"--standardize is for one-channel inputs; --normalization {data_args.normalization} gives "
                f"{processor.num_channels} channels already in units of the noise"
            )
        if train_split is None:
            raise LensHFError("--standardize needs the training split to measure the pixel mean and spread")
        mean, std = pixel_statistics(processor, train_split)
        processor.image_mean, processor.image_std = [mean], [std]
    return processor


def _checkpoint_statistics(
    name_or_path: str | None, processor: LensImageProcessor
) -> tuple[float, float] | None:
    """(mean, std) saved with a local checkpoint's image processor when it makes the same inputs as
    ``processor`` (size, crop, normalisation, stretch); None otherwise."""
    saved = saved_processor(name_or_path)
    if saved is None or saved.image_mean is None or saved.image_std is None:
        return None
    theirs, ours = saved.to_dict(), processor.to_dict()
    keys = ["size", "do_center_crop", "normalization", "stretch", "asinh_softening"]
    keys += ["crop_size"] if processor.do_center_crop else []
    if any(theirs.get(key) != ours.get(key) for key in keys):
        return None
    mean, std = float(saved.image_mean[0]), float(saved.image_std[0])
    return (mean, std) if math.isfinite(mean) and math.isfinite(std) and std > 0 else None


def pixel_statistics(
    processor: LensImageProcessor, split: datasets.Dataset, max_images: int = 1000
) -> tuple[float, float]:
    """Mean and standard deviation of the model inputs ``processor`` makes of (up to ``max_images``, evenly
    spaced) images of ``split``: the dataset statistics a standardising processor subtracts and divides by."""
    step = max(1, len(split) // max_images)
    images = split.select(range(0, len(split), step))["image"]
    stored = {"normalization": "none"} if processor.normalization in NOT_IDEMPOTENT else {}  # already applied
    pixels = processor([as_training_array(image) for image in images], return_tensors="pt", **stored)[
        "pixel_values"
    ]
    std = float(pixels.std())
    if not std > 0:
        raise LensHFError("the training images are all alike: cannot standardise them")
    return float(pixels.mean()), std


def model_input_size(processor: LensImageProcessor) -> int:
    """Side in px of the images ``processor`` gives the model (its crop, else its resize)."""
    size = processor.crop_size if processor.do_center_crop else processor.size
    return int(size["height"])


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


def load_teacher(
    distill_args: DistillationArguments, num_labels: int = len(LABELS)
) -> torch.nn.Module | None:
    """The frozen teacher of ``--teacher`` (None without it): a saved classifier with ``num_labels`` classes,
    loaded from safetensors with no remote code. Settings out of range and unusable folders are one-line errors."""
    check_distillation(
        distill_args.distillation_alpha,
        distill_args.distillation_type,
        distill_args.distillation_temperature,
    )
    if not distill_args.teacher:
        return None
    if not Path(distill_args.teacher).is_dir():
        raise LensHFError(f"{distill_args.teacher}: teacher model folder not found")
    teacher = factory.load_model(distill_args.teacher)
    config = teacher.config
    if is_regression(config) or config.num_labels != num_labels:
        raise LensHFError(
            f"{distill_args.teacher}: the teacher must be a classifier of {num_labels} classes "
            f"(it has {config.num_labels} output{'s' if config.num_labels != 1 else ''})"
        )
    return teacher


def _field_of_view(settings: Mapping[str, Any]) -> float:
    """The share of the (resized) image's side that a processor's output keeps: crop / size, 1 without a crop."""
    size, crop = settings.get("size") or {}, settings.get("crop_size") or {}
    if not settings.get("do_center_crop") or not crop or not size.get("width"):
        return 1.0
    return float(crop["width"]) / float(size["width"])


def _same_standardisation(teacher: Mapping[str, Any], student: Mapping[str, Any]) -> bool:
    """Both unstandardised, or standardised alike: means within 0.1 of the student's spread, spreads within
    10 % (statistics measured on the same data through other crops or sizes differ a little)."""
    t_mean, t_std, s_mean, s_std = (
        d.get(key) for d in (teacher, student) for key in ("image_mean", "image_std")
    )
    if t_mean is None or s_mean is None:
        return t_mean is None and s_mean is None
    pairs = list(zip(t_mean, t_std or [], s_mean, s_std or [], strict=False))
    return len(pairs) == len(s_mean) and all(
        abs(tm - sm) <= 0.1 * ss and abs(ts - ss) <= 0.1 * ss for tm, ts, sm, ss in pairs
    )


def check_teacher_inputs(teacher: torch.nn.Module, processor: LensImageProcessor, source: str) -> None:
    """Refuse a ``--teacher`` that reads other inputs than the student's processor gives: another number of
    channels, or (where its config records its preprocessing, ``lens_preprocessing``) another normalisation,
    stretch, standardisation or field of view. The image size may differ: the teacher's inputs are resized."""
    config = getattr(teacher, "config", None)
    channels = getattr(config, "num_channels", None)
    if isinstance(channels, int) and channels != processor.num_channels:
        raise LensHFError(
            f"{source}: the teacher reads {channels}-channel images but the student's inputs "
            f"(--normalization {processor.normalization}) have {processor.num_channels}"
        )
    record = getattr(config, "lens_preprocessing", None)
    if not isinstance(record, dict):
        return
    student = processor.settings()
    for key in ("normalization", "stretch"):
        if key in record and record[key] != student.get(key):
            raise LensHFError(
                f"{source}: the teacher was trained with {key} {record[key]!r}, the student's inputs use "
                f"{student.get(key)!r}; distil from a teacher trained on the same preprocessing"
            )
    if "image_mean" in record and not _same_standardisation(record, student):
        raise LensHFError(
            f"{source}: the teacher's inputs were standardised with mean {record.get('image_mean')} and spread "
            f"{record.get('image_std')}, the student's with {student.get('image_mean')} and "
            f"{student.get('image_std')}; distil from a teacher trained on the same data and --standardize"
        )
    if record.get("stretch") == "asinh" and record.get("asinh_softening") != student.get("asinh_softening"):
        raise LensHFError(
            f"{source}: the teacher was trained with asinh_softening {record.get('asinh_softening')!r}, the "
            f"student's inputs use {student.get('asinh_softening')!r}"
        )
    teacher_view, student_view = _field_of_view(record), _field_of_view(student)
    if abs(teacher_view - student_view) > 1e-3:
        raise LensHFError(
            f"{source}: the teacher sees {teacher_view:.0%} of each image's side (its centre crop), the student "
            f"{student_view:.0%}; distil from a teacher trained on the same field of view"
        )


def build_model(
    model_args: ModelArguments,
    image_size: int,
    *,
    architecture: str | None = None,
    target: TargetScaling | None = None,
    num_channels: int = 1,
) -> transformers.PreTrainedModel:
    """A 1-channel, 3-class classifier for ``image_size`` px inputs (with ``--task regression``: a one-output
    regressor of ``target``, whose scaling is saved in its config): ``--model_preset`` built from scratch
    (with ``--config_overrides``), or the ``--model_name_or_path`` checkpoint prepared for fine-tuning
    (loaded as ``architecture`` when given). ``num_channels``: the processor's (above 1 for a multi-channel
    normalisation; a one-channel checkpoint gets the new channels with zero weights, so it starts as it was)."""
    overrides = config_overrides(model_args.config_overrides)
    if model_args.task == "regression" and target is None:
        raise LensHFError(
            "--task regression needs the target's scaling from lens_hf.training.regression_targets "
            "(the train_regressor recipe)"
        )
    head = {"task": model_args.task, "target": target if model_args.task == "regression" else None}
    if model_args.model_name_or_path:
        if overrides:
            raise LensHFError(
                "--config_overrides applies to --model_preset, not to a --model_name_or_path checkpoint"
            )
        return factory.load_for_finetuning(
            model_args.model_name_or_path,
            image_size=image_size,
            num_channels=num_channels,
            architecture=architecture,
            **head,
        )
    return factory.create_model(
        model_args.model_preset, image_size=image_size, num_channels=num_channels, **head, **overrides
    )


# ------------------------------------------------------------------------------------------------ finish
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


def _public_files(paths: Sequence[str]) -> list[str]:
    """Source paths for ``predictions.csv``: as the dataset holds them (relative to its source folder), an
    absolute one made publishable (:func:`lens_hf.redact.public_path`)."""
    return [public_path(path) if os.path.isabs(path) else Path(path).as_posix() for path in paths]


def finish_run(
    trainer: LensTrainer,
    predictions: PredictionOutput,
    *,
    split: str,
    dataset: datasets.Dataset,
    recipe: str,
    arguments: Sequence[Any],
    data_info: Mapping[str, Any],
    train_result: TrainOutput,
    resumed_from: str | None,
) -> dict[str, Any]:
    """Everything after training, into ``trainer.args.output_dir``: the model folder, the evaluation of
    ``predictions`` on ``split`` (``dataset``, its rows in order), the learning curves, ``trainer_state.json``,
    the run record and the model card (see the module docstring). Call it on every process.

    Returns, on the main process, the metrics written to ``metrics.json``
    (:func:`lens_hf.metrics.write_evaluation`: accuracy, ROC-AUC per class / macro / micro, confusion matrix,
    plus ``split`` and ``model``; for DeiT also ``cls_head`` and ``dist_head``, the metrics of the class-token
    and distillation-token heads; for a regression model :func:`lens_hf.metrics.write_regression_evaluation`
    in the learnt units, e.g. dex, with ``regression.png`` instead of the ROC and confusion plots); an empty
    dict on the other processes.
    """
    from lens_hf.cards import write_model_card

    output_dir = Path(trainer.args.output_dir)
    processor = trainer.processing_class
    model = _final_model(trainer, output_dir)
    result: dict[str, Any] = {}
    if trainer.is_world_process_zero():
        install_model_folder(model, processor, output_dir)

        preds = predictions.predictions
        y_true = np.asarray(predictions.label_ids)
        extra: dict[str, Any] = {"split": split, "model": type(model).__name__}
        regression = is_regression(model.config)
        if isinstance(preds, tuple) and len(preds) == 3 and not regression:  # DeiT: (mean, cls, distillation)
            extra["cls_head"] = lens_metrics(preds[1], y_true)
            extra["dist_head"] = lens_metrics(preds[2], y_true)
        logits = preds[0] if isinstance(preds, tuple) else preds
        column = dataset["path"] if "path" in dataset.column_names else None
        paths = (
            _public_files(column)
            if column is not None and all(column) and len(column) == len(y_true)
            else None
        )
        if regression:
            scaling = TargetScaling.from_config(model.config)
            result = write_regression_evaluation(
                output_dir,
                scaling.unscale(y_true),
                scaling.unscale(logits),
                target=scaling.target,
                transform=scaling.transform,
                paths=paths,
                extra=extra,
            )
        else:
            result = write_evaluation(
                output_dir, y_true, softmax(logits), labels=LABELS, paths=paths, extra=extra
            )

        history = trainer.state.log_history
        if any("loss" in e or any(k.startswith("eval_") for k in e) for e in history):
            plot_learning_curves(history, output_dir / LEARNING_CURVES)
        write_trainer_state(trainer, output_dir)

        best = trainer.state.best_model_checkpoint
        restored = trainer.args.load_best_model_at_end and best and trainer.restorable(best)
        record = training_record(
            trainer,
            recipe=recipe,
            arguments=arguments,
            data_info=data_info,
            train_metrics=train_result.metrics,
            metrics=result,
            model=model,
            input_size=model_input_size(processor),
            resumed_from=resumed_from,
            best_checkpoint=best if restored else None,
        )
        write_json(output_dir / TRAINING_FILE, record)
        write_model_card(output_dir)
        if regression:
            logger.info("%s metrics: MAE %.4f, RMSE %.4f", split, result["mae"], result["rmse"])
        else:
            logger.info(
                "%s metrics: accuracy %.4f, macro ROC-AUC %s",
                split,
                result["accuracy"],
                result["roc_auc_macro"],
            )
    trainer.accelerator.wait_for_everyone()
    return result


__all__ = [
    "LEARNING_CURVES",
    "build_model",
    "build_processor",
    "check_args",
    "check_teacher_inputs",
    "config_overrides",
    "exit_on_user_error",
    "finish_run",
    "load_splits",
    "model_input_size",
    "regression_targets",
    "setup_logging",
    "single_process_warning",
]
