"""The PNG figures lens_hf writes: ROC curves, confusion matrices, example grids, learning curves.

Figures are built on ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot state, no display needed,
nothing left open) and written atomically: temporary name, then rename.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn.metrics import auc, roc_curve
from sklearn.preprocessing import label_binarize

from lens_hf.utils import atomic_path

DPI = 120


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    fig.clear()
    return Path(path)


def _one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    b = label_binarize(y, classes=list(range(num_classes)))
    return np.hstack([1 - b, b]) if num_classes == 2 else b


def plot_roc(
    y_true: Any, probs: Any, labels: Sequence[str], path: str | os.PathLike, *, title: str | None = None
) -> Path:
    """One-vs-rest ROC curves: one per class, plus the micro and macro averages, AUCs in the legend.

    Args:
        y_true: ``(num_samples,)`` integer class ids.
        probs: ``(num_samples, num_classes)`` softmax probabilities.
        labels: class names in id order.
        path: PNG to write.
        title: optional figure title.

    A class absent from ``y_true`` has no curve (legend: "AUC n/a"). The macro curve is the mean of the
    per-class TPRs on a common FPR grid; its legend value is the mean of the per-class AUCs (the
    ``roc_auc_macro`` of :mod:`lens_hf.metrics`). The micro curve pools all (sample, class) pairs.
    """
    labels = list(labels)
    y = np.asarray(y_true).astype(np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape != (len(y), len(labels)):
        raise ValueError(f"probs shape {p.shape} does not match ({len(y)} samples, {len(labels)} labels)")
    onehot = _one_hot(y, len(labels))

    fig = _new_figure(6.4, 5.6)
    ax = fig.add_subplot()
    grid = np.linspace(0.0, 1.0, 501)
    tprs, aucs = [], []
    for k, name in enumerate(labels):
        positives = int(onehot[:, k].sum())
        if positives == 0 or positives == len(y):
            ax.plot([], [], label=f"{name} (AUC n/a: {'absent' if positives == 0 else 'only class'})")
            continue
        fpr, tpr, _ = roc_curve(onehot[:, k], p[:, k])
        value = auc(fpr, tpr)
        ax.plot(fpr, tpr, lw=1.6, label=f"{name} (AUC = {value:.4f})")
        tprs.append(np.interp(grid, fpr, tpr))
        aucs.append(value)
    fpr, tpr, _ = roc_curve(onehot.ravel(), p.ravel())
    ax.plot(fpr, tpr, ls=":", lw=2.2, color="black", label=f"micro average (AUC = {auc(fpr, tpr):.4f})")
    if tprs:
        mean_tpr = np.mean(tprs, axis=0)
        mean_tpr[0] = 0.0
        ax.plot(
            grid,
            mean_tpr,
            ls="--",
            lw=2.2,
            color="dimgray",
            label=f"macro average (AUC = {np.mean(aucs):.4f})",
        )
    ax.plot([0, 1], [0, 1], lw=0.8, color="lightgray")
    ax.set_xlim(-0.01, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title(title or f"One-vs-rest ROC (n = {len(y)})")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_regression(
    y_true: Any, y_pred: Any, path: str | os.PathLike, *, quantity: str = "target", title: str | None = None
) -> Path:
    """Two panels: predicted vs true value with the 1:1 line, and the residual (predicted - true) vs true value.

    Args:
        y_true, y_pred: ``(num_samples,)`` values in the units the model learns (e.g. log10 m_a, m_a in eV).
        path: PNG to write.
        quantity: axis label (``log10_axion_mass``).
        title: optional figure title.
    """
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    fig = _new_figure(10.0, 4.5)
    ax, res = fig.subplots(1, 2)
    low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    pad = 0.05 * (high - low) or 0.5
    ax.scatter(y, p, s=8, alpha=0.6)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], "k--", lw=1, label="1:1")
    ax.set(xlabel=f"true {quantity}", ylabel=f"predicted {quantity}", xlim=(low - pad, high + pad))
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal")
    ax.legend(loc="upper left")
    res.scatter(y, p - y, s=8, alpha=0.6)
    res.axhline(0.0, color="k", ls="--", lw=1)
    res.set(xlabel=f"true {quantity}", ylabel="predicted - true")
    for axis in (ax.xaxis, ax.yaxis, res.xaxis):
        axis.set_major_locator(MaxNLocator(5))  # values like -23.75 need room
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def _annotate(ax: Any, values: np.ndarray, text: list[list[str]], high: float) -> None:
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            dark = values[i, j] > high / 2
            ax.text(
                j, i, text[i][j], ha="center", va="center", color="white" if dark else "black", fontsize=9
            )


def plot_confusion_matrix(
    cm: Any, labels: Sequence[str], path: str | os.PathLike, *, title: str | None = None
) -> Path:
    """Confusion matrix as counts and row-normalised (each true class sums to 1), side by side.

    Args:
        cm: ``(num_classes, num_classes)`` counts, rows = true class, columns = predicted class.
        labels: class names in id order.
        path: PNG to write.
        title: optional figure title.
    """
    labels = list(labels)
    counts = np.asarray(cm)
    if counts.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix shape {counts.shape} does not match {len(labels)} labels")
    if counts.size and (counts.min() < 0 or not np.all(np.isfinite(counts))):
        raise ValueError("confusion matrix must hold non-negative finite counts")
    counts = counts.astype(np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=np.float64), where=rows > 0)

    side = 1.3 * len(labels) + 2.2
    fig = _new_figure(2 * side + 0.6, side)
    panels = (
        (counts.astype(np.float64), [[str(v) for v in r] for r in counts], "counts", max(1, counts.max())),
        (norm, [[f"{v:.2f}" for v in r] for r in norm], "row-normalised (recall on the diagonal)", 1.0),
    )
    for idx, (values, text, subtitle, high) in enumerate(panels):
        ax = fig.add_subplot(1, 2, idx + 1)
        image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=high)
        _annotate(ax, values, text, high)
        ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(subtitle, fontsize="medium")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title or f"Confusion matrix (n = {int(counts.sum())})")
    fig.tight_layout()
    return _save(fig, path)


def _as_2d(image: Any, where: str) -> np.ndarray:
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3 and 1 in (a.shape[0], a.shape[-1]):
        a = a.reshape(a.shape[1:] if a.shape[0] == 1 else a.shape[:-1])
    if a.ndim != 2:
        raise ValueError(f"{where}: expected a 2-D image (H, W), got shape {a.shape}")
    return a


def plot_examples(
    images_by_label: Mapping[str, Sequence[Any]],
    path: str | os.PathLike,
    *,
    per_class: int | None = None,
    scale: str = "image",
    cmap: str = "inferno",
    title: str | None = None,
) -> Path:
    """A grid of example images: one row per class (class name as the row title), ``per_class`` columns.

    Args:
        images_by_label: {class name: list of (H, W) images (also (1, H, W) / (H, W, 1))}, rows in dict order.
        path: PNG to write.
        per_class: columns per row (default: the longest list).
        scale: colour limits: "image" (each image its own min..max, so faint arcs stay visible),
            "row" (shared within a class) or "all" (one scale for the whole grid). One colour map throughout.
        cmap: matplotlib colour map name.
        title: optional figure title.
    """
    if scale not in ("image", "row", "all"):
        raise ValueError(f"scale must be 'image', 'row' or 'all', got {scale!r}")
    if not images_by_label:
        raise ValueError("no classes to plot")
    rows = {
        name: [_as_2d(img, f"{name}[{i}]") for i, img in enumerate(images)]
        for name, images in images_by_label.items()
    }
    cols = per_class if per_class is not None else max(len(v) for v in rows.values())
    if cols < 1:
        raise ValueError("no images to plot")
    rows = {name: images[:cols] for name, images in rows.items()}
    everything = [img for images in rows.values() for img in images]
    if not everything:
        raise ValueError("no images to plot")
    all_limits = (min(float(i.min()) for i in everything), max(float(i.max()) for i in everything))

    fig = _new_figure(1.9 * cols + 0.9, 1.9 * len(rows) + 0.5)
    for r, (name, images) in enumerate(rows.items()):
        row_limits = (
            (min(float(i.min()) for i in images), max(float(i.max()) for i in images)) if images else (0, 1)
        )
        for c in range(cols):
            ax = fig.add_subplot(len(rows), cols, r * cols + c + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize="medium")
            if c >= len(images):
                ax.set_frame_on(False)
                if c == 0:
                    ax.text(0.5, 0.5, "no images", ha="center", va="center", transform=ax.transAxes)
                continue
            img = images[c]
            vmin, vmax = {"image": (img.min(), img.max()), "row": row_limits, "all": all_limits}[scale]
            if not vmax > vmin:
                vmax = vmin + 1.0
            ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower", interpolation="nearest")
    shape = "x".join(str(s) for s in everything[0].shape)
    fig.suptitle(title or f"Examples per class ({shape} px, colour scale per {scale})", fontsize="medium")
    fig.tight_layout()
    return _save(fig, path)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def plot_learning_curves(log_history: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Training curves from ``Trainer.state.log_history``.

    Panels: train loss and eval loss; eval accuracy / ROC-AUC (every ``eval_*`` key containing "auc" or
    "accuracy"); learning rate when logged. The x axis is the epoch when every plotted entry has one,
    otherwise the optimizer step. The Trainer's closing summary entry (``train_runtime``) is skipped.

    Args:
        log_history: list of dicts as in ``trainer.state.log_history`` (or trainer_state.json's).
        path: PNG to write.
    """
    entries = [dict(e) for e in log_history if isinstance(e, Mapping) and "train_runtime" not in e]
    train = [e for e in entries if _is_number(e.get("loss"))]
    evals = [e for e in entries if any(k.startswith("eval_") for k in e)]
    if not train and not evals:
        raise ValueError("log_history has no training loss ('loss') or evaluation ('eval_*') entries to plot")
    metric_keys = sorted(
        {
            k
            for e in evals
            for k, v in e.items()
            if k.startswith("eval_") and ("auc" in k or "accuracy" in k) and _is_number(v)
        }
    )
    lr = [e for e in entries if _is_number(e.get("learning_rate"))]
    plotted = train + evals + lr
    x_key = "epoch" if all(_is_number(e.get("epoch")) for e in plotted) else "step"

    def series(items: list[dict], key: str) -> tuple[list[float], list[float]]:
        pts = [(e.get(x_key), e[key]) for e in items if _is_number(e.get(key)) and _is_number(e.get(x_key))]
        return [a for a, _ in pts], [b for _, b in pts]

    panels = 1 + bool(metric_keys) + bool(lr)
    fig = _new_figure(5.0 * panels, 4.2)
    ax = fig.add_subplot(1, panels, 1)
    if train:
        ax.plot(*series(train, "loss"), lw=1.2, label="train loss")
    if any(_is_number(e.get("eval_loss")) for e in evals):
        ax.plot(*series(evals, "eval_loss"), "o-", lw=1.6, label="eval loss")
    ax.set_xlabel(x_key)
    ax.set_ylabel("cross-entropy loss")
    ax.set_title("loss")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    index = 2
    if metric_keys:
        ax = fig.add_subplot(1, panels, index)
        for key in metric_keys:
            ax.plot(*series(evals, key), "o-", lw=1.2, ms=3, label=key.removeprefix("eval_"))
        ax.set_xlabel(x_key)
        ax.set_title("evaluation")
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
        index += 1
    if lr:
        ax = fig.add_subplot(1, panels, index)
        ax.plot(*series(lr, "learning_rate"), lw=1.2)
        ax.set_xlabel(x_key)
        ax.set_title("learning rate")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


__all__ = ["plot_confusion_matrix", "plot_examples", "plot_learning_curves", "plot_roc"]


def plot_attention_maps(
    images: Sequence[Any],
    maps: Sequence[Any],
    titles: Sequence[str],
    path: str | os.PathLike,
    *,
    cmap: str = "inferno",
    title: str | None = None,
) -> Path:
    """Images (top row) and the same images with an attention map laid over them (bottom row).

    Args:
        images: (H, W) model inputs.
        maps: (h, w) attention maps, one per image (e.g. a token grid); drawn stretched over the image.
        titles: one caption per column (e.g. true and predicted class).
        path: PNG to write.
    """
    if not (len(images) == len(maps) == len(titles)) or not images:
        raise ValueError("images, maps and titles must be non-empty and of equal length")
    cols = len(images)
    fig = _new_figure(1.9 * cols + 0.4, 4.2)
    for c, (image, amap, caption) in enumerate(zip(images, maps, titles)):
        img = _as_2d(image, f"image[{c}]")
        att = _as_2d(amap, f"map[{c}]")
        extent = (0, img.shape[1], img.shape[0], 0)
        top = fig.add_subplot(2, cols, c + 1)
        top.imshow(img, cmap=cmap, extent=extent)
        top.set_title(caption, fontsize=8)
        bottom = fig.add_subplot(2, cols, cols + c + 1)
        bottom.imshow(img, cmap="gray", extent=extent)
        bottom.imshow(att, cmap="jet", alpha=0.45, extent=extent, interpolation="bilinear")
        for ax in (top, bottom):
            ax.set_xticks([])
            ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)
