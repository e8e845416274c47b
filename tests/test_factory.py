"""Model presets, fine-tuning of RGB checkpoints, loading saved models, optimizer groups."""

from __future__ import annotations

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from transformers import (
    DeiTConfig,
    DeiTForImageClassificationWithTeacher,
    ResNetConfig,
    ResNetForImageClassification,
    SwinConfig,
    SwinForImageClassification,
    ViTConfig,
    ViTForImageClassification,
)

from lens_hf.errors import LensHFError
from lens_hf.labels import ID2LABEL, LABEL2ID, LABELS
from lens_hf.models import (
    MODEL_PRESETS,
    ViTSPTLSAConfig,
    ViTSPTLSAForImageClassification,
    count_parameters,
    create_model,
    list_presets,
    load_for_finetuning,
    load_model,
    param_groups,
)

LENS_LABELS = {"id2label": dict(ID2LABEL), "label2id": dict(LABEL2ID)}
# Small stand-ins for RGB checkpoints of each family, 32 px.
RGB_SOURCES = {
    "vit": (
        ViTForImageClassification,
        ViTConfig,
        dict(patch_size=8, hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
    ),
    "deit": (
        DeiTForImageClassificationWithTeacher,
        DeiTConfig,
        dict(patch_size=8, hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
    ),
    "swin": (
        SwinForImageClassification,
        SwinConfig,
        dict(patch_size=4, embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=4),
    ),
    "resnet": (
        ResNetForImageClassification,
        ResNetConfig,
        dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"),
    ),
    "vit_spt_lsa": (
        ViTSPTLSAForImageClassification,
        ViTSPTLSAConfig,
        dict(patch_size=8, hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
    ),
    "vit_spt_lsa_conv_stem": (
        ViTSPTLSAForImageClassification,
        ViTSPTLSAConfig,
        dict(
            patch_size=8,
            hidden_size=24,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            conv_stem_channels=[4, 8],
        ),
    ),
}


def save_rgb_source(family: str, folder, labels=LENS_LABELS, seed: int = 0):
    model_class, config_class, kwargs = RGB_SOURCES[family]
    size = {} if family == "resnet" else {"image_size": 32}
    torch.manual_seed(seed)
    model = model_class(config_class(num_channels=3, **size, **kwargs, **labels)).eval()
    with torch.no_grad():  # BatchNorm statistics and LayerNorm affines away from their defaults
        for name, param in model.named_parameters():
            if "norm" in name or "normalization" in name:
                param.add_(0.1 * torch.randn_like(param))
        for name, buf in model.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
    model.save_pretrained(folder)
    return model


@pytest.mark.parametrize("name", list(MODEL_PRESETS))
def test_every_preset_runs_at_its_size_and_64_px(name):
    native = MODEL_PRESETS[name].config.get("image_size", 150)
    for size in (native, 64):
        model = create_model(name, image_size=size).eval()
        assert model.config.num_channels == 1
        assert model.config.id2label == dict(ID2LABEL)
        assert model.config.image_size == size
        with torch.no_grad():
            logits = model(torch.randn(1, 1, size, size)).logits
        assert logits.shape == (1, 3) and torch.isfinite(logits).all()
    if name != "resnet-18":
        assert count_parameters(model) < 2_500_000


def test_preset_table_and_sizing():
    assert list_presets() == [
        "vit-tiny",
        "vit-spt-lsa-tiny",
        "vit-spt-tiny",
        "vit-lsa-tiny",
        "vit-spt-lsa-stem",
        "deit-tiny",
        "swin-tiny",
        "resnet-18",
    ]
    stem = create_model("vit-spt-lsa-stem", num_hidden_layers=1)
    assert (stem.config.image_size, stem.config.patch_size, stem.config.conv_stem_channels) == (
        64,
        16,
        [32, 64, 128],
    )
    assert create_model("vit-spt-lsa-stem", image_size=96, num_hidden_layers=1).config.patch_size == 16
    with pytest.raises(LensHFError, match="stride 8.*image_size=144"):
        create_model("vit-spt-lsa-stem", image_size=150)
    assert type(create_model("deit-tiny", num_hidden_layers=1)) is DeiTForImageClassificationWithTeacher
    spt = create_model("vit-spt-tiny", num_hidden_layers=1)
    assert (spt.config.use_spt, spt.config.use_lsa) == (True, False)
    assert create_model("vit-spt-lsa-tiny", num_hidden_layers=1).config.patch_size == 10
    assert create_model("vit-spt-lsa-tiny", image_size=64, num_hidden_layers=1).config.patch_size == 8
    assert create_model("vit-tiny", image_size=64, patch_size=16, num_hidden_layers=1).config.patch_size == 16
    with pytest.raises(LensHFError, match="unknown model preset 'vit-huge'.*vit-spt-lsa-tiny"):
        create_model("vit-huge")
    with pytest.raises(LensHFError, match="not divisible by patch_size 16"):
        create_model("vit-spt-lsa-tiny", image_size=150, patch_size=16)


@pytest.mark.parametrize(("size", "largest"), [(150, 8), (64, 4)])
def test_swin_window_rule_refuses_exactly_what_hf_cannot_run(size, largest):
    small = dict(embed_dim=6, num_heads=[1, 1, 1])
    model = create_model("swin-tiny", image_size=size, window_size=largest, **small).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, size, size)).logits.shape == (1, 3)
    with pytest.raises(
        LensHFError, match=f"window_size {largest + 1} does not fit.*use window_size={largest}"
    ):
        create_model("swin-tiny", image_size=size, window_size=largest + 1, **small)
    # The refused combination really fails inside HF Swin.
    patch = 5 if size == 150 else 4
    config = SwinConfig(
        image_size=size,
        patch_size=patch,
        num_channels=1,
        embed_dim=6,
        depths=[2, 2, 2],
        num_heads=[1, 1, 1],
        window_size=largest + 1,
    )
    with pytest.raises(RuntimeError), torch.no_grad():
        SwinForImageClassification(config).eval()(torch.randn(1, 1, size, size))


def test_param_groups_decay_only_layer_weights():
    model = create_model("vit-spt-lsa-tiny", num_hidden_layers=2)
    groups = param_groups(model, weight_decay=0.05)
    decay, no_decay = groups
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    kept = {names[id(p)] for p in no_decay["params"]}
    assert all(model.get_parameter(n).ndim >= 2 for n in decayed)
    for name in (
        "vit.embeddings.cls_token",
        "vit.embeddings.position_embeddings",
        "vit.encoder.layer.0.attention.log_temperature",
        "vit.embeddings.patch_embeddings.layernorm.weight",
        "vit.encoder.layer.1.layernorm_before.weight",
        "classifier.bias",
    ):
        assert name in kept
    assert {
        "vit.encoder.layer.0.attention.q_proj.weight",
        "classifier.weight",
        "vit.embeddings.patch_embeddings.projection.weight",
    } <= decayed
    assert sum(p.numel() for g in groups for p in g["params"]) == count_parameters(model)

    swin = create_model("swin-tiny", image_size=64)
    swin_kept = {
        n for n, p in swin.named_parameters() if any(p is q for q in param_groups(swin, 0.1)[1]["params"])
    }
    assert any("relative_position_bias_table" in n for n in swin_kept)
    deit = create_model("deit-tiny", image_size=64, num_hidden_layers=1)
    deit_kept = {id(p) for p in param_groups(deit, 0.1)[1]["params"]}
    assert id(deit.deit.embeddings.distillation_token) in deit_kept
    deit.deit.embeddings.cls_token.requires_grad_(False)
    assert count_parameters(deit, trainable_only=True) == count_parameters(deit) - 192
    assert all(p.requires_grad for g in param_groups(deit, 0.1) for p in g["params"])


@pytest.mark.parametrize("family", list(RGB_SOURCES))
def test_rgb_kernel_folding_equals_replicated_grey_input(family, tmp_path):
    source = save_rgb_source(family, tmp_path)
    model = load_for_finetuning(tmp_path).eval()
    assert type(model) is type(source)
    assert model.config.num_channels == 1 and model.config.id2label == dict(ID2LABEL)
    grey = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        expected = source(grey.expand(-1, 3, -1, -1)).logits
        got = model(grey).logits
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("family", list(RGB_SOURCES))
def test_widening_a_grey_model_to_two_channels_keeps_its_answers(family, tmp_path):
    """A one-channel checkpoint fine-tuned on two-channel inputs (a multi-channel normalisation) gets the new
    channel with zero weights: it answers as before whatever the new channel holds (for convolutions exactly;
    SPT without a stem normalises the patch vector with the new channel in it, so only its shape is checked)."""
    save_rgb_source(family, tmp_path / "rgb")
    grey = load_for_finetuning(tmp_path / "rgb").eval()
    grey.save_pretrained(tmp_path / "grey")
    wide = load_for_finetuning(tmp_path / "grey", num_channels=2).eval()
    assert wide.config.num_channels == 2
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        expected = grey(x).logits
        got = wide(torch.cat([x, 5 * torch.randn_like(x)], dim=1)).logits
    assert got.shape == expected.shape
    if family != "vit_spt_lsa":
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)
    with pytest.raises(LensHFError, match="use 1 or 2"):
        load_for_finetuning(_saved(wide, tmp_path / "wide"), num_channels=3)


def _saved(model, folder):
    model.save_pretrained(folder)
    return folder


def test_finetuning_resizes_position_embeddings_and_replaces_head(tmp_path):
    source = save_rgb_source("vit", tmp_path / "same")
    model = load_for_finetuning(tmp_path / "same", image_size=48).eval()
    assert model.config.image_size == 48
    assert model.vit.embeddings.position_embeddings.shape == (1, 1 + 36, 24)
    grey = torch.randn(2, 1, 48, 48)
    with torch.no_grad():
        expected = source(grey.expand(-1, 3, -1, -1), interpolate_pos_encoding=True).logits
        got = model(grey).logits
    torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)

    other = {"id2label": {i: f"class_{i}" for i in range(5)}, "label2id": {f"class_{i}": i for i in range(5)}}
    five = save_rgb_source("vit", tmp_path / "five", labels=other)
    model = load_for_finetuning(tmp_path / "five")
    assert model.classifier.out_features == 3 and list(model.config.id2label.values()) == list(LABELS)
    torch.testing.assert_close(model.vit.layernorm.weight, five.vit.layernorm.weight)
    three_other = {"id2label": {i: f"c{i}" for i in range(3)}, "label2id": {f"c{i}": i for i in range(3)}}
    src = save_rgb_source("vit", tmp_path / "other3", labels=three_other)
    model = load_for_finetuning(tmp_path / "other3")
    assert not torch.equal(model.classifier.weight, src.classifier.weight)

    spt = save_rgb_source("vit_spt_lsa", tmp_path / "spt")
    model = load_for_finetuning(tmp_path / "spt", image_size=40).eval()
    with torch.no_grad():
        expected = spt(torch.ones(1, 3, 40, 40), interpolate_pos_encoding=True).logits
        torch.testing.assert_close(model(torch.ones(1, 1, 40, 40)).logits, expected, atol=2e-5, rtol=1e-4)
    with pytest.raises(LensHFError, match="not divisible by patch_size 8"):
        load_for_finetuning(tmp_path / "spt", image_size=44)


def test_load_model_honours_architectures(tmp_path):
    deit = create_model("deit-tiny", image_size=64, num_hidden_layers=1).eval()
    deit.save_pretrained(tmp_path / "deit")
    loaded = load_model(tmp_path / "deit")
    assert type(loaded) is DeiTForImageClassificationWithTeacher and not loaded.training
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, deit(x).logits)

    ours = create_model("vit-spt-lsa-tiny", image_size=64, num_hidden_layers=1).eval()
    ours.save_pretrained(tmp_path / "ours")
    loaded = load_model(str(tmp_path / "ours"))
    assert type(loaded) is ViTSPTLSAForImageClassification  # lens_hf's class, not a remote-code copy
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, ours(x).logits)

    resnet = create_model("resnet-18", image_size=64, hidden_sizes=[8, 8, 8, 8], embedding_size=8)
    resnet.save_pretrained(tmp_path / "resnet")
    assert load_model(tmp_path / "resnet").config.image_size == 64

    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    config["architectures"] = ["SomethingFromTheHub"]
    (tmp_path / "ours" / "config.json").write_text(json.dumps(config))
    with pytest.raises(LensHFError, match="SomethingFromTheHub.*not a transformers or lens_hf class"):
        load_model(tmp_path / "ours")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LensHFError, match="no config.json"):
        load_model(tmp_path / "empty")
    with pytest.raises(LensHFError, match="cannot load a model config"):
        load_model(tmp_path / "missing")


TINY_REGRESSORS = {
    "vit-tiny": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
    "vit-spt-lsa-tiny": dict(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    ),
    "deit-tiny": dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32),
    "swin-tiny": dict(embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=4, patch_size=4),
    "resnet-18": dict(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]),
}


@pytest.mark.parametrize("name", list(TINY_REGRESSORS))
def test_regression_models_have_one_output_and_reload_with_their_scaling(name, tmp_path):
    from transformers import AutoModelForImageClassification

    from lens_hf.processing.targets import TargetScaling

    scaling = TargetScaling("axion_mass", "log10", -23.0, 0.5)
    model = create_model(
        name, image_size=32, task="regression", target=scaling, **TINY_REGRESSORS[name]
    ).eval()
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    assert model.config.id2label == {0: "axion_mass"}
    model.save_pretrained(tmp_path / name)
    loaded = AutoModelForImageClassification.from_pretrained(tmp_path / name).eval()
    assert TargetScaling.from_config(loaded.config) == scaling
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        out = loaded(x).logits
        torch.testing.assert_close(out, model(x).logits)
    assert out.shape == (2, 1)


def test_regression_head_needs_a_target_and_a_known_task(tmp_path):
    with pytest.raises(LensHFError, match="needs a target"):
        create_model("resnet-18", task="regression")
    with pytest.raises(LensHFError, match="unknown task 'segmentation'"):
        create_model("resnet-18", task="segmentation")
    # A classifier checkpoint fine-tuned as a regressor: one new output, the encoder kept.
    source = save_rgb_source("vit", tmp_path / "classifier")
    model = load_for_finetuning(tmp_path / "classifier", task="regression", target="axion_mass")
    assert model.classifier.out_features == 1 and model.config.problem_type == "regression"
    torch.testing.assert_close(model.vit.layernorm.weight, source.vit.layernorm.weight)
    # ... and back: a regression checkpoint fine-tuned as a classifier loses its target scaling.
    from lens_hf.processing.targets import TargetScaling

    regressor = create_model(
        "vit-tiny",
        image_size=32,
        task="regression",
        target=TargetScaling("axion_mass", "log10", -23.0, 0.5),
        **TINY_REGRESSORS["vit-tiny"],
    )
    regressor.save_pretrained(tmp_path / "regressor")
    classifier = load_for_finetuning(tmp_path / "regressor")
    assert classifier.classifier.out_features == 3 and classifier.config.problem_type is None
    assert not hasattr(classifier.config, "lens_regression")


def test_classifier_checkpoint_finetuned_as_regressor_records_the_target_scaling(tmp_path):
    """What the regression recipe does with --model_name_or_path: the scaling lands in the config."""
    from lens_hf.processing.targets import TargetScaling

    classifier = create_model(
        "vit-spt-lsa-tiny",
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    classifier.save_pretrained(tmp_path / "classifier")
    scaling = TargetScaling("axion_mass", "log10", -23.0, 0.5)
    model = load_for_finetuning(tmp_path / "classifier", task="regression", target=scaling)
    assert model.config.problem_type == "regression" and model.config.num_labels == 1
    assert model.config.lens_regression == scaling.to_dict()
    torch.testing.assert_close(
        model.vit.embeddings.position_embeddings, classifier.vit.embeddings.position_embeddings
    )


def test_deit_from_scratch_gets_the_paper_initialisation_and_checkpoints_keep_theirs(tmp_path):
    """transformers 5 zero-initialises DeiT's tokens and position embeddings; a preset DeiT gets DeiT's/timm's
    truncated normal (std 0.02) instead: the two tokens differ and every position is told apart. A saved
    model reloads with the same values (not re-initialised on load)."""
    torch.manual_seed(0)
    model = create_model("deit-tiny", image_size=32, patch_size=4, num_hidden_layers=1)
    emb = model.deit.embeddings
    for tensor in (emb.cls_token, emb.distillation_token, emb.position_embeddings):
        assert 0.015 < float(tensor.detach().std()) < 0.025
    assert not torch.allclose(emb.cls_token, emb.distillation_token)
    positions = emb.position_embeddings[0]
    assert len({tuple(row.tolist()) for row in positions.round(decimals=6)}) == positions.shape[0]
    model.save_pretrained(tmp_path)
    reloaded = type(model).from_pretrained(tmp_path).deit.embeddings
    for name in ("cls_token", "distillation_token", "position_embeddings"):
        assert torch.equal(getattr(reloaded, name), getattr(emb, name)), name
