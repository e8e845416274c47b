"""Trainer subclasses: step-decay schedule, shape-based weight decay, lens metrics, DeiT hard distillation.

Both trainers compute the loss themselves (cross-entropy on the logits, mean over the batch; for a regression
model, ``config.problem_type == "regression"``, the mean squared error of its single output against the
standardised target), so stock classifiers, the SPT+LSA model and DeiT's inference-only ``...WithTeacher`` head
(which computes no loss of its own) are treated alike.
Checkpoint weights are restored with ``from_pretrained`` (see :func:`restore_weights`).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import EvalPrediction, PreTrainedModel, Trainer, TrainerCallback

from lens_hf.errors import LensHFError
from lens_hf.metrics import classification_metrics, regression_log_metrics, softmax
from lens_hf.models.factory import param_groups
from lens_hf.processing.targets import TargetScaling, is_regression
from lens_hf.training.args import DISTILLATION_TYPES, REGRESSION_LOSSES
from lens_hf.training.augment import collate
from lens_hf.training.schedule import (
    bring_decay_forward,
    decay_brought_forward_at,
    step_decay_scheduler,
    updates_per_epoch,
)

SAFE_WEIGHTS = "model.safetensors"


def restore_weights(model: nn.Module, checkpoint_dir: str | os.PathLike) -> None:
    """Load the weights saved in ``checkpoint_dir`` into ``model`` in place, every tensor strictly.

    Goes through ``from_pretrained`` so that the legacy parameter names transformers 5 writes for stock
    ViT/DeiT/Swin are mapped back to the in-memory names; a plain ``load_state_dict(strict=False)`` of the
    file would silently skip those tensors.
    """
    if not isinstance(model, PreTrainedModel):
        raise LensHFError(f"cannot restore weights into a {type(model).__name__} (not a transformers model)")
    loaded = type(model).from_pretrained(checkpoint_dir)
    model.load_state_dict(loaded.state_dict(), strict=True)


def _scalar(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _flatten(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Scalar view of :func:`lens_hf.metrics.classification_metrics` for the Trainer's logs (NaN: undefined AUC)."""
    out = {
        f"{prefix}accuracy": _scalar(metrics["accuracy"]),
        f"{prefix}roc_auc_macro": _scalar(metrics["roc_auc_macro"]),
        f"{prefix}roc_auc_micro": _scalar(metrics["roc_auc_micro"]),
    }
    for label, auc in metrics["roc_auc_per_class"].items():
        out[f"{prefix}roc_auc_{label}"] = _scalar(auc)
    return out


def lens_metrics(logits: np.ndarray, labels: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Accuracy and one-vs-rest ROC-AUC (per class, macro, micro) of ``logits`` (n, classes), on softmax probs."""
    return _flatten(classification_metrics(np.asarray(labels), softmax(np.asarray(logits))), prefix)


def compute_lens_metrics(eval_pred: EvalPrediction) -> dict[str, float]:
    """``compute_metrics`` for both trainers.

    Predictions are the logits (n, classes), or for DeiT the tuple ``(averaged, cls, distillation)``:
    then the main keys describe the averaged head (what the saved model predicts) and ``cls_*`` /
    ``dist_*`` the two token heads.
    """
    preds, labels = eval_pred.predictions, eval_pred.label_ids
    if isinstance(preds, (tuple, list)):
        out = lens_metrics(preds[0], labels)
        if len(preds) == 3:
            out.update(lens_metrics(preds[1], labels, "cls_"))
            out.update(lens_metrics(preds[2], labels, "dist_"))
        return out
    return lens_metrics(preds, labels)


class RegressionMetrics:
    """``compute_metrics`` of a regression model: MAE, RMSE, R2 and bias in the learnt units (dex for a log10
    target), from the standardised outputs and targets the Trainer gathers, through ``scaling``."""

    def __init__(self, scaling: TargetScaling):
        self.scaling = scaling

    def __call__(self, eval_pred: EvalPrediction) -> dict[str, float]:
        preds = eval_pred.predictions
        preds = preds[0] if isinstance(preds, (tuple, list)) else preds
        return regression_log_metrics(self.scaling.unscale(eval_pred.label_ids), self.scaling.unscale(preds))


class TimeLimit(TrainerCallback):
    """Stop ``trainer.train()`` once ``seconds`` of wall clock have passed since it began.

    Checked after every optimizer step, so training ends at most one step after the limit, followed by what
    the Trainer does at the end of an epoch (evaluation, checkpoint, restoring the best model).
    ``stopped`` says whether the limit ended the run.

    With ``decay_fraction`` (in (0, 1)), once that fraction of the budget has passed the step-decay schedule's
    next decay is applied (:func:`~lens_hf.training.schedule.bring_decay_forward`), unless its epoch has already
    come: a run cut short by the clock would otherwise never reach its lower learning rate.
    ``decayed_at_epoch`` says when (None if it did not happen).
    """

    def __init__(self, seconds: float, decay_fraction: float | None = None):
        if not seconds > 0:
            raise LensHFError(f"the time limit must be positive, got {seconds} s")
        if decay_fraction is not None and not 0.0 < decay_fraction < 1.0:
            raise LensHFError(f"lr_step_time_fraction must be in (0, 1), got {decay_fraction}")
        self.seconds = float(seconds)
        self.decay_fraction = decay_fraction
        self.start = 0.0
        self.stopped = False
        self.decayed_at_epoch: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201 - Trainer signature
        self.start = time.perf_counter()
        self.stopped = False
        self.decayed_at_epoch = None

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
        elapsed = time.perf_counter() - self.start
        if self.decayed_at_epoch is None:
            # a run resumed after the clock brought the decay forward: the decay is in the restored scheduler,
            # and it happened at the epoch kept there, not now
            self.decayed_at_epoch = decay_brought_forward_at(kwargs.get("lr_scheduler"))
        if (
            self.decay_fraction is not None
            and self.decayed_at_epoch is None
            and elapsed >= self.decay_fraction * self.seconds
            and state.epoch is not None
            and state.epoch < args.lr_step_epochs
            and bring_decay_forward(kwargs.get("lr_scheduler"), float(state.epoch))
        ):
            self.decayed_at_epoch = float(state.epoch)
        if elapsed >= self.seconds and not control.should_training_stop:
            control.should_training_stop = True
            self.stopped = True
        return control


def time_decay_fraction(args: Any) -> float | None:
    """The fraction of a time budget after which the step schedule decays (None: never brought forward)."""
    if getattr(args, "lr_schedule", "hf") != "step":
        return None
    fraction = getattr(args, "lr_step_time_fraction", None)
    return float(fraction) if fraction else None


def check_distillation(alpha: float, kind: str, temperature: float) -> None:
    """One-line errors for distillation settings out of range."""
    if not 0.0 <= alpha <= 1.0:
        raise LensHFError(f"distillation_alpha must be in [0, 1], got {alpha}")
    if kind not in DISTILLATION_TYPES:
        raise LensHFError(f"unknown distillation_type {kind!r} (choose from {', '.join(DISTILLATION_TYPES)})")
    if not temperature > 0:
        raise LensHFError(f"distillation_temperature must be positive, got {temperature}")


def regression_loss(prediction: torch.Tensor, target: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """Mean loss of ``prediction`` against ``target`` (both standardised): ``"mse"``, ``"l1"`` or ``"huber"``
    (``F.huber_loss`` with delta 1, i.e. one standard deviation of the training targets)."""
    if kind == "mse":
        return F.mse_loss(prediction, target)
    if kind == "l1":
        return F.l1_loss(prediction, target)
    if kind == "huber":
        return F.huber_loss(prediction, target, delta=1.0)
    raise LensHFError(f"unknown regression_loss {kind!r} (choose from {', '.join(REGRESSION_LOSSES)})")


class LensTrainer(Trainer):
    """``Trainer`` for lensing classifiers.

    - learning rate: with ``args.lr_schedule == "step"`` it is divided by ``1 / args.lr_step_gamma`` every
      ``args.lr_step_epochs`` epochs, whatever the number of updates per epoch (world size and gradient
      accumulation included), after ``args.warmup_steps``; ``"hf"`` uses ``args.lr_scheduler_type``;
    - weight decay only on weights with two or more dimensions (``lens_hf.models.factory.param_groups``);
    - loss: cross-entropy of ``logits`` against ``labels`` (with ``args.label_smoothing_factor``); for a
      regression model ``args.regression_loss`` (mean squared error by default, see :func:`regression_loss`) of
      its single output against the standardised target (for DeiT, of the mean of its two heads);
    - metrics: :func:`compute_lens_metrics` (regression: :class:`RegressionMetrics`) unless ``compute_metrics``
      is given;
    - ``augmentation``: a callable applied to ``pixel_values`` of every training batch
      (:class:`~lens_hf.training.augment.BatchAugment`);
    - ``args.max_train_minutes``: a :class:`TimeLimit` ends training after that much wall clock
      (``self.time_limit``, None without it); with the step schedule it also brings the first decay forward to
      ``args.lr_step_time_fraction`` of the budget.
    """

    # The loss is a per-batch mean: the Trainer divides it by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self, *args: Any, augmentation: Callable[[torch.Tensor], torch.Tensor] | None = None, **kwargs: Any
    ):
        model = kwargs.get("model", args[0] if args else None)
        config = getattr(model, "config", None)
        self.regression = is_regression(config)
        if self.regression:
            try:
                scaling = TargetScaling.from_config(config)
            except ValueError as err:
                raise LensHFError(str(err)) from None
            kwargs.setdefault("compute_metrics", RegressionMetrics(scaling))
        kwargs.setdefault("compute_metrics", compute_lens_metrics)
        kwargs.setdefault("data_collator", collate)
        super().__init__(*args, **kwargs)
        self.augmentation = augmentation
        minutes = getattr(self.args, "max_train_minutes", None)
        self.time_limit = TimeLimit(minutes * 60.0, time_decay_fraction(self.args)) if minutes else None
        if self.time_limit is not None:
            self.add_callback(self.time_limit)
        self.label_names = ["labels"]
        self._updates_per_epoch: int | None = None

    def training_step(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor:
        # Augmenting here, after the Trainer has restored the checkpoint's RNG state, makes a resumed run
        # draw the same augmentations as an uninterrupted one (the dataloader prefetches before the restore).
        if self.augmentation is not None:
            inputs = {**inputs, "pixel_values": self.augmentation(inputs["pixel_values"])}
        return super().training_step(model, inputs, num_items_in_batch)

    def compute_loss_context_manager(self) -> contextlib.ExitStack:
        # --cpu_bf16: the training forward pass (and so its backward) under CPU bfloat16 autocast; evaluation,
        # weights and optimizer stay float32. The Trainer's own --bf16 is for accelerators (on the CPU it also
        # casts evaluation). Measured on AVX-512 BF16: 1.34-1.36x the training images/s of float32 in the ViT and
        # DeiT recipes, the same validation AUC per epoch (benchmarks/README.md).
        stack = super().compute_loss_context_manager()
        if self.model is not None and self.model.training and self.cpu_bf16:
            stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
        return stack

    @property
    def cpu_bf16(self) -> bool:
        """Whether training steps run under CPU bfloat16 autocast (``--cpu_bf16``, lens_hf's arguments only)."""
        return bool(getattr(self.args, "cpu_bf16_autocast", False))

    # ---- schedule and optimizer ----

    def set_initial_training_values(self, args, dataloader):  # noqa: ANN001, ANN201 - Trainer signature
        values = super().set_initial_training_values(args, dataloader)
        self._updates_per_epoch = int(values[1])
        return values

    def updates_per_epoch(self) -> int:
        """Optimizer updates per epoch of the training set, as the Trainer counts them."""
        if self._updates_per_epoch is not None:
            return self._updates_per_epoch
        if self.train_dataset is None:
            raise LensHFError("the step-decay schedule needs a training dataset")
        return updates_per_epoch(
            len(self.train_dataset),
            self._train_batch_size,
            world_size=self.args.world_size,
            gradient_accumulation_steps=self.args.gradient_accumulation_steps,
            drop_last=self.args.dataloader_drop_last,
        )

    def create_optimizer(self, model: nn.Module | None = None) -> torch.optim.Optimizer:
        if self.optimizer is not None:
            return self.optimizer
        opt_model = self.model if model is None else model
        if self.optimizer_cls_and_kwargs is not None:
            optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs
        else:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        if {"params", "model", "optimizer_dict"} & set(optimizer_kwargs) or not isinstance(
            optimizer_cls, type
        ):
            return super().create_optimizer(model)  # optimizers that build their own parameter groups
        groups = [g for g in param_groups(opt_model, self.args.weight_decay) if g["params"]]
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer

    def create_scheduler(
        self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None
    ) -> torch.optim.lr_scheduler.LRScheduler:
        if self.lr_scheduler is None and getattr(self.args, "lr_schedule", "hf") == "step":
            self.lr_scheduler = step_decay_scheduler(
                optimizer if optimizer is not None else self.optimizer,
                self.updates_per_epoch(),
                step_epochs=self.args.lr_step_epochs,
                gamma=self.args.lr_step_gamma,
                warmup_steps=self.args.get_warmup_steps(num_training_steps),
            )
            self._created_lr_scheduler = True
            return self.lr_scheduler
        return super().create_scheduler(num_training_steps, optimizer)

    # ---- loss and evaluation ----

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        outputs = model(pixel_values=inputs["pixel_values"])
        if self.regression:
            loss = regression_loss(
                outputs.logits.squeeze(-1).float(),
                inputs["labels"].float(),
                getattr(self.args, "regression_loss", "mse"),
            )
        else:
            loss = F.cross_entropy(
                outputs.logits, inputs["labels"], label_smoothing=self.args.label_smoothing_factor
            )
        return (loss, outputs) if return_outputs else loss

    def _eval_logits(self, outputs: Any) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return outputs.logits

    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor | None, Any, torch.Tensor | None]:
        inputs = self._prepare_inputs(inputs)
        labels = inputs.get("labels")
        with torch.no_grad(), self.compute_loss_context_manager():
            if labels is not None:
                loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
                loss = loss.detach().mean()
            else:
                loss, outputs = None, model(pixel_values=inputs["pixel_values"])
        if prediction_loss_only:
            return loss, None, None
        logits = self._eval_logits(outputs)
        logits = tuple(t.detach() for t in logits) if isinstance(logits, tuple) else logits.detach()
        return loss, logits, labels

    # ---- checkpoints ----

    def restorable(self, checkpoint_dir: str | None) -> bool:
        """True when ``checkpoint_dir`` holds a plain ``model.safetensors`` that :func:`restore_weights` can load
        (not under DeepSpeed or FSDP, whose own loaders keep the in-memory parameter names)."""
        return (
            checkpoint_dir is not None
            and os.path.isfile(os.path.join(checkpoint_dir, SAFE_WEIGHTS))
            and not self.is_deepspeed_enabled
            and not self.is_fsdp_enabled
            and isinstance(self.model, PreTrainedModel)
        )

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        target = self.model if model is None else model
        if self.restorable(resume_from_checkpoint) and isinstance(target, PreTrainedModel):
            restore_weights(target, resume_from_checkpoint)
        else:
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _load_best_model(self) -> None:
        if self.restorable(self.state.best_model_checkpoint):
            restore_weights(self.model, self.state.best_model_checkpoint)
        else:
            super()._load_best_model()


class DistillationTrainer(LensTrainer):
    """Distillation from a frozen teacher classifier (DeiT's, Touvron et al. 2021, or Hinton et al.'s soft one).

    - A ``DeiTForImageClassificationWithTeacher`` student (outputs ``cls_logits``, ``distillation_logits`` and
      their mean ``logits``; no loss of its own): ``(1 - alpha) * CE(cls_logits, y) + alpha * D(distillation_logits)``.
      Without a teacher the distillation head learns the true labels. Evaluation logs the averaged head under
      the main keys and the two token heads as ``cls_*`` and ``dist_*``.
    - Any other classifier (one head, e.g. the SPT+LSA ViT): ``(1 - alpha) * CE(logits, y) + alpha * D(logits)``;
      without a teacher, plain cross-entropy.

    ``D`` is ``kind="hard"``: ``CE(student, argmax(teacher_logits))`` (DeiT's hard distillation), or
    ``kind="soft"``: ``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` with ``T = temperature``.
    The teacher is frozen: no gradients, eval mode, run under ``no_grad`` on the student's device, on the
    student's ``pixel_values`` (resized to the teacher's ``image_size`` when it differs), so it must have been
    trained on the same preprocessing.
    """

    def __init__(
        self,
        *args: Any,
        teacher: nn.Module | None = None,
        alpha: float = 0.5,
        kind: str = "hard",
        temperature: float = 1.0,
        **kwargs: Any,
    ):
        check_distillation(alpha, kind, temperature)
        super().__init__(*args, **kwargs)
        if self.regression:
            raise LensHFError("distillation trains classifiers; train a regression model with LensTrainer")
        self.alpha, self.kind, self.temperature = float(alpha), kind, float(temperature)
        self.teacher = teacher
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.eval()
            teacher.to(self.args.device)

    def teacher_logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The frozen teacher's logits for ``pixel_values`` (batch, C, H, W) -> (batch, num_labels) float32."""
        teacher = self.teacher
        assert teacher is not None
        teacher.eval()
        param = next(teacher.parameters(), None)
        if param is not None and param.device != pixel_values.device:
            teacher.to(pixel_values.device)
        size = getattr(teacher.config, "image_size", None) if hasattr(teacher, "config") else None
        if isinstance(size, int) and tuple(pixel_values.shape[-2:]) != (size, size):
            pixel_values = F.interpolate(
                pixel_values, size=(size, size), mode="bilinear", align_corners=False
            )
        with torch.no_grad():
            return teacher(pixel_values=pixel_values).logits.float()

    def distillation_loss(self, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
        """``D`` above: hard (CE against the teacher's argmax) or soft (T^2-scaled KL at temperature T)."""
        if self.kind == "hard":
            return F.cross_entropy(student_logits, teacher_logits.argmax(dim=-1))
        t = self.temperature
        return (t * t) * F.kl_div(
            F.log_softmax(student_logits.float() / t, dim=-1),
            F.log_softmax(teacher_logits / t, dim=-1),
            reduction="batchmean",
            log_target=True,
        )

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        pixel_values, labels = inputs["pixel_values"], inputs["labels"]
        outputs = model(pixel_values=pixel_values)
        smoothing = self.args.label_smoothing_factor
        two_heads = hasattr(outputs, "distillation_logits")
        label_head = outputs.cls_logits if two_heads else outputs.logits
        distilled_head = outputs.distillation_logits if two_heads else outputs.logits
        if self.teacher is None and not two_heads:  # nothing to distil: plain cross-entropy
            loss = F.cross_entropy(label_head, labels, label_smoothing=smoothing)
        else:  # without a teacher the distillation token learns the labels
            extra = (
                F.cross_entropy(distilled_head, labels)
                if self.teacher is None
                else self.distillation_loss(distilled_head, self.teacher_logits(pixel_values))
            )
            loss = (1.0 - self.alpha) * F.cross_entropy(label_head, labels, label_smoothing=smoothing)
            loss = loss + self.alpha * extra
        return (loss, outputs) if return_outputs else loss

    def _eval_logits(self, outputs: Any) -> torch.Tensor | tuple[torch.Tensor, ...]:
        if not hasattr(outputs, "distillation_logits"):
            return super()._eval_logits(outputs)
        return outputs.logits, outputs.cls_logits, outputs.distillation_logits
