"""Find lensing images in the folder layouts users have on disk and read them.

Layouts understood by :func:`scan_folder` (folder names are case-insensitive):

1. DeepLense Model I-III archives: ``<root>/{axion,cdm,no_sub}/*.npy``.
2. The ML4SCI common test set: ``<root>/{train,val}/{no,sphere,vort}/<n>.npy`` (arrays of shape (1, 150, 150)).
3. Any folder of class sub-folders named with an alias from :data:`lens_hf.labels.ALIASES`, optionally under
   split folders ``train``, ``val``/``validation`` or ``test``.

Images are found recursively inside each class folder. A ``metadata.csv`` in the root (written by the
simulator: a ``path`` column relative to the root, then one column per metadata key) is merged into
:attr:`Record.meta`.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from lens_hf.errors import LensHFError
from lens_hf.labels import ALIASES, LABEL2ID, canonical_label
from lens_hf.processing.file_io import LensFileError, is_image_file, normalize_image, read_image

# Split folder names (lower case) and the split each stands for.
SPLIT_FOLDERS: dict[str, str] = {
    "train": "train",
    "val": "validation",
    "validation": "validation",
    "test": "test",
}
SPLIT_ORDER: tuple[str, ...] = ("train", "validation", "test")
METADATA_FILE = "metadata.csv"


@dataclass
class Record:
    """One image file: where it is, its canonical label, its split (None when the folder has no split
    folders) and its metadata (``axion_mass`` in eV, ``n_subhalos``, ... as far as known)."""

    path: str
    label: str
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _images_under(folder: Path) -> list[Path]:
    """Readable image files below ``folder`` (recursively), hidden files and folders skipped, sorted."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        base = Path(dirpath)
        found.extend(base / f for f in filenames if _visible(f) and is_image_file(f) and (base / f).is_file())
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _has_images(folder: Path) -> bool:
    for _, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if _visible(d)]
        if any(_visible(f) and is_image_file(f) for f in filenames):
            return True
    return False


def _children(folder: Path) -> tuple[list[Path], list[Path]]:
    """Visible sub-folders and visible image files directly inside ``folder``, sorted by name."""
    entries = sorted((p for p in folder.iterdir() if _visible(p.name)), key=lambda p: p.name)
    dirs = [p for p in entries if p.is_dir()]
    files = [p for p in entries if p.is_file() and is_image_file(p.name)]
    return dirs, files


def _is_known_folder(name: str) -> bool:
    return name.lower() in SPLIT_FOLDERS or canonical_label(name) is not None


def _accepted_aliases() -> str:
    return ", ".join(sorted(ALIASES))


def _unknown_folders_error(where: Path, names: Sequence[str], expected: str) -> LensHFError:
    listed = ", ".join(repr(n) for n in names)
    return LensHFError(
        f"{where}: unknown {expected} folder name(s) {listed}; accepted class folder names: {_accepted_aliases()}"
    )


def _class_records(folder: Path, split: str | None) -> list[Record]:
    """Records for the class sub-folders of ``folder`` (the root or a split folder)."""
    dirs, files = _children(folder)
    if files:
        raise LensHFError(
            f"{folder}: image files (e.g. {files[0].name}) lie directly in the folder; put them into class "
            f"sub-folders named after their class (e.g. no_sub/, cdm/, axion/)"
        )
    unknown = [d.name for d in dirs if canonical_label(d.name) is None and _has_images(d)]
    if unknown:
        raise _unknown_folders_error(folder, unknown, "class")
    records = []
    for d in dirs:
        label = canonical_label(d.name)
        if label is None:
            continue  # a folder without images (e.g. logs/) is not data
        records.extend(Record(path=str(p), label=label, split=split, meta={}) for p in _images_under(d))
    return records


def _parse_value(text: str) -> Any:
    """CSV cell -> None (empty), int, float or the string itself."""
    text = text.strip()
    if text == "" or text.lower() in ("none", "nan", "null"):
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else None


def read_metadata_csv(
    path: str | os.PathLike, keep: Collection[str] | None = None
) -> dict[str, dict[str, Any]]:
    """``metadata.csv`` -> {relative posix path: {column: value}} (numbers parsed, empty cells None).

    With ``keep`` (relative posix paths), only those rows are kept, so memory follows the images found rather
    than the file's size. Errors name the file and the problem, never its contents.
    """
    p = Path(path)
    try:
        with open(p, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or "path" not in reader.fieldnames:
                columns = len(reader.fieldnames or [])
                raise LensHFError(f"{p}: metadata file has no 'path' column ({columns} column(s))")
            table: dict[str, dict[str, Any]] = {}
            for row in reader:
                rel = Path((row.pop("path") or "").strip()).as_posix()
                if rel == "." or (keep is not None and rel not in keep):
                    continue
                row.pop(None, None)  # cells beyond the header
                table[rel] = {k: _parse_value(v or "") for k, v in row.items() if k}
            return table
    except UnicodeDecodeError as err:
        raise LensHFError(f"{p}: cannot read metadata file (not UTF-8 text at byte {err.start})") from None
    except csv.Error:
        raise LensHFError(f"{p}: cannot read metadata file (malformed CSV)") from None
    except OSError as err:
        raise LensHFError(f"{p}: cannot read metadata file ({err.strerror or type(err).__name__})") from None


def scan_folder(root: str | os.PathLike) -> list[Record]:
    """List the lensing images under ``root`` with their labels and splits.

    Returns records sorted by split (train, validation, test), label id, then path relative to the class
    folder. Raises :class:`LensHFError` (one line) when ``root`` is missing or not a folder, holds no image
    files, has class folders with unknown names, mixes split and class folders, or has image files directly
    in it.
    """
    root_path = Path(root)
    if not root_path.exists():
        raise LensHFError(f"{root_path}: no such folder")
    if not root_path.is_dir():
        raise LensHFError(f"{root_path}: not a folder (expected a folder of class sub-folders)")
    dirs, files = _children(root_path)
    split_dirs = [d for d in dirs if d.name.lower() in SPLIT_FOLDERS]
    class_dirs = [d for d in dirs if canonical_label(d.name) is not None]
    if split_dirs and class_dirs:
        raise LensHFError(
            f"{root_path}: mixes split folders ({', '.join(d.name for d in split_dirs)}) and class folders "
            f"({', '.join(d.name for d in class_dirs)}); use one or the other"
        )
    records: list[Record] = []
    if split_dirs:
        if files:
            raise LensHFError(
                f"{root_path}: image files (e.g. {files[0].name}) lie next to the split folders; move them into split/class folders"
            )
        unknown = [d.name for d in dirs if d not in split_dirs and _has_images(d)]
        if unknown:
            raise LensHFError(
                f"{root_path}: unknown folder name(s) {', '.join(repr(n) for n in unknown)} next to the split folders "
                f"(expected {', '.join(sorted(SPLIT_FOLDERS))})"
            )
        seen: dict[str, str] = {}
        for d in split_dirs:
            split = SPLIT_FOLDERS[d.name.lower()]
            if split in seen:
                raise LensHFError(
                    f"{root_path}: split folders {seen[split]!r} and {d.name!r} both mean {split!r}"
                )
            seen[split] = d.name
            records.extend(_class_records(d, split))
    elif class_dirs:
        records = _class_records(root_path, None)
    else:
        if files:
            raise LensHFError(
                f"{root_path}: image files (e.g. {files[0].name}) lie directly in the folder without class "
                f"folders; put them into class sub-folders named after their class (e.g. no_sub/, cdm/, axion/)"
            )
        unknown = [d for d in dirs if _has_images(d)]
        if unknown:
            err = _unknown_folders_error(root_path, [d.name for d in unknown], "class")
            nested = [d for d in unknown if any(_is_known_folder(c.name) for c in _children(d)[0])]
            if nested:
                err = LensHFError(f"{err}; did you mean {nested[0]}?")
            raise err
    if not records:
        raise LensHFError(
            f"{root_path}: no image files found (readable suffixes: .npy, .npz, .fits, .fit, .png, .tif, .tiff)"
        )

    meta_file = root_path / METADATA_FILE
    if meta_file.is_file():
        relative = {rec.path: Path(rec.path).relative_to(root_path).as_posix() for rec in records}
        table = read_metadata_csv(meta_file, keep=set(relative.values()))
        for rec in records:
            row = table.get(relative[rec.path])
            if row:
                rec.meta.update(row)

    split_rank = {name: i for i, name in enumerate(SPLIT_ORDER)}
    records.sort(
        key=lambda r: (
            split_rank.get(r.split, -1),
            LABEL2ID[r.label],
            Path(r.path).relative_to(root_path).as_posix(),
        )
    )
    return records


def load_images(
    records: Sequence[Record],
    *,
    normalize: str = "minmax",
    skip_bad: bool = False,
    progress: bool = True,
) -> tuple[list[np.ndarray], list[Record], list[tuple[str, str]]]:
    """Read and normalise the image of every record.

    Returns ``(images, kept, skipped)``: float32 (H, W) images, the records they belong to (copies whose
    ``meta`` also holds what the file stores, e.g. ``axion_mass`` in eV) and ``(path, reason)`` for each file
    left out. A bad file raises its :class:`LensFileError` unless ``skip_bad``. Images of different sizes, or
    no usable file at all, raise :class:`LensHFError`.
    """
    images: list[np.ndarray] = []
    kept: list[Record] = []
    skipped: list[tuple[str, str]] = []
    examples: dict[tuple[int, ...], str] = {}
    for rec in tqdm(records, desc="reading images", unit="file", disable=not progress):
        try:
            image, file_meta = read_image(rec.path)
            image = normalize_image(image, normalize, rec.path)
        except LensFileError as err:
            if not skip_bad:
                raise
            skipped.append((rec.path, err.reason))
            continue
        examples.setdefault(image.shape, rec.path)
        images.append(image)
        kept.append(replace(rec, meta={**rec.meta, **file_meta}))
    if len(examples) > 1:
        sizes = "; ".join(f"{h}x{w} (e.g. {path})" for (h, w), path in sorted(examples.items()))
        raise LensHFError(f"images have different sizes: {sizes}; resize them to one size first")
    if records and not images:
        first = f" (first: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise LensHFError(f"none of the {len(records)} image files could be read{first}")
    return images, kept, skipped


__all__ = ["METADATA_FILE", "SPLIT_FOLDERS", "Record", "load_images", "read_metadata_csv", "scan_folder"]
