"""The run record ``lens_hf_training.json``: what was trained, on which data, how, where and with what result.

The record is published with the model (the model card shows it in full), so everything in it goes through
:func:`publishable`: no token (``--hub_token`` values, token-like strings, ``*_token`` fields are dropped) and no
absolute path (made relative to the working directory, or reduced to its last component).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import platform
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import datasets
import torch
import transformers
from transformers import Trainer, TrainingArguments

from lens_hf.redact import is_secret_key, redact_argv, redact_record
from lens_hf.training.args import SIMULATION_FIELDS, DataArguments
from lens_hf.utils import atomic_write_text

TRAINING_FILE = "lens_hf_training.json"
TRAINER_STATE_FILE = "trainer_state.json"


def _plain(value: Any) -> Any:
    """``value`` as JSON types, without the entries under credential keys (``hub_token`` ...)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if not is_secret_key(str(k))}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def publishable(value: Any, cwd: str | os.PathLike | None = None) -> Any:
    """A JSON-ready copy of ``value`` fit to publish: entries under credential keys dropped, then
    :func:`lens_hf.redact.redact_record` (command lines redacted, token-like strings masked, absolute paths made
    relative to ``cwd``, default the working directory)."""
    return redact_record(_plain(value), cwd)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that started this process (default ``sys.argv``), fit to publish:
    ``python recipes/train_vit_spt_lsa.py --output_dir runs/x`` or ``lens-hf train --recipe vit ...``."""
    args = [str(a) for a in (sys.argv if argv is None else argv)]
    if args and args[0].endswith(".py"):
        args = ["python", *args]
    return shlex.join(redact_argv(args))


def device_name(device: torch.device) -> str:
    """What the training ran on, for the record and the model card: the GPU's name, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    if names:
        flags = next(
            (set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set()
        )
        return f"{names[0]}, {os.cpu_count()} CPUs{vector_units(flags)}"
    return platform.processor() or platform.machine() or device.type


def vector_units(flags: set[str]) -> str:
    """', AVX-512 BF16', ', AVX-512' or ', AVX2' from a CPU's /proc/cpuinfo flags ('' for none of them): what sets
    its training speed and precision (bfloat16 autocast is native only with AVX-512 BF16 or AMX), since one CPU
    model name can cover processors with and without them."""
    if "amx_bf16" in flags:
        return ", AMX BF16"
    if "avx512_bf16" in flags:
        return ", AVX-512 BF16"
    if "avx512f" in flags:
        return ", AVX-512"
    return ", AVX2" if "avx2" in flags else ""


def _record_name(args: Any) -> str:
    """``model_args`` for ModelArguments, ``training_args`` for any TrainingArguments, ``distillation_args``
    for DistillationArguments."""
    if isinstance(args, TrainingArguments):
        return "training_args"
    stem = type(args).__name__.removesuffix("Arguments") or type(args).__name__
    return re.sub(r"(?<!^)(?=[A-Z])", "_", stem).lower() + "_args"


def arguments_record(arguments: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """The argument dataclasses of a run by record name; the simulation settings only when the run simulated
    its data (no ``--dataset``)."""
    out: dict[str, dict[str, Any]] = {}
    for args in arguments:
        values = args.to_dict() if isinstance(args, TrainingArguments) else dataclasses.asdict(args)
        if isinstance(args, DataArguments) and args.dataset:
            values = {k: v for k, v in values.items() if k not in SIMULATION_FIELDS}
        out[_record_name(args)] = values
    return out


def training_precision(args: Any) -> str:
    """How the training steps computed: ``bf16``/``fp16`` (mixed precision, ``--bf16``/``--fp16``),
    ``bf16 autocast (cpu)`` (``--cpu_bf16``), or ``fp32``."""
    if getattr(args, "bf16", False):
        return "bf16"
    if getattr(args, "fp16", False):
        return "fp16"
    if getattr(args, "cpu_bf16_autocast", False):
        return "bf16 autocast (cpu)"
    return "fp32"


def training_record(
    trainer: Trainer,
    *,
    recipe: str,
    arguments: Sequence[Any],
    data_info: Mapping[str, Any],
    train_metrics: Mapping[str, Any],
    metrics: Mapping[str, Any],
    model: torch.nn.Module,
    input_size: int,
    resumed_from: str | None,
    best_checkpoint: str | None,
) -> dict[str, Any]:
    """The publishable record of a finished run (see the module docstring)."""
    from lens_hf.models.factory import count_parameters

    args = trainer.args
    time_limit = getattr(trainer, "time_limit", None)
    record = {
        "recipe": recipe,
        "command": command_line(),
        **arguments_record(arguments),
        "dataset": dict(data_info),
        "model_class": type(model).__name__,
        "num_parameters": count_parameters(model),
        "input_size": input_size,
        "world_size": args.world_size,
        "device": str(args.device),
        "device_name": device_name(args.device),
        "training_precision": training_precision(args),
        "global_step": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "train_runtime_s": train_metrics.get("train_runtime"),
        "train_images_per_second": train_metrics.get("train_samples_per_second"),
        "train_loss": train_metrics.get("train_loss"),
        "resumed_from": os.path.basename(resumed_from) if resumed_from else None,
        "stopped_by_time_limit": bool(time_limit and time_limit.stopped),
        "lr_decay_by_time_limit_at_epoch": time_limit.decayed_at_epoch if time_limit else None,
        "best_checkpoint": os.path.basename(best_checkpoint) if best_checkpoint else None,
        "best_metric": trainer.state.best_metric,
        "metrics": {k: v for k, v in metrics.items() if k not in ("cls_head", "dist_head")},
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "datasets": datasets.__version__,
        },
    }
    return publishable(record)


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """``data`` as indented JSON at ``path``, written atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def write_trainer_state(trainer: Trainer, output_dir: str | os.PathLike) -> Path:
    """``trainer_state.json`` (what ``trainer.save_state()`` writes: log history, best metric, steps) with the
    best checkpoint named relative to ``output_dir`` rather than by its absolute path."""
    state = publishable(dataclasses.asdict(trainer.state), cwd=output_dir)
    text = json.dumps(state, indent=2, sort_keys=True) + "\n"
    return atomic_write_text(Path(output_dir) / TRAINER_STATE_FILE, text)


__all__ = [
    "TRAINER_STATE_FILE",
    "TRAINING_FILE",
    "arguments_record",
    "command_line",
    "device_name",
    "publishable",
    "training_precision",
    "training_record",
    "write_json",
    "write_trainer_state",
]
