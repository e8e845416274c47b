"""lens_hf.metrics: AUCs equal direct scikit-learn computations, input validation, written evaluation files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score
from sklearn.preprocessing import label_binarize

from lens_hf.labels import LABELS
from lens_hf.metrics import (
    METRIC_KEYS,
    classification_metrics,
    format_regression_table,
    format_table,
    regression_metrics,
    softmax,
    write_evaluation,
    write_regression_evaluation,
)


def _fake_predictions(n: int = 240, seed: int = 0, signal: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Labels (n,) and softmax probabilities (n, 3) of a noisy classifier."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    rng.shuffle(y)
    logits = rng.normal(size=(len(y), 3))
    logits[np.arange(len(y)), y] += signal
    return y, softmax(logits)


def test_softmax_matches_definition_and_is_stable() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 1000.0, -1000.0]])
    p = softmax(logits)
    expected0 = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    np.testing.assert_allclose(p[0], expected0, rtol=1e-12)
    np.testing.assert_allclose(p[1], [0.5, 0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        softmax([[0.0, np.nan, 1.0]])


def test_aucs_equal_direct_sklearn() -> None:
    y, p = _fake_predictions()
    m = classification_metrics(y, p)
    for k, name in enumerate(LABELS):
        assert m["roc_auc_per_class"][name] == pytest.approx(roc_auc_score(y == k, p[:, k]), abs=1e-12)
    assert m["roc_auc_macro"] == pytest.approx(
        roc_auc_score(y, p, multi_class="ovr", average="macro"), abs=1e-12
    )
    onehot = label_binarize(y, classes=[0, 1, 2])
    assert m["roc_auc_micro"] == pytest.approx(roc_auc_score(onehot, p, average="micro"), abs=1e-12)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert m["confusion_matrix"] == confusion_matrix(y, p.argmax(1), labels=[0, 1, 2]).tolist()
    assert m["num_samples"] == len(y)
    assert list(m) == list(METRIC_KEYS)
    assert 0.6 < m["roc_auc_macro"] < 1.0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(6, 60))
def test_macro_auc_matches_sklearn_property(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(3), rng.integers(0, 3, n - 3)])
    p = softmax(rng.normal(size=(n, 3)) * 3)
    m = classification_metrics(y, p)
    assert m["roc_auc_macro"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"), abs=1e-12)
    assert sum(map(sum, m["confusion_matrix"])) == n


def test_perfect_and_inverted_scores() -> None:
    y = np.array([0, 1, 2, 0, 1, 2])
    perfect = np.eye(3)[y] * 0.9 + 0.1 / 3
    m = classification_metrics(y, perfect)
    assert m["accuracy"] == 1.0
    assert m["roc_auc_macro"] == 1.0 and m["roc_auc_micro"] == 1.0
    inverted = (1 - np.eye(3)[y]) / 2
    assert classification_metrics(y, inverted)["roc_auc_macro"] == 0.0


def test_absent_class_gives_null_auc_and_macro_over_present() -> None:
    y, p = _fake_predictions()
    keep = y != 2
    y, p = y[keep], p[keep]
    m = classification_metrics(y, p)
    assert m["roc_auc_per_class"]["vortex"] is None
    present = [m["roc_auc_per_class"]["no_substructure"], m["roc_auc_per_class"]["subhalo"]]
    assert m["roc_auc_macro"] == pytest.approx(np.mean(present))
    assert "vortex" in m["roc_auc_note"] and "2 class" in m["roc_auc_note"]
    assert m["confusion_matrix"][2] == [0, 0, 0]
    assert m["roc_auc_micro"] == pytest.approx(
        roc_auc_score(label_binarize(y, classes=[0, 1, 2]), p, average="micro")
    )
    assert "n/a" in format_table(m)


def test_single_class_has_no_macro_but_a_micro() -> None:
    p = softmax(np.random.default_rng(1).normal(size=(5, 3)))
    m = classification_metrics(np.ones(5, dtype=int), p)
    assert m["roc_auc_macro"] is None
    assert all(v is None for v in m["roc_auc_per_class"].values())
    assert m["roc_auc_micro"] is not None


def test_label_names_accepted() -> None:
    y, p = _fake_predictions(30)
    named = [LABELS[i] for i in y]
    assert classification_metrics(named, p) == classification_metrics(y, p)


@pytest.mark.parametrize(
    ("y", "probs", "message"),
    [
        ([0, 1], np.full((2, 2), 0.5), "2 columns but there are 3 labels"),
        ([0, 1], np.full(3, 1 / 3), "must be 2-D"),
        ([0, 1], np.array([[2.0, -1.0, 0.0], [0.0, 1.0, 0.0]]), "pass softmax"),
        ([0, 1], np.array([[0.5, 0.5, 0.5], [0.2, 0.2, 0.6]]), "sum to 1"),
        ([0, 1], np.array([[np.nan, 0.5, 0.5], [0.2, 0.2, 0.6]]), "NaN"),
        ([0, 1, 2], np.full((2, 3), 1 / 3), "3 entries but probs has 2 rows"),
        ([0, 3], np.full((2, 3), 1 / 3), "ids must be in 0..2"),
        (["no_substructure", "cat"], np.full((2, 3), 1 / 3), "unknown label name"),
        ([0.5, 1.0], np.full((2, 3), 1 / 3), "integer class ids"),
        ([[0], [1]], np.full((2, 3), 1 / 3), "must be 1-D"),
        ([], np.zeros((0, 3)), "no samples"),
    ],
)
def test_bad_inputs_raise_clear_value_errors(y: list, probs: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(np.asarray(y), probs)


def test_write_evaluation_files(tmp_path) -> None:
    y, p = _fake_predictions(60)
    paths = [f"data/img_{i}.npy" for i in range(len(y))]
    out = tmp_path / "eval"
    m = write_evaluation(out, y, p, paths=paths, extra={"split": "test", "model": "tiny"})

    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved) == set(METRIC_KEYS) | {"split", "model"}
    assert saved == m
    assert saved["roc_auc_macro"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr"))

    for name in ("roc.png", "confusion_matrix.png"):
        with Image.open(out / name) as img:
            img.verify()
        with Image.open(out / name) as img:
            assert img.format == "PNG" and img.width > 300 and img.height > 300

    with open(out / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["file", "true_label", "label", "score", *[f"p_{x}" for x in LABELS]]
    assert len(rows) == len(y)
    for i in (0, 17, 59):
        assert rows[i]["file"] == paths[i]
        assert rows[i]["true_label"] == LABELS[y[i]]
        assert rows[i]["label"] == LABELS[int(p[i].argmax())]
        assert float(rows[i]["score"]) == pytest.approx(p[i].max(), abs=1e-6)
        assert float(rows[i]["p_subhalo"]) == pytest.approx(p[i, 1], abs=1e-6)

    assert sorted(x.name for x in out.iterdir()) == [
        "confusion_matrix.png",
        "metrics.json",
        "predictions.csv",
        "roc.png",
    ]


def test_write_evaluation_absent_class_json_null_and_no_csv_without_paths(tmp_path) -> None:
    y, p = _fake_predictions(60)
    keep = y != 0
    m = write_evaluation(tmp_path, y[keep], p[keep])
    text = (tmp_path / "metrics.json").read_text()
    assert '"no_substructure": null' in text
    assert json.loads(text)["roc_auc_note"] == m["roc_auc_note"]
    assert not (tmp_path / "predictions.csv").exists()


def test_write_evaluation_rejects_bad_extra_and_paths(tmp_path) -> None:
    y, p = _fake_predictions(30)
    with pytest.raises(ValueError, match="overwrite metric key"):
        write_evaluation(tmp_path, y, p, extra={"accuracy": 1.0})
    with pytest.raises(ValueError, match="29 paths for 30 samples"):
        write_evaluation(tmp_path, y, p, paths=["x"] * 29)
    assert not (tmp_path / "metrics.json").exists()


def test_format_table_lists_every_class() -> None:
    y, p = _fake_predictions()
    m = classification_metrics(y, p)
    table = format_table(m)
    for name in LABELS:
        assert name in table
    assert f"{m['roc_auc_macro']:.4f}" in table
    assert f"{m['roc_auc_micro']:.4f}" in table
    assert f"(n={len(y)})" in table
    support_line = next(line for line in table.splitlines() if line.startswith("subhalo"))
    assert support_line.split()[-1] == str(int((y == 1).sum()))


# ------------------------------------------------------------------------------------------------ regression
def test_regression_metrics_match_their_definitions() -> None:
    rng = np.random.default_rng(0)
    y = rng.uniform(-24, -22, 200)  # log10 m_a (eV)
    pred = y + rng.normal(0.05, 0.2, y.size)
    m = regression_metrics(y, pred)
    err = pred - y
    assert m["mae"] == pytest.approx(np.abs(err).mean()) and m["rmse"] == pytest.approx(
        np.sqrt((err**2).mean())
    )
    assert m["bias"] == pytest.approx(err.mean())
    assert m["r2"] == pytest.approx(1 - (err**2).sum() / ((y - y.mean()) ** 2).sum())
    assert m["within_0.1"] == pytest.approx(np.mean(np.abs(err) <= 0.1))
    assert m["within_0.3"] == pytest.approx(np.mean(np.abs(err) <= 0.3)) and m["within_0.3"] > m["within_0.1"]
    bins = m["mae_binned"]
    assert len(bins) == 5 and sum(b["num_samples"] for b in bins) == 200 == m["num_samples"]
    assert bins[0]["low"] == y.min() and bins[-1]["high"] == y.max()
    for b in bins:
        inside = (y >= b["low"]) & ((y < b["high"]) | (b is bins[-1]))
        assert b["mae"] == pytest.approx(np.abs(err[inside]).mean())
    perfect = regression_metrics(y, y)
    assert perfect["mae"] == 0 and perfect["r2"] == 1 and perfect["within_0.1"] == 1


def test_regression_metrics_undefined_r2_and_bad_input() -> None:
    m = regression_metrics([-23.0], [-22.5])
    assert m["r2"] is None and m["mae"] == 0.5 and m["bias"] == 0.5
    assert [b["num_samples"] for b in m["mae_binned"]] == [1]
    with pytest.raises(ValueError, match="finite"):
        regression_metrics([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="2 values but y_pred has 3"):
        regression_metrics([1.0, 2.0], [1.0, 2.0, 3.0])


def test_write_regression_evaluation_files(tmp_path) -> None:
    y = np.array([-23.5, -23.0, -22.5])
    pred = np.array([-23.4, -23.0, -22.9])
    m = write_regression_evaluation(
        tmp_path,
        y,
        pred,
        target="axion_mass",
        transform="log10",
        paths=["a.npy", "b.npy", "c.npy"],
        extra={"split": "test"},
    )
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["target"] == "axion_mass" and saved["transform"] == "log10" and saved["split"] == "test"
    assert saved["quantity"] == "log10_axion_mass" and saved["mae"] == pytest.approx(m["mae"])
    with Image.open(tmp_path / "regression.png") as img:
        assert img.format == "PNG"
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert list(rows[0]) == [
        "file",
        "true_axion_mass",
        "axion_mass",
        "true_log10_axion_mass",
        "log10_axion_mass",
    ]
    assert float(rows[2]["axion_mass"]) == pytest.approx(10**-22.9, rel=1e-5)
    assert float(rows[2]["log10_axion_mass"]) == pytest.approx(-22.9)
    assert "MAE" in format_regression_table(m) and "dex" in format_regression_table(m)
    with pytest.raises(ValueError, match="overwrite"):
        write_regression_evaluation(tmp_path, y, pred, target="x", transform="none", extra={"mae": 1})
