"""Per-dataset recipe defaults and training-set standardisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import HfArgumentParser

from lens_hf.cli import load_recipe
from lens_hf.data.dataset import build_from_simulation
from lens_hf.training import (
    LENS_INPUTS,
    DataArguments,
    DistillationArguments,
    LensTrainingArguments,
    ModelArguments,
    parse_args,
)
from lens_hf.training.args import dataset_preset
from lens_hf.training.run import build_processor


def _parse(argv, module_name="finetune_vit"):
    module = load_recipe(module_name)
    parser = HfArgumentParser((ModelArguments, DataArguments, LensTrainingArguments))
    return parse_args(parser, module.DEFAULTS, ["--output_dir", "x", *argv], module.DATASET_DEFAULTS)


def test_the_kind_of_data_picks_the_recipe_defaults(tmp_path):
    model, data, train = _parse(["--preset", "model_ii"])
    assert data.center_crop == 32 and data.stretch == "asinh" and data.standardize
    assert (
        model.config_overrides == {"patch_size": 8, "num_hidden_layers": 4} and train.learning_rate == 1.5e-4
    )
    assert train.warmup_steps == 100 and model.image_size is None
    # the DeiT recipe trains the same 4-layer size on lensing data; the SPT/LSA recipe keeps its preset's 6
    deit = load_recipe("finetune_deit")
    parser = HfArgumentParser((ModelArguments, DataArguments, LensTrainingArguments, DistillationArguments))
    argv = ["--output_dir", "x", "--preset", "model_ii"]
    model, *_ = parse_args(parser, deit.DEFAULTS, argv, deit.DATASET_DEFAULTS)
    assert model.config_overrides == {"patch_size": 8, "num_hidden_layers": 4}
    model, data, _ = _parse(["--preset", "model_iii"])
    assert model.image_size == LENS_INPUTS["model_iii"]["image_size"]
    # flags win over the per-dataset defaults
    _, data, train = _parse(["--preset", "model_ii", "--center_crop", "40", "--learning_rate", "1e-3"])
    assert data.center_crop == 40 and train.learning_rate == 1e-3
    # another model preset: the per-dataset settings describe the recipe's own preset, so they stay out
    model, data, train = _parse(
        ["--preset", "model_ii", "--model_preset", "vit-spt-lsa-stem"], "train_vit_spt_lsa"
    )
    assert data.center_crop is None and data.stretch == "none" and model.config_overrides is None


def test_a_saved_dataset_says_what_it_holds_and_a_bare_folder_needs_preset(tmp_path):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "lens_hf_dataset.json").write_text(json.dumps({"preset": "model_iii"}))
    assert dataset_preset(["--dataset", str(folder), "--preset", "model_ii"], {}, {}) == "model_iii"
    bare = tmp_path / "bare"
    bare.mkdir()
    assert dataset_preset(["--dataset", str(bare)], {}, {}) is None
    assert dataset_preset(["--dataset", str(bare), "--preset", "model_ii"], {}, {}) == "model_ii"
    assert dataset_preset([], {}, {}) == "model_i"
    _, data, _ = _parse(["--dataset", str(bare)])
    assert data.center_crop is None and not data.standardize


def test_standardisation_is_measured_on_the_training_split_and_saved(tmp_path):
    split = build_from_simulation("model_ii", 4, 3, splits={"train": 1.0}, progress=False)["train"]
    model, data, _ = _parse(["--preset", "model_ii"])
    processor = build_processor(model, data, (64, 64), split)
    assert processor.image_mean is not None and processor.image_std[0] > 0
    pixels = processor([np.asarray(im, dtype=np.float32) for im in split["image"]])["pixel_values"]
    assert pixels.shape[-2:] == (32, 32)
    assert float(pixels.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(pixels.std()) == pytest.approx(1.0, rel=1e-3)
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "preprocessor_config.json").read_text())
    assert saved["stretch"] == "asinh" and saved["image_mean"] == processor.image_mean


@pytest.mark.parametrize("ablation", ["vit-spt-tiny", "vit-lsa-tiny"])
def test_the_spt_lsa_ablations_get_the_same_inputs_as_the_full_model(ablation):
    """The SPT-only and LSA-only presets are the same model with a switch off: the same per-dataset inputs."""
    module = load_recipe("train_vit_spt_lsa")
    parser = HfArgumentParser((ModelArguments, DataArguments, LensTrainingArguments))
    argv = ["--output_dir", "x", "--preset", "model_ii", "--model_preset", ablation]
    model, data, train = parse_args(
        parser, module.DEFAULTS, argv, module.DATASET_DEFAULTS, dataset_default_presets=module.ABLATIONS
    )
    assert model.model_preset == ablation
    assert data.center_crop == 32 and data.stretch == "asinh" and data.standardize
    assert model.config_overrides == {"patch_size": 8, "spt_layer_norm": False}
    assert train.learning_rate == 1.5e-4


def test_fine_tuning_a_folder_feeds_it_the_inputs_it_was_trained_on(tmp_path):
    """--model_name_or_path a lens_hf folder: its processor's size, crop, stretch and standardisation are the
    defaults (a flag still wins), and its saved mean/std are kept rather than measured again."""
    from lens_hf.processing import LensImageProcessor

    saved = LensImageProcessor(
        size={"height": 48, "width": 48},
        crop_size={"height": 32, "width": 32},
        do_center_crop=True,
        stretch="asinh",
        image_mean=[0.25],
        image_std=[0.5],
    )
    saved.save_pretrained(tmp_path / "ckpt")
    ckpt = ["--model_name_or_path", str(tmp_path / "ckpt"), "--preset", "model_i"]
    model, data, _ = _parse(ckpt)
    assert model.image_size == 48 and data.center_crop == 32
    assert data.stretch == "asinh" and data.standardize and data.normalization == "minmax"
    split = build_from_simulation("model_ii", 3, 3, splits={"train": 1.0}, progress=False)["train"]
    processor = build_processor(model, data, (64, 64), split)
    assert processor.image_mean == [0.25] and processor.image_std == [0.5]
    # other inputs than the checkpoint's: the statistics are measured on the new training split
    model, data, _ = _parse([*ckpt, "--center_crop", "24"])
    assert data.center_crop == 24
    processor = build_processor(model, data, (64, 64), split)
    assert processor.image_mean != [0.25] and processor.image_std != [0.5]
    # random crops replace the default centre crop instead of clashing with it
    _, data, _ = _parse([*ckpt, "--random_crop", "40"])
    assert data.random_crop == 40 and data.center_crop is None
    # a plain preset or a Hub id: nothing from any checkpoint
    _, data, _ = _parse(["--model_name_or_path", "some-org/some-model", "--preset", "model_i"])
    assert data.center_crop is None and data.stretch == "none"
