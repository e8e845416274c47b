"""Attention maps of transformer classifiers: which image patches the prediction draws on.

:func:`attention_rollout` (Abnar & Zuidema 2020) follows the information from the patch tokens through every
layer (heads averaged, the residual connection counted as an identity), and :func:`attention_map` turns it into
one weight per patch, read from the tokens the classification head pools (the CLS token, and DeiT's
distillation token; every patch token for mean-pooled models). Models without global attention over patch
tokens (ResNet, and Swin, whose attention stays inside shifted windows) give no map.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

# Tokens that may precede the patch tokens: CLS, and DeiT's distillation token.
MAX_PREFIX_TOKENS = 2


def attention_rollout(attentions: Sequence[torch.Tensor]) -> torch.Tensor:
    """Attention rollout: average the heads, add the residual identity, renormalise the rows and multiply
    through the layers. (batch, heads, tokens, tokens) per layer -> (batch, tokens, tokens)."""
    rollout = None
    for att in attentions:
        a = att.float().mean(dim=1)  # (batch, tokens, tokens)
        a = a + torch.eye(a.shape[-1], dtype=a.dtype)
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
    return rollout


def _patch_grid(num_tokens: int) -> tuple[int, int] | None:
    """(prefix tokens, grid side) when ``num_tokens`` is 1-2 prefix tokens followed by a square grid of patch
    tokens, else None."""
    for prefix in range(1, MAX_PREFIX_TOKENS + 1):
        side = math.isqrt(max(num_tokens - prefix, 0))
        if side > 0 and side * side == num_tokens - prefix:
            return prefix, side
    return None


def attention_map(model: torch.nn.Module, pixel_values: torch.Tensor) -> np.ndarray | None:
    """How much each patch feeds what the classification head reads: (batch, grid, grid) float32, each map
    summing to at most 1; None when the model has no global attention over patch tokens.

    ``pixel_values`` (batch, channels, height, width) as the model's image processor gives them; patch
    ``(i, j)`` covers rows ``i * height / grid`` to ``(i + 1) * height / grid`` of that input. Models running
    an attention implementation that cannot return the weights (SDPA) are switched to the eager one, which
    computes the same attention, for this call only.
    """
    implementation = getattr(model.config, "_attn_implementation", None)
    switched = False
    try:
        if implementation not in (None, "eager") and hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation("eager")
            switched = True
        with torch.no_grad():
            outputs = model(pixel_values=pixel_values, output_attentions=True)
    except (TypeError, ValueError):  # a model whose forward or attention setting does not take this
        return None
    finally:
        if switched:
            model.set_attn_implementation(implementation)
    attentions = getattr(outputs, "attentions", None)
    if not attentions:
        return None
    batch = pixel_values.shape[0]
    shape = tuple(attentions[0].shape)
    if any(tuple(a.shape) != shape for a in attentions) or len(shape) != 4 or shape[0] != batch:
        return None  # windowed attention (Swin): no token sees the whole image
    layout = _patch_grid(shape[-1])
    if layout is None or shape[-2] != shape[-1]:
        return None
    prefix, side = layout
    rollout = attention_rollout(attentions)  # (batch, tokens, tokens)
    if getattr(model.config, "pooling", "cls") == "mean":
        weights = rollout[:, prefix:, prefix:].mean(dim=1)  # the head reads the mean of the patch tokens
    else:
        weights = rollout[:, :prefix, prefix:].mean(dim=1)  # the head reads CLS (and distillation) tokens
    return weights.reshape(batch, side, side).numpy().astype(np.float32)


__all__ = ["attention_map", "attention_rollout"]
