"""ONNX export (lens_hf/export.py) and ONNX Runtime inference (the ONNX path of lens_hf/inference.py): every
model family lens_hf trains, exported and run by ONNX Runtime, gives PyTorch's probabilities within 1e-4 at batch
sizes 1 and 5; `lens-hf export`, then `predict` / `evaluate` on the ONNX folder give the PyTorch folder's labels,
CSV columns and metrics; bad requests fail in one line and write nothing."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import MODEL_INPUT_PX, TINY_VIT, lens_image, tree

from lens_hf.cli import main
from lens_hf.errors import LensHFError
from lens_hf.export import DEFAULT_OPSET, export_onnx
from lens_hf.inference import (
    ONNX_FILE,
    OnnxImageClassifier,
    is_onnx_folder,
    load_classifier,
    load_pipeline,
    predict_arrays,
)
from lens_hf.models.factory import create_model
from lens_hf.processing import LensImageProcessor, save_model_folder
from lens_hf.processing.file_io import LensFileError
from lens_hf.processing.targets import TargetScaling

TOLERANCE = 1e-4
SCALING = TargetScaling("axion_mass", "log10", -23.0, 0.5)
# One tiny model per family lens_hf trains (the plain SPT+LSA classifier is conftest's model_dir).
FAMILIES: dict[str, dict] = {
    "vit-spt-lsa-stem-regressor": dict(
        preset="vit-spt-lsa-stem",
        task="regression",
        target=SCALING,
        patch_size=16,
        conv_stem_channels=[4, 8],
        **{k: v for k, v in TINY_VIT.items() if k != "patch_size"},
    ),
    "vit-tiny": dict(preset="vit-tiny", **TINY_VIT),
    "deit-tiny": dict(preset="deit-tiny", **TINY_VIT),  # distilled: logits = mean of its two heads
    "swin-tiny": dict(
        preset="swin-tiny", embed_dim=8, depths=[1, 1], num_heads=[1, 2], window_size=4, patch_size=4
    ),
    "resnet-18": dict(preset="resnet-18", embedding_size=8, hidden_sizes=[8, 8, 8, 8], depths=[1, 1, 1, 1]),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, model_dir):
    """``exported(name) -> (pytorch folder, ONNX folder)``, each exported once per module: "vit-spt-lsa"
    (conftest's model) by ``lens-hf export ... --opset 18`` (its stdout in ``exported.messages``), each of
    :data:`FAMILIES` by :func:`export_onnx` with the default opset."""
    root = tmp_path_factory.mktemp("onnx")
    made: dict[str, tuple[Path, Path]] = {}

    def make(name: str) -> tuple[Path, Path]:
        if name in made:
            return made[name]
        out = root / f"{name}-onnx"
        if name == "vit-spt-lsa":
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                code = main(
                    [
                        "export",
                        "--model",
                        str(model_dir),
                        "--format",
                        "onnx",
                        "--out",
                        str(out),
                        "--opset",
                        "18",
                    ]
                )
            assert code == 0
            make.messages[name] = stdout.getvalue()
            made[name] = model_dir, out
            return made[name]
        kwargs = dict(FAMILIES[name])
        torch.manual_seed(0)
        model = create_model(kwargs.pop("preset"), image_size=MODEL_INPUT_PX, **kwargs)
        processor = LensImageProcessor(size={"height": MODEL_INPUT_PX, "width": MODEL_INPUT_PX})
        folder = save_model_folder(model, processor, root / name)
        made[name] = folder, export_onnx(folder, out).path
        return made[name]

    make.messages = {}
    return make


def images(n: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [lens_image(rng, i % 3).astype(np.float32) for i in range(n)]


@pytest.mark.parametrize("name", ["vit-spt-lsa", *FAMILIES])
def test_onnx_runtime_matches_pytorch_at_batch_1_and_5(exported, name):
    torch_dir, onnx_dir = exported(name)
    assert sorted(p.name for p in onnx_dir.iterdir()) == [
        "README.md",
        "config.json",
        ONNX_FILE,
        "preprocessor_config.json",
    ]
    graph = onnx.load(str(onnx_dir / ONNX_FILE))
    opset = 18 if name == "vit-spt-lsa" else DEFAULT_OPSET
    assert [o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")] == [opset]
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    pytorch, ort = load_classifier(torch_dir), load_classifier(onnx_dir)
    assert isinstance(ort.model, OnnxImageClassifier) and ort.labels == pytorch.labels
    assert ort.pipeline.model.config.problem_type == pytorch.model.config.problem_type
    assert ort.scaling == pytorch.scaling
    batch = images(5)
    expected = predict_arrays(pytorch, batch, batch_size=5, progress=False)
    for batch_size in (1, 5):
        got = predict_arrays(ort, batch, batch_size=batch_size, progress=False)
        if ort.scaling is None:  # probabilities
            assert np.abs(got - expected).max() <= TOLERANCE
        else:  # the regression target in physical units (eV): compared in log10
            assert np.abs(np.log10(got) - np.log10(expected)).max() <= TOLERANCE
    if (
        name == "deit-tiny"
    ):  # the exported output is the pipeline's: the mean of the class and distillation heads
        x = torch.rand(2, 1, MODEL_INPUT_PX, MODEL_INPUT_PX)
        with torch.no_grad():
            out = pytorch.model(pixel_values=x)
        heads = (out.cls_logits + out.distillation_logits) / 2
        assert torch.allclose(ort.model(pixel_values=x).logits, heads, atol=1e-5)


def test_cli_export_then_predict_and_evaluate_match_pytorch(cli, exported, deeplense_dir, tmp_path):
    model_dir, out = exported("vit-spt-lsa")  # lens-hf export --opset 18
    assert exported.messages["vit-spt-lsa"].startswith(
        f"exported to {out}: model.onnx (opset 18, input pixel_values (batch, 1, {MODEL_INPUT_PX}, "
        f"{MODEL_INPUT_PX}), output logits (batch, 3))"
    )
    assert is_onnx_folder(out) and not list(out.parent.glob(".*"))  # no temporaries left
    readme = (out / "README.md").read_text()
    assert "opset 18" in readme and "dynamic axes: `batch`" in readme and "library_name: onnx" in readme
    config = json.loads((out / "config.json").read_text())
    assert "auto_map" not in config and "custom_pipelines" not in config
    assert config["id2label"] == {"0": "no_substructure", "1": "subhalo", "2": "vortex"}
    settings = LensImageProcessor.from_pretrained(str(out)).settings()
    assert settings == LensImageProcessor.from_pretrained(str(model_dir)).settings()

    tables = {}
    for name, model in (("torch", model_dir), ("onnx", out)):
        r = cli(
            "predict", "--model", model, deeplense_dir, "--output", tmp_path / f"{name}.csv", "--tta", "d4"
        )
        assert r.code == 0, r.err
        with open(tmp_path / f"{name}.csv", newline="") as f:
            tables[name] = list(csv.DictReader(f))
        r = cli("evaluate", "--model", model, "--data", deeplense_dir, "--out", tmp_path / f"eval-{name}")
        assert r.code == 0, r.err
    assert tables["onnx"][0].keys() == tables["torch"][0].keys()
    assert [(row["file"], row["label"]) for row in tables["onnx"]] == [
        (row["file"], row["label"]) for row in tables["torch"]
    ]
    for a, b in zip(tables["onnx"], tables["torch"]):
        assert all(abs(float(a[k]) - float(b[k])) <= TOLERANCE for k in a if k.startswith("p_"))
    metrics = {
        n: json.loads((tmp_path / f"eval-{n}" / "metrics.json").read_text()) for n in ("torch", "onnx")
    }
    assert metrics["onnx"]["accuracy"] == metrics["torch"]["accuracy"]
    assert metrics["onnx"]["roc_auc_macro"] == pytest.approx(metrics["torch"]["roc_auc_macro"], abs=1e-3)


def test_cli_predict_of_an_onnx_regressor_gives_the_pytorch_columns(cli, exported, deeplense_dir, tmp_path):
    torch_dir, onnx_dir = exported("vit-spt-lsa-stem-regressor")
    rows = {}
    for name, model in (("torch", torch_dir), ("onnx", onnx_dir)):
        r = cli("predict", "--model", model, deeplense_dir, "--output", tmp_path / f"{name}.csv")
        assert r.code == 0, r.err
        with open(tmp_path / f"{name}.csv", newline="") as f:
            rows[name] = list(csv.DictReader(f))
    assert (
        list(rows["onnx"][0]) == list(rows["torch"][0]) == ["file", "log10_axion_mass", "axion_mass", "error"]
    )
    for a, b in zip(rows["onnx"], rows["torch"]):
        assert a["file"] == b["file"]
        assert abs(float(a["log10_axion_mass"]) - float(b["log10_axion_mass"])) <= TOLERANCE


# ------------------------------------------------------------------------------------------------ bad input
def test_unknown_format_and_opset_are_one_line_errors(cli, model_dir, tmp_path):
    out = tmp_path / "out"
    r = cli("export", "--model", model_dir, "--format", "tflite", "--out", out)
    assert r.code == 2 and "invalid choice: 'tflite'" in r.err_lines[-1]
    r = cli("export", "--model", model_dir, "--out", out, "--opset", 12)
    assert r.code == 2 and "--opset: invalid choice: 12" in r.err_lines[-1]
    with pytest.raises(LensHFError, match="unknown export format 'tflite'"):
        export_onnx(model_dir, out, fmt="tflite")
    with pytest.raises(LensHFError, match="opset 12 is not supported"):
        export_onnx(model_dir, out, opset=12)
    assert not out.exists()


def test_folders_without_a_model_are_refused_and_nothing_is_written(cli, model_dir, deeplense_dir, tmp_path):
    out = tmp_path / "out"
    r = cli("export", "--model", deeplense_dir, "--out", out)
    assert (r.code, r.err_lines) == (
        2,
        [f"lens-hf: error: {deeplense_dir}: not a model folder (no config.json)"],
    )
    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(model_dir / "config.json", no_weights)
    r = cli("export", "--model", no_weights, "--out", out)
    assert r.code == 2 and len(r.err_lines) == 1 and "no model weights" in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no-weights"]


def test_a_foreign_output_folder_is_left_alone(cli, model_dir, deeplense_dir):
    before = tree(deeplense_dir)
    r = cli("export", "--model", model_dir, "--out", deeplense_dir)
    assert r.code == 2 and "is not empty and is not an ONNX export" in r.err_lines[-1]
    assert tree(deeplense_dir) == before


def test_an_onnx_folder_cannot_be_exported_again(cli, exported, tmp_path):
    _, onnx_dir = exported("vit-spt-lsa")
    r = cli("export", "--model", onnx_dir, "--out", tmp_path / "again")
    assert r.code == 2 and "already an ONNX model" in r.err_lines[-1]


def test_a_failed_export_keeps_the_earlier_export(exported, tmp_path, monkeypatch):
    """The check against PyTorch failing (tolerance below any difference) aborts the export: the earlier export
    in the output folder stays byte for byte, and no temporary folder is left."""
    torch_dir, onnx_dir = exported("vit-spt-lsa")
    out = shutil.copytree(onnx_dir, tmp_path / "onnx")
    before = tree(out)
    monkeypatch.setattr("lens_hf.export.TOLERANCE", -1.0)
    with pytest.raises(LensHFError, match="differs from the PyTorch model"):
        export_onnx(torch_dir, out)
    assert tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx"]


def test_broken_onnx_folders_are_one_line_errors(cli, exported, deeplense_dir, tmp_path):
    _, onnx_dir = exported("vit-spt-lsa")
    broken = shutil.copytree(onnx_dir, tmp_path / "broken")
    (broken / ONNX_FILE).write_bytes((onnx_dir / ONNX_FILE).read_bytes()[:1000])
    r = cli("predict", "--model", broken, deeplense_dir)
    assert r.code == 2 and len(r.err_lines) == 1
    assert r.err_lines[0].startswith(f"lens-hf: error: {broken / ONNX_FILE}: not a valid ONNX model")

    resized = shutil.copytree(onnx_dir, tmp_path / "resized")
    for file, key in (("config.json", "image_size"), ("preprocessor_config.json", "size")):
        data = json.loads((resized / file).read_text())
        data[key] = 16 if key == "image_size" else {"height": 16, "width": 16}
        (resized / file).write_text(json.dumps(data))
    with pytest.raises(LensFileError, match=r"takes inputs of shape \[1, 32, 32\].*gives \[1, 16, 16\]"):
        load_pipeline(resized)
