"""The ``lens-hf`` command end to end, in-process: help texts, simulate (DeepLense layout and DatasetDict),
build-dataset, show, predict, evaluate (AUCs equal scikit-learn's), Hub ids from an offline cache, card."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MODEL_INPUT_PX, TINY_VIT, copy_model, tree

from lens_hf.cli import build_parser, main
from lens_hf.labels import DEEPLENSE_FOLDERS, LABELS
from lens_hf.processing.file_io import read_image

ROOT = Path(__file__).resolve().parents[1]
PER_CLASS = 3


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory) -> Path:
    """``lens-hf simulate --per-class 3`` in the DeepLense Model I layout (read-only for tests)."""
    out = tmp_path_factory.mktemp("sim") / "model_i"
    assert (
        main(
            [
                "simulate",
                "--preset",
                "model_i",
                "--per-class",
                str(PER_CLASS),
                "--seed",
                "4",
                "--workers",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    return out


# ------------------------------------------------------------------------------------------------ help
def test_help_of_every_command(cli):
    result = cli("--help")
    assert result.code == 0 and "usage: lens-hf" in result.out and "dark matter substructure" in result.out
    commands = sorted(build_parser()._subparsers._group_actions[0].choices)
    assert commands == sorted(
        [
            "simulate",
            "build-dataset",
            "show",
            "train",
            "evaluate",
            "predict",
            "export",
            "demo",
            "card",
            "push",
            "cache-model",
        ]
    )
    expected = {
        "simulate": ["--per-class", "--format", "byte-identical"],
        "build-dataset": ["--skip-bad", "--splits", "DatasetDict"],
        "show": ["--per-class", "PNG"],
        "evaluate": ["--model", "--data", "metrics.json", "--skip-bad"],
        "predict": ["--output", "--skip-bad", ".csv"],
        "export": ["--format", "--opset", "ONNX Runtime"],
        "demo": ["--model", "--port", "--share", "Gradio"],
        "card": ["--metrics", "README.md"],
        "push": ["--repo-id", "safetensors", "local"],
        "cache-model": ["--model", "--repo-id", "offline"],
        "train": [
            "--output_dir",
            "--dataset",
            "--model_preset",
            "--resume_from_checkpoint",
            "--learning_rate",
        ],
    }
    for command, words in expected.items():
        result = cli(command, "--help")
        assert result.code == 0, (command, result.err)
        assert result.out.count("\n") > 5, command
        for word in words:
            assert word in result.out, (command, word)
        assert in_summary(command, cli("--help").out)


def in_summary(command: str, text: str) -> bool:
    return any(line.strip().startswith(command) for line in text.splitlines())


def test_usage_errors_exit_2(cli):
    for args in ((), ("no-such-command",), ("predict",), ("simulate", "--per-class", "x", "--out", "o")):
        result = cli(*args)
        assert result.code == 2 and "usage: lens-hf" in result.err and "Traceback" not in result.err, args


# ------------------------------------------------------------------------------------------------ simulate
def _ring_radius(image: np.ndarray, pixel_scale: float = 0.05) -> float:
    """Radius (arcsec) of the Einstein ring about the image centre: the flux-weighted mean radius of the
    brightest 3 % of the (background-subtracted) pixels, i.e. of the arcs."""
    h, w = image.shape
    y, x = np.indices(image.shape)
    r = np.hypot(x - (w - 1) / 2, y - (h - 1) / 2) * pixel_scale
    flux = image - np.median(image)
    ring = flux > np.percentile(flux, 97)
    return float((r[ring] * flux[ring]).sum() / flux[ring].sum())


def test_simulate_deeplense_layout(sim_dir):
    files = {
        folder: sorted((sim_dir / folder).glob(f"{folder}_sim_*.npy"))
        for folder in DEEPLENSE_FOLDERS.values()
    }
    assert {k: len(v) for k, v in files.items()} == {
        "no_sub": PER_CLASS,
        "cdm": PER_CLASS,
        "axion": PER_CLASS,
    }
    assert all(name.stem.split("_sim_")[1].isdigit() for v in files.values() for name in v)
    with open(sim_dir / "metadata.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * PER_CLASS and {r["label"] for r in rows} == set(LABELS)
    for path in files["no_sub"] + files["cdm"]:
        counts = np.load(path, allow_pickle=False)  # plain arrays, as in the Model I archive
        assert counts.shape == (150, 150) and counts.dtype == np.int64 and counts.min() >= 0
    for path in files["axion"]:
        image, meta = read_image(path)  # object array [image, axion_mass]: through the safe loader
        assert image.shape == (150, 150) and 1e-25 < meta["axion_mass"] < 1e-21
    from lens_hf.data.presets import einstein_radius, get_preset

    radii = [_ring_radius(np.load(p).astype(np.float64)) for p in files["no_sub"]]
    assert all(1.0 <= r <= 1.6 for r in radii), radii
    theta_e = einstein_radius(get_preset("model_i").main_halo_mass)  # 1.28" for the 1e12 Msun lens
    assert abs(np.mean(radii) - theta_e) < 0.15, (radii, theta_e)


def test_simulate_hf_dataset(tmp_path, cli):
    from datasets import load_from_disk

    out = tmp_path / "hf"
    result = cli(
        "simulate",
        "--per-class",
        "3",
        "--format",
        "hf",
        "--splits",
        "1,1,1",
        "--workers",
        "1",
        "--seed",
        "1",
        "--out",
        out,
    )
    assert result.code == 0, result.err
    dd = load_from_disk(str(out))
    assert {k: len(v) for k, v in dd.items()} == {"train": 3, "validation": 3, "test": 3}
    assert dd["train"].features["label"].names == list(LABELS)
    image = np.asarray(dd["test"][0]["image"], dtype=np.float32)
    assert image.shape == (150, 150) and image.min() == 0.0 and image.max() == 1.0
    assert (out / "README.md").is_file() and list((out / "data").glob("*.parquet"))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------------------------------ datasets
def test_build_dataset_from_model_i_layout(sim_dir, tmp_path, cli):
    from datasets import load_from_disk

    out = tmp_path / "ds"
    result = cli("build-dataset", sim_dir, "--out", out, "--splits", "1,1,1")
    assert result.code == 0, result.err
    dd = load_from_disk(str(out))
    assert {k: len(v) for k, v in dd.items()} == {"train": 3, "validation": 3, "test": 3}
    rows = [row for split in dd.values() for row in split]
    assert sorted(Path(r["path"]).name for r in rows) == sorted(p.name for p in sim_dir.rglob("*.npy"))
    for row in rows:
        label = LABELS[row["label"]]
        assert Path(row["path"]).parent.name == DEEPLENSE_FOLDERS[label]
        assert not Path(row["path"]).is_absolute()  # relative to the source folder: publishable
        _, meta = read_image(sim_dir / row["path"])
        assert row["axion_mass"] == (meta["axion_mass"] if label == "vortex" else None)
        assert row["preset"] == "model_i" and row["seed"] == 4
    info = json.loads((out / "lens_hf_dataset.json").read_text())
    assert info["image_size"] == [150, 150] and info["skipped"] == []


def test_build_dataset_without_parquet_writes_the_arrow_copy_only(sim_dir, tmp_path, cli):
    from lens_hf.data.dataset import load_any

    out = tmp_path / "ds"
    result = cli("build-dataset", sim_dir, "--out", out, "--splits", "1,1,1", "--no-parquet")
    assert result.code == 0, result.err
    assert not list(out.rglob("*.parquet")) and not (out / "data").exists()
    dd = load_any(out)
    assert {k: len(v) for k, v in dd.items()} == {"train": 3, "validation": 3, "test": 3}
    card = (out / "README.md").read_text()
    assert "load_from_disk(" in card and "load_dataset(" not in card and "data_files" not in card
    assert json.loads((out / "lens_hf_dataset.json").read_text())["parquet"] is False
    # the default keeps the shards, and the card loads them
    cli("build-dataset", sim_dir, "--out", tmp_path / "pq", "--splits", "1,1,1")
    card = (tmp_path / "pq" / "README.md").read_text()
    assert "load_dataset(" in card and "data_files" in card and list((tmp_path / "pq").rglob("*.parquet"))
    # the DeepLense layout has no Parquet to leave out
    result = cli("simulate", "--per-class", "1", "--no-parquet", "--out", tmp_path / "dl")
    assert result.code != 0 and "--no-parquet applies to --format hf only" in result.err
    assert len(result.err.strip().splitlines()) == 1 and not (tmp_path / "dl").exists()


def _is_png(path: Path) -> bool:
    from PIL import Image

    with Image.open(path) as img:
        return img.format == "PNG" and img.width > 100 and img.height > 100


def test_show_writes_a_png(sim_dir, tmp_path, cli):
    result = cli("show", sim_dir, "--out", tmp_path / "grid.png", "--per-class", "2")
    assert result.code == 0, result.err
    assert _is_png(tmp_path / "grid.png") and "vortex: 2" in result.out
    assert cli("build-dataset", sim_dir, "--out", tmp_path / "ds", "--splits", "1,1,1").code == 0
    result = cli("show", tmp_path / "ds", "--out", tmp_path / "from_dataset.png")
    assert result.code == 0, result.err
    assert _is_png(tmp_path / "from_dataset.png")


# ------------------------------------------------------------------------------------------------ predict
def _direct_probs(model_dir: Path, image: np.ndarray) -> np.ndarray:
    from lens_hf.models.factory import load_model
    from lens_hf.processing import LensImageProcessor

    model = load_model(model_dir)
    pixels = LensImageProcessor.from_pretrained(model_dir)(image, return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 1, MODEL_INPUT_PX, MODEL_INPUT_PX)
    with torch.no_grad():
        return torch.softmax(model(pixel_values=pixels).logits, -1)[0].numpy()


def _check_rows(rows: list[dict], expected_paths: list[str]) -> None:
    assert [r["file"] for r in rows] == expected_paths
    for r in rows:
        probs = np.array([float(r[f"p_{name}"]) for name in LABELS])
        assert abs(probs.sum() - 1) < 1e-5 and (probs >= 0).all()
        assert r["label"] == LABELS[int(probs.argmax())] and float(r["score"]) == pytest.approx(probs.max())
        assert r["error"] in ("", None)


def test_predict_files_and_folders(sim_dir, model_dir, tmp_path, cli):
    single = sorted((sim_dir / "cdm").glob("*.npy"))[0]
    expected = (
        [str(single)]
        + sorted(str(p) for p in (sim_dir / "axion").glob("*.npy"))
        + sorted(str(p) for p in (sim_dir / "no_sub").glob("*.npy"))
    )
    args = ("predict", single, sim_dir / "axion", sim_dir / "no_sub", single, "--model", model_dir)
    result = cli(*args, "--output", tmp_path / "p.csv", "--batch-size", "2")
    assert result.code == 0, result.err
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    _check_rows(rows, expected)
    assert f"{len(expected)} image(s) classified" in result.err

    result = cli(*args, "--output", tmp_path / "p.json")
    assert result.code == 0, result.err
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["labels"] == list(LABELS) and doc["num_skipped"] == 0
    _check_rows(doc["predictions"], expected)
    direct = _direct_probs(model_dir, read_image(single)[0])
    assert [doc["predictions"][0][f"p_{n}"] for n in LABELS] == pytest.approx(direct, abs=1e-6)
    for row_csv, row_json in zip(rows, doc["predictions"]):  # batch size does not change the numbers
        assert float(row_csv["p_vortex"]) == pytest.approx(row_json["p_vortex"], abs=1e-6)

    result = cli(*args)  # a table on stdout
    assert result.code == 0, result.err
    lines = result.out.strip().splitlines()
    assert lines[0].split("\t") == ["label", "score", *[f"p_{n}" for n in LABELS], "file"]
    assert [line.split("\t")[-1] for line in lines[1:]] == expected
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------------------------------ evaluate
def _sklearn_metrics(predictions_csv: Path) -> dict:
    from sklearn.metrics import accuracy_score, roc_auc_score

    with open(predictions_csv) as f:
        rows = list(csv.DictReader(f))
    y = np.array([LABELS.index(r["true_label"]) for r in rows])
    p = np.array([[float(r[f"p_{n}"]) for n in LABELS] for r in rows])
    onehot = np.eye(len(LABELS))[y]
    return {
        "per_class": {n: roc_auc_score(onehot[:, k], p[:, k]) for k, n in enumerate(LABELS)},
        "macro": roc_auc_score(y, p, multi_class="ovr", average="macro"),
        "micro": roc_auc_score(onehot.ravel(), p.ravel()),
        "accuracy": accuracy_score(y, p.argmax(1)),
        "n": len(rows),
    }


def _check_evaluation(out: Path, n: int) -> dict:
    for name in ("metrics.json", "roc.png", "confusion_matrix.png", "predictions.csv"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert _is_png(out / "roc.png") and _is_png(out / "confusion_matrix.png")
    metrics = json.loads((out / "metrics.json").read_text())
    ref = _sklearn_metrics(out / "predictions.csv")
    assert metrics["num_samples"] == ref["n"] == n
    assert metrics["roc_auc_macro"] == pytest.approx(ref["macro"], abs=1e-9)
    assert metrics["roc_auc_micro"] == pytest.approx(ref["micro"], abs=1e-9)
    for name in LABELS:
        assert metrics["roc_auc_per_class"][name] == pytest.approx(ref["per_class"][name], abs=1e-9)
    assert metrics["accuracy"] == pytest.approx(ref["accuracy"])
    assert np.asarray(metrics["confusion_matrix"]).sum() == n
    return metrics


def test_evaluate_raw_folder_and_saved_dataset(sim_dir, model_dir, tmp_path, cli):
    result = cli("evaluate", "--model", model_dir, "--data", sim_dir, "--out", tmp_path / "eval")
    assert result.code == 0, result.err
    metrics = _check_evaluation(tmp_path / "eval", 3 * PER_CLASS)
    assert metrics["skipped"] == [] and "macro" in result.out

    assert cli("build-dataset", sim_dir, "--out", tmp_path / "ds", "--splits", "1,1,1").code == 0
    result = cli(
        "evaluate",
        "--model",
        model_dir,
        "--data",
        tmp_path / "ds",
        "--split",
        "test",
        "--out",
        tmp_path / "eval_ds",
    )
    assert result.code == 0, result.err
    _check_evaluation(tmp_path / "eval_ds", 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_model_from_offline_hub_cache(offline_hub, sim_dir, model_dir, tmp_path, cli):
    repo = "lens-hf/tiny-lens"
    assert cli("predict", sim_dir, "--model", repo, "--output", tmp_path / "hub.csv").code == 0
    assert cli("predict", sim_dir, "--model", model_dir, "--output", tmp_path / "local.csv").code == 0
    assert (tmp_path / "hub.csv").read_text() == (tmp_path / "local.csv").read_text()
    result = cli("evaluate", "--model", repo, "--data", sim_dir, "--out", tmp_path / "eval")
    assert result.code == 0, result.err
    metrics = _check_evaluation(tmp_path / "eval", 3 * PER_CLASS)
    assert "snapshots" in metrics["model"]
    before = tree(offline_hub)
    result = cli("card", "--model", repo)  # the cache is not ours to write into
    assert result.code == 2 and "not a local model folder" in result.err and tree(offline_hub) == before


def test_card_parses_with_model_index(sim_dir, model_dir, tmp_path, cli):
    from huggingface_hub import ModelCard

    model = copy_model(model_dir, tmp_path / "model")
    assert cli("evaluate", "--model", model, "--data", sim_dir, "--out", tmp_path / "eval").code == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["simulation"] == {"preset": "model_i", "seed": 4, "per_class": PER_CLASS}
    result = cli(
        "card", "--model", model, "--metrics", tmp_path / "eval" / "metrics.json", "--repo-id", "org/lens-vit"
    )
    assert result.code == 0, result.err
    card = ModelCard.load(model / "README.md")
    assert card.data.pipeline_tag == "image-classification"
    values = {(r.metric_type, r.metric_config): r.metric_value for r in card.data.eval_results}
    assert values[("roc_auc", "macro")] == pytest.approx(metrics["roc_auc_macro"], abs=1e-6)
    assert values[("accuracy", None)] == pytest.approx(metrics["accuracy"], abs=1e-6)
    index = card.data.to_dict()["model-index"]
    assert index[0]["name"] == "lens-vit" and index[0]["results"]
    assert "org/lens-vit" in card.text
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    result = cli("card", "--model", model, "--metrics", broken)
    assert result.code == 2 and len(result.err_lines) == 1 and str(broken) in result.err
    # the same evaluation with --tta d4 beside it
    assert (
        cli("evaluate", "--model", model, "--data", sim_dir, "--out", tmp_path / "tta", "--tta", "d4").code
        == 0
    )
    tta = json.loads((tmp_path / "tta" / "metrics.json").read_text())
    plain, with_tta = tmp_path / "eval" / "metrics.json", tmp_path / "tta" / "metrics.json"
    result = cli("card", "--model", model, "--metrics", plain, "--tta-metrics", with_tta)
    assert result.code == 0, result.err
    text = (model / "README.md").read_text()
    assert f"| ROC-AUC macro | {metrics['roc_auc_macro']:.4f} | {tta['roc_auc_macro']:.4f} |" in text
    result = cli("card", "--model", model, "--metrics", plain, "--tta-metrics", plain)
    assert result.code != 0 and len(result.err_lines) == 1 and "--tta d4" in result.err


def test_push_offline_is_one_line(model_dir, cli, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = cli("push", "--model", model_dir, "--repo-id", "org/lens-vit")
    assert result.code == 2 and result.err_lines == [
        "lens-hf: error: cannot push to 'org/lens-vit': HF_HUB_OFFLINE is set"
    ]


def test_simulate_rerun_keeps_complete_files(sim_dir, tmp_path, cli):
    copy = tmp_path / "again"
    shutil.copytree(sim_dir, copy)
    before = tree(copy)
    result = cli(
        "simulate",
        "--preset",
        "model_i",
        "--per-class",
        str(PER_CLASS),
        "--seed",
        "4",
        "--workers",
        "1",
        "--out",
        copy,
    )
    assert result.code == 0 and f"kept {3 * PER_CLASS} complete" in result.out
    assert tree(copy) == before


# ------------------------------------------------------------------------------------------------ TTA
def _probs_of(doc: dict) -> dict[str, np.ndarray]:
    return {r["file"]: np.array([r[f"p_{n}"] for n in LABELS]) for r in doc["predictions"]}


def test_predict_is_the_pipeline_and_tta_is_rotation_invariant(sim_dir, model_dir, tmp_path, cli):
    from lens_hf.inference import load_pipeline

    data = tmp_path / "rotated"
    data.mkdir()
    source = sorted((sim_dir / "cdm").glob("*.npy"))[0]
    image = read_image(source)[0]
    np.save(data / "a_original.npy", image)
    np.save(data / "b_rot90.npy", np.rot90(image).copy())
    np.save(data / "c_flipped.npy", image[::-1].copy())
    pipe = load_pipeline(model_dir)
    for tta in ("none", "d4"):
        out = tmp_path / f"{tta}.json"
        result = cli(
            "predict", data, "--model", model_dir, "--tta", tta, "--batch-size", "2", "--output", out
        )
        assert result.code == 0, result.err
        probs = _probs_of(json.loads(out.read_text()))
        for path, p in probs.items():  # the command gives what the pipeline gives
            scores = {r["label"]: r["score"] for r in pipe(path, tta=tta)}
            np.testing.assert_allclose(p, [scores[n] for n in LABELS], atol=1e-6)
        original, rotated, flipped = (probs[str(data / name)] for name in sorted(os.listdir(data)))
        if tta == "d4":
            np.testing.assert_allclose(rotated, original, atol=1e-6)
            np.testing.assert_allclose(flipped, original, atol=1e-6)
            assert "test-time augmentation d4" in result.err
        else:
            assert np.abs(rotated - original).max() > 1e-5  # the test can fail
    assert cli("predict", data, "--model", model_dir, "--tta", "d8").code == 2


def test_evaluate_with_tta_and_the_default_model(sim_dir, tmp_path, cli):
    from lens_hf.inference import DEFAULT_MODEL_DIR

    if not (DEFAULT_MODEL_DIR / "config.json").is_file():
        pytest.skip("no shipped checkpoint in this checkout")
    plain, tta = tmp_path / "plain", tmp_path / "tta"
    assert cli("evaluate", "--data", sim_dir, "--out", plain).code == 0
    result = cli("evaluate", "--data", sim_dir, "--out", tta, "--tta", "d4")
    assert result.code == 0, result.err
    assert sorted(os.listdir(tta)) == sorted(os.listdir(plain))
    metrics = _check_evaluation(tta, 3 * PER_CLASS)
    assert metrics["tta"] == "d4" and metrics["model"] == str(DEFAULT_MODEL_DIR)
    assert json.loads((plain / "metrics.json").read_text())["tta"] == "none"


# ------------------------------------------------------------------------------------------------ outputs
def _constant_image_folder(root: Path) -> Path:
    """A folder whose only image would stop inference (constant): an error naming the output comes first."""
    root.mkdir()
    np.save(root / "flat.npy", np.full((40, 40), 3.0))
    return root


def test_outputs_that_cannot_be_written_fail_before_inference(model_dir, tmp_path, cli):
    data = _constant_image_folder(tmp_path / "data")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):  # root writes whatever the mode: use a folder nobody can write into
            locked = Path("/sys/kernel")
            if not locked.is_dir() or os.access(locked, os.W_OK) and _can_create(locked):
                pytest.skip("no read-only folder available")
        long_name = "x" * 300
        cases = [
            (("predict", data, "--output", locked / "p.csv"), locked / "p.csv", "cannot write there"),
            (("evaluate", "--data", data, "--out", locked / "eval"), locked / "eval", "cannot write there"),
            (
                ("predict", data, "--output", tmp_path / f"{long_name}.csv"),
                None,
                "too long for the file system",
            ),
            (
                ("predict", data, "--output", tmp_path / long_name / "p.json"),
                None,
                "too long for the file system",
            ),
            (
                ("evaluate", "--data", data, "--out", tmp_path / long_name),
                None,
                "too long for the file system",
            ),
        ]
        before = tree(tmp_path)
        for args, named, words in cases:
            result = cli(*args[:1], "--model", model_dir, *args[1:])
            user_path = str(named or args[-1])
            assert result.code == 2 and len(result.err_lines) == 1, result.err
            line = result.err_lines[0]
            assert line.startswith(f"lens-hf: error: {user_path}: ") and words in line, line
            assert "constant" not in line and ".tmp" not in line and "probe" not in line, line
            assert tree(tmp_path) == before
    finally:
        (tmp_path / "locked").chmod(0o755)


def _can_create(folder: Path) -> bool:
    import tempfile

    try:
        fd, name = tempfile.mkstemp(dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def test_tabs_and_newlines_in_file_names(model_dir, tmp_path, cli):
    from conftest import lens_image

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(5)
    names = ["plain.npy", "tab\there.npy", "new\nline.npy", "carriage\rreturn.npy", 'quote",comma.npy']
    for name in names:
        np.save(data / name, lens_image(rng, 1))
    np.save(data / "bad\tflat.npy", np.full((40, 40), 2.0))
    expected = sorted(str(data / name) for name in [*names, "bad\tflat.npy"])

    result = cli("predict", data, "--model", model_dir, "--skip-bad")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert len(lines) == 1 + len(expected)
    assert {line.count("\t") for line in lines} == {len(LABELS) + 2}
    escaped = [line.split("\t")[-1] for line in lines[1:]]
    assert escaped == [p.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r") for p in expected]
    skipped = [line for line in result.err_lines if line.startswith("skipped ")]
    assert skipped == [
        f"skipped {data}/bad\\tflat.npy: constant image (all pixels equal): cannot min-max normalise"
    ]

    for suffix in ("csv", "json"):
        out = tmp_path / f"p.{suffix}"
        assert cli("predict", data, "--model", model_dir, "--skip-bad", "--output", out).code == 0
        if suffix == "csv":
            with open(out, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
        else:
            rows = json.loads(out.read_text())["predictions"]
        assert [r["file"] for r in rows] == expected
        assert [bool(r["error"]) for r in rows] == [p.endswith("bad\tflat.npy") for p in expected]


# ------------------------------------------------------------------------------------------------ models
def test_non_finite_logits_name_the_file_and_skip_bad_skips_it(tmp_path, cli):
    from conftest import lens_image

    from lens_hf.models.factory import create_model
    from lens_hf.processing import LensImageProcessor, save_model_folder

    torch.manual_seed(0)
    model = create_model("vit-spt-lsa-tiny", image_size=MODEL_INPUT_PX, **TINY_VIT)
    raw = LensImageProcessor(size=MODEL_INPUT_PX, normalization="none")  # raw counts reach the model
    folder = save_model_folder(model, raw, tmp_path / "raw-model")
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(2)
    for i in range(3):
        np.save(data / f"ok{i}.npy", lens_image(rng, i))
    huge = lens_image(rng, 0).astype(np.float64) * 1e20  # finite pixels, beyond what the model handles
    np.save(data / "huge.npy", huge)

    before = tree(tmp_path)
    result = cli("predict", data, "--model", folder, "--output", tmp_path / "p.csv")
    assert result.code == 2 and result.err_lines == [
        f"lens-hf: error: {data / 'huge.npy'}: the model gave non-finite logits (NaN or inf) for this image; "
        "no prediction"
    ]
    assert tree(tmp_path) == before
    result = cli(
        "predict", data, "--model", folder, "--skip-bad", "--output", tmp_path / "p.csv", "--batch-size", "4"
    )
    assert result.code == 0, result.err
    with open(tmp_path / "p.csv", newline="") as f:
        rows = {Path(r["file"]).name: r for r in csv.DictReader(f)}
    assert "non-finite" in rows["huge.npy"]["error"] and rows["huge.npy"]["label"] == ""
    for i in range(3):  # the rest of its batch is classified
        probs = np.array([float(rows[f"ok{i}.npy"][f"p_{n}"]) for n in LABELS])
        assert np.isfinite(probs).all() and abs(probs.sum() - 1) < 1e-5


def test_model_folder_without_its_processor(model_dir, deeplense_dir, tmp_path, cli):
    """With the preprocessing recorded in config.json: the same predictions and a warning; without: refused."""
    image = next((deeplense_dir / "cdm").iterdir())
    assert cli("predict", image, "--model", model_dir, "--output", tmp_path / "with.csv").code == 0
    folder = copy_model(model_dir, tmp_path / "model")
    (folder / "preprocessor_config.json").unlink()
    result = cli("predict", image, "--model", folder, "--output", tmp_path / "without.csv")
    assert result.code == 0, result.err
    warning = f"lens-hf: warning: {folder / 'preprocessor_config.json'}: no such file; using the preprocessing recorded"
    assert [line for line in result.err_lines if "warning" in line][0].startswith(warning), result.err
    assert (tmp_path / "without.csv").read_text() == (tmp_path / "with.csv").read_text()

    config = json.loads((folder / "config.json").read_text())
    del config["lens_preprocessing"]
    (folder / "config.json").write_text(json.dumps(config))
    before = tree(tmp_path)
    result = cli("predict", image, "--model", folder, "--output", tmp_path / "p.csv")
    assert result.code == 2 and len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith(
        f"lens-hf: error: {folder / 'preprocessor_config.json'}: no such file"
    )
    assert "refusing to guess" in result.err and tree(tmp_path) == before


@pytest.fixture(scope="module")
def regressor_dir(tmp_path_factory) -> Path:
    """A saved (random) tiny SPT+LSA regressor of log10 axion_mass, with its target scaling in the config."""
    from lens_hf.models.factory import create_model
    from lens_hf.processing import LensImageProcessor, save_model_folder
    from lens_hf.processing.targets import TargetScaling

    torch.manual_seed(0)
    scaling = TargetScaling("axion_mass", "log10", -23.0, 0.6)
    model = create_model(
        "vit-spt-lsa-tiny", image_size=MODEL_INPUT_PX, task="regression", target=scaling, **TINY_VIT
    )
    processor = LensImageProcessor(size={"height": MODEL_INPUT_PX, "width": MODEL_INPUT_PX})
    return save_model_folder(model, processor, tmp_path_factory.mktemp("models") / "tiny-regressor")


def test_predict_and_evaluate_a_regression_model(sim_dir, regressor_dir, tmp_path, cli):
    from lens_hf.inference import load_pipeline

    axion = sim_dir / DEEPLENSE_FOLDERS["vortex"]
    result = cli("predict", "--model", regressor_dir, axion, "--output", tmp_path / "pred.csv")
    assert result.code == 0, result.err
    assert f"{PER_CLASS} image(s) predicted (axion_mass)" in result.err
    rows = list(csv.DictReader((tmp_path / "pred.csv").open()))
    assert list(rows[0]) == ["file", "log10_axion_mass", "axion_mass", "error"] and len(rows) == PER_CLASS
    pipe = load_pipeline(regressor_dir)
    for row in rows:
        assert float(row["axion_mass"]) == pytest.approx(pipe(row["file"])[0]["score"], rel=1e-5)
        assert float(row["log10_axion_mass"]) == pytest.approx(np.log10(float(row["axion_mass"])))
    table = cli("predict", "--model", regressor_dir, axion)
    assert table.out.splitlines()[0].split("\t") == ["log10_axion_mass", "axion_mass", "file"]

    # True values from the files' metadata: only the vortices have an axion mass.
    result = cli("evaluate", "--model", regressor_dir, "--data", sim_dir, "--out", tmp_path / "eval")
    assert result.code == 0, result.err
    assert f"{2 * PER_CLASS} image(s) have no axion_mass value: not evaluated" in result.err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert (metrics["target"], metrics["transform"], metrics["num_samples"]) == (
        "axion_mass",
        "log10",
        PER_CLASS,
    )
    assert metrics["num_without_target"] == 2 * PER_CLASS and (tmp_path / "eval" / "regression.png").is_file()
    evaluated = list(csv.DictReader((tmp_path / "eval" / "predictions.csv").open()))
    for row in evaluated:
        _, meta = read_image(row["file"])
        assert float(row["true_axion_mass"]) == pytest.approx(meta["axion_mass"], rel=1e-5)
    errors = [abs(float(r["log10_axion_mass"]) - float(r["true_log10_axion_mass"])) for r in evaluated]
    assert metrics["mae"] == pytest.approx(np.mean(errors), rel=1e-4)

    # A saved DatasetDict: the axion_mass column.
    assert cli("build-dataset", sim_dir, "--out", tmp_path / "ds", "--splits", "1,1,1").code == 0
    result = cli(
        "evaluate", "--model", regressor_dir, "--data", tmp_path / "ds", "--out", tmp_path / "eval_ds"
    )
    assert result.code == 0, result.err
    assert json.loads((tmp_path / "eval_ds" / "metrics.json").read_text())["num_samples"] == 1
