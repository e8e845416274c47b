"""Attention maps: rollout arithmetic, one map per image for every transformer family with global attention,
none for models without it, and the model left as it was."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import MODEL_INPUT_PX, TINY_VIT

from lens_hf.attention import attention_map, attention_rollout
from lens_hf.models.factory import create_model


def test_rollout_follows_the_tokens_through_the_layers():
    # Layer 1: every token attends only to token 1; layer 2: only to itself. With the residual identity, row
    # i of layer 1 is (e_i + e_1) / 2, and the identity layer 2 leaves it unchanged after renormalising.
    tokens = 3
    first = torch.zeros(1, 2, tokens, tokens)
    first[..., 1] = 1.0
    second = torch.eye(tokens).expand(1, 2, tokens, tokens)
    rollout = attention_rollout([first, second])
    expected = (torch.eye(tokens) + torch.zeros(tokens, tokens).index_fill(1, torch.tensor([1]), 1.0)) / 2
    torch.testing.assert_close(rollout[0], expected)
    torch.testing.assert_close(rollout.sum(dim=-1), torch.ones(1, tokens))


@pytest.mark.parametrize(
    "preset, options",
    [("vit-spt-lsa-tiny", TINY_VIT), ("vit-tiny", {}), ("deit-tiny", {})],
)
def test_transformers_give_one_map_per_image_and_stay_unchanged(preset, options):
    torch.manual_seed(0)
    model = create_model(preset, image_size=MODEL_INPUT_PX, **options).eval()
    implementation = model.config._attn_implementation
    pixel_values = torch.rand(3, model.config.num_channels, MODEL_INPUT_PX, MODEL_INPUT_PX)
    with torch.no_grad():
        before = model(pixel_values=pixel_values).logits
    maps = attention_map(model, pixel_values)
    grid = MODEL_INPUT_PX // model.config.patch_size
    assert maps.shape == (3, grid, grid) and maps.dtype == np.float32
    totals = maps.sum(axis=(1, 2))
    assert np.all(maps >= 0) and np.all(totals > 0) and np.all(totals <= 1 + 1e-5)
    assert not np.allclose(maps[0], maps[1])  # each image has its own map
    assert model.config._attn_implementation == implementation  # switched to eager for the call only
    with torch.no_grad():
        torch.testing.assert_close(model(pixel_values=pixel_values).logits, before)


@pytest.mark.parametrize("preset", ["swin-tiny", "resnet-18"])
def test_models_without_global_attention_give_no_map(preset):
    model = create_model(preset, image_size=MODEL_INPUT_PX).eval()
    assert attention_map(model, torch.rand(2, 1, MODEL_INPUT_PX, MODEL_INPUT_PX)) is None
