"""Training with the Hugging Face Trainer: the argument dataclasses and their parser, D4 augmentation, the
epoch-based step-decay schedule, the lensing Trainer (and distillation from a teacher), resuming from
checkpoints, the run record, and the steps every recipe in ``recipes/`` calls one by one."""

from lens_hf.training.args import (
    LENS_INPUTS,
    PLAIN_VIT_DATASET_DEFAULTS,
    SIMULATION_FIELDS,
    TRAINING_DEFAULTS,
    DataArguments,
    DistillationArguments,
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
from lens_hf.training.checkpoints import checkpoint_is_complete, resolve_resume
from lens_hf.training.record import TRAINING_FILE, publishable, training_record
from lens_hf.training.run import (
    build_model,
    build_processor,
    check_args,
    check_teacher_inputs,
    exit_on_user_error,
    finish_run,
    load_splits,
    load_teacher,
    model_input_size,
    regression_targets,
    setup_logging,
)
from lens_hf.training.schedule import StepDecay, step_decay_scheduler, updates_per_epoch
from lens_hf.training.trainer import (
    DistillationTrainer,
    LensTrainer,
    RegressionMetrics,
    compute_lens_metrics,
    restore_weights,
)

__all__ = [
    "LENS_INPUTS",
    "PLAIN_VIT_DATASET_DEFAULTS",
    "SIMULATION_FIELDS",
    "TRAINING_DEFAULTS",
    "TRAINING_FILE",
    "BatchAugment",
    "DataArguments",
    "DistillationArguments",
    "DistillationTrainer",
    "LensTrainer",
    "LensTrainingArguments",
    "LensTransform",
    "ModelArguments",
    "RegressionMetrics",
    "StepDecay",
    "build_model",
    "build_processor",
    "check_args",
    "check_teacher_inputs",
    "checkpoint_is_complete",
    "collate",
    "compute_lens_metrics",
    "d4_transform",
    "exit_on_user_error",
    "finish_run",
    "load_splits",
    "load_teacher",
    "make_transforms",
    "model_input_size",
    "parse_args",
    "publishable",
    "random_d4",
    "regression_targets",
    "resolve_resume",
    "restore_weights",
    "setup_logging",
    "step_decay_scheduler",
    "training_record",
    "updates_per_epoch",
]
