"""Argument dataclasses shared by the training recipes, and :func:`parse_args`.

Every recipe parses :class:`ModelArguments`, :class:`DataArguments` and :class:`LensTrainingArguments` (all of
``transformers.TrainingArguments`` plus the step-decay schedule), and any dataclass of its own, with an
``HfArgumentParser``: ``--flag value`` options, and ``--config FILE`` (YAML or JSON mapping of the same names).
Precedence, lowest first: the dataclass defaults, :data:`TRAINING_DEFAULTS`, the recipe's ``DEFAULTS``, the
config file, the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import HfArgumentParser, TrainingArguments

from lens_hf.data.dataset import MARKER_FILE
from lens_hf.errors import LensHFError

LR_SCHEDULES: tuple[str, ...] = ("step", "hf")
CPU_BF16_CHOICES: tuple[str, ...] = ("auto", "true", "false")
# Regression losses on the standardised target: mean squared error (fits the posterior mean), mean absolute error
# (fits the posterior median, which minimises the MAE the field reports), Huber (squared below 1 standard
# deviation of the target, absolute above).
REGRESSION_LOSSES: tuple[str, ...] = ("mse", "l1", "huber")
# Distillation from a teacher: hard (cross-entropy against the teacher's argmax, DeiT's) or soft (KL divergence
# of the temperature-softened distributions, Hinton et al. 2015).
DISTILLATION_TYPES: tuple[str, ...] = ("hard", "soft")


@dataclass
class DistillationArguments:
    """Distillation from a frozen teacher classifier (recipes ``finetune_deit`` and ``train_vit_spt_lsa``)."""

    teacher: str | None = field(
        default=None,
        metadata={
            "help": "Folder of a trained classifier to distil from (e.g. the output of train_cnn_teacher.py), "
            "trained on the same inputs as the student. Without it: no distillation (a DeiT's two heads both "
            "learn the labels)."
        },
    )
    distillation_alpha: float = field(
        default=0.5,
        metadata={
            "help": "Weight a of the distillation loss: (1-a)*CE(head, y) + a*D(distillation head, teacher) "
            "(a DeiT: its class-token and distillation-token heads; other models: their one head)."
        },
    )
    distillation_type: str = field(
        default="hard",
        metadata={
            "help": "D: hard (cross-entropy against the teacher's argmax, DeiT's) or soft (T^2 * KL divergence "
            "of the softmaxes at temperature T, Hinton et al. 2015)."
        },
    )
    distillation_temperature: float = field(
        default=1.0, metadata={"help": "Temperature T of soft distillation."}
    )


@dataclass
class ModelArguments:
    """Which model to train."""

    model_preset: str = field(
        default="vit-tiny",
        metadata={
            "help": "Named architecture built from scratch (see lens_hf.models.factory.list_presets())."
        },
    )
    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Checkpoint to fine-tune instead of a preset: a local model folder or a Hub id."},
    )
    image_size: int | None = field(
        default=None,
        metadata={
            "help": "Model input size in px (square). Default: the dataset's image size (or random_crop)."
        },
    )
    task: str = field(
        default="classification",
        metadata={
            "help": "classification (the three lensing classes) or regression (one numeric --target, one output, "
            "MSE loss on the standardised target)."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": 'Preset config fields to replace, as JSON (e.g. \'{"num_hidden_layers": 2, "hidden_size": 96}\'); '
            "a mapping in a --config file."
        },
    )


@dataclass
class DataArguments:
    """Which images to train on, and how they are augmented."""

    dataset: str | None = field(
        default=None,
        metadata={
            "help": "Data folder lens_hf.data.load_any reads (saved dataset, parquet, or raw image folders). "
            "Default: simulate a small set on the fly with `preset`."
        },
    )
    preset: str = field(
        default="model_i",
        metadata={
            "help": "Simulation preset used when no dataset is given; it also picks the recipe's defaults for that "
            "kind of data (for a --dataset folder, the preset its lens_hf_dataset.json records wins)."
        },
    )
    train_per_class: int = field(default=200, metadata={"help": "Simulated training images per class."})
    eval_per_class: int = field(default=50, metadata={"help": "Simulated validation images per class."})
    test_per_class: int = field(
        default=100,
        metadata={"help": "Simulated test images per class (0: no test split; evaluate on validation)."},
    )
    sim_seed: int = field(
        default=0,
        metadata={"help": "Seed of the simulated training split; validation and test use seed+1 and seed+2."},
    )
    sim_workers: int | None = field(
        default=None, metadata={"help": "Simulation worker processes (default: all cores)."}
    )
    normalization: str = field(
        default="minmax",
        metadata={
            "help": "Per-image normalisation: minmax, none, residual_model_i (raw Model I photon counts minus "
            "the fitted smooth lens, in units of the noise: lens_hf.processing.smooth_lens), or "
            "residual_lens_model_i (that residual and the fitted lens in noise units: two input channels)."
        },
    )
    stretch: str = field(
        default="none",
        metadata={
            "help": "Intensity stretch after min-max normalisation, saved with the model's image processor: none "
            "or asinh (asinh(x/a)/asinh(1/a), a = --asinh_softening), which brings out the faint arcs."
        },
    )
    standardize: bool = field(
        default=False,
        metadata={
            "help": "Subtract the mean pixel of the training images and divide by their standard deviation (measured "
            "after crop and stretch on up to 1,000 training images; saved with the image processor)."
        },
    )
    asinh_softening: float = field(
        default=0.02,
        metadata={"help": "Softening a of the asinh stretch, as a fraction of the image's peak."},
    )
    target: str | None = field(
        default=None,
        metadata={
            "help": "Regression: the numeric metadata column to predict (axion_mass in eV, subhalo_mass_total in "
            "Msun, ...); rows without a finite value (for axion_mass: all but the vortices) are skipped."
        },
    )
    target_transform: str | None = field(
        default=None,
        metadata={
            "help": "Regression: what the model learns of the target, log10 or none (default: log10 for the "
            "masses axion_mass and subhalo_mass_total, none otherwise)."
        },
    )
    augment: str = field(
        default="d4",
        metadata={
            "help": "Training augmentation: d4 (rotations and flips), d2 (the flips and the half turn, which keep a "
            "lens aligned with the pixel grid aligned, as in DeepLense simulations) or none."
        },
    )
    random_crop: int | None = field(
        default=None,
        metadata={"help": "Train on random crops of this size (px) and evaluate on centre crops."},
    )
    center_crop: int | None = field(
        default=None,
        metadata={
            "help": "Train and evaluate on the centre crop of this size (px, after --image_size resizing), with no "
            "random translation (lenses are centred). Exclusive with random_crop."
        },
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Truncate the training split (debugging)."}
    )
    max_eval_samples: int | None = field(default=None, metadata={"help": "Truncate the validation split."})
    max_test_samples: int | None = field(default=None, metadata={"help": "Truncate the test split."})


# DataArguments fields that only matter when the data are simulated (no --dataset).
SIMULATION_FIELDS: tuple[str, ...] = (
    "preset",
    "train_per_class",
    "eval_per_class",
    "test_per_class",
    "sim_seed",
    "sim_workers",
)


@dataclass
class LensTrainingArguments(TrainingArguments):
    """``TrainingArguments`` with lens_hf defaults and an epoch-based step-decay schedule."""

    lr_schedule: str = field(
        default="step",
        metadata={
            "help": "step: divide the learning rate by 1/lr_step_gamma every lr_step_epochs epochs; "
            "hf: use --lr_scheduler_type (cosine, linear, ...) with --warmup_steps."
        },
    )
    lr_step_epochs: int = field(
        default=20, metadata={"help": "Epochs between learning-rate decays (step schedule)."}
    )
    lr_step_gamma: float = field(
        default=0.1, metadata={"help": "Learning-rate factor at each decay (step schedule)."}
    )
    max_train_minutes: float | None = field(
        default=None,
        metadata={
            "help": "Stop training after this many minutes of wall clock (counted from the start of this run, "
            "a resumed one too); the interrupted epoch is still evaluated and the best checkpoint kept."
        },
    )
    lr_step_time_fraction: float | None = field(
        default=0.75,
        metadata={
            "help": "With --max_train_minutes and the step schedule: apply the first learning-rate decay once this "
            "fraction of the time budget has passed, if epoch lr_step_epochs has not come yet (a time-limited run "
            "would otherwise end before it); 0 turns it off."
        },
    )
    cpu_bf16: str = field(
        default="auto",
        metadata={
            "help": "Train under bfloat16 autocast when training on the CPU (weights, optimizer and evaluation "
            "stay float32): auto (when the CPU computes bfloat16 natively, AVX-512 BF16 or AMX), true, false. "
            "On a GPU use --bf16 or --fp16."
        },
    )

    regression_loss: str = field(
        default="mse",
        metadata={
            "help": "Loss of a regression model on its standardised target: mse (mean squared error), l1 (mean "
            "absolute error: fits the median, which minimises the reported MAE) or huber (squared below one "
            "standard deviation of the target, absolute above)."
        },
    )

    def __post_init__(self) -> None:
        if self.regression_loss not in REGRESSION_LOSSES:
            raise LensHFError(
                f"unknown regression_loss {self.regression_loss!r} (choose from {', '.join(REGRESSION_LOSSES)})"
            )
        if self.cpu_bf16 not in CPU_BF16_CHOICES:
            raise LensHFError(
                f"unknown cpu_bf16 {self.cpu_bf16!r} (choose from {', '.join(CPU_BF16_CHOICES)})"
            )
        if self.lr_schedule not in LR_SCHEDULES:
            raise LensHFError(
                f"unknown lr_schedule {self.lr_schedule!r} (choose from {', '.join(LR_SCHEDULES)})"
            )
        if self.lr_step_time_fraction and not 0.0 < self.lr_step_time_fraction < 1.0:
            raise LensHFError(f"lr_step_time_fraction must be in (0, 1), got {self.lr_step_time_fraction}")
        if self.max_train_minutes is not None and not self.max_train_minutes > 0:
            raise LensHFError(f"max_train_minutes must be positive, got {self.max_train_minutes}")
        super().__post_init__()

    @property
    def cpu_bf16_autocast(self) -> bool:
        """Whether training steps run under CPU bfloat16 autocast (``--cpu_bf16``): only when training on the
        CPU without ``--bf16``/``--fp16``; ``auto`` also needs native bfloat16 arithmetic (emulated bfloat16
        is slower than float32)."""
        if self.cpu_bf16 == "false" or self.bf16 or self.fp16 or self.device.type != "cpu":
            return False
        return self.cpu_bf16 == "true" or cpu_has_native_bf16()


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX tiles)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


# What the model sees of each kind of data, measured on Model II (benchmarks/README.md, "Recipe defaults"):
# the central 3.2" around the Einstein ring (radius 1.28") at about 0.1"/px, 32x32 px, asinh-stretched so
# that the faint outer arcs count, standardised with the training set's pixel statistics. Model III
# (0.08"/px) and Model I (0.05"/px) are resampled to the Model II pixel scale first. Recipes add their
# model-side settings (patch size, learning rate) per kind of data; flags and --config override everything.
LENS_INPUTS: dict[str, dict[str, Any]] = {
    "model_i": {"image_size": 75, "center_crop": 32, "stretch": "asinh", "standardize": True},
    "model_ii": {"center_crop": 32, "stretch": "asinh", "standardize": True},
    "model_iii": {"image_size": 52, "center_crop": 32, "stretch": "asinh", "standardize": True},
}

# The stock ViT and DeiT recipes' settings per kind of data (recipes/finetune_vit.py, finetune_deit.py): the inputs
# above, 8x8 px patches (a 4x4 token grid: 0.9 validation AUC in a third of the epochs that 4 px patches need, at
# about 3x the images per second), 4 layers instead of the preset's 6 (as many AUC per epoch on a few thousand
# images, at 1.5-1.9x the images per second), and a learning rate low enough that the first epochs do not erase
# what warm-up found (benchmarks/README.md). A recipe applies them only with its own model preset.
PLAIN_VIT_DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    kind: {
        **inputs,
        "config_overrides": {"patch_size": 8, "num_hidden_layers": 4},
        "learning_rate": 1.5e-4,
        "warmup_steps": 100,
    }
    for kind, inputs in LENS_INPUTS.items()
}

# Defaults every recipe starts from; a recipe's own defaults, the config file and the command line override them.
TRAINING_DEFAULTS: dict[str, Any] = {
    "per_device_train_batch_size": 32,
    "per_device_eval_batch_size": 64,
    "num_train_epochs": 50,
    "learning_rate": 1e-3,
    "weight_decay": 0.05,
    # Fused AdamW runs on CPU and GPU; on CPU it is about 3x faster than the default per-tensor loop
    # (9 vs 28 ms a step for the 2M-parameter ViT), where the optimizer step is a visible share of a step.
    "optim": "adamw_torch_fused",
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "logging_strategy": "steps",
    "logging_steps": 10,
    "save_total_limit": 2,
    "load_best_model_at_end": True,
    "metric_for_best_model": "roc_auc_macro",
    "greater_is_better": True,
    "remove_unused_columns": False,
    "label_names": ["labels"],
    "disable_tqdm": False,
    "report_to": "none",
    "seed": 42,
}


def _read_config(path: str) -> dict[str, Any]:
    """YAML or JSON mapping of argument names to values."""
    p = Path(path)
    if not p.is_file():
        raise LensHFError(f"{p}: config file not found")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:  # noqa: BLE001 - any parse error is reported as one line
        raise LensHFError(
            f"{p}: not a valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'} file ({err})"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise LensHFError(f"{p}: expected a mapping of argument names to values, got {type(data).__name__}")
    return dict(data)


def _cpu_only() -> bool:
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None and hasattr(accelerator, "is_available"):
        return not accelerator.is_available()
    return not torch.cuda.is_available()


def _drop_option(argv: Sequence[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(f"{name}="):
            out.append(arg)
    return out


def dataset_preset(argv: Sequence[str], config: Mapping[str, Any], defaults: Mapping[str, Any]) -> str | None:
    """The kind of data a run trains on: the preset a ``--dataset`` folder records in its
    ``lens_hf_dataset.json`` (else an explicit ``--preset``, else None); without ``--dataset``, the simulated
    ``--preset`` (flag, config file, recipe default, or the simulation default)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--dataset", default=None)
    pre.add_argument("--preset", default=None)
    known, _ = pre.parse_known_args(list(argv))
    dataset = known.dataset or config.get("dataset") or defaults.get("dataset")
    if dataset:
        try:
            recorded = json.loads((Path(dataset) / MARKER_FILE).read_text(encoding="utf-8")).get("preset")
        except (OSError, ValueError, AttributeError):
            recorded = None
        if isinstance(recorded, str):
            return recorded
        # A folder that does not say what it holds: only an explicit --preset picks defaults for it.
        explicit = known.preset or config.get("preset")
        return str(explicit) if explicit else None
    preset = known.preset or config.get("preset") or defaults.get("preset")
    return str(preset) if preset else DataArguments.preset


def checkpoint_inputs(name_or_path: str | None) -> dict[str, Any]:
    """The input settings (``image_size``, ``center_crop``, ``normalization``, ``stretch``, ``asinh_softening``,
    ``standardize``) of the lens_hf image processor saved in a local model folder, as argument values; ``{}``
    for a Hub id or a folder without one. Fine-tuning a checkpoint then feeds it what it was trained on."""
    processor = saved_processor(name_or_path)
    if processor is None:
        return {}
    values: dict[str, Any] = {}
    size = processor.size or {}
    if processor.do_resize and size.get("height") == size.get("width"):
        values["image_size"] = size["height"]
    values["center_crop"] = processor.crop_size["height"] if processor.do_center_crop else None
    values["normalization"] = processor.normalization
    values["stretch"] = processor.stretch
    values["asinh_softening"] = processor.asinh_softening
    values["standardize"] = processor.image_mean is not None
    return values


def saved_processor(name_or_path: str | os.PathLike | None) -> Any:
    """The :class:`~lens_hf.processing.LensImageProcessor` saved in a local model folder
    (:func:`lens_hf.inference.folder_processor`), or None: no folder, no lens_hf processor, or an unreadable one
    (loading the model then says what is wrong)."""
    from lens_hf.inference import folder_processor  # noqa: PLC0415 - inference imports the training stack
    from lens_hf.processing.file_io import LensFileError  # noqa: PLC0415

    if not name_or_path or not Path(name_or_path).expanduser().is_dir():
        return None
    try:
        return folder_processor(Path(name_or_path).expanduser())
    except LensFileError:
        return None


def parse_args(
    parser: HfArgumentParser,
    defaults: Mapping[str, Any] | None = None,
    argv: Sequence[str] | None = None,
    dataset_defaults: Mapping[str, Mapping[str, Any]] | None = None,
    dataset_default_presets: Sequence[str] = (),
) -> tuple[Any, ...]:
    """Parse ``argv`` (default ``sys.argv[1:]``) into one instance of each of ``parser``'s dataclasses, in order.

    Values, lowest precedence first: the dataclass defaults, :data:`TRAINING_DEFAULTS`, ``defaults`` (the
    recipe's), ``dataset_defaults[kind]`` (the recipe's settings for the kind of data the run trains on, see
    :func:`dataset_preset`; only when the run keeps the recipe's own model preset or one of
    ``dataset_default_presets``, the same model with other switches), ``--config FILE`` (a
    YAML/JSON mapping of argument names), the flags. Unknown names in ``defaults``, the config file or the flags
    raise :class:`LensHFError` naming them; so does a missing ``--output_dir``. With ``--model_name_or_path`` a
    local lens_hf folder, its image processor's settings (:func:`checkpoint_inputs`) come after the recipe's.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    pre.add_argument("--model_preset", default=None)
    pre.add_argument("--model_name_or_path", default=None)
    known, _ = pre.parse_known_args(argv)
    rest = _drop_option(argv, "--config")

    names = {f.name for dc in parser.dataclass_types for f in dataclasses.fields(dc) if f.init}
    values: dict[str, Any] = {k: v for k, v in TRAINING_DEFAULTS.items() if k in names}
    if _cpu_only() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Several processes (torchrun / accelerate launch) on a machine without accelerator: DDP over gloo.
        values["use_cpu"] = True
    if _cpu_only():
        values["dataloader_pin_memory"] = False
    config = _read_config(known.config) if known.config else {}
    defaults = dict(defaults or {})
    # The per-dataset settings describe the recipe's own model preset (its patch size, input crop, ...).
    chosen = known.model_preset or config.get("model_preset") or defaults.get("model_preset")
    own_model = chosen in (defaults.get("model_preset"), *dataset_default_presets) and not (
        known.model_name_or_path or config.get("model_name_or_path")
    )
    kind = dataset_preset(argv, config, defaults)
    if dataset_defaults and own_model and kind in dataset_defaults:
        defaults.update(dataset_defaults[kind])
    # Fine-tuning a lens_hf folder: its own inputs (size, crop, stretch, ...) unless the config or flags say else.
    inputs = checkpoint_inputs(known.model_name_or_path or config.get("model_name_or_path"))
    defaults.update({k: v for k, v in inputs.items() if k in names})
    if "random_crop" in config or any(a.split("=", 1)[0] in ("--random_crop", "--random-crop") for a in argv):
        defaults.pop("center_crop", None)  # the user's random crops replace a default centre crop
    for source, given in (("recipe defaults", defaults), (known.config, config)):
        unknown = sorted(set(given) - names)
        if unknown:
            raise LensHFError(f"{source}: unknown argument name(s) {', '.join(unknown)}")
        values.update(given)

    if "--config" not in parser._option_string_actions:
        parser.add_argument(
            "--config", default=None, help="YAML or JSON file of argument values (flags override it)."
        )
    parser.set_defaults(**values)
    flags = {a.split("=", 1)[0] for a in rest}
    if not values.get("output_dir") and not flags & {"--output_dir", "--output-dir", "-h", "--help"}:
        raise LensHFError(
            "--output_dir is required (folder for checkpoints, the final model and its metrics)"
        )
    try:
        *parsed, remaining = parser.parse_args_into_dataclasses(
            args=rest, return_remaining_strings=True, look_for_args_file=False
        )
    except ValueError as err:  # transformers' own checks of TrainingArguments (e.g. mismatched strategies)
        message = " ".join(str(err).split()) or type(err).__name__
        raise LensHFError(f"invalid training arguments: {message}") from None
    if remaining:
        raise LensHFError(f"unrecognized arguments: {' '.join(remaining)}")
    return tuple(parsed[: len(parser.dataclass_types)])  # then a namespace holding --config
