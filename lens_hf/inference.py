"""Batch inference on files, folders and datasets: what ``lens-hf predict`` and ``lens-hf evaluate`` run."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lens_hf.errors import LensHFError
from lens_hf.processing.file_io import LensFileError, is_image_file, read_image

REPO_ROOT = Path(__file__).resolve().parent.parent
# The model `lens-hf predict` / `lens-hf evaluate` use when no --model is given.
DEFAULT_MODEL_DIR = REPO_ROOT / "checkpoints" / "vit-spt-lsa-model-i"


def default_model_path() -> Path:
    """The shipped Model I checkpoint; a one-line error when it is missing."""
    if not (DEFAULT_MODEL_DIR / "config.json").is_file():
        raise LensHFError(f"no --model given and the shipped checkpoint {DEFAULT_MODEL_DIR} is missing")
    return DEFAULT_MODEL_DIR


@dataclass
class LoadedModel:
    """A classifier, its image processor and its label names in id order."""

    model: torch.nn.Module
    processor: object
    labels: list[str]
    path: Path


def load_classifier(name_or_path: str | os.PathLike | None) -> LoadedModel:
    """Load a model folder or Hub id (``None`` = the shipped checkpoint) with its image processor.

    Weights load as safetensors only and no remote code runs: lens_hf's own classes are registered on import.
    """
    from transformers import AutoImageProcessor

    from lens_hf.hub import resolve_model_path
    from lens_hf.models.factory import load_model

    path = default_model_path() if name_or_path is None else resolve_model_path(str(name_or_path))
    if not (path / "config.json").is_file():
        raise LensHFError(f"{path}: not a model folder (no config.json)")
    weights = list(path.glob("*.safetensors"))
    if not weights:
        raise LensHFError(f"{path}: no safetensors weights in the model folder")
    try:
        model = load_model(str(path))
    except (OSError, ValueError, RuntimeError, KeyError) as err:
        raise LensHFError(f"{path}: cannot load the model ({_first_line(err)})") from None
    try:
        processor = AutoImageProcessor.from_pretrained(str(path))
    except (OSError, ValueError, KeyError) as err:
        raise LensHFError(f"{path}: cannot load the image processor ({_first_line(err)})") from None
    model.eval()
    id2label = model.config.id2label
    labels = [id2label[i] for i in range(len(id2label))]
    return LoadedModel(model=model, processor=processor, labels=labels, path=path)


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else type(err).__name__


def collect_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (searched recursively) into a sorted list of readable image files."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and is_image_file(f) and not f.name.startswith("."))
            if not found:
                raise LensHFError(f"{p}: no image files found (supported: .npy .npz .fits .fit .png .tif .tiff)")
            files.extend(found)
        elif p.exists():
            if not is_image_file(p):
                raise LensFileError(p, "unsupported file type (supported: .npy .npz .fits .fit .png .tif .tiff)")
            files.append(p)
        else:
            raise LensFileError(p, "no such file or folder")
    return files


@dataclass
class Predictions:
    """Softmax probabilities (N, num_labels) for the images that could be read, and the ones skipped."""

    labels: list[str]
    probs: np.ndarray
    sources: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def rows(self) -> list[dict]:
        out = []
        for src, p in zip(self.sources, self.probs):
            k = int(p.argmax())
            row = {"path": src, "label": self.labels[k], "score": float(p[k])}
            row.update({f"p_{name}": float(v) for name, v in zip(self.labels, p)})
            out.append(row)
        return out


@torch.inference_mode()
def predict_arrays(
    loaded: LoadedModel, images: Iterable[np.ndarray], *, batch_size: int = 64, total: int | None = None, desc: str = "predict"
) -> np.ndarray:
    """Softmax probabilities (N, num_labels) for 2-D images, batched through the model's processor."""
    probs: list[np.ndarray] = []
    for batch in tqdm(_batches(images, batch_size), total=None if total is None else -(-total // batch_size), desc=desc, unit="batch"):
        pixel_values = loaded.processor(batch, return_tensors="pt")["pixel_values"]
        logits = loaded.model(pixel_values=pixel_values).logits
        probs.append(torch.softmax(logits.float(), dim=-1).numpy())
    if not probs:
        return np.zeros((0, len(loaded.labels)), dtype=np.float32)
    return np.concatenate(probs)


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_files(loaded: LoadedModel, files: Sequence[Path], *, batch_size: int = 64, skip_bad: bool = False) -> Predictions:
    """Read every file with the safe loader and classify it. A bad file raises (naming it) unless ``skip_bad``."""
    images: list[np.ndarray] = []
    sources: list[str] = []
    skipped: list[tuple[str, str]] = []
    for f in tqdm(files, desc="read", unit="file", disable=len(files) < 200):
        try:
            image, _ = read_image(f)
            if not float(image.max()) > float(image.min()):
                raise LensFileError(f, "constant image (all pixels equal): nothing to classify")
        except LensFileError as err:
            if not skip_bad:
                raise
            skipped.append((str(f), err.reason))
            continue
        images.append(image)
        sources.append(str(f))
    if not images:
        raise LensHFError("none of the input files could be read" + (f" ({len(skipped)} skipped)" if skipped else ""))
    probs = predict_arrays(loaded, images, batch_size=batch_size, total=len(images))
    return Predictions(labels=loaded.labels, probs=probs, sources=sources, skipped=skipped)


def evaluate_data(
    loaded: LoadedModel, data: str | os.PathLike, *, split: str = "test", batch_size: int = 64, skip_bad: bool = False
) -> tuple[np.ndarray, Predictions]:
    """Classify a labelled data folder: a saved DatasetDict / parquet folder (``split``) or any raw folder
    :func:`lens_hf.data.readers.scan_folder` reads. Returns the true label ids (in the model's label order) and
    the predictions."""
    from lens_hf.data.dataset import load_any
    from lens_hf.data.readers import scan_folder
    from lens_hf.labels import canonical_label

    model_index = {}
    for i, name in enumerate(loaded.labels):
        canon = canonical_label(name)
        if canon is None:
            raise LensHFError(f"{loaded.path}: model label {name!r} is not a lensing class; cannot score labelled data")
        model_index[canon] = i

    def to_model_id(label: str) -> int:
        if label not in model_index:
            raise LensHFError(f"{data}: class {label!r} is not one of the model's labels ({', '.join(loaded.labels)})")
        return model_index[label]

    path = Path(data)
    if _is_saved_dataset(path):
        ds = load_any(path, split=split)
        names = ds.features["label"].names
        y_true = np.array([to_model_id(names[i]) for i in ds["label"]], dtype=np.int64)
        sources = [p if p else f"{path}[{split}][{i}]" for i, p in enumerate(ds["path"])] if "path" in ds.column_names else [
            f"{path}[{split}][{i}]" for i in range(len(ds))
        ]
        images = (np.asarray(row["image"], dtype=np.float32) for row in ds)
        probs = predict_arrays(loaded, images, batch_size=batch_size, total=len(ds), desc="evaluate")
        return y_true, Predictions(labels=loaded.labels, probs=probs, sources=sources)
    records = scan_folder(path)
    files = [Path(r.path) for r in records]
    preds = predict_files(loaded, files, batch_size=batch_size, skip_bad=skip_bad)
    label_of = {r.path: r.label for r in records}
    y_true = np.array([to_model_id(label_of[s]) for s in preds.sources], dtype=np.int64)
    return y_true, preds


def _is_saved_dataset(path: Path) -> bool:
    """A folder written by ``save_to_disk`` (DatasetDict or Dataset) or a folder of parquet shards."""
    return (
        (path / "dataset_dict.json").is_file()
        or (path / "state.json").is_file()
        or any(path.glob("*.parquet"))
        or any(path.glob("data/*.parquet"))
    )
