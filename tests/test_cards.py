"""lens_hf.cards: cards render from the hub_cards Jinja templates through huggingface_hub's card classes, tell
only what the records say, take their physics from the presets table and their published numbers from
reference_results.json, and publish no secret or local path."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import DatasetCard, ModelCard
from safetensors.numpy import save_file

from lens_hf.cards import (
    REFERENCE_RESULTS_FILE,
    SPEED_FILE,
    TTA_METRICS_FILE,
    count_safetensors_parameters,
    published_regression,
    published_results,
    render_dataset_card,
    render_model_card,
    template_path,
    write_dataset_card,
    write_model_card,
)
from lens_hf.data.presets import PRESETS
from lens_hf.errors import LensHFError
from lens_hf.labels import LABELS
from lens_hf.metrics import softmax, write_evaluation

ROOT = Path(__file__).resolve().parents[1]
MODEL_TAGS = {"gravitational-lensing", "dark-matter", "deeplense", "lens_hf", "vision-transformer"}
TOKEN = "hf_" + "Q7vLr2XpN9sKd4TbW1mZc8YfJ3hGa6Ue0o"  # the shape of a real access token (34 characters)


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
                "model_args": {
                    "model_preset": "vit-spt-lsa-tiny",
                    "teacher": None,
                    "distillation_alpha": 0.5,
                },
                "data_args": {"dataset": None, "preset": "model_i", "per_class": 120},
                "training_args": {
                    "learning_rate": 0.0005,
                    "num_train_epochs": 3,
                    "max_steps": -1,
                    "seed": 7,
                    "logging_steps": 10,
                    "lr_schedule": "step",
                    "lr_scheduler_type": "linear",
                    "lr_step_epochs": 2,
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


def _record(folder: Path) -> dict:
    return json.loads((folder / "lens_hf_training.json").read_text())


def _write_record(folder: Path, record: dict) -> None:
    (folder / "lens_hf_training.json").write_text(json.dumps(record))


def _eval_by_config(card: ModelCard) -> dict[str, float]:
    return {(r.metric_config or r.metric_type): r.metric_value for r in card.data.eval_results}


def test_templates_are_the_checkouts_hub_cards() -> None:
    """From a checkout the one source of the templates is hub_cards/ (the build ships it as lens_hf/hub_cards/)."""
    assert template_path("model_card.md") == ROOT / "hub_cards" / "model_card.md"
    assert template_path("dataset_card.md") == ROOT / "hub_cards" / "dataset_card.md"
    with pytest.raises(LensHFError, match="card template nothing.md not found"):
        template_path("nothing.md")


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
    assert card.data.datasets is None  # simulated on the fly: no dataset to link

    body = card.text
    assert "{{" not in text and "{%" not in text
    assert "lens-hf train --model vit-spt-lsa-tiny --preset model_i" in body
    assert "| patch size (px) | 8 |" in body and "64x64 px, 1 channel(s)" in body
    assert "| parameters | 2,147 |" in body
    assert f"| ROC-AUC macro | {metrics['roc_auc_macro']:.4f} |" in body
    assert 'pipeline("image-classification", model="someone/lens-vit", trust_remote_code=True)' in body
    assert "lens-hf predict --model someone/lens-vit" in body
    assert "![ROC curves](roc.png)" in body
    assert "`training_args.learning_rate` | 0.0005" in body
    # every number says which split and how many images
    assert "on the 90 images of the `test` split" in body
    assert "on the `test` split: 90 images." in body
    # settings that took no part in the run are left out
    assert "distillation_alpha" not in body and "max_steps" not in body and "lr_scheduler_type" not in body
    assert "`training_args.lr_step_epochs` | 2" in body


def test_published_numbers_come_from_the_reference_file(tmp_path) -> None:
    folder = _model_folder(tmp_path / "model")
    body = ModelCard(render_model_card(folder)).text
    (group,) = published_results("model_i")
    assert group["test_images_per_class"] == 5000 and group["results"]
    assert "### Published results on DeepLense Model I" in body
    assert "the official DeepLense Model I test set, 5,000 images per class" in body
    for row in group["results"]:
        assert f"| {row['model']} | {row['start'] or 'not stated'} | {row['value']} |" in body
    best = max(group["results"], key=lambda r: r["value"])
    ours = json.loads((folder / "metrics.json").read_text())["roc_auc_macro"]
    assert (
        f"({ours - best['value']:+.4f} against the best published, {best['model']} {best['value']})" in body
    )

    reference = json.loads(REFERENCE_RESULTS_FILE.read_text())
    assert {g["dataset"] for g in reference["classification"]} == set(PRESETS)
    assert published_results() == reference["classification"]
    regression = published_regression()
    assert regression["datasets"] == ["model_i", "model_ii", "model_iii"]
    assert all(set(row["values"]) == set(regression["datasets"]) for row in regression["results"])


def test_the_results_report_quotes_the_same_reference_file() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_report", ROOT / "benchmarks" / "make_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    text = report.published_section()
    for group in published_results():
        for row in group["results"]:
            assert f"| {row['model']} | {row['start'] or 'not stated'} | {row['value']} |" in text
    for row in published_regression()["results"]:
        assert f"| {row['model']} | {row['values']['model_i']:.3f} |" in text
    assert report._best_published("model_i") == "CoAtNet-nano 0.9955"


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
    assert "with the `model_ii` preset (" + PRESETS["model_ii"].description + ")" in text
    assert "The full training record is `training_args.json`" in text
    assert {r.dataset_type for r in ModelCard(text).data.eval_results} == {"deeplense-model_ii"}


def test_simulation_settings_are_those_used_and_physics_comes_from_the_presets(tmp_path) -> None:
    """Only the fields the preset's renderer uses are listed, with the preset's values; a recorded parameter
    set wins over the table."""
    folder = _model_folder(tmp_path / "model")
    body_i = ModelCard(render_model_card(folder)).text
    assert "| `psf_fwhm` | 0.087 arcsec |" in body_i and "| `pixel_scale` | 0.05 arcsec/px |" in body_i
    assert "`instrument`" not in body_i and "`add_noise`" not in body_i and "`source_magnitude`" not in body_i

    record = _record(folder)
    record["data_args"]["preset"] = "model_ii"
    _write_record(folder, record)
    body_ii = ModelCard(render_model_card(folder)).text
    assert "| `instrument` | Euclid |" in body_ii and "| `pixel_scale` | 0.101 arcsec/px |" in body_ii
    assert "`psf_fwhm`" not in body_ii and "`background_rms`" not in body_ii

    params = dataclasses.asdict(PRESETS["model_i"]) | {"n_subhalos": 7, "main_halo_mass": 4e11}
    record["dataset"] = {"source": "simulated", "preset": "model_i", "simulation": params}
    _write_record(folder, record)
    body = ModelCard(render_model_card(folder)).text
    assert "| `subhalo` | 7 cold-dark-matter point-mass subhalos" in body
    assert "| `n_subhalos` | 7 |" in body and "ellipsoid of 4e11 Msun" in body


def test_model_card_reads_the_training_record_of_lens_hf_training(tmp_path) -> None:
    """The record lens_hf.training writes: data described under "dataset", raw arguments under *_args."""
    folder = _model_folder(tmp_path / "model")
    record = {
        "command": "lens-hf train --preset model_iii",
        "data_args": {"dataset": None, "preset": "model_i", "train_per_class": 40},
        "dataset": {
            "source": "simulated",
            "preset": "model_iii",
            "seeds": {"train": 5, "validation": 6, "test": 7},
            "splits": {"train": 120, "validation": 30, "test": 60},
            "image_size": [64, 64],
            "normalization": "minmax",
            "augment": "d4",
        },
        "num_parameters": 12345,
    }
    _write_record(folder, record)
    card = ModelCard(render_model_card(folder))
    assert {r.dataset_type for r in card.data.eval_results} == {"deeplense-model_iii"}
    assert "with the `model_iii` preset" in card.text and "seeds train 5, validation 6, test 7" in card.text
    assert "Images: train 120, validation 30, test 60." in card.text
    assert "Source images 64x64 px, per-image `minmax` normalisation, `d4` augmentation." in card.text
    assert "| parameters | 12,345 |" in card.text
    assert "Published results on DeepLense Model III" in card.text
    # fine-tuned from a checkpoint: the unused preset default is not shown as a setting
    record["model_args"] = {"model_preset": "vit-spt-lsa-tiny", "model_name_or_path": "checkpoints/base"}
    _write_record(folder, record)
    text = ModelCard(render_model_card(folder)).text
    assert "| `model_args.model_name_or_path` | checkpoints/base |" in text
    assert "model_preset" not in text


def test_a_local_dataset_is_named_never_linked_and_a_hub_dataset_is_linked(tmp_path) -> None:
    folder = _model_folder(tmp_path / "model")
    record = _record(folder)
    record["data_args"] = {"dataset": "/data/model_ii_archive", "preset": "model_i", "train_per_class": 40}
    record["dataset"] = {
        "source": "/data/model_ii_archive",
        "splits": {"train": 9, "validation": 3, "test": 3},
    }
    _write_record(folder, record)
    card = ModelCard(render_model_card(folder))
    assert {r.dataset_type for r in card.data.eval_results} == {"lens_hf-custom"}
    assert card.data.datasets is None and "huggingface.co/datasets" not in card.text
    assert "Dataset: `model_ii_archive` (a local folder, not published with this model)." in card.text
    assert "/data/" not in str(card)
    # the simulation defaults of a run that read a folder are not claimed
    assert "`data_args.preset`" not in card.text and "`data_args.train_per_class`" not in card.text
    assert "Published results" not in card.text and "`psf_fwhm`" not in card.text

    # a relative folder that happens to look like org/name is still a local folder
    record["dataset"]["source"] = record["data_args"]["dataset"] = "data/my_ds"
    _write_record(folder, record)
    assert "huggingface.co/datasets" not in render_model_card(folder)

    record["data_args"] = {"dataset_name": "someone/lens-data"}
    record["dataset"] = {"splits": {"train": 9, "test": 3}}
    _write_record(folder, record)
    card = ModelCard(render_model_card(folder))
    assert card.data.datasets == ["someone/lens-data"]
    assert "[`someone/lens-data`](https://huggingface.co/datasets/someone/lens-data)" in card.text
    assert {r.dataset_type for r in card.data.eval_results} == {"someone/lens-data"}


def test_model_card_publishes_no_secret_and_no_local_path(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = _model_folder(tmp_path / "runs" / "model")
    record = _record(folder)
    record["command"] = shlex.join(
        [
            "/opt/venv/bin/python",
            str(tmp_path / "recipes" / "train.py"),
            "--hub_token",
            TOKEN,
            "--output_dir",
            str(folder),
            f"--logging_dir={tmp_path / 'logs'}",
        ]
    )
    record["training_args"]["hub_token"] = TOKEN
    record["training_args"]["output_dir"] = str(folder)
    _write_record(folder, record)
    text = render_model_card(folder)
    assert TOKEN not in text and str(tmp_path) not in text
    assert "python recipes/train.py --hub_token '***' --output_dir runs/model --logging_dir=logs" in text


def test_model_card_names_the_evaluation_data_and_the_training_device(tmp_path) -> None:
    folder = _model_folder(tmp_path / "model")
    test_set = tmp_path / "model_i_test_seed999"
    test_set.mkdir()
    (test_set / "lens_hf_simulation.json").write_text(
        json.dumps({"preset": "model_i", "seed": 999, "per_class": 1000, "preset_params": {}})
    )
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["data"] = str(test_set)
    record = _record(folder)
    record.update(train_runtime_s=300.0, device="cuda:0", device_name="NVIDIA H100 80GB HBM3")
    _write_record(folder, record)

    body = ModelCard(render_model_card(folder, metrics=metrics)).text
    assert (
        "on the `test` split of `model_i_test_seed999` (lens_hf simulation `model_i`, seed 999, "
        "1000 images per class): 90 images." in body
    )
    assert "5.0 min of training on cuda:0 (NVIDIA H100 80GB HBM3) (1 process)" in body
    assert str(tmp_path) not in body
    # a resumed run's time is only the part after resuming, and the card says so
    record.update(resumed_from=str(tmp_path / "model" / "checkpoint-1314"))
    _write_record(folder, record)
    body = ModelCard(render_model_card(folder, metrics=metrics)).text
    assert "(1 process; the time after resuming from `checkpoint-1314`)" in body and str(tmp_path) not in body
    assert "| `resumed_from` | " in body
    record.pop("resumed_from")
    _write_record(folder, record)

    # A data folder without a simulation record is named alone; metrics without a folder name none.
    (test_set / "lens_hf_simulation.json").unlink()
    body = ModelCard(render_model_card(folder, metrics=metrics)).text
    assert "split of `model_i_test_seed999`: 90 images." in body
    # ... unless the metrics carry the simulation record (what `lens-hf evaluate` writes), folder or not
    metrics["simulation"] = {"preset": "model_i", "seed": 999, "per_class": 1000}
    body = ModelCard(render_model_card(folder, metrics=metrics)).text
    assert "`model_i_test_seed999` (lens_hf simulation `model_i`, seed 999, 1000 images per class)" in body
    del metrics["simulation"]
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
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    assert count_safetensors_parameters(folder) is None


def _tta_metrics(folder: Path, *, shift: float = 1.0, **extra) -> dict:
    """metrics.json of the folder rewritten as an evaluation without TTA, and the same data with --tta d4
    (sharper logits, so every number differs) written as metrics_tta_d4.json."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    logits = rng.normal(size=(90, 3))
    logits[np.arange(90), y] += 2
    common = {"split": "test", "data": "test_set_seed4321", "model": "m"}
    write_evaluation(folder, y, softmax(logits), extra={**common, "tta": "none"})
    logits[np.arange(90), y] += shift
    tta = write_evaluation(folder / "tta", y, softmax(logits), extra={**common, "tta": "d4", **extra})
    (folder / TTA_METRICS_FILE).write_text((folder / "tta" / "metrics.json").read_text())
    return tta


def test_model_card_shows_test_time_augmentation_beside_the_plain_evaluation(tmp_path) -> None:
    folder = _model_folder(tmp_path / "model")
    tta = _tta_metrics(folder)
    plain = json.loads((folder / "metrics.json").read_text())
    assert tta["roc_auc_macro"] != plain["roc_auc_macro"]
    card = ModelCard(render_model_card(folder))
    body = card.text
    assert "| metric | without TTA | with `--tta d4` (mean softmax of 8 views) |" in body
    assert f"| ROC-AUC macro | {plain['roc_auc_macro']:.4f} | {tta['roc_auc_macro']:.4f} |" in body
    for name in LABELS:
        row = f"| ROC-AUC `{name}` | {plain['roc_auc_per_class'][name]:.4f} | {tta['roc_auc_per_class'][name]:.4f} |"
        assert row in body
    assert f"{tta['roc_auc_macro']:.4f} with `--tta d4`" in body  # beside the published numbers
    # the model-index carries the evaluation without TTA
    assert _eval_by_config(card)["macro"] == pytest.approx(plain["roc_auc_macro"], abs=1e-6)
    # without the D4 file: one column
    (folder / TTA_METRICS_FILE).unlink()
    assert "| metric | value |" in ModelCard(render_model_card(folder)).text


@pytest.mark.parametrize(
    "change, message",
    [
        ({"tta": "none"}, "not measured with --tta d4"),
        ({"num_samples": 45}, "not from the same evaluation"),
        ({"data": "another_set"}, "not from the same evaluation"),
    ],
)
def test_model_card_refuses_mismatched_test_time_augmentation_metrics(tmp_path, change, message) -> None:
    folder = _model_folder(tmp_path / "model")
    _tta_metrics(folder)
    doc = json.loads((folder / TTA_METRICS_FILE).read_text())
    doc.update(change)
    (folder / TTA_METRICS_FILE).write_text(json.dumps(doc))
    with pytest.raises(LensHFError, match=message):
        render_model_card(folder)


def test_model_card_shows_the_recorded_cpu_inference_speed(tmp_path) -> None:
    folder = _model_folder(tmp_path / "model")
    speed = {
        "preset": "model_i",
        "seed": 5252,
        "num_images": 256,
        "batch_size": 64,
        "date": "2026-12-02",
        "command": "python benchmarks/bench_inference.py --model model",
        "machine": {"cpu": "AMD EPYC 9B14", "threads": 2, "torch": "2.13.0+cpu"},
        "results": [
            {"tta": "none", "forward_images_per_s": 1129.4, "predict_images_per_s": 812.0},
            {"tta": "d4", "forward_images_per_s": 140.6, "predict_images_per_s": 131.2},
        ],
    }
    (folder / SPEED_FILE).write_text(json.dumps(speed))
    body = ModelCard(render_model_card(folder)).text
    assert "### CPU inference speed" in body
    assert (
        "batch 64, 256 simulated `model_i` images (seed 5252), AMD EPYC 9B14 with 2 torch thread(s)" in body
    )
    assert "| without TTA | 1,129 | 812 |" in body and "| with `--tta d4` | 141 | 131 |" in body
    del speed["machine"]
    (folder / SPEED_FILE).write_text(json.dumps(speed))
    with pytest.raises(LensHFError, match="not a record of benchmarks/bench_inference.py"):
        render_model_card(folder)


def test_the_shipped_checkpoint_card_renders_sensibly() -> None:
    folder = ROOT / "checkpoints" / "vit-spt-lsa-model-i"
    if not (folder / "config.json").is_file():
        pytest.skip("no shipped checkpoint in this checkout")
    text = render_model_card(folder, repo_id="lens-hf/vit-spt-lsa-model-i")
    card = ModelCard(text)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert _eval_by_config(card)["macro"] == pytest.approx(metrics["roc_auc_macro"], abs=1e-6)
    assert f"Macro one-vs-rest ROC-AUC {metrics['roc_auc_macro']:.4f} on the 15,000 images" in card.text
    assert "(lens_hf simulation `model_i`, seed 8800, 5000 images per class)" in card.text
    tta = json.loads((folder / "metrics_tta_d4.json").read_text())  # D4 test-time augmentation beside it
    assert f"| ROC-AUC macro | {metrics['roc_auc_macro']:.4f} | {tta['roc_auc_macro']:.4f} |" in card.text
    assert "### CPU inference speed" in card.text and "batch 64" in card.text
    assert "Images: train 90,000, validation 3,000, test 3,000." in card.text
    assert "central 64 px crop" in card.text and "| parameters | 2.38 M (2,376,309) |" in card.text
    assert "Published results on DeepLense Model I" in card.text
    assert str(ROOT) not in text and os.path.expanduser("~") + "/" not in text


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
    assert "{{" not in text and "{%" not in text
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
    assert "150x150 px" in card.text and "| `pixel_scale` | 0.05 arcsec/px |" in card.text
    assert "`instrument`" not in card.text
    with pytest.raises(LensHFError, match="splits"):
        render_dataset_card({**DATASET_INFO, "splits": {}})


def test_dataset_card_from_cli_and_folder_info(tmp_path, monkeypatch) -> None:
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
    assert "read from `archive`" in built.text and "/data/" not in built.text
    assert "size as in the source" in built.text and "`minmax` per image" in built.text
    assert "no simulation settings were recorded" in built.text and "`pixel_scale`" not in built.text
    assert "# command not recorded" in built.text
    assert built.data.configs[0]["data_files"] == [{"split": "test", "path": "data/test-*.parquet"}]

    # a folder that lens-hf simulate wrote carries its settings; a secret in the command is masked
    monkeypatch.chdir(tmp_path)
    archive = tmp_path / "sims" / "model_iii"
    archive.mkdir(parents=True)
    params = dataclasses.asdict(PRESETS["model_iii"]) | {"n_subhalos": 9}
    (archive / "lens_hf_simulation.json").write_text(
        json.dumps({"preset": "model_iii", "seed": 4, "per_class": 10, "preset_params": params})
    )
    command = f"lens-hf build-dataset {archive} --out {tmp_path / 'ds'} --token {TOKEN}"
    text = render_dataset_card({**folder_info, "source": str(archive), "command": command})
    assert "read from `sims/model_iii` (a lens_hf simulation: preset `model_iii`, seed 4" in text
    assert "| `n_subhalos` | 9 |" in text and "| `instrument` | HST |" in text
    assert "lens-hf build-dataset sims/model_iii --out ds --token '***'" in text
    assert TOKEN not in text and str(tmp_path) not in text


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
        tmp_path,
        {
            **DATASET_INFO,
            "source": str(tmp_path),
            "simulation": {**dataclasses.asdict(PRESETS["model_i"]), "pixel_scale": 0.04},
        },
    )
    dd = load_dataset(str(tmp_path), cache_dir=str(tmp_path / "cache"))
    assert {k: dd[k].num_rows for k in dd} == DATASET_INFO["splits"]
    text = (tmp_path / "README.md").read_text()
    assert "| `pixel_scale` | 0.04 arcsec/px |" in text

    yaml = {
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}]}]
    }
    card = DatasetCard(render_dataset_card(DATASET_INFO, card_yaml=yaml))
    assert card.data.configs == yaml["configs"]


def _regressor_folder(folder: Path) -> Path:
    """A saved tiny model folder turned into an axion-mass regressor (config and training record)."""
    folder = _model_folder(folder, with_metrics=False)
    config = json.loads((folder / "config.json").read_text())
    config.update(
        id2label={"0": "axion_mass"},
        problem_type="regression",
        lens_regression={"target": "axion_mass", "transform": "log10", "mean": -23.0, "std": 0.58},
    )
    (folder / "config.json").write_text(json.dumps(config))
    record = _record(folder)
    record["dataset"] = {
        "source": "simulated",
        "preset": "model_i",
        "regression": {"target": "axion_mass", "splits": {"train": 40, "test": 30}, "skipped": {"train": 80}},
    }
    _write_record(folder, record)
    return folder


def test_regression_model_card_has_a_model_index_of_its_errors(tmp_path) -> None:
    from lens_hf.metrics import write_regression_evaluation

    folder = _regressor_folder(tmp_path / "regressor")
    record = _record(folder)
    rng = np.random.default_rng(0)
    y = rng.uniform(-24, -22, 30)
    metrics = write_regression_evaluation(
        folder, y, y + rng.normal(0, 0.3, 30), target="axion_mass", transform="log10", extra={"split": "test"}
    )
    card = ModelCard(render_model_card(folder, repo_id="someone/axion-mass"))
    values = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert values == {k: pytest.approx(metrics[k], abs=1e-6) for k in ("mae", "rmse", "r2")}
    assert {r.metric_config for r in card.data.eval_results} == {"log10_axion_mass"}
    assert card.data.metrics == ["mae", "rmse", "r2"] and card.data.pipeline_tag == "image-classification"
    body = card.text
    assert "regressor of `axion_mass`" in body and f"MAE {metrics['mae']:.4f} dex on the 30 images" in body
    assert "`log10_axion_mass`, standardised with the training targets' mean -23" in body
    assert "Images with a value of `axion_mass`: train 40, test 30 (skipped without one: train 80)." in body
    assert f"| MAE | {metrics['mae']:.4f} dex |" in body and "![Predicted vs true](regression.png)" in body
    assert "| XResNet18-hybrid | not stated | 0.274 |" in body  # the published Model I errors
    assert "[{'label': 'axion_mass', 'score': ...}]" in body and "ROC" not in body
    assert "std 0.58 (MSE loss)" in body  # the recipe's default loss
    record["training_args"] = {**record.get("training_args", {}), "regression_loss": "l1"}
    _write_record(folder, record)
    assert "std 0.58 (L1 loss)" in ModelCard(render_model_card(folder, repo_id="someone/axion-mass")).text
    with pytest.raises(LensHFError, match="missing metric key"):
        render_model_card(folder, metrics={"mae": 0.1})


def test_regression_card_shows_the_likelihood_refinement_beside_the_network(tmp_path) -> None:
    """metrics_refine_likelihood.json (``lens-hf evaluate --refine likelihood`` on the same data) is a second
    column of the regression table; the model-index keeps the network's errors; a refined evaluation of other
    data, or one not refined, is refused in one line."""
    from lens_hf.cards import REFINE_METRICS_FILE, REFINE_PLOT_FILE
    from lens_hf.metrics import write_regression_evaluation

    folder = _regressor_folder(tmp_path / "regressor")
    rng = np.random.default_rng(0)
    y = rng.uniform(-24, -22, 40)
    common = {"split": "test", "data": "vortices_seed4321", "model": "m", "tta": "none"}
    plain = write_regression_evaluation(
        folder, y, y + rng.normal(0, 0.3, 40), target="axion_mass", transform="log10",
        extra={**common, "refine": "none"},
    )  # fmt: skip
    refined = write_regression_evaluation(
        folder / "refined", y, y + rng.normal(0, 0.1, 40), target="axion_mass", transform="log10",
        extra={**common, "refine": "likelihood"},
    )  # fmt: skip
    (folder / REFINE_METRICS_FILE).write_text((folder / "refined" / "metrics.json").read_text())
    shutil.copy(folder / "refined" / "regression.png", folder / REFINE_PLOT_FILE)
    card = ModelCard(render_model_card(folder))
    body = card.text
    assert "![Predicted vs true with --refine likelihood](regression_refine_likelihood.png)" in body
    assert "| metric | the network | with `--refine likelihood` |" in body
    assert f"| MAE | {plain['mae']:.4f} dex | {refined['mae']:.4f} dex |" in body
    assert refined["mae"] < plain["mae"] and "the network's answer is not used" in body
    assert "of `vortices_seed4321`: 40 images that have a value of `axion_mass`" in body
    assert {r.metric_type: r.metric_value for r in card.data.eval_results}["mae"] == pytest.approx(
        plain["mae"], abs=1e-6
    )
    for change, message in (
        ({"refine": "none"}, "not measured with --refine likelihood .refine: 'none'."),
        (
            {"data": "other_vortices"},
            "not from the same evaluation .data: 'vortices_seed4321' vs 'other_vortices'.",
        ),
        ({"num_samples": 39}, "not from the same evaluation .num_samples"),
    ):
        (folder / REFINE_METRICS_FILE).write_text(json.dumps({**refined, **change}))
        with pytest.raises(LensHFError, match=message):
            render_model_card(folder)
    # a classifier's metrics beside refined ones
    (folder / REFINE_METRICS_FILE).write_text(json.dumps(refined))
    classifier = _model_folder(tmp_path / "classifier")
    with pytest.raises(LensHFError, match="for regression models"):
        render_model_card(classifier, refine_metrics=refined)
    # with the D4 evaluation as well: three columns
    tta = write_regression_evaluation(
        folder / "tta", y, y + rng.normal(0, 0.25, 40), target="axion_mass", transform="log10",
        extra={**common, "tta": "d4", "refine": "none"},
    )  # fmt: skip
    (folder / TTA_METRICS_FILE).write_text((folder / "tta" / "metrics.json").read_text())
    body = ModelCard(render_model_card(folder)).text
    assert "| metric | the network | with `--tta d4` (mean of 8 views) | with `--refine likelihood` |" in body
    assert f"| MAE | {plain['mae']:.4f} dex | {tta['mae']:.4f} dex | {refined['mae']:.4f} dex |" in body
    (folder / REFINE_METRICS_FILE).unlink()
    (folder / TTA_METRICS_FILE).unlink()
    body = ModelCard(render_model_card(folder)).text
    assert (
        "| metric | value |" in body and REFINE_PLOT_FILE not in body
    )  # the plot without its numbers: left out


def test_card_lists_the_distillation_settings_that_took_part(tmp_path) -> None:
    folder = _model_folder(tmp_path / "model")
    record_file = folder / "lens_hf_training.json"
    record = json.loads(record_file.read_text())
    record["model_args"] = {"model_preset": "vit-spt-lsa-tiny"}
    for kind, temperature_shown in (("soft", True), ("hard", False)):
        record["distillation_args"] = {
            "teacher": "runs/resnet",
            "distillation_alpha": 0.5,
            "distillation_type": kind,
            "distillation_temperature": 3.0,
        }
        record_file.write_text(json.dumps(record))
        body = ModelCard(render_model_card(folder)).text
        assert f"`distillation_args.distillation_type` | {kind}" in body
        assert "`distillation_args.distillation_alpha` | 0.5" in body
        assert ("`distillation_args.distillation_temperature` | 3" in body) is temperature_shown
        assert "regression_loss" not in body  # a classifier: the regression loss took no part


def test_cpu_device_name_says_which_vector_units_set_its_speed():
    """One CPU model name covers processors with and without AVX-512 BF16, so the recorded name carries them."""
    import torch

    from lens_hf.training.record import device_name, vector_units

    assert vector_units({"avx2", "avx512f", "avx512_bf16"}) == ", AVX-512 BF16"
    assert vector_units({"avx2", "avx512f"}) == ", AVX-512"
    assert vector_units({"avx2", "fma"}) == ", AVX2"
    assert vector_units({"avx512_bf16", "amx_bf16"}) == ", AMX BF16"
    assert vector_units({"neon"}) == ""
    name = device_name(torch.device("cpu"))
    assert name and "\n" not in name
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and "model name" in cpuinfo.read_text():
        assert f"{os.cpu_count()} CPUs" in name
