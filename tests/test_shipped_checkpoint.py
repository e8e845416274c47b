"""The Model I checkpoint shipped in checkpoints/: small, safetensors, loadable by the pipeline, and right."""

from __future__ import annotations

import json

import numpy as np
import pytest
from transformers import pipeline

import lens_hf  # noqa: F401  (registers the model, processor and pipeline)
from lens_hf.cli import main
from lens_hf.data.simulate import write_deeplense
from lens_hf.inference import DEFAULT_MODEL_DIR
from lens_hf.labels import LABELS

pytestmark = pytest.mark.skipif(
    not (DEFAULT_MODEL_DIR / "config.json").is_file(), reason="no shipped checkpoint in this checkout"
)


def test_checkpoint_folder_is_small_and_pickle_free():
    files = {p.name: p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir() if p.is_file()}
    assert "model.safetensors" in files and "README.md" in files and "metrics.json" in files
    assert not any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in files)
    assert sum(files.values()) <= 10 * 1024 * 1024, files
    metrics = json.loads((DEFAULT_MODEL_DIR / "metrics.json").read_text())
    assert metrics["labels"] == list(LABELS)


def test_default_model_classifies_fresh_simulations(tmp_path, capsys):
    """`lens-hf predict` without --model uses the shipped checkpoint; the pipeline loads it by path."""
    data = tmp_path / "fresh"
    write_deeplense(data, "model_i", 4, seed=12345, workers=1, progress=False)
    out = tmp_path / "preds.json"
    assert main(["predict", str(data), "--output", str(out)]) == 0
    rows = json.loads(out.read_text())["predictions"]
    assert len(rows) == 12
    truth = {"no_sub": "no_substructure", "cdm": "subhalo", "axion": "vortex"}
    correct = sum(row["label"] == truth[row["file"].split("/")[-2]] for row in rows)
    assert correct >= 9, rows  # the checkpoint's test accuracy is far above 75 %

    clf = pipeline("image-classification", model=str(DEFAULT_MODEL_DIR))
    first = rows[0]["file"]
    scores = {r["label"]: r["score"] for r in clf(first)}
    assert set(scores) == set(LABELS) and abs(sum(scores.values()) - 1) < 1e-5
    assert np.isclose(scores[rows[0]["label"]], rows[0]["score"], atol=1e-5)


AXION_MODEL_DIR = DEFAULT_MODEL_DIR.parent / "axion-mass-model-i"


@pytest.mark.skipif(not (AXION_MODEL_DIR / "config.json").is_file(), reason="no axion-mass checkpoint here")
def test_axion_mass_model_reads_deeplense_axion_files(tmp_path, capsys):
    """`lens-hf predict` on a folder of DeepLense axion files ([image, m_a] object arrays): one row per file,
    columns file, log10_axion_mass, axion_mass (eV); the pipeline answers the same value."""
    import csv

    files = {p.name: p.stat().st_size for p in AXION_MODEL_DIR.iterdir() if p.is_file()}
    assert "model.safetensors" in files and sum(files.values()) <= 25 * 1024 * 1024, files
    metrics = json.loads((AXION_MODEL_DIR / "metrics.json").read_text())
    assert {"mae", "rmse", "r2", "bias", "target", "transform", "num_samples"} <= set(metrics)
    assert (metrics["target"], metrics["transform"], metrics["num_samples"]) == ("axion_mass", "log10", 1000)

    data = tmp_path / "fresh"
    write_deeplense(data, "model_i", 3, seed=12346, workers=1, progress=False)
    out = tmp_path / "p.csv"
    assert main(["predict", "--model", str(AXION_MODEL_DIR), str(data / "axion"), "--output", str(out)]) == 0
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["file", "log10_axion_mass", "axion_mass", "error"] and len(rows) == 3
    clf = pipeline("image-classification", model=str(AXION_MODEL_DIR), trust_remote_code=True)
    for row in rows:
        value = float(row["log10_axion_mass"])
        assert -25.0 < value < -21.0 and float(row["axion_mass"]) == pytest.approx(10**value, rel=1e-6)
        (answer,) = clf(row["file"])
        assert answer["label"] == "axion_mass" and answer["score"] == pytest.approx(
            float(row["axion_mass"]), rel=1e-4
        )
