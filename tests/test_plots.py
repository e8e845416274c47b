"""lens_hf.plots: every figure is a valid PNG, written atomically, and rejects malformed input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lens_hf.labels import LABELS
from lens_hf.metrics import softmax
from lens_hf.plots import (
    plot_confusion_matrix,
    plot_examples,
    plot_learning_curves,
    plot_regression,
    plot_roc,
)


def _open_png(path) -> np.ndarray:
    """Verify ``path`` is a PNG and return its pixels (H, W, channels)."""
    with Image.open(path) as img:
        img.verify()
    with Image.open(path) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


def _ring(size: int, radius: float, seed: int) -> np.ndarray:
    """A toy Einstein ring (H, W) with noise."""
    yy, xx = np.mgrid[:size, :size] - size / 2
    r = np.hypot(yy, xx)
    return np.exp(-((r - radius) ** 2) / 8) + 0.05 * np.random.default_rng(seed).normal(size=(size, size))


def test_plot_roc_png(tmp_path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 90)
    logits = rng.normal(size=(90, 3))
    logits[np.arange(90), y] += 2
    out = plot_roc(y, softmax(logits), LABELS, tmp_path / "roc.png")
    pixels = _open_png(out)
    assert pixels.shape[0] > 300 and pixels.std() > 10
    assert [p.name for p in tmp_path.iterdir()] == ["roc.png"]


def test_plot_roc_with_absent_class(tmp_path) -> None:
    y = np.array([0, 1, 0, 1, 0, 1])
    p = softmax(np.random.default_rng(2).normal(size=(6, 3)))
    _open_png(plot_roc(y, p, LABELS, tmp_path / "roc.png"))
    with pytest.raises(ValueError, match="does not match"):
        plot_roc(y, p[:, :2], LABELS, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_plot_confusion_matrix(tmp_path) -> None:
    cm = np.array([[50, 3, 2], [4, 40, 6], [0, 0, 0]])
    pixels = _open_png(plot_confusion_matrix(cm, LABELS, tmp_path / "cm.png"))
    assert pixels.shape[1] > pixels.shape[0]  # counts and normalised side by side
    with pytest.raises(ValueError, match="shape"):
        plot_confusion_matrix(np.ones((2, 3)), LABELS, tmp_path / "x.png")
    with pytest.raises(ValueError, match="non-negative"):
        plot_confusion_matrix(-np.ones((3, 3)), LABELS, tmp_path / "x.png")


def test_plot_examples_grid(tmp_path) -> None:
    images = {
        "no_substructure": [_ring(64, 15, i) for i in range(5)],
        "subhalo": [_ring(64, 15, 10 + i)[None] for i in range(5)],  # (1, H, W) is accepted
        "vortex": [_ring(64, 15, 20)[..., None] * 100.0],  # a brighter image, one only
    }
    wide = _open_png(plot_examples(images, tmp_path / "grid.png"))
    assert wide.shape[1] > wide.shape[0]  # 3 rows x 5 columns
    tall = _open_png(plot_examples(images, tmp_path / "tall.png", per_class=1, scale="all"))
    assert tall.shape[0] > tall.shape[1]  # 3 rows x 1 column
    with pytest.raises(ValueError, match="2-D image"):
        plot_examples({"vortex": [np.zeros((3, 8, 8))]}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="scale"):
        plot_examples(images, tmp_path / "x.png", scale="global")
    with pytest.raises(ValueError, match="no images"):
        plot_examples({"vortex": []}, tmp_path / "x.png")


def _trainer_log_history() -> list[dict]:
    """Entries shaped like ``Trainer.state.log_history`` (train logs, eval logs, the closing summary)."""
    history: list[dict] = []
    for step in range(1, 31):
        history.append(
            {
                "loss": 1.1 - step * 0.02,
                "grad_norm": 1.0,
                "learning_rate": 1e-3,
                "epoch": step / 10,
                "step": step,
            }
        )
        if step % 10 == 0:
            history.append(
                {
                    "eval_loss": 1.0 - step * 0.02,
                    "eval_accuracy": 0.4 + step * 0.01,
                    "eval_roc_auc_macro": 0.6 + step * 0.01,
                    "eval_runtime": 0.5,
                    "eval_samples_per_second": 100.0,
                    "epoch": step / 10,
                    "step": step,
                }
            )
    history.append({"train_runtime": 12.0, "train_loss": 0.8, "total_flos": 1.0, "epoch": 3.0, "step": 30})
    return history


def test_plot_learning_curves(tmp_path) -> None:
    pixels = _open_png(plot_learning_curves(_trainer_log_history(), tmp_path / "curves.png"))
    assert pixels.shape[1] > 2 * pixels.shape[0]  # loss, evaluation and learning-rate panels
    steps_only = [{k: v for k, v in e.items() if k != "epoch"} for e in _trainer_log_history()]
    _open_png(plot_learning_curves(steps_only, tmp_path / "steps.png"))
    eval_only = [e for e in _trainer_log_history() if "eval_loss" in e]
    narrow = _open_png(plot_learning_curves(eval_only, tmp_path / "eval.png"))
    assert narrow.shape[1] < pixels.shape[1]
    with pytest.raises(ValueError, match="no training loss"):
        plot_learning_curves([{"train_runtime": 1.0}], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_regression_png(tmp_path) -> None:
    y = np.linspace(-24, -22, 40)
    pixels = _open_png(plot_regression(y, y + 0.1, tmp_path / "regression.png", quantity="log10_axion_mass"))
    # Two panels side by side: wider than tall, and not blank.
    assert pixels.shape[1] > pixels.shape[0] and pixels.std() > 0
