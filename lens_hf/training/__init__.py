"""Training with the Hugging Face Trainer: argument dataclasses, D4 augmentation, the epoch-based step-decay
schedule, the lensing Trainer (and DeiT distillation) and the ``train()`` entry point of the recipes."""

from lens_hf.training.args import (
    RECIPE_DEFAULTS,
    TRAINING_DEFAULTS,
    DataArguments,
    LensTrainingArguments,
    ModelArguments,
    parse_args,
)
from lens_hf.training.augment import (
    BatchAugment,
    LensTransform,
    collate,
    d4_transform,
    make_transforms,
    random_d4,
)
from lens_hf.training.schedule import StepDecay, step_decay_scheduler, updates_per_epoch
from lens_hf.training.trainer import (
    DistillationTrainer,
    LensTrainer,
    compute_lens_metrics,
    restore_weights,
)

__all__ = [
    "BatchAugment",
    "RECIPE_DEFAULTS",
    "TRAINING_DEFAULTS",
    "DataArguments",
    "DistillationTrainer",
    "LensTrainer",
    "LensTrainingArguments",
    "LensTransform",
    "ModelArguments",
    "StepDecay",
    "collate",
    "compute_lens_metrics",
    "d4_transform",
    "make_transforms",
    "parse_args",
    "random_d4",
    "restore_weights",
    "step_decay_scheduler",
    "run_recipe",
    "train",
    "updates_per_epoch",
]


def __getattr__(name: str):
    # train() pulls in data simulation and the model factory; import it only when asked for.
    if name in ("train", "run_recipe"):
        from lens_hf.training import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
