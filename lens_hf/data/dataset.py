"""Lensing images as a Hugging Face :class:`datasets.DatasetDict`: build, save, load.

Every row holds one normalised float32 image (stored losslessly as a mode "F" TIFF by the ``Image`` feature),
its label and the physical metadata known for it. A saved dataset folder holds the ``save_to_disk`` output,
Parquet shards under ``data/`` and a README.md dataset card whose YAML header lets
``datasets.load_dataset(folder)`` read the shards too.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from datasets import (
    ClassLabel,
    Dataset,
    DatasetDict,
    Features,
    Image,
    Value,
    concatenate_datasets,
    load_dataset,
    load_from_disk,
)

from lens_hf.data.readers import SPLIT_FOLDERS, Record, load_images, scan_folder
from lens_hf.errors import LensHFError
from lens_hf.labels import LABEL2ID, LABELS
from lens_hf.processing.file_io import CHANNEL_COLUMNS, NOT_IDEMPOTENT, normalize_image
from lens_hf.utils import make_temporary_folder, replace_folder

FEATURES = Features(
    {
        "image": Image(),  # float32 (H, W), encoded as a lossless mode "F" TIFF
        "label": ClassLabel(names=list(LABELS)),
        "axion_mass": Value("float64"),  # eV; None unless the row is a vortex
        "n_subhalos": Value("int32"),
        "subhalo_mass_total": Value("float64"),  # Msun
        "source_x": Value("float32"),  # arcsec
        "source_y": Value("float32"),  # arcsec
        "exposure_time": Value("float32"),  # s
        "seed": Value("int64"),
        "preset": Value("string"),
        "path": Value(
            "string"
        ),  # source file relative to the source folder; None for images simulated in memory
    }
)
SPLIT_NAMES: tuple[str, ...] = ("train", "validation", "test")
DEFAULT_SPLITS = "0.8,0.1,0.1"
MARKER_FILE = "lens_hf_dataset.json"
# Parquet shards stay below this size so the Hub viewer and partial downloads work well.
MAX_SHARD_BYTES = 500 * 1024 * 1024
_CHUNK_ROWS = 1000

_INT_COLUMNS = {"n_subhalos": 2**31 - 1, "seed": 2**63 - 1}
_FLOAT_COLUMNS = ("axion_mass", "subhalo_mass_total", "source_x", "source_y", "exposure_time")


# --------------------------------------------------------------------------------------------------- splits
def _parse_split_value(text: str, spec: object) -> float | int:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise LensHFError(f"invalid split spec {spec!r}: {text!r} is not a number") from None


def parse_splits(spec: str | Mapping[str, float | int]) -> dict[str, float | int]:
    """Parse a split request into ``{split: fraction}`` or ``{split: images per class}``.

    ``"0.8,0.1,0.1"`` -> fractions of each class for train/validation/test (they may sum to less than 1 to
    use a subset); ``"800,100,100"`` -> images per class. Values may also be named: ``"train=0.9,test=0.1"``.
    Integer literals are counts, literals with a decimal point or exponent are fractions; the two kinds
    cannot be mixed.
    """
    if isinstance(spec, Mapping):
        items = [(str(k), str(v)) for k, v in spec.items()]
    else:
        parts = [p.strip() for p in str(spec).split(",")]
        if not parts or any(not p for p in parts):
            raise LensHFError(f"invalid split spec {spec!r}: expected e.g. '0.8,0.1,0.1' or '800,100,100'")
        if all("=" in p for p in parts):
            items = [tuple(s.strip() for s in p.split("=", 1)) for p in parts]
        elif any("=" in p for p in parts):
            raise LensHFError(f"invalid split spec {spec!r}: name all values (train=..., ...) or none")
        else:
            if len(parts) > len(SPLIT_NAMES):
                raise LensHFError(
                    f"invalid split spec {spec!r}: at most {len(SPLIT_NAMES)} values (train, validation, test)"
                )
            items = list(zip(SPLIT_NAMES, parts))
    out: dict[str, float | int] = {}
    kinds = set()
    for name, text in items:
        split = SPLIT_FOLDERS.get(name.lower())
        if split is None:
            raise LensHFError(
                f"invalid split spec {spec!r}: unknown split name {name!r} (use train, validation, test)"
            )
        if split in out:
            raise LensHFError(f"invalid split spec {spec!r}: split {split!r} given twice")
        value = _parse_split_value(text, spec)
        if value != 0:  # a zero fits either kind: "0.9,0.1,0" means no test split
            kinds.add("count" if isinstance(value, int) else "fraction")
        if isinstance(value, float) and not (0.0 <= value <= 1.0):
            raise LensHFError(f"invalid split spec {spec!r}: fraction {text} is not between 0 and 1")
        if isinstance(value, int) and value < 0:
            raise LensHFError(f"invalid split spec {spec!r}: negative count {value}")
        out[split] = value
    if len(kinds) > 1:
        raise LensHFError(
            f"invalid split spec {spec!r}: mix of counts and fractions (write 0.8 for a fraction, 800 for a count)"
        )
    if sum(out.values()) <= 0:
        raise LensHFError(f"invalid split spec {spec!r}: every split is empty")
    if "fraction" in kinds and sum(out.values()) > 1.0 + 1e-9:
        raise LensHFError(f"invalid split spec {spec!r}: fractions sum to {sum(out.values()):g} > 1")
    return {k: v for k, v in out.items() if v > 0}


def stratified_split(
    labels: Sequence[str], splits: Mapping[str, float | int], seed: int
) -> dict[str, list[int]]:
    """Assign item indices to splits, class by class, with a seeded shuffle.

    ``splits`` comes from :func:`parse_splits`. Each class is shuffled with its own RNG (seeded by ``seed`` and
    the class id), so the result does not depend on the other classes. Returned index lists are sorted.

    Written here rather than ``Dataset.train_test_split(stratify_by_column=...)``: that splits two ways per call
    and shuffles the whole set with one generator, so a three-way split takes two calls, exact per-class counts
    are not available, and adding images of one class moves images of the other classes between splits; here
    a class's assignment depends only on its own images and the seed (tested in tests/test_dataset.py).
    """
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    names = list(splits)
    values = [splits[n] for n in names]
    counts_mode = all(isinstance(v, int) for v in values)
    out: dict[str, list[int]] = {n: [] for n in names}
    for label in sorted(by_label, key=lambda x: LABEL2ID.get(x, len(LABEL2ID))):
        idx = by_label[label]
        n = len(idx)
        rng = np.random.default_rng([int(seed), LABEL2ID.get(label, len(LABEL2ID))])
        order = [idx[j] for j in rng.permutation(n)]
        if counts_mode:
            need = sum(values)
            if need > n:
                raise LensHFError(
                    f"class {label!r} has {n} images but the splits ask for {need} per class ({', '.join(f'{k}={v}' for k, v in splits.items())})"
                )
            bounds = list(np.cumsum([0, *values]))
        else:
            cum = np.cumsum([0.0, *values])
            bounds = [min(n, math.floor(c * n + 0.5)) for c in cum]
        for k, name in enumerate(names):
            out[name].extend(order[bounds[k] : bounds[k + 1]])
    for name in names:
        if not out[name]:
            raise LensHFError(
                f"split {name!r} would be empty ({len(labels)} images in all); give it a larger fraction or a count"
            )
        out[name].sort()
    return out


# --------------------------------------------------------------------------------------------------- rows
def _to_float(value: Any, key: str, source: str) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise LensHFError(f"{source}: metadata {key} is not a number") from None
    return out if math.isfinite(out) else None


def _to_int(value: Any, key: str, source: str) -> int | None:
    number = _to_float(value, key, source)
    if number is None:
        return None
    if not number.is_integer() or abs(number) > _INT_COLUMNS[key]:
        raise LensHFError(f"{source}: metadata {key} is not an integer of the column's range")
    return int(number)


def metadata_row(
    label: str, meta: Mapping[str, Any], path: str | None, *, source: str | None = None
) -> dict[str, Any]:
    """The non-image columns of one row from a label, a metadata dict (simulator or reader keys) and the path to
    store (relative to the source folder). ``source`` names the image in errors (default: ``path``)."""
    source = source or path or "simulated image"
    row: dict[str, Any] = {"label": LABEL2ID[label]}
    for key in _FLOAT_COLUMNS:
        row[key] = _to_float(meta.get(key), key, source)
    if label != "vortex":
        row["axion_mass"] = None
    for key in _INT_COLUMNS:
        row[key] = _to_int(meta.get(key), key, source)
    preset = meta.get("preset")
    row["preset"] = None if preset is None else str(preset)
    row["path"] = path
    return row


def dataset_features(normalize: str = "none") -> Features:
    """:data:`FEATURES`, plus one float32 image column for every further channel of a multi-channel
    normalisation (``residual_lens_model_i``: ``smooth_lens``, the fitted lens in noise units)."""
    extra = CHANNEL_COLUMNS.get(normalize, ("image",))[1:]
    if not extra:
        return FEATURES
    return Features({**FEATURES, **{name: Image() for name in extra}})


def split_channels(images: Sequence[np.ndarray], normalize: str = "none") -> dict[str, list[np.ndarray]]:
    """Normalised images -> their dataset columns: ``{"image": images}``, or for a multi-channel normalisation
    one column per channel (:data:`~lens_hf.processing.file_io.CHANNEL_COLUMNS`)."""
    columns = CHANNEL_COLUMNS.get(normalize, ("image",))
    if len(columns) == 1:
        return {"image": list(images)}
    return {name: [image[k] for image in images] for k, name in enumerate(columns)}


def _to_dataset(images: list[np.ndarray], rows: list[dict[str, Any]], normalize: str = "none") -> Dataset:
    """Rows -> Dataset with :data:`FEATURES`, encoded a chunk at a time (images are consumed and freed).
    Every image is checked to be finite float32 (H, W) here, where it is written; a multi-channel normalisation
    gives (C, H, W) images, whose channels go to the columns of :data:`CHANNEL_COLUMNS`."""
    columns_of = CHANNEL_COLUMNS.get(normalize, ("image",))
    features = dataset_features(normalize)
    shape = "(H, W)" if len(columns_of) == 1 else f"({len(columns_of)}, H, W)"
    parts = []
    for start in range(0, len(rows), _CHUNK_ROWS):
        chunk = rows[start : start + _CHUNK_ROWS]
        for image, row in zip(images[start : start + _CHUNK_ROWS], chunk):
            if len(columns_of) == 1:
                good_shape = image.ndim == 2
            else:
                good_shape = image.ndim == 3 and image.shape[0] == len(columns_of)
            if image.dtype != np.float32 or not good_shape or not np.isfinite(image).all():
                where = row["path"] or "a simulated image"
                raise LensHFError(f"{where}: refusing to write an image that is not finite float32 {shape}")
        channels = split_channels(images[start : start + _CHUNK_ROWS], normalize)
        columns = {
            name: channels[name] if name in channels else [r[name] for r in chunk] for name in features
        }
        parts.append(Dataset.from_dict(columns, features=features))
        images[start : start + _CHUNK_ROWS] = [None] * len(chunk)
    if not parts:
        return Dataset.from_dict({name: [] for name in features}, features=features)
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)


def _records_to_dict(
    groups: Mapping[str, Sequence[Record]],
    root: str | os.PathLike,
    *,
    normalize: str,
    skip_bad: bool,
    progress: bool,
) -> tuple[DatasetDict, list[tuple[str, str]]]:
    """{split: records} -> DatasetDict. All images are read in one pass so mixed sizes are caught across splits.
    The ``path`` column holds each file's path relative to ``root`` (the folder the records were found in)."""
    names = [n for n in SPLIT_NAMES if n in groups] + [n for n in groups if n not in SPLIT_NAMES]
    ordered = [rec for n in names for rec in groups[n]]
    splits_of = [n for n in names for _ in groups[n]]
    images, kept, skipped = load_images(ordered, normalize=normalize, skip_bad=skip_bad, progress=progress)
    bad = {path for path, _ in skipped}
    split_of_kept = [s for s, rec in zip(splits_of, ordered) if rec.path not in bad]
    out = {}
    for name in names:
        sel = [i for i, s in enumerate(split_of_kept) if s == name]
        rows = [
            metadata_row(
                kept[i].label,
                kept[i].meta,
                Path(kept[i].path).relative_to(root).as_posix(),
                source=kept[i].path,
            )
            for i in sel
        ]
        out[name] = _to_dataset([images[i] for i in sel], rows, normalize)
    return DatasetDict(out), skipped


# --------------------------------------------------------------------------------------------------- build
def build_from_folder(
    src: str | os.PathLike,
    *,
    splits: str | Mapping[str, float | int] | None = None,
    seed: int = 0,
    normalize: str = "minmax",
    skip_bad: bool = False,
    progress: bool = True,
) -> tuple[DatasetDict, list[tuple[str, str]]]:
    """Read a folder of lensing images (any layout :func:`scan_folder` reads) into a DatasetDict.

    Split folders (train/val/validation/test) are kept as they are. Otherwise each class is split at random
    (seeded by ``seed``) by ``splits`` (fractions or counts per class, default ``"0.8,0.1,0.1"``); only the
    files chosen are read. Rows of a split are ordered by label id, then file path; the ``path`` column is
    relative to ``src`` (``cdm/img_001.npy``). Returns ``(dataset_dict, skipped)`` with ``skipped`` the
    ``(path, reason)`` of files left out (``skip_bad``), paths as read.
    """
    records = scan_folder(src)
    has_split_folders = records[0].split is not None
    groups: dict[str, list[Record]] = {}
    if has_split_folders:
        if splits is not None:
            raise LensHFError(
                f"{src}: the folder already has split folders ({', '.join(sorted({r.split for r in records}))}); do not also give splits"
            )
        for rec in records:
            groups.setdefault(rec.split, []).append(rec)
    else:
        spec = parse_splits(DEFAULT_SPLITS if splits is None else splits)
        assignment = stratified_split([r.label for r in records], spec, seed)
        groups = {name: [records[i] for i in idx] for name, idx in assignment.items()}
    return _records_to_dict(groups, src, normalize=normalize, skip_bad=skip_bad, progress=progress)


def build_from_simulation(
    preset: Any,
    per_class: int,
    seed: int,
    *,
    splits: str | Mapping[str, float | int] | None = None,
    workers: int | None = None,
    normalize: str = "minmax",
    progress: bool = True,
    labels: Sequence[str] = LABELS,
) -> DatasetDict:
    """Simulate ``per_class`` images of each class in ``labels`` (default: all three) with ``preset`` (a name
    such as ``"model_i"`` or a SimulationPreset) and split them per class like :func:`build_from_folder`
    (default ``"0.8,0.1,0.1"``). Images are normalised float32 (H, W); ``path`` is None."""
    from lens_hf.data.simulate import iter_simulations

    if per_class < 1:
        raise LensHFError(f"per_class must be at least 1, got {per_class}")
    images: list[np.ndarray] = []
    metas: list[dict[str, Any]] = []
    # A costly normalisation (the smooth-lens fit) runs in the simulation workers.
    in_workers = normalize if normalize in NOT_IDEMPOTENT else None
    simulations = iter_simulations(
        preset, per_class, seed, workers=workers, labels=labels, progress=progress, normalize=in_workers
    )
    for image, meta in simulations:
        source = f"simulated {meta.get('label')} #{meta.get('index')}"
        images.append(image if in_workers else normalize_image(image, normalize, source))
        metas.append(dict(meta))
    spec = parse_splits(DEFAULT_SPLITS if splits is None else splits)
    assignment = stratified_split([str(m["label"]) for m in metas], spec, seed)
    out = {}
    for name in [n for n in SPLIT_NAMES if n in assignment]:
        idx = assignment[name]
        rows = [metadata_row(str(metas[i]["label"]), metas[i], None) for i in idx]
        out[name] = _to_dataset([images[i] for i in idx], rows, normalize)
    return DatasetDict(out)


# --------------------------------------------------------------------------------------------------- save
def _is_lens_dataset(folder: Path) -> bool:
    return (folder / MARKER_FILE).is_file()


def _card_yaml(dd: DatasetDict, shards: Mapping[str, list[str]]) -> dict[str, Any]:
    first = dd[next(iter(dd))]
    files = [{"split": name, "path": f"data/{name}-*"} for name in shards]
    configs = {"configs": [{"config_name": "default", "data_files": files}]} if files else {}
    return {
        **configs,
        "dataset_info": {
            "features": first.features._to_yaml_list(),
            "splits": [
                {"name": name, "num_bytes": int(dd[name].data.nbytes), "num_examples": len(dd[name])}
                for name in dd
            ],
        },
    }


def render_card(dd: DatasetDict, info: Mapping[str, Any], shards: Mapping[str, list[str]]) -> str:
    """README.md text: the dataset card from ``lens_hf.cards`` with the YAML ``configs``/``dataset_info``
    that ``datasets.load_dataset(folder)`` needs."""
    from huggingface_hub import DatasetCard

    from lens_hf.cards import render_dataset_card

    text = render_dataset_card(dict(info))
    card = DatasetCard(text)
    for key, value in _card_yaml(dd, shards).items():
        if key == "dataset_info" or not card.data.get(key):
            card.data[key] = value
    return str(card)


def save_dataset(
    dd: DatasetDict,
    out_dir: str | os.PathLike,
    *,
    info: Mapping[str, Any] | None = None,
    parquet: bool = True,
) -> None:
    """Write ``dd`` to ``out_dir``: ``save_to_disk`` output, ``data/<split>-00000-of-0000N.parquet`` shards,
    ``README.md`` (dataset card) and ``lens_hf_dataset.json`` (``info`` plus split sizes and image size).
    ``parquet=False`` leaves the shards out (half the disk for large sets; ``datasets.load_dataset`` and the Hub
    viewer need them, lens_hf and ``load_from_disk`` do not).

    Everything is written into a temporary sibling folder that is then renamed into place, so ``out_dir`` is
    never half-written; temporaries that killed earlier runs left next to ``out_dir`` are removed first. An
    existing ``out_dir`` is replaced only when it is empty or a previous lens_hf dataset; otherwise
    :class:`LensHFError`. ``info`` is recorded as given: keep local paths out of it (see :mod:`lens_hf.redact`).
    """
    if not isinstance(dd, DatasetDict) or not len(dd):
        raise LensHFError("save_dataset needs a non-empty DatasetDict")
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise LensHFError(f"{out}: exists and is not a folder")
        if any(out.iterdir()) and not _is_lens_dataset(out):
            raise LensHFError(
                f"{out}: folder is not empty and is not a lens_hf dataset; choose another output folder"
            )
    first = dd[next(iter(dd))]
    height = width = None
    if len(first):
        height, width = np.asarray(first[0]["image"]).shape
    full_info: dict[str, Any] = {
        key: None for key in ("preset", "per_class", "seed", "normalization", "source", "command")
    }
    full_info.update(info or {})
    full_info["splits"] = {name: len(ds) for name, ds in dd.items()}
    full_info["image_size"] = [height, width]
    full_info["parquet"] = bool(parquet)

    tmp = make_temporary_folder(out)
    try:
        dd.save_to_disk(str(tmp))
        shards: dict[str, list[str]] = {}
        if parquet:
            (tmp / "data").mkdir()
            for name, ds in dd.items():
                n = max(1, math.ceil(ds.data.nbytes / MAX_SHARD_BYTES))
                shards[name] = []
                for i in range(n):
                    rel = f"data/{name}-{i:05d}-of-{n:05d}.parquet"
                    ds.shard(num_shards=n, index=i, contiguous=True).to_parquet(str(tmp / rel))
                    shards[name].append(rel)
        (tmp / "README.md").write_text(render_card(dd, full_info, shards), encoding="utf-8")
        marker = {**full_info, "parquet_files": shards}
        (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=2, default=str) + "\n", encoding="utf-8")
        replace_folder(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------------------------------- load
def _parquet_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*.parquet")
        if not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _check_columns(dd: DatasetDict, source: Path) -> DatasetDict:
    for name, ds in dd.items():
        missing = [c for c in ("image", "label") if c not in ds.column_names]
        if missing:
            raise LensHFError(
                f"{source}: split {name!r} has no {' or '.join(missing)} column (columns: {', '.join(ds.column_names)})"
            )
    return dd


def _select_split(dd: DatasetDict, split: str | None, source: Path) -> DatasetDict | Dataset:
    if split is None:
        return dd
    name = SPLIT_FOLDERS.get(split.lower(), split)
    if name not in dd:
        raise LensHFError(f"{source}: no split {split!r} (available: {', '.join(dd)})")
    return dd[name]


def _opened(source: Path, opener: Any, *args: Any, **kwargs: Any) -> Any:
    """``opener(*args, **kwargs)``; a corrupt or incomplete saved dataset (broken JSON, truncated Arrow or
    Parquet files, missing shards) becomes one :class:`LensHFError` line naming ``source``."""
    try:
        return opener(*args, **kwargs)
    except LensHFError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as err:  # pyarrow's errors subclass these
        reason = " ".join(str(err).split()) or type(err).__name__
        raise LensHFError(f"{source}: not a readable dataset ({reason[:300]})") from None


def load_any(
    path: str | os.PathLike,
    *,
    split: str | None = None,
    normalize: str = "minmax",
    skip_bad: bool = False,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> DatasetDict | Dataset:
    """Open any lensing data source as a DatasetDict (or one of its splits when ``split`` is given).

    ``path`` may be a folder written by :func:`save_dataset` or ``save_to_disk``, a folder (or file) of
    Parquet shards named ``<split>-*.parquet``, or a raw image folder :func:`scan_folder` reads; a raw folder
    keeps its split folders, and one without becomes a single ``"test"`` split (``normalize``/``skip_bad``
    apply; skipped files are reported with a warning). ``cache_dir`` is where ``datasets`` caches Parquet reads.
    """
    p = Path(path)
    if not p.exists():
        raise LensHFError(f"{p}: no such file or folder")
    cache = None if cache_dir is None else str(cache_dir)
    if p.is_file():
        if p.suffix.lower() != ".parquet":
            raise LensHFError(f"{p}: expected a dataset folder, an image folder or a .parquet file")
        stem = p.name.split("-", 1)[0].split(".", 1)[0].lower()
        name = SPLIT_FOLDERS.get(stem, "test")
        dd = _opened(p, load_dataset, "parquet", data_files={name: str(p)}, cache_dir=cache)
        return _select_split(_check_columns(dd, p), split, p)
    if (p / "dataset_dict.json").is_file():
        return _select_split(_check_columns(_opened(p, load_from_disk, str(p)), p), split, p)
    if (p / "state.json").is_file() and (p / "dataset_info.json").is_file():
        ds = _opened(p, load_from_disk, str(p))
        return _select_split(_check_columns(DatasetDict({"test": ds}), p), split, p)
    if _parquet_files(p):
        if (p / "README.md").is_file():
            dd = _opened(p, load_dataset, str(p), cache_dir=cache)
        else:
            dd = _opened(p, load_dataset, "parquet", data_dir=str(p), cache_dir=cache)
        return _select_split(_check_columns(dd, p), split, p)
    records = scan_folder(p)
    groups: dict[str, list[Record]] = {}
    for rec in records:
        groups.setdefault(rec.split or "test", []).append(rec)
    if split is not None:
        name = SPLIT_FOLDERS.get(split.lower(), split)
        if name not in groups:
            raise LensHFError(f"{p}: no split {split!r} (available: {', '.join(groups)})")
        groups = {name: groups[name]}
    dd, skipped = _records_to_dict(groups, p, normalize=normalize, skip_bad=skip_bad, progress=progress)
    if skipped:
        warnings.warn(
            f"skipped {len(skipped)} unreadable file(s), e.g. {skipped[0][0]}: {skipped[0][1]}", stacklevel=2
        )
    return _select_split(dd, split, p)


__all__ = [
    "DEFAULT_SPLITS",
    "FEATURES",
    "MARKER_FILE",
    "SPLIT_NAMES",
    "build_from_folder",
    "build_from_simulation",
    "dataset_features",
    "load_any",
    "metadata_row",
    "parse_splits",
    "render_card",
    "save_dataset",
    "split_channels",
    "stratified_split",
]
