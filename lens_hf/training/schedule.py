"""Epoch-based step decay of the learning rate, counted in optimizer updates.

The Trainer steps its scheduler once per optimizer update, so an epoch lasts
``ceil(batches_per_process / gradient_accumulation_steps)`` scheduler steps, where each process sees
``ceil(num_samples / (per_device_batch_size * world_size))`` batches (``floor`` with ``drop_last``).
"""

from __future__ import annotations

import math

import torch

from lens_hf.errors import LensHFError


def updates_per_epoch(
    num_samples: int,
    per_device_batch_size: int,
    *,
    world_size: int = 1,
    gradient_accumulation_steps: int = 1,
    drop_last: bool = False,
) -> int:
    """Optimizer updates in one pass over ``num_samples`` training images, as the Trainer counts them."""
    if num_samples < 1 or per_device_batch_size < 1 or world_size < 1 or gradient_accumulation_steps < 1:
        raise LensHFError(
            f"cannot count updates per epoch for {num_samples} samples, batch size {per_device_batch_size}, "
            f"world size {world_size}, accumulation {gradient_accumulation_steps}"
        )
    global_batch = per_device_batch_size * world_size
    batches = num_samples // global_batch if drop_last else math.ceil(num_samples / global_batch)
    return max(math.ceil(max(batches, 1) / gradient_accumulation_steps), 1)


class StepDecay:
    """LR multiplier ``gamma ** (epoch // step_epochs)`` with ``epoch = update // steps_per_epoch``,
    after an optional linear warmup over ``warmup_steps`` updates.

    ``time_decays`` counts decays placed by a time budget (:class:`lens_hf.training.trainer.TimeLimit`): the
    multiplier is ``gamma ** max(epoch // step_epochs, time_decays)``, so a decay the clock brought forward is
    not applied twice when its epoch comes; ``time_decay_epoch`` is the epoch at which the clock placed it (kept
    with the checkpoint, so a resumed run reports the decay where it happened).

    A callable object rather than a closure so that ``LambdaLR.state_dict()`` saves and restores it with
    the checkpoint.
    """

    def __init__(
        self, steps_per_epoch: int, step_epochs: int = 20, gamma: float = 0.1, warmup_steps: int = 0
    ):
        if steps_per_epoch < 1:
            raise LensHFError(f"steps_per_epoch must be at least 1, got {steps_per_epoch}")
        if step_epochs < 1:
            raise LensHFError(f"lr_step_epochs must be at least 1, got {step_epochs}")
        if not 0.0 < gamma <= 1.0:
            raise LensHFError(f"lr_step_gamma must be in (0, 1], got {gamma}")
        self.steps_per_epoch = int(steps_per_epoch)
        self.step_epochs = int(step_epochs)
        self.gamma = float(gamma)
        self.warmup_steps = max(int(warmup_steps), 0)
        self.time_decays = 0
        self.time_decay_epoch: float | None = None

    def __call__(self, update: int) -> float:
        """Multiplier of the base learning rate for the optimizer update with 0-based index ``update``."""
        epoch = update // self.steps_per_epoch
        factor = self.gamma ** max(epoch // self.step_epochs, self.time_decays)
        if update < self.warmup_steps:
            factor *= (update + 1) / self.warmup_steps
        return factor


def _step_decays(scheduler: torch.optim.lr_scheduler.LRScheduler | None) -> list[StepDecay]:
    lambdas = getattr(scheduler, "lr_lambdas", None)
    if not lambdas or not all(isinstance(lam, StepDecay) for lam in lambdas):
        return []
    return list(lambdas)


def decay_brought_forward_at(scheduler: torch.optim.lr_scheduler.LRScheduler | None) -> float | None:
    """The epoch at which a time budget brought ``scheduler``'s step decay forward (restored with a checkpoint
    when the run resumed), or None if it has not."""
    epochs = [lam.time_decay_epoch for lam in _step_decays(scheduler) if lam.time_decays >= 1]
    epochs = [e for e in epochs if e is not None]  # checkpoints written before the epoch was kept
    return min(epochs) if epochs else None


def bring_decay_forward(
    scheduler: torch.optim.lr_scheduler.LRScheduler | None, epoch: float | None = None
) -> bool:
    """Apply one step decay now (if the epoch schedule has not already): ``time_decays`` of every
    :class:`StepDecay` of ``scheduler`` becomes at least 1, and the optimizer's learning rates are updated at once;
    ``epoch`` (the training epoch now) is kept as the decay's. Returns whether ``scheduler`` has a step decay to
    bring forward (False for other schedules)."""
    lambdas = _step_decays(scheduler)
    if not lambdas:
        return False
    for lam in lambdas:
        if lam.time_decays < 1:
            lam.time_decays = 1
            lam.time_decay_epoch = epoch
    # LambdaLR sets the rates for update ``last_epoch`` (0-based), the next one the optimizer makes.
    rates = [base * lam(scheduler.last_epoch) for base, lam in zip(scheduler.base_lrs, lambdas)]
    for group, rate in zip(scheduler.optimizer.param_groups, rates):
        group["lr"] = rate
    scheduler._last_lr = rates
    return True


def step_decay_scheduler(
    optimizer: torch.optim.Optimizer,
    steps_per_epoch: int,
    *,
    step_epochs: int = 20,
    gamma: float = 0.1,
    warmup_steps: int = 0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """``LambdaLR`` dividing the learning rate by ``1 / gamma`` every ``step_epochs`` epochs."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, StepDecay(steps_per_epoch, step_epochs, gamma, warmup_steps)
    )
