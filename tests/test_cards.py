"""lens_hf.cards: cards render from the hub_cards templates and parse with huggingface_hub's card classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import DatasetCard, ModelCard
from safetensors.numpy import save_file

from lens_hf.cards import (
    count_safetensors_parameters,
    render_dataset_card,
    render_model_card,
    write_dataset_card,
    write_model_card,
)
from lens_hf.errors import LensHFError
from lens_hf.labels import LABELS
from lens_hf.metrics import softmax, write_evaluation

MODEL_TAGS = {"gravitational-lensing", "dark-matter", "deeplense", "lens_hf", "vision-transformer"}


def _model_folder(root: Path, *, with_metrics: bool = True, drop_class: int | None = None) -> Path:
    """A saved-model-like folder: config, preprocessor config, safetensors weights, training record, metrics."""
    root.mkdir(parents=True, exist_ok=True)
    config = {
        "model_type": "vit_spt_lsa",
        "architectures": ["ViTSPTLSAForImageClassification"],
        "image_size": 64,
        "num_channels": 1,
        "patch_size": 8,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "id2label": {str(i): name for i, name in enumerate(LABELS)},
    }
    (root / "config.json").write_text(json.dumps(config))
    (root / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "LensImageProcessor",
                "normalization": "minmax",
                "size": {"height": 64, "width": 64},
            }
        )
    )
    save_file(
        {
            "embed.weight": np.zeros((32, 64), np.float32),
            "head.weight": np.zeros((3, 32), np.float32),
            "head.bias": np.zeros(3, np.float32),
        },
        str(root / "model.safetensors"),
    )
    (root / "lens_hf_training.json").write_text(
        json.dumps(
            {
                "command": ["lens-hf", "train", "--model", "vit-spt-lsa-tiny", "--preset", "model_i"],
                "model_args": {"model_preset": "vit-spt-lsa-tiny"},
                "data_args": {"preset": "model_i", "per_class": 120},
                "training_args": {
                    "learning_rate": 0.0005,
                    "num_train_epochs": 3,
                    "seed": 7,
                    "logging_steps": 10,
                },
            }
        )
    )
    if with_metrics:
        rng = np.random.default_rng(0)
        y = rng.integers(0, 3, 90)
        if drop_class is not None:
            y = np.where(y == drop_class, (drop_class + 1) % 3, y)
        logits = rng.normal(size=(90, 3))
        logits[np.arange(90), y] += 2
        write_evaluation(root, y, softmax(logits), extra={"split": "test"})
    return root


def _eval_by_config(card: ModelCard) -> dict[str, float]:
    return {(r.metric_config or r.metric_type): r.metric_value for r in card.data.eval_results}


def test_model_card_parses_and_carries_metrics(tmp_path) -> None:
    folder = _model_folder(tmp_path / "model")
    metrics = json.loads((folder / "metrics.json").read_text())
    text = render_model_card(folder, repo_id="someone/lens-vit")
    card = ModelCard(text)

    assert card.data.license == "mit"
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "image-classification"
    assert MODEL_TAGS <= set(card.data.tags)
    assert card.data.model_name == "lens-vit"
    values = _eval_by_config(card)
    assert values["macro"] == pytest.approx(metrics["roc_auc_macro"], abs=1e-6)
    assert values["micro"] == pytest.approx(metrics["roc_auc_micro"], abs=1e-6)
    for name in LABELS:
        assert values[name] == pytest.approx(metrics["roc_auc_per_class"][name], abs=1e-6)
    assert values["accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-6)
    assert {r.task_type for r in card.data.eval_results} == {"image-classification"}
    assert {r.dataset_type for r in card.data.eval_results} == {"deeplense-model_i"}
    assert {r.dataset_split for r in card.data.eval_results} == {"test"}

    body = card.text
    assert "${" not in text
    assert "lens-hf train --model vit-spt-lsa-tiny --preset model_i" in body
    assert "| patch size (px) | 8 |" in body and "64x64 px, 1 channel(s)" in body
    assert "| parameters | 2,147 |" in body
    assert f"| ROC-AUC macro | {metrics['roc_auc_macro']:.4f} |" in body
    assert 'pipeline("image-classification", model="someone/lens-vit", trust_remote_code=True)' in body
    assert "lens-hf predict --model someone/lens-vit" in body
    assert "![ROC curves](roc.png)" in body
    assert "0.9955" in body and "simulated" in body.lower()  # distance to the published Model I number
    assert "`training_args.learning_rate` | 0.0005" in body


def test_model_card_training_kwarg_overrides_and_training_args_json(tmp_path) -> None:
    folder = _model_folder(tmp_path / "model")
    (folder / "lens_hf_training.json").unlink()
    (folder / "training_args.json").write_text(
        json.dumps({"learning_rate": 0.001, "seed": 3, "report_to": []})
    )
    text = render_model_card(
        folder, training={"command": "python recipes/train.py --preset model_ii", "preset": "model_ii"}
    )
    assert "python recipes/train.py --preset model_ii" in text
    assert "| `learning_rate` | 0.001 |" in text
    assert "Simulation preset `model_ii`" in text
    assert {r.dataset_type for r in ModelCard(text).data.eval_results} == {"deeplense-model_ii"}


def test_model_card_reads_the_training_record_of_lens_hf_training(tmp_path) -> None:
    """The record lens_hf.training writes: data described under "dataset", raw arguments under *_args."""
    folder = _model_folder(tmp_path / "model")
    record = {
        "command": "lens-hf train --preset model_iii",
        "data_args": {"dataset": None, "preset": "model_i", "train_per_class": 40},
        "dataset": {
            "source": "simulated",
            "preset": "model_iii",
            "splits": {"train": 120, "validation": 30, "test": 60},
            "image_size": [64, 64],
            "normalization": "minmax",
            "augment": "d4",
        },
        "num_parameters": 12345,
    }
    (folder / "lens_hf_training.json").write_text(json.dumps(record))
    card = ModelCard(render_model_card(folder))
    assert {r.dataset_type for r in card.data.eval_results} == {"deeplense-model_iii"}
    assert "Simulation preset `model_iii`" in card.text
    assert "Images: train 120, validation 30, test 60." in card.text
    assert "Source images 64x64 px, per-image `minmax` normalisation, `d4` augmentation." in card.text
    assert "| parameters | 12,345 |" in card.text

    record["data_args"]["dataset"] = "/data/model_ii_archive"
    record["dataset"] = {
        "source": "/data/model_ii_archive",
        "splits": {"train": 9, "validation": 3, "test": 3},
    }
    (folder / "lens_hf_training.json").write_text(json.dumps(record))
    card = ModelCard(render_model_card(folder))
    assert {r.dataset_type for r in card.data.eval_results} == {"lens_hf-custom"}
    assert "Simulation preset" not in card.text and "0.9955" not in card.text
    assert "Dataset: `/data/model_ii_archive`." in card.text


def test_model_card_names_the_evaluation_data_and_the_training_device(tmp_path) -> None:
    folder = _model_folder(tmp_path / "model")
    test_set = tmp_path / "model_i_test_seed999"
    test_set.mkdir()
    (test_set / "lens_hf_simulation.json").write_text(
        json.dumps({"preset": "model_i", "seed": 999, "per_class": 1000, "preset_params": {}})
    )
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["data"] = str(test_set)
    record = json.loads((folder / "lens_hf_training.json").read_text())
    record.update(train_runtime_s=300.0, device="cuda:0", device_name="NVIDIA H100 80GB HBM3")
    (folder / "lens_hf_training.json").write_text(json.dumps(record))

    body = ModelCard(render_model_card(folder, metrics=metrics)).text
    assert (
        "on the `test` split of `model_i_test_seed999` (lens_hf simulation `model_i`, seed 999, "
        "1000 images per class): 90 images." in body
    )
    assert "5 min of training on cuda:0 (NVIDIA H100 80GB HBM3) (1 process)" in body

    # A data folder without a simulation record is named alone; metrics without a folder name none.
    (test_set / "lens_hf_simulation.json").unlink()
    body = ModelCard(render_model_card(folder, metrics=metrics)).text
    assert "split of `model_i_test_seed999`: 90 images." in body
    del metrics["data"]
    assert "split: 90 images." in ModelCard(render_model_card(folder, metrics=metrics)).text


def test_model_card_without_metrics_has_no_results(tmp_path) -> None:
    folder = _model_folder(tmp_path / "model", with_metrics=False)
    card = ModelCard(render_model_card(folder))
    assert not card.data.eval_results
    assert "No evaluation was recorded" in card.text
    assert card.data.model_name == "model"


def test_model_card_absent_class_metric_is_skipped(tmp_path) -> None:
    folder = _model_folder(tmp_path / "model", drop_class=2)
    card = ModelCard(render_model_card(folder))
    configs = {r.metric_config for r in card.data.eval_results}
    assert "vortex" not in configs and {"macro", "micro", "subhalo"} <= configs
    assert "| ROC-AUC `vortex` | n/a |" in card.text
    assert "Note: AUC undefined (null) for vortex" in card.text


def test_write_model_card_and_errors(tmp_path) -> None:
    folder = _model_folder(tmp_path / "model")
    path = write_model_card(folder, repo_id="org/name")
    assert path == folder / "README.md"
    card = ModelCard.load(path)
    assert card.data.eval_results and card.data.model_name == "name"
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []

    with pytest.raises(LensHFError, match="no config.json"):
        render_model_card(tmp_path / "empty")
    (folder / "metrics.json").write_text("{not json")
    with pytest.raises(LensHFError, match="metrics.json: not valid JSON"):
        render_model_card(folder)
    with pytest.raises(LensHFError, match="missing metric key"):
        render_model_card(folder, metrics={"accuracy": 1.0})


def test_count_safetensors_parameters(tmp_path) -> None:
    folder = _model_folder(tmp_path / "model", with_metrics=False)
    assert count_safetensors_parameters(folder) == 32 * 64 + 3 * 32 + 3
    assert count_safetensors_parameters(tmp_path) is None


DATASET_INFO = {
    "preset": "model_i",
    "per_class": 4,
    "seed": 11,
    "splits": {"train": 8, "validation": 2, "test": 2},
    "image_size": 150,
    "normalization": "minmax",
    "source": "simulation",
    "command": ["lens-hf", "dataset", "simulate", "--preset", "model_i", "--per-class", "4"],
}


def test_dataset_card_parses(tmp_path) -> None:
    text = render_dataset_card(DATASET_INFO)
    assert "${" not in text
    card = DatasetCard(text)
    assert card.data.task_categories == ["image-classification"]
    assert card.data.license == "mit"
    assert card.data.size_categories == ["n<1K"]
    files = card.data.configs[0]["data_files"]
    assert files == [{"split": s, "path": f"data/{s}-*.parquet"} for s in ("train", "validation", "test")]
    for name in LABELS:
        assert f"`{name}`" in card.text
    assert "| `validation` | 2 |" in card.text
    assert "lens-hf dataset simulate --preset model_i --per-class 4" in card.text
    assert "150x150 px" in card.text and "0.05 arcsec/px" in card.text
    with pytest.raises(LensHFError, match="splits"):
        render_dataset_card({**DATASET_INFO, "splits": {}})


def test_dataset_card_from_cli_and_folder_info() -> None:
    simulated = DatasetCard(
        render_dataset_card({**DATASET_INFO, "source": "simulation (model_i)", "image_size": [150, 150]})
    )
    assert (
        "simulated with lenstronomy (lens_hf preset `model_i`, seed 11, 4 images per class)" in simulated.text
    )
    folder_info = {
        "source": "/data/archive",
        "seed": 0,
        "splits": {"test": 6},
        "normalization": None,
        "command": None,
    }
    built = DatasetCard(
        render_dataset_card({**folder_info, "preset": None, "per_class": None, "image_size": [None, None]})
    )
    assert "read from `/data/archive`" in built.text
    assert "size as in the source" in built.text and "`minmax` per image" in built.text
    assert "# command not recorded" in built.text
    assert built.data.configs[0]["data_files"] == [{"split": "test", "path": "data/test-*.parquet"}]


def test_dataset_card_configs_load_with_datasets(tmp_path, monkeypatch) -> None:
    """The card's `configs` block is what `datasets` uses to find the parquet shards of each split."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import load_dataset

    (tmp_path / "data").mkdir()
    for split, rows in DATASET_INFO["splits"].items():
        table = pa.table({"label": list(range(rows)), "seed": [11] * rows})
        pq.write_table(table, tmp_path / "data" / f"{split}-00000-of-00001.parquet")
    (tmp_path / "dataset_dict.json").write_text("{}")  # save_to_disk bookkeeping must not confuse the card
    write_dataset_card(
        tmp_path, {**DATASET_INFO, "source": str(tmp_path), "simulation": {"pixel_scale": 0.05}}
    )
    dd = load_dataset(str(tmp_path), cache_dir=str(tmp_path / "cache"))
    assert {k: dd[k].num_rows for k in dd} == DATASET_INFO["splits"]
    text = (tmp_path / "README.md").read_text()
    assert "| `pixel_scale` | 0.05 |" in text
