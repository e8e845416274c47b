"""Batch inference on files, folders and datasets: what ``lens-hf predict`` and ``lens-hf evaluate`` run.

Nothing from a model folder or an input file is ever executed: models are built from transformers' and
lens_hf's own registered classes (the ``*.py`` files a saved folder carries are never imported), weights are
read from safetensors only, and images go through the safe loader :mod:`lens_hf.processing.file_io`.
Images are read, checked and preprocessed one at a time and classified a batch at a time, so memory stays
bounded by ``batch_size`` whatever the number of files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from lens_hf.errors import LensHFError
from lens_hf.processing.file_io import SUFFIXES, LensFileError, is_image_file, read_image

REPO_ROOT = Path(__file__).resolve().parent.parent
# The model `lens-hf predict` / `lens-hf evaluate` use when no --model is given.
DEFAULT_MODEL_DIR = REPO_ROOT / "checkpoints" / "vit-spt-lsa-model-i"
# Weight files that can only be read by unpickling (i.e. by running code they contain): never loaded.
PICKLED_WEIGHTS: tuple[str, ...] = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_SUPPORTED = " ".join(SUFFIXES)


def default_model_path() -> Path:
    """The shipped Model I checkpoint (see :func:`lens_hf.hub.default_model_path`: the checkout's copy, the
    Hugging Face cache, a download); a one-line error saying how to get it when none has it."""
    from lens_hf.hub import default_model_path as resolve_default_model

    return resolve_default_model(DEFAULT_MODEL_DIR)


@dataclass
class LoadedModel:
    """A classifier in eval mode, its image processor and its label names in id order."""

    model: torch.nn.Module
    processor: Any
    labels: list[str]
    path: Path


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else type(err).__name__


def check_model_folder(path: Path) -> None:
    """Refuse folders that cannot be loaded safely, naming the file at fault.

    ``config.json`` must be a JSON object; the weights must be safetensors (a folder holding only pickled
    weights such as ``pytorch_model.bin`` is refused) whose headers parse and whose data is complete.
    """
    from safetensors import safe_open
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    config = path / "config.json"
    if not config.is_file():
        raise LensHFError(f"{path}: not a model folder (no config.json)")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise LensFileError(config, f"not a valid JSON model config ({_first_line(err)})") from None
    if not isinstance(data, dict):
        raise LensFileError(config, f"expected a JSON object, got {type(data).__name__}")
    model_type = data.get("model_type")
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        raise LensFileError(
            config,
            f"model_type {model_type!r} is not a transformers or lens_hf model; its code would have to come from "
            "the folder, and lens_hf never runs code from model folders",
        )
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        pickled = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLED_WEIGHTS)
        if pickled:
            raise LensHFError(
                f"{path}: only pickle-based weights ({', '.join(pickled)}); lens_hf loads safetensors only, "
                "because unpickling runs code from the file (convert it with transformers: "
                "model.save_pretrained(folder, safe_serialization=True))"
            )
        raise LensHFError(f"{path}: no model weights (model.safetensors is missing)")
    for file in weights:
        try:
            # Opening parses the header and checks that its tensors cover the file exactly (truncation).
            with safe_open(str(file), framework="pt") as f:
                f.keys()
        except PermissionError:
            raise LensFileError(file, "permission denied") from None
        except Exception as err:  # SafetensorError and OSError: any failure here is a broken file
            raise LensFileError(file, f"corrupt safetensors weights ({_first_line(err)})") from None


def load_classifier(name_or_path: str | os.PathLike | None) -> LoadedModel:
    """Load a model folder or Hub id (``None`` = the shipped checkpoint) with its image processor.

    Weights load as safetensors only and no code from the folder runs: lens_hf's classes are registered on
    import, and the image processor is always lens_hf's :class:`LensImageProcessor` (from the folder's
    ``preprocessor_config.json`` when it holds one, else sized from ``config.json``).
    """
    from lens_hf.hub import resolve_model_path
    from lens_hf.models.factory import load_model
    from lens_hf.processing.image_processing_lens import LensImageProcessor
    from lens_hf.processing.saving import processor_for_config

    path = default_model_path() if name_or_path is None else resolve_model_path(str(name_or_path))
    check_model_folder(path)
    model = load_model(str(path))
    processor_file = path / "preprocessor_config.json"
    processor = None
    if processor_file.is_file():
        try:
            saved = json.loads(processor_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise LensFileError(
                processor_file, f"not a valid JSON processor config ({_first_line(err)})"
            ) from None
        if isinstance(saved, dict) and saved.get("image_processor_type") == LensImageProcessor.__name__:
            try:
                processor = LensImageProcessor.from_pretrained(str(path))
            except (OSError, ValueError, TypeError, KeyError) as err:
                raise LensFileError(
                    processor_file, f"invalid image processor settings ({_first_line(err)})"
                ) from None
    if processor is None:
        processor = processor_for_config(model.config)
    model.eval()
    id2label = model.config.id2label
    try:
        labels = [str(id2label[i]) for i in range(len(id2label))]
    except KeyError:
        raise LensFileError(
            path / "config.json", f"id2label is not numbered 0..{len(id2label) - 1}"
        ) from None
    return LoadedModel(model=model, processor=processor, labels=labels, path=path)


def collect_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (searched recursively, hidden entries skipped) into image files.

    Files keep the order given; a folder contributes its files sorted by path. Duplicates are dropped.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if is_image_file(f)
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
                and f.is_file()
            )
            if not found:
                raise LensHFError(f"{p}: no image files found (supported: {_SUPPORTED})")
            files.extend(found)
        elif p.exists():
            if not is_image_file(p):
                raise LensFileError(p, f"unsupported file type (supported: {_SUPPORTED})")
            files.append(p)
        else:
            raise LensFileError(p, "no such file or folder")
    seen: set[str] = set()
    unique = []
    for f in files:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


@dataclass
class Predictions:
    """Softmax probabilities ``probs`` (N, num_labels) of the N images that could be read (``sources``), the
    ``(path, reason)`` of the files skipped, and ``order``: every input in input order."""

    labels: list[str]
    probs: np.ndarray
    sources: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    def rows(self, *, include_skipped: bool = False) -> list[dict[str, Any]]:
        """One dict per image: ``path``, ``label`` (argmax), ``score`` and ``p_<label>``; with
        ``include_skipped`` also the skipped files (empty prediction, ``error`` set), all in input order."""
        out: dict[str, dict[str, Any]] = {}
        for src, p in zip(self.sources, self.probs):
            k = int(p.argmax())
            row: dict[str, Any] = {"path": src, "label": self.labels[k], "score": float(p[k])}
            row.update({f"p_{name}": float(v) for name, v in zip(self.labels, p)})
            if include_skipped:
                row["error"] = None
            out[src] = row
        if not include_skipped:
            return list(out.values())
        for src, reason in self.skipped:
            out[src] = {
                "path": src,
                "label": None,
                "score": None,
                **{f"p_{n}": None for n in self.labels},
                "error": reason,
            }
        order = self.order or [*self.sources, *(s for s, _ in self.skipped)]
        return [out[s] for s in order if s in out]


def _pixels(loaded: LoadedModel, image: np.ndarray, source: str) -> torch.Tensor:
    """One (H, W) image -> (num_channels, h, w) model input; processor errors name ``source``."""
    try:
        return loaded.processor(image, return_tensors="pt")["pixel_values"][0]
    except LensFileError as err:
        raise LensFileError(source, err.reason) from None


def _progress(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None hides the bar when stderr is not a terminal."""
    return None if progress is None else not progress


@torch.inference_mode()
def _classify(
    loaded: LoadedModel,
    items: Iterable[tuple[str, torch.Tensor]],
    *,
    batch_size: int,
    total: int | None,
    desc: str,
    progress: bool | None,
) -> tuple[np.ndarray, list[str]]:
    """Softmax probabilities (N, num_labels) float32 and the sources of ``(source, pixel_values)`` items,
    each ``pixel_values`` one preprocessed image (num_channels, h, w)."""
    if batch_size < 1:
        raise LensHFError(f"batch size must be at least 1, got {batch_size}")
    probs: list[np.ndarray] = []
    sources: list[str] = []
    batch: list[torch.Tensor] = []

    def flush() -> None:
        logits = loaded.model(pixel_values=torch.stack(batch)).logits
        probs.append(torch.softmax(logits.float(), dim=-1).numpy())
        batch.clear()

    for source, pixels in tqdm(items, total=total, desc=desc, unit="img", disable=_progress(progress)):
        batch.append(pixels)
        sources.append(source)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not probs:
        return np.zeros((0, len(loaded.labels)), dtype=np.float32), sources
    return np.concatenate(probs), sources


def predict_arrays(
    loaded: LoadedModel,
    images: Iterable[np.ndarray],
    *,
    batch_size: int = 64,
    total: int | None = None,
    desc: str = "predict",
    progress: bool | None = None,
) -> np.ndarray:
    """Softmax probabilities (N, num_labels) for 2-D images (H, W), batched through the model's processor."""
    items = ((f"image {i}", _pixels(loaded, image, f"image {i}")) for i, image in enumerate(images))
    probs, _ = _classify(loaded, items, batch_size=batch_size, total=total, desc=desc, progress=progress)
    return probs


def _read_checked(path: Path) -> np.ndarray:
    image, _ = read_image(path)
    if not float(image.max()) > float(image.min()):
        raise LensFileError(path, "constant image (all pixels equal): nothing to classify")
    return image


def _readable(
    files: Sequence[Path], skipped: list[tuple[str, str]], skip_bad: bool
) -> Iterator[tuple[str, np.ndarray]]:
    for f in files:
        try:
            image = _read_checked(f)
        except LensFileError as err:
            if not skip_bad:
                raise
            skipped.append((str(f), err.reason))
            continue
        yield str(f), image


def predict_files(
    loaded: LoadedModel,
    files: Sequence[Path],
    *,
    batch_size: int = 64,
    skip_bad: bool = False,
    progress: bool | None = None,
) -> Predictions:
    """Read every file with the safe loader and classify it.

    A bad file (unreadable, hostile, NaN pixels, constant, wrong shape, ...) raises :class:`LensFileError`
    naming it, unless ``skip_bad``: then it is listed in :attr:`Predictions.skipped`. No readable file at all
    raises :class:`LensHFError`.
    """
    skipped: list[tuple[str, str]] = []

    def items() -> Iterator[tuple[str, torch.Tensor]]:
        for source, image in _readable(files, skipped, skip_bad):
            try:
                pixels = _pixels(loaded, image, source)  # processor problems count as bad files too
            except LensFileError as err:
                if not skip_bad:
                    raise
                skipped.append((source, err.reason))
                continue
            yield source, pixels

    probs, sources = _classify(
        loaded, items(), batch_size=batch_size, total=len(files), desc="predict", progress=progress
    )
    if not sources:
        first = f"; first: {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise LensHFError(f"none of the {len(files)} input file(s) could be read{first}")
    return Predictions(
        labels=loaded.labels, probs=probs, sources=sources, skipped=skipped, order=[str(f) for f in files]
    )


def evaluate_data(
    loaded: LoadedModel,
    data: str | os.PathLike,
    *,
    split: str = "test",
    batch_size: int = 64,
    skip_bad: bool = False,
    progress: bool | None = None,
) -> tuple[np.ndarray, Predictions]:
    """Classify a labelled data folder: a saved DatasetDict / parquet folder (``split``) or any raw folder
    :func:`lens_hf.data.readers.scan_folder` reads (its split folders honoured when ``split`` names one).

    Returns the true label ids (N,) in the model's label order and the predictions.
    """
    from lens_hf.data.dataset import load_any
    from lens_hf.data.readers import SPLIT_FOLDERS, scan_folder
    from lens_hf.labels import canonical_label

    model_index = {}
    for i, name in enumerate(loaded.labels):
        canon = canonical_label(name)
        if canon is None:
            raise LensHFError(
                f"{loaded.path}: model label {name!r} is not a lensing class; cannot score labelled data"
            )
        model_index[canon] = i

    def to_model_id(label: str) -> int:
        canon = canonical_label(label)
        if canon not in model_index:
            raise LensHFError(
                f"{data}: class {label!r} is not one of the model's labels ({', '.join(loaded.labels)})"
            )
        return model_index[canon]

    path = Path(data)
    if is_saved_dataset(path):
        ds = load_any(path, split=split)
        feature = ds.features["label"]
        if not hasattr(feature, "names"):
            raise LensHFError(f"{path}: the label column is not a class label ({feature})")
        names = feature.names
        y_true = np.array([to_model_id(names[i]) for i in ds["label"]], dtype=np.int64)
        paths = ds["path"] if "path" in ds.column_names else [None] * len(ds)
        sources = [p if p else f"{path}[{split}][{i}]" for i, p in enumerate(paths)]
        items = (
            (sources[i], _pixels(loaded, np.asarray(row["image"], dtype=np.float32), sources[i]))
            for i, row in enumerate(ds)
        )
        probs, _ = _classify(
            loaded, items, batch_size=batch_size, total=len(ds), desc="evaluate", progress=progress
        )
        return y_true, Predictions(labels=loaded.labels, probs=probs, sources=sources, order=sources)
    records = scan_folder(path)
    if records[0].split is not None:
        wanted = SPLIT_FOLDERS.get(split.lower(), split)
        available = sorted({r.split for r in records})
        if wanted not in available:
            raise LensHFError(f"{path}: no split {split!r} (available: {', '.join(available)})")
        records = [r for r in records if r.split == wanted]
    label_of = {r.path: r.label for r in records}
    for r in records:
        to_model_id(r.label)
    preds = predict_files(
        loaded, [Path(r.path) for r in records], batch_size=batch_size, skip_bad=skip_bad, progress=progress
    )
    y_true = np.array([to_model_id(label_of[s]) for s in preds.sources], dtype=np.int64)
    return y_true, preds


def is_saved_dataset(path: Path) -> bool:
    """A folder written by ``save_to_disk`` (DatasetDict or Dataset), a folder of parquet shards, or a
    ``.parquet`` file."""
    if path.is_file():
        return path.suffix.lower() == ".parquet"
    return (
        (path / "dataset_dict.json").is_file()
        or (path / "state.json").is_file()
        or any(path.glob("*.parquet"))
        or any(path.glob("data/*.parquet"))
    )


__all__ = [
    "DEFAULT_MODEL_DIR",
    "LoadedModel",
    "Predictions",
    "check_model_folder",
    "collect_files",
    "default_model_path",
    "evaluate_data",
    "is_saved_dataset",
    "load_classifier",
    "predict_arrays",
    "predict_files",
]
