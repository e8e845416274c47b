"""Classification metrics for the three lensing classes: accuracy, one-vs-rest ROC-AUC, confusion matrix; and
regression metrics of a numeric target (MAE, RMSE, R2, bias, fraction within a tolerance, MAE per bin).

Every AUC here is computed from softmax probabilities (never from logits or hard labels) with scikit-learn,
so the numbers match the DeepLense convention: per-class one-vs-rest AUC, their unweighted mean (macro) and
the AUC of all (sample, class) pairs pooled together (micro).
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, mean_absolute_error, r2_score, roc_auc_score
from sklearn.preprocessing import label_binarize

from lens_hf.labels import LABELS
from lens_hf.plots import plot_confusion_matrix, plot_regression, plot_roc
from lens_hf.processing.targets import invert_transform, transformed_name
from lens_hf.utils import atomic_path, atomic_write_text

# How far a probability row may be from summing to 1 (float32 softmax outputs drift by ~1e-7 per class).
PROB_SUM_TOL = 1e-3

METRIC_KEYS: tuple[str, ...] = (
    "labels",
    "accuracy",
    "roc_auc_per_class",
    "roc_auc_macro",
    "roc_auc_micro",
    "confusion_matrix",
    "num_samples",
)


def softmax(logits: Any, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax.

    Args:
        logits: array-like ``(num_samples, num_classes)`` of unnormalised scores.
        axis: the class axis.

    Returns:
        float64 array of the same shape whose entries along ``axis`` are in [0, 1] and sum to 1.
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim == 0:
        raise ValueError("softmax needs at least one class axis, got a scalar")
    if not np.all(np.isfinite(z)):
        raise ValueError("logits contain NaN or infinite values")
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _check_inputs(y_true: Any, probs: Any, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to ``(y int64 (n,), p float64 (n, num_classes))``; ValueError says what is wrong."""
    labels = list(labels)
    if len(labels) < 2:
        raise ValueError(f"need at least 2 labels, got {labels}")
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"probs must be 2-D (num_samples, num_classes), got shape {p.shape}")
    n, c = p.shape
    if c != len(labels):
        raise ValueError(f"probs has {c} columns but there are {len(labels)} labels {labels}")
    if n == 0:
        raise ValueError("no samples: probs has 0 rows")
    if not np.all(np.isfinite(p)):
        bad = int(np.count_nonzero(~np.isfinite(p).all(axis=1)))
        raise ValueError(f"probs contain NaN or infinite values in {bad} row(s)")
    if p.min() < -PROB_SUM_TOL or p.max() > 1 + PROB_SUM_TOL:
        raise ValueError(
            f"probs must lie in [0, 1] (found {p.min():.4g}..{p.max():.4g}); pass softmax(logits), not logits"
        )
    dev = float(np.abs(p.sum(axis=1) - 1.0).max())
    if dev > PROB_SUM_TOL:
        raise ValueError(
            f"probs rows must sum to 1 (largest deviation {dev:.3g}); pass softmax(logits), not logits"
        )

    y_raw = np.asarray(y_true)
    if y_raw.ndim != 1:
        raise ValueError(f"y_true must be 1-D (num_samples,), got shape {y_raw.shape}")
    if y_raw.shape[0] != n:
        raise ValueError(f"y_true has {y_raw.shape[0]} entries but probs has {n} rows")
    if y_raw.dtype.kind == "O" and all(isinstance(v, int | np.integer) for v in y_raw):
        y_raw = y_raw.astype(np.int64)
    if y_raw.dtype.kind in "USO":
        index = {name: i for i, name in enumerate(labels)}
        unknown = sorted({str(v) for v in y_raw if str(v) not in index})
        if unknown:
            raise ValueError(f"y_true has unknown label name(s) {unknown}; expected one of {labels}")
        y = np.array([index[str(v)] for v in y_raw], dtype=np.int64)
    else:
        if y_raw.dtype.kind == "f":
            if not np.all(np.isfinite(y_raw)) or np.any(y_raw != np.round(y_raw)):
                raise ValueError("y_true must hold integer class ids (found NaN or fractional values)")
        elif y_raw.dtype.kind not in "iub":
            raise ValueError(f"y_true must hold integer class ids or label names, got dtype {y_raw.dtype}")
        y = y_raw.astype(np.int64)
        if y.min() < 0 or y.max() >= c:
            raise ValueError(f"y_true ids must be in 0..{c - 1}, found {y.min()}..{y.max()}")
    return y, p


def _one_hot(y: np.ndarray, num_classes: int) -> np.ndarray:
    """``(n,)`` ids -> ``(n, num_classes)`` 0/1 matrix via label_binarize (which returns 1 column for 2 classes)."""
    b = label_binarize(y, classes=list(range(num_classes)))
    if num_classes == 2:
        b = np.hstack([1 - b, b])
    return b


def classification_metrics(y_true: Any, probs: Any, labels: Sequence[str] = LABELS) -> dict[str, Any]:
    """Accuracy, one-vs-rest ROC-AUC (per class, macro, micro) and the confusion matrix.

    Args:
        y_true: ``(num_samples,)`` true class ids (0..num_classes-1) or label names.
        probs: ``(num_samples, num_classes)`` softmax probabilities, rows summing to 1.
        labels: class names in id order.

    Returns:
        JSON-ready dict with keys ``labels``, ``accuracy``, ``roc_auc_per_class`` ({label: auc or None}),
        ``roc_auc_macro`` (mean of the defined per-class AUCs, None if none is defined), ``roc_auc_micro``
        (AUC of the pooled one-hot targets vs probabilities), ``confusion_matrix`` (rows = true class,
        columns = predicted class, id order) and ``num_samples``. When some class AUC is undefined (the class
        is absent from ``y_true``, or it is the only class present) the dict also has ``roc_auc_note``.
    """
    labels = list(labels)
    y, p = _check_inputs(y_true, probs, labels)
    num_classes = len(labels)
    pred = p.argmax(axis=1)
    onehot = _one_hot(y, num_classes)

    per_class: dict[str, float | None] = {}
    undefined: list[str] = []
    for k, name in enumerate(labels):
        positives = int(onehot[:, k].sum())
        if 0 < positives < len(y):
            per_class[name] = float(roc_auc_score(onehot[:, k], p[:, k]))
        else:
            per_class[name] = None
            undefined.append(name)
    defined = [v for v in per_class.values() if v is not None]

    out: dict[str, Any] = {
        "labels": labels,
        "accuracy": float(np.mean(pred == y)),
        "roc_auc_per_class": per_class,
        "roc_auc_macro": float(np.mean(defined)) if defined else None,
        "roc_auc_micro": float(roc_auc_score(onehot.ravel(), p.ravel())),
        "confusion_matrix": confusion_matrix(y, pred, labels=list(range(num_classes))).tolist(),
        "num_samples": len(y),
    }
    if undefined:
        out["roc_auc_note"] = (
            f"AUC undefined (null) for {', '.join(undefined)}: the class is absent from y_true"
            f"{' (or is the only class present)' if len(defined) == 0 else ''}; "
            f"roc_auc_macro averages the {len(defined)} class(es) with a defined AUC; "
            "roc_auc_micro pools all classes"
        )
    return out


def _json_ready(value: Any) -> Any:
    """Convert numpy scalars/arrays and non-finite floats (-> None) so json.dumps writes strict JSON."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_predictions_csv(
    path: str | os.PathLike,
    paths: Sequence[str | os.PathLike],
    y_true: Any,
    probs: Any,
    labels: Sequence[str] = LABELS,
) -> Path:
    """Write one row per sample: ``file,true_label,label,score,p_<label>...`` (atomic).

    ``label`` is the predicted class (argmax), ``score`` its probability, ``p_<label>`` every class probability.
    """
    labels = list(labels)
    y, p = _check_inputs(y_true, probs, labels)
    if len(paths) != len(y):
        raise ValueError(f"got {len(paths)} paths for {len(y)} samples")
    pred = p.argmax(axis=1)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "true_label", "label", "score", *[f"p_{name}" for name in labels]])
            for i in range(len(y)):
                writer.writerow(
                    [
                        os.fspath(paths[i]),
                        labels[y[i]],
                        labels[pred[i]],
                        f"{p[i, pred[i]]:.6f}",
                        *[f"{v:.6f}" for v in p[i]],
                    ]
                )
    return Path(path)


def _write_metrics_json(
    out_dir: str | os.PathLike, metrics: dict[str, Any], extra: Mapping[str, Any] | None
) -> Path:
    """Add ``extra`` to ``metrics`` (never overwriting a metric key) and write ``out_dir/metrics.json``
    atomically; returns ``out_dir`` as a created Path."""
    if extra:
        clash = sorted(set(extra) & set(metrics))
        if clash:
            raise ValueError(f"extra may not overwrite metric key(s) {clash}")
        metrics.update(_json_ready(dict(extra)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "metrics.json", json.dumps(_json_ready(metrics), indent=2) + "\n")
    return out


def write_evaluation(
    out_dir: str | os.PathLike,
    y_true: Any,
    probs: Any,
    *,
    labels: Sequence[str] = LABELS,
    paths: Sequence[str | os.PathLike] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute :func:`classification_metrics` and write the evaluation files into ``out_dir``.

    Writes ``metrics.json`` (the metrics plus ``extra``), ``roc.png``, ``confusion_matrix.png`` and, when
    ``paths`` (one per sample) are given, ``predictions.csv``; each file atomically.

    Args:
        out_dir: folder to write into (created if missing).
        y_true: ``(num_samples,)`` true class ids or label names.
        probs: ``(num_samples, num_classes)`` softmax probabilities.
        labels: class names in id order.
        paths: optional per-sample source paths for ``predictions.csv``.
        extra: optional additional JSON-serialisable entries (e.g. model, split, dataset); they may not
            overwrite a metric key.

    Returns:
        the dict written to ``metrics.json``.
    """
    labels = list(labels)
    y, p = _check_inputs(y_true, probs, labels)
    if paths is not None and len(paths) != len(y):
        raise ValueError(f"got {len(paths)} paths for {len(y)} samples")
    metrics = classification_metrics(y, p, labels)
    out = _write_metrics_json(out_dir, metrics, extra)
    plot_roc(y, p, labels, out / "roc.png")
    plot_confusion_matrix(np.asarray(metrics["confusion_matrix"]), labels, out / "confusion_matrix.png")
    if paths is not None:
        write_predictions_csv(out / "predictions.csv", paths, y, p, labels)
    return metrics


# ------------------------------------------------------------------------------------------------ regression
REGRESSION_PLOT = "regression.png"
# Tolerances of the "fraction within" metrics, in transformed units (dex for a log10 target).
WITHIN: tuple[float, ...] = (0.1, 0.3)
NUM_BINS = 5


def _check_regression(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values but y_pred has {p.size}")
    if y.size == 0:
        raise ValueError("no samples to evaluate")
    if not (np.isfinite(y).all() and np.isfinite(p).all()):
        raise ValueError("y_true and y_pred must be finite")
    return y, p


def regression_metrics(y_true: Any, y_pred: Any, num_bins: int = NUM_BINS) -> dict[str, Any]:
    """Errors of predictions ``y_pred`` (n,) of ``y_true`` (n,), both in the units the model learns (dex for a
    log10 target: log10 m_a with m_a in eV).

    Returns ``mae``, ``rmse``, ``r2`` (None for fewer than 2 samples or constant ``y_true``), ``bias`` (mean of
    prediction minus truth), ``within_0.1`` and ``within_0.3`` (fraction of absolute errors at most 0.1 and 0.3),
    ``num_samples``, and ``mae_binned``: ``num_bins`` equal-width bins of the true value over its range, each
    ``{"low", "high", "num_samples", "mae"}`` (``mae`` None for an empty bin), since the error of a measurement
    often depends on the value (short vortex lines, heavy axions, are below the PSF).
    """
    y, p = _check_regression(y_true, y_pred)
    error = p - y
    constant = bool(np.ptp(y) == 0)
    metrics: dict[str, Any] = {
        "mae": float(mean_absolute_error(y, p)),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "r2": None if y.size < 2 or constant else float(r2_score(y, p)),
        "bias": float(error.mean()),
    }
    for tol in WITHIN:
        metrics[f"within_{tol}"] = float(np.mean(np.abs(error) <= tol))
    metrics["num_samples"] = int(y.size)
    edges = np.linspace(y.min(), y.max(), num_bins + 1) if not constant else np.array([y[0], y[0]])
    # np.digitize on the inner edges puts the maximum in the last bin.
    which = np.digitize(y, edges[1:-1], right=False) if not constant else np.zeros(y.size, dtype=int)
    metrics["mae_binned"] = [
        {
            "low": float(edges[k]),
            "high": float(edges[k + 1]),
            "num_samples": int((which == k).sum()),
            "mae": float(np.abs(error[which == k]).mean()) if (which == k).any() else None,
        }
        for k in range(len(edges) - 1)
    ]
    return metrics


def regression_log_metrics(y_true: Any, y_pred: Any, prefix: str = "") -> dict[str, float]:
    """The scalar regression metrics (mae, rmse, r2, bias) for the Trainer's logs (NaN: undefined r2)."""
    metrics = regression_metrics(y_true, y_pred)
    return {
        f"{prefix}{k}": float("nan") if metrics[k] is None else metrics[k]
        for k in ("mae", "rmse", "r2", "bias")
    }


def write_regression_evaluation(
    out_dir: str | os.PathLike,
    y_true: Any,
    y_pred: Any,
    *,
    target: str,
    transform: str,
    paths: Sequence[str | os.PathLike] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute :func:`regression_metrics` and write the evaluation files into ``out_dir``, each atomically.

    ``metrics.json`` (the metrics plus ``target``, ``transform``, ``quantity`` (the learnt quantity's name,
    e.g. ``log10_axion_mass``) and ``extra``), ``regression.png`` (predicted vs true with the 1:1 line, and the
    residuals vs true) and, when ``paths`` (one per sample) are given, ``predictions.csv``
    (``file,true_<target>,<target>`` and for a log10 transform ``true_log10_<target>,log10_<target>``).

    Args:
        out_dir: folder to write into (created if missing).
        y_true, y_pred: ``(num_samples,)`` true and predicted values in transformed units (dex for log10).
        target: the physical quantity (metadata column, e.g. ``axion_mass`` in eV).
        transform: ``"log10"`` or ``"none"``.
        paths: optional per-sample source paths for ``predictions.csv``.
        extra: optional additional JSON-serialisable entries; they may not overwrite a metric key.
    """
    y, p = _check_regression(y_true, y_pred)
    if paths is not None and len(paths) != len(y):
        raise ValueError(f"got {len(paths)} paths for {len(y)} samples")
    quantity = transformed_name(target, transform)
    metrics = regression_metrics(y, p)
    metrics.update(target=target, transform=transform, quantity=quantity)
    out = _write_metrics_json(out_dir, metrics, extra)
    plot_regression(y, p, out / REGRESSION_PLOT, quantity=quantity)
    if paths is not None:
        columns = {f"true_{target}": invert_transform(y, transform), target: invert_transform(p, transform)}
        if transform != "none":
            columns.update({f"true_{quantity}": y, quantity: p})
        with atomic_path(out / "predictions.csv") as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(["file", *columns])
                for i in range(len(y)):
                    writer.writerow([os.fspath(paths[i]), *(f"{v[i]:.10g}" for v in columns.values())])
    return metrics


def format_regression_table(metrics: Mapping[str, Any]) -> str:
    """The regression metrics as text: the overall errors, then the MAE per bin of the true value."""
    unit = " dex" if metrics.get("transform") == "log10" else ""
    lines = [
        f"{metrics.get('quantity', 'target')} (n={metrics['num_samples']})",
        f"MAE {metrics['mae']:.4f}{unit}, RMSE {metrics['rmse']:.4f}{unit}, bias {metrics['bias']:+.4f}{unit}, "
        f"R2 {_fmt(metrics['r2'])}",
        ", ".join(f"within {tol}{unit}: {metrics[f'within_{tol}']:.3f}" for tol in WITHIN),
    ]
    for b in metrics["mae_binned"]:
        lines.append(
            f"  true in [{b['low']:.3f}, {b['high']:.3f}]: MAE {_fmt(b['mae'])} (n={b['num_samples']})"
        )
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def format_table(metrics: Mapping[str, Any]) -> str:
    """A per-class text table (AUC, support, recall, precision) plus macro/micro AUC and accuracy."""
    labels = list(metrics["labels"])
    cm = np.asarray(metrics["confusion_matrix"], dtype=np.int64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    width = max(len("accuracy"), *(len(name) for name in labels))
    lines = [f"{'class':<{width}}  {'ROC-AUC':>8}  {'recall':>7}  {'precision':>9}  {'support':>7}"]
    lines.append("-" * len(lines[0]))
    for k, name in enumerate(labels):
        recall = cm[k, k] / support[k] if support[k] else None
        precision = cm[k, k] / predicted[k] if predicted[k] else None
        lines.append(
            f"{name:<{width}}  {_fmt(metrics['roc_auc_per_class'].get(name)):>8}  "
            f"{_fmt(recall, 3):>7}  {_fmt(precision, 3):>9}  {support[k]:>7d}"
        )
    lines.append("-" * len(lines[0]))
    lines.append(f"{'macro':<{width}}  {_fmt(metrics['roc_auc_macro']):>8}")
    lines.append(f"{'micro':<{width}}  {_fmt(metrics['roc_auc_micro']):>8}")
    lines.append(f"{'accuracy':<{width}}  {_fmt(metrics['accuracy']):>8}  (n={metrics['num_samples']})")
    if metrics.get("roc_auc_note"):
        lines.append(f"note: {metrics['roc_auc_note']}")
    return "\n".join(lines)


__all__ = [
    "METRIC_KEYS",
    "REGRESSION_PLOT",
    "classification_metrics",
    "format_regression_table",
    "format_table",
    "regression_log_metrics",
    "regression_metrics",
    "softmax",
    "write_evaluation",
    "write_predictions_csv",
    "write_regression_evaluation",
]
