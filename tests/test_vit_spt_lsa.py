"""ViT with Shifted Patch Tokenization + Locality Self-Attention: the paper's operations, HF integration, saving."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from transformers import AutoConfig, AutoModelForImageClassification

from lens_hf.models import ViTSPTLSAConfig, ViTSPTLSAForImageClassification, ViTSPTLSAModel


def tiny_config(**overrides) -> ViTSPTLSAConfig:
    kwargs = dict(
        image_size=16,
        patch_size=4,
        num_channels=1,
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=3,
        intermediate_size=32,
        id2label={0: "no_substructure", 1: "subhalo", 2: "vortex"},
        label2id={"no_substructure": 0, "subhalo": 1, "vortex": 2},
    )
    kwargs.update(overrides)
    return ViTSPTLSAConfig(**kwargs)


def tiny_model(seed: int = 0, **overrides) -> ViTSPTLSAForImageClassification:
    torch.manual_seed(seed)
    return ViTSPTLSAForImageClassification(tiny_config(**overrides)).eval()


def reference_shift(x: np.ndarray, s: int) -> np.ndarray:
    """Hand-written SPT stack: the image, then copies with content moved by (dy, dx), zero where it left."""
    batch, channels, height, width = x.shape
    moves = [(s, s), (s, -s), (-s, s), (-s, -s)]
    out = np.zeros((batch, 5 * channels, height, width), dtype=x.dtype)
    out[:, :channels] = x
    for k, (dy, dx) in enumerate(moves, start=1):
        for i in range(height):
            for j in range(width):
                si, sj = i - dy, j - dx
                if 0 <= si < height and 0 <= sj < width:
                    out[:, k * channels : (k + 1) * channels, i, j] = x[:, :, si, sj]
    return out


def test_spt_shift_matches_hand_written_reference():
    model = tiny_model(image_size=8, patch_size=4, num_channels=2)
    patch_embeddings = model.vit.embeddings.patch_embeddings
    x = torch.arange(2 * 2 * 8 * 8, dtype=torch.float32).reshape(2, 2, 8, 8) + 1.0
    got = patch_embeddings.shifted_images(x).numpy()
    expected = reference_shift(x.numpy(), s=2)
    assert got.shape == (2, 10, 8, 8)
    np.testing.assert_array_equal(got, expected)
    # Content moved down-right by 2 px: the top-left 2 rows/columns are zero fill.
    assert (got[:, 2:4, :2, :] == 0).all() and (got[:, 2:4, 2:, 2:] == x.numpy()[:, :, :-2, :-2]).all()


def test_spt_patch_vectors_are_flattened_pixel_major():
    model = tiny_model(image_size=8, patch_size=4, num_channels=1)
    patch_embeddings = model.vit.embeddings.patch_embeddings
    seen = {}
    patch_embeddings.layernorm.register_forward_hook(lambda mod, inp, out: seen.setdefault("in", inp[0]))
    x = torch.randn(1, 1, 8, 8)
    with torch.no_grad():
        tokens = patch_embeddings(x)
    stacked = reference_shift(x.numpy(), s=2)[0]  # (5, 8, 8)
    vectors = [
        [stacked[c, 4 * pr + i, 4 * pc + j] for i in range(4) for j in range(4) for c in range(5)]
        for pr in range(2)
        for pc in range(2)
    ]
    np.testing.assert_allclose(seen["in"][0].numpy(), np.array(vectors), rtol=0, atol=0)
    assert tokens.shape == (1, 4, 24)


def test_lsa_masks_the_diagonal_and_plain_attention_does_not():
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        out = tiny_model().forward(x, output_attentions=True)
        plain = tiny_model(use_lsa=False).forward(x, output_attentions=True)
    assert len(out.attentions) == 2
    for attn in out.attentions:
        assert attn.shape == (2, 3, 17, 17)
        assert torch.count_nonzero(torch.diagonal(attn, dim1=-2, dim2=-1)) == 0
        torch.testing.assert_close(attn.sum(-1), torch.ones(2, 3, 17))
    assert (torch.diagonal(plain.attentions[0], dim1=-2, dim2=-1) > 0).all()


@pytest.mark.parametrize("use_lsa", [True, False])
def test_eager_and_sdpa_give_the_same_logits(use_lsa):
    model = tiny_model(use_lsa=use_lsa)
    with torch.no_grad():
        for layer in model.vit.encoder.layer:  # temperatures away from their initial value
            if use_lsa:
                layer.attention.log_temperature.uniform_(-0.5, 2.0)
    x = torch.randn(3, 1, 16, 16)
    model.set_attn_implementation("eager")
    assert model.config._attn_implementation == "eager"
    with torch.no_grad():
        eager = model(x).logits
    model.set_attn_implementation("sdpa")
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        sdpa = model(x).logits
    torch.testing.assert_close(sdpa, eager, atol=1e-5, rtol=0)


def test_temperature_starts_at_the_usual_scale_and_learns():
    model = tiny_model(hidden_size=48, num_attention_heads=3)  # head_dim 16
    for layer in model.vit.encoder.layer:
        scale = torch.exp(-layer.attention.log_temperature)
        torch.testing.assert_close(scale, torch.full((3,), 1 / math.sqrt(16)))
    model.train()
    out = model(torch.randn(2, 1, 16, 16), labels=torch.tensor([0, 2]))
    out.loss.backward()
    assert model.vit.encoder.layer[0].attention.log_temperature.grad.abs().sum() > 0


def test_ablation_switches_change_the_modules():
    both = tiny_model()
    plain = tiny_model(use_spt=False, use_lsa=False)
    patch = both.vit.embeddings.patch_embeddings
    assert isinstance(patch.projection, torch.nn.Linear) and patch.projection.in_features == 5 * 1 * 4 * 4
    assert isinstance(patch.layernorm, torch.nn.LayerNorm)
    assert isinstance(plain.vit.embeddings.patch_embeddings.projection, torch.nn.Conv2d)
    assert not hasattr(plain.vit.embeddings.patch_embeddings, "layernorm")
    assert "vit.encoder.layer.0.attention.log_temperature" in both.state_dict()
    assert not any("log_temperature" in key for key in plain.state_dict())
    spt_only = tiny_model(use_lsa=False)
    lsa_only = tiny_model(use_spt=False)
    assert spt_only.vit.encoder.layer[0].attention.log_temperature is None
    assert isinstance(lsa_only.vit.embeddings.patch_embeddings.projection, torch.nn.Conv2d)
    assert lsa_only.vit.encoder.layer[0].attention.log_temperature is not None


def test_config_validation_gives_clear_errors():
    with pytest.raises(ValueError, match="not divisible by patch_size 16.*patch_size=15"):
        ViTSPTLSAConfig(image_size=150, patch_size=16)
    with pytest.raises(ValueError, match="hidden_size 100 is not divisible by num_attention_heads 3"):
        ViTSPTLSAConfig(hidden_size=100, num_attention_heads=3)
    with pytest.raises(ValueError, match="pooling"):
        ViTSPTLSAConfig(pooling="max")
    default = ViTSPTLSAConfig()
    assert (default.image_size, default.patch_size, default.num_channels) == (150, 10, 1)


def test_flash_attention_is_refused_with_lsa(tmp_path):
    model = tiny_model()
    with pytest.raises(ValueError, match="Locality Self-Attention"):
        model.set_attn_implementation("flash_attention_2")
    model.config._attn_implementation = "flex_attention"
    with pytest.raises(ValueError, match="cannot take the diagonal mask"):
        model(torch.randn(1, 1, 16, 16))


def test_classification_outputs_loss_pooling_and_sizes():
    model = tiny_model()
    x = torch.randn(4, 1, 16, 16)
    labels = torch.tensor([0, 1, 2, 1])
    with torch.no_grad():
        out = model(x, labels=labels, output_hidden_states=True)
        as_tuple = model(x, return_dict=False)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, labels))
    assert out.logits.shape == (4, 3) and len(out.hidden_states) == 3
    assert out.hidden_states[-1].shape == (4, 17, 24)
    torch.testing.assert_close(as_tuple[0], out.logits)
    mean_model = tiny_model(pooling="mean")
    with torch.no_grad():
        base = mean_model.vit(x)
    torch.testing.assert_close(base.pooler_output, base.last_hidden_state[:, 1:].mean(1))
    with pytest.raises(ValueError, match="interpolate_pos_encoding"):
        model(torch.randn(1, 1, 24, 24))
    with torch.no_grad():
        assert model(torch.randn(1, 1, 24, 24), interpolate_pos_encoding=True).logits.shape == (1, 3)
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(1, 3, 16, 16))


def test_save_and_load_round_trip_keeps_logits(tmp_path):
    model = tiny_model()
    with torch.no_grad():
        model.vit.encoder.layer[1].attention.log_temperature.copy_(torch.tensor([0.1, 0.7, 1.3]))
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "vit_spt_lsa"
    assert saved["auto_map"]["AutoModelForImageClassification"].startswith("modeling_vit_spt_lsa.")
    assert (tmp_path / "modeling_vit_spt_lsa.py").is_file()
    assert (tmp_path / "configuration_vit_spt_lsa.py").is_file()

    assert isinstance(AutoConfig.from_pretrained(tmp_path), ViTSPTLSAConfig)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path).eval()
    assert type(loaded) is ViTSPTLSAForImageClassification
    torch.testing.assert_close(
        loaded.vit.encoder.layer[1].attention.log_temperature, torch.tensor([0.1, 0.7, 1.3])
    )
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, model(x).logits, atol=0, rtol=0)
    base = ViTSPTLSAModel.from_pretrained(tmp_path)
    torch.testing.assert_close(base.embeddings.cls_token, model.vit.embeddings.cls_token)


def test_saved_folder_loads_with_remote_code_where_lens_hf_is_absent(tmp_path):
    folder = tmp_path / "model"
    model = tiny_model(seed=3)
    model.save_pretrained(folder)
    x = torch.randn(2, 1, 16, 16)
    np.save(tmp_path / "x.npy", x.numpy())
    with torch.no_grad():
        expected = model(x).logits.numpy()
    script = textwrap.dedent(
        """
        import importlib.abc, json, sys

        class NoLensHF(importlib.abc.MetaPathFinder):  # hides lens_hf even where it is pip-installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "lens_hf":
                    raise ModuleNotFoundError(f"No module named {name!r}")

        sys.meta_path.insert(0, NoLensHF())
        import numpy as np, torch
        from transformers import AutoModelForImageClassification
        model = AutoModelForImageClassification.from_pretrained("model", trust_remote_code=True).eval()
        with torch.no_grad():
            logits = model(torch.from_numpy(np.load("x.npy"))).logits
        assert not any(name.startswith("lens_hf") for name in sys.modules)
        print(json.dumps({"class": type(model).__name__, "logits": logits.tolist()}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["class"] == "ViTSPTLSAForImageClassification"
    np.testing.assert_allclose(np.array(report["logits"]), expected, atol=1e-6, rtol=0)


def test_conv_stem_tokenises_the_feature_map_with_spt():
    model = tiny_model(image_size=16, patch_size=4, conv_stem_channels=[6])
    embed = model.get_input_embeddings()
    # One stride-2 convolution: tokens still cover 4x4 input pixels = 2x2 feature-map pixels, shifted by 1.
    assert (embed.token_patch, embed.token_channels, embed.shift) == (2, 6, 1)
    assert embed.layernorm.normalized_shape == (5 * 6 * 2 * 2,)
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        tokens = embed(x)
        stacked = embed.shifted_images(embed.stem(x)).numpy()
    assert tokens.shape == (2, 16, 24)
    np.testing.assert_array_equal(stacked, reference_shift(embed.stem(x).detach().numpy(), 1))
    with pytest.raises(ValueError, match="stride 4"):
        tiny_config(patch_size=2, conv_stem_channels=[4, 4])


def test_spt_without_its_patch_layer_norm_keeps_the_brightness_of_each_patch():
    """spt_layer_norm=False projects each shifted patch as it is: a faint and a bright copy of the same image
    give different tokens (with the per-patch LayerNorm they give the same ones)."""
    torch.manual_seed(0)
    with_norm = tiny_model()
    without = tiny_model(spt_layer_norm=False)
    assert isinstance(without.vit.embeddings.patch_embeddings.layernorm, torch.nn.Identity)
    assert not any("patch_embeddings.layernorm" in key for key in without.state_dict())
    assert with_norm.config.spt_layer_norm and not without.config.spt_layer_norm
    image = torch.rand(1, 1, 16, 16) + 0.1
    for model, same in ((with_norm, True), (without, False)):
        embed = model.vit.embeddings.patch_embeddings.eval()
        with torch.no_grad():
            faint, bright = embed(image), embed(10 * image)
        assert torch.allclose(faint, bright, atol=1e-3) == same
