"""The Hugging Face Hub side: resolve a model name to a folder (offline-aware), the default model, what to
upload, the check that nothing published holds a secret or a local path, push, and local caching.

A model name is either a local folder or a Hub repo id (``org/name``). Hub ids go through
``huggingface_hub.snapshot_download``, which uses the standard cache (``HF_HUB_CACHE`` / ``HF_HOME``) and,
with ``HF_HUB_OFFLINE=1``, never touches the network.

The default model (``lens-hf predict`` without ``--model``) is named by a Hub id, :data:`DEFAULT_MODEL_ID`, and
resolved the Hugging Face way: ``LENS_HF_DEFAULT_MODEL`` (a folder or Hub id) when set, the repository's
``checkpoints/`` copy when running from a source checkout, the Hugging Face cache, then a download.
:func:`cache_model_folder` (``lens-hf cache-model``) puts a local folder into the cache as a snapshot of a
repo id, so an installed lens_hf finds the checkout's model offline.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    IncompleteSnapshotError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import validate_repo_id

from lens_hf.errors import LensHFError
from lens_hf.redact import contains_secret, is_local_path, redact_record
from lens_hf.utils import atomic_write_text

REPO_TYPES: tuple[str, ...] = ("model", "dataset")

# The shipped Model I checkpoint: its Hub id, the variable that overrides it, and its copy in a source checkout.
DEFAULT_MODEL_ID = "lens-hf/vit-spt-lsa-model-i"
DEFAULT_MODEL_ENV = "LENS_HF_DEFAULT_MODEL"
CHECKOUT_MODEL_DIR = Path(__file__).resolve().parent.parent / "checkpoints" / "vit-spt-lsa-model-i"

# What a fresh process needs to load and use a saved model folder, and the human-facing extras.
# Only top-level files: checkpoint-*/, runs/ and any other sub-folder stay local.
MODEL_UPLOAD_PATTERNS: tuple[str, ...] = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model-*-of-*.safetensors",
    "model.safetensors.index.json",
    "preprocessor_config.json",
    "processor_config.json",
    "*.py",
    "README.md",
    "metrics.json",
    "metrics_tta_d4.json",
    "metrics_refine_likelihood.json",
    "inference_speed.json",
    "*_results.json",
    "training_args.json",
    "lens_hf_training.json",
    "*.png",
)
# Pickle-based or resumable-training state: never uploaded, whatever the patterns say.
NEVER_UPLOAD: tuple[str, ...] = (
    "*.bin",
    "*.pt",
    "*.pth",
    "*.pkl",
    "*.pickle",
    "*.ckpt",
    "*.npy",
    "*.npz",
    "optimizer*",
    "scheduler*",
    "rng_state*",
    "trainer_state.json",
    ".*",
)
# A dataset repo: the card, the parquet shards under data/ that the card's `configs` point at, and
# top-level figures / summary JSON.
DATASET_TOP_PATTERNS: tuple[str, ...] = ("README.md", "*.png", "*.json")
# save_to_disk bookkeeping that the Hub does not use (the parquet shards are the Hub copy).
DATASET_SKIP: tuple[str, ...] = ("dataset_dict.json", "state.json", "dataset_info.json")


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set, now or when huggingface_hub loaded."""
    return bool(constants.HF_HUB_OFFLINE) or _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")


def hub_cache_dir() -> Path:
    """The Hub cache folder, read from the environment at call time: HF_HUB_CACHE, then HF_HOME/hub."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.environ[var])).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def resolve_model_path(name_or_path: str | os.PathLike, *, revision: str | None = None) -> Path:
    """A local model folder, or the folder of a Hub repo id in the Hugging Face cache (downloaded if online).

    Args:
        name_or_path: an existing folder, or a Hub repo id ``org/name``.
        revision: Hub branch, tag or commit (default: main); ignored for local folders.

    Returns:
        the folder holding ``config.json`` etc. (for a Hub id, the cache snapshot folder).

    Raises:
        LensHFError: a file instead of a folder, an invalid repo id, a repo missing from the cache while
            offline, or a repo the Hub does not have / does not let us read.
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise LensHFError(f"model '{text}' is a file; give the model folder (with config.json) or a Hub id")
    try:
        validate_repo_id(text)
    except HFValidationError:
        raise LensHFError(
            f"model '{text}' is not a local folder and not a valid Hugging Face repo id (org/name)"
        ) from None

    offline = hub_offline()
    try:
        folder = snapshot_download(
            text,
            repo_type="model",
            revision=revision,
            cache_dir=hub_cache_dir(),
            local_files_only=offline,
        )
    except (LocalEntryNotFoundError, IncompleteSnapshotError) as err:
        if offline:
            raise LensHFError(
                f"model '{text}' is not a local folder and is not in the Hugging Face cache (offline)"
            ) from None
        raise LensHFError(
            f"model '{text}' is not a local folder, not in the Hugging Face cache, and the Hub could not be "
            f"reached ({type(err).__name__})"
        ) from None
    except GatedRepoError:
        raise LensHFError(
            f"model '{text}' is gated on the Hub: accept its terms and log in (hf auth login)"
        ) from None
    except RepositoryNotFoundError:
        raise LensHFError(
            f"model '{text}' is not a local folder and the Hub has no such repo (or it is private: log in)"
        ) from None
    except RevisionNotFoundError:
        raise LensHFError(f"model '{text}' has no revision '{revision}' on the Hub") from None
    except HfHubHTTPError as err:
        raise LensHFError(f"model '{text}': the Hub answered {type(err).__name__}") from None
    return Path(folder)


def default_model_path(checkout_dir: str | os.PathLike | None = None) -> Path:
    """The folder of the default model: ``$LENS_HF_DEFAULT_MODEL`` (folder or Hub id) when set, else the
    checkout's ``checkpoints/vit-spt-lsa-model-i`` (``checkout_dir``) when it exists, else
    :data:`DEFAULT_MODEL_ID` from the Hugging Face cache, else downloaded (unless offline).

    Raises:
        LensHFError: one line saying how to get the model, when none of these has it.
    """
    override = os.environ.get(DEFAULT_MODEL_ENV, "").strip()
    if override:
        try:
            return resolve_model_path(override)
        except LensHFError as err:
            raise LensHFError(f"{DEFAULT_MODEL_ENV}: {err}") from None
    local = Path(CHECKOUT_MODEL_DIR if checkout_dir is None else checkout_dir)
    if (local / "config.json").is_file():
        return local
    try:
        return Path(
            snapshot_download(
                DEFAULT_MODEL_ID, repo_type="model", cache_dir=hub_cache_dir(), local_files_only=True
            )
        )
    except (LocalEntryNotFoundError, IncompleteSnapshotError):
        pass
    how = (
        f"download it (`hf download {DEFAULT_MODEL_ID}`), or put a lens_hf checkout's copy into the cache "
        f"(`lens-hf cache-model` in the checkout), or set {DEFAULT_MODEL_ENV}=FOLDER, or pass --model FOLDER_OR_HUB_ID"
    )
    if hub_offline():
        raise LensHFError(
            f"no --model given and the shipped checkpoint {DEFAULT_MODEL_ID} is not in the Hugging Face cache "
            f"(offline): {how}"
        )
    try:
        return resolve_model_path(DEFAULT_MODEL_ID)
    except LensHFError as err:
        raise LensHFError(
            f"no --model given and the shipped checkpoint could not be fetched ({err}): {how}"
        ) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_model_folder(
    folder: str | os.PathLike = CHECKOUT_MODEL_DIR,
    repo_id: str = DEFAULT_MODEL_ID,
    *,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Put the files a push would upload (:func:`upload_file_list`, after :func:`check_publishable`) into
    the Hugging Face cache as the ``main`` snapshot of ``repo_id``, so ``snapshot_download(repo_id,
    local_files_only=True)`` (and ``lens-hf predict --model repo_id``) finds them offline.

    The layout is the hub library's: ``models--org--name/blobs/<sha256>`` hold the bytes,
    ``snapshots/<commit>/<file>`` link to them, ``refs/main`` names the commit. The commit id is derived from
    the files' contents (the same folder always gives the same snapshot); ``refs/main`` is written last, so an
    interrupted run leaves the previous snapshot in use.

    Returns:
        the snapshot folder.
    """
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise LensHFError(f"'{repo_id}' is not a valid Hugging Face repo id (org/name)") from None
    root = Path(folder)
    files = upload_file_list(root)
    check_publishable(root, files)
    hashes = {name: _sha256(root / name) for name in files}
    commit = hashlib.sha1("".join(f"{name}\0{hashes[name]}\n" for name in files).encode()).hexdigest()
    storage = Path(cache_dir or hub_cache_dir()) / repo_folder_name(repo_id=repo_id, repo_type="model")
    snapshot = storage / "snapshots" / commit
    for name in files:
        blob = storage / "blobs" / hashes[name]
        if not blob.is_file():
            blob.parent.mkdir(parents=True, exist_ok=True)
            tmp = blob.with_name(f"{blob.name}.incomplete")
            shutil.copyfile(root / name, tmp)
            os.replace(tmp, blob)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        try:
            link.symlink_to(os.path.relpath(blob, link.parent))
        except OSError:  # no symlinks on this file system: the hub library then keeps copies too
            shutil.copyfile(blob, link)
    atomic_write_text(storage / "refs" / "main", commit)
    return snapshot


# ------------------------------------------------------------------------------- nothing secret or local
def _local_roots(folder: Path) -> list[str]:
    """Absolute paths of this machine that must not appear in published files: the working directory, the
    home folder and the folder being published (each as given and resolved)."""
    roots: set[str] = set()
    for path in (Path(os.getcwd()), Path.home(), Path(os.path.abspath(folder))):
        for variant in (path, path.resolve()):
            text = variant.as_posix().rstrip("/")
            if len(variant.parts) >= 2 and text:
                roots.add(text)
    return sorted(roots, key=len, reverse=True)


def _root_pattern(roots: Sequence[str]) -> re.Pattern[str] | None:
    if not roots:
        return None
    alternatives = "|".join(re.escape(r) for r in roots)
    return re.compile(rf"(?<![\w.~/-])({alternatives})(?![\w.-])")


def _strings(value: Any) -> Iterator[str]:
    """Every string inside a JSON-like value (keys included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _value_problem(text: str, roots: re.Pattern[str] | None) -> str | None:
    """Why one stored value (a JSON string, a parquet cell, a metadata entry) must not be published."""
    if contains_secret(text):
        return "holds a token-like string"
    if is_local_path(text):
        return f"holds the absolute local path {text[:120]!r}"
    if roots is not None and (match := roots.search(text)):
        return f"holds the local path {match.group(1)!r}"
    return None


def _text_problem(text: str, roots: re.Pattern[str] | None) -> str | None:
    """Why a text file (card, code) must not be published."""
    for number, line in enumerate(text.splitlines(), start=1):
        if contains_secret(line):
            return f"line {number} holds a token-like string"
        if roots is not None and (match := roots.search(line)):
            return f"line {number} holds the local path {match.group(1)!r}"
    return None


def _parquet_values(path: Path) -> Iterator[str]:
    """The file's key-value metadata and every string cell (nested ones too, e.g. ``image.path``)."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    for key, value in (parquet.metadata.metadata or {}).items():
        yield key.decode("utf-8", "replace")
        yield value.decode("utf-8", "replace")
    schema = parquet.schema
    columns = [
        schema.column(i).path
        for i in range(len(schema))
        if str(schema.column(i).logical_type).strip().upper() in ("STRING", "JSON", "ENUM")
    ]
    if not columns:
        return
    for batch in parquet.iter_batches(columns=columns, batch_size=4096):
        for column in batch.columns:
            yield from _strings(column.to_pylist())


def _file_problem(path: Path, roots: re.Pattern[str] | None) -> str | None:
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return next(filter(None, (_value_problem(v, roots) for v in _parquet_values(path))), None)
        if suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="np") as f:
                metadata = f.metadata() or {}
            return next(filter(None, (_value_problem(v, roots) for v in _strings(metadata))), None)
        if suffix == ".png":
            from PIL import Image

            with Image.open(path) as image:
                info = {str(k): v for k, v in image.info.items() if isinstance(v, str)}
            return next(filter(None, (_value_problem(v, roots) for v in _strings(info))), None)
    except Exception:  # a file its library cannot parse (pyarrow, safetensors, PIL errors): read it as text
        pass
    text = path.read_text(encoding="utf-8", errors="replace")
    if suffix == ".json":
        try:
            values = list(_strings(json.loads(text)))
        except ValueError:
            values = []
        found = next(filter(None, (_value_problem(v, roots) for v in values)), None)
        if found:
            return found
    return _text_problem(text, roots)


def check_publishable(folder: str | os.PathLike, files: Sequence[str], *, repo_type: str = "model") -> None:
    """Refuse to publish ``files`` (relative to ``folder``) when one still holds a token-like string or a
    secret environment value (:func:`lens_hf.redact.contains_secret`), or an absolute local path: any in a
    JSON value, parquet string cell (``path`` and ``image.path`` columns included) or file metadata, and the
    working directory, home folder or the folder itself anywhere in a text file.

    Raises:
        LensHFError: naming the first such file and what it holds (the secret itself is never printed).
    """
    root = Path(folder)
    roots = _root_pattern(_local_roots(root))
    for name in files:
        problem = _file_problem(root / name, roots)
        if problem:
            if repo_type == "dataset":
                hint = "save the dataset again with lens_hf, which records relative paths, or edit the file"
            elif name.endswith((".json", "README.md")):
                hint = "`lens-hf card --model FOLDER` rewrites the JSON records and the card without them"
            else:
                hint = "edit the file"
            raise LensHFError(f"{root / name}: {problem}; refusing to publish it ({hint})")


def redact_records(folder: str | os.PathLike) -> list[Path]:
    """Rewrite the top-level JSON records of ``folder`` that get published (training record, metrics, dataset
    record ...) with :func:`lens_hf.redact.redact_record`: secrets masked, absolute paths made relative.
    Config files, the weight index and files never uploaded (trainer state) are left alone. Returns the files
    that changed."""
    root = Path(folder)
    changed = []
    for path in sorted(root.glob("*.json")):
        if path.name.endswith(("config.json", ".index.json")) or _matches(
            path.name, NEVER_UPLOAD + DATASET_SKIP
        ):
            continue
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # the card reports unreadable records; push refuses them
        clean = redact_record(record)
        if clean != record:
            atomic_write_text(path, json.dumps(clean, indent=2) + "\n")
            changed.append(path)
    return changed


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def upload_file_list(folder: str | os.PathLike, *, repo_type: str = "model") -> list[str]:
    """The files (POSIX paths relative to ``folder``, sorted) that :func:`push_folder` uploads.

    For a model: config, safetensors weights, image-processor config, remote-code ``*.py``, README.md,
    metrics.json, training-argument JSON and PNG figures at the top level; never pickles (``*.bin``,
    ``*.pt``, ``*.pkl``), optimizer/scheduler/trainer state, hidden files or sub-folders such as
    ``checkpoint-*/``. For a dataset: README.md, ``data/**/*.parquet``, top-level PNG/JSON.

    Raises:
        LensHFError: the folder is missing, a model folder lacks config.json or safetensors weights, or a
            dataset folder has no parquet shards.
    """
    if repo_type not in REPO_TYPES:
        raise LensHFError(f"repo_type must be one of {REPO_TYPES}, got '{repo_type}'")
    root = Path(folder)
    if not root.is_dir():
        raise LensHFError(f"{root}: not a folder")
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    files = [f for f in files if not any(part.startswith(".") for part in f.split("/"))]

    if repo_type == "dataset":
        shards = [f for f in files if f.startswith("data/") and f.endswith(".parquet")]
        top = [
            f for f in files if "/" not in f and _matches(f, DATASET_TOP_PATTERNS) and f not in DATASET_SKIP
        ]
        chosen = sorted(top + shards)
        if not shards:
            raise LensHFError(f"{root}: no parquet shards under data/; save the dataset with lens-hf first")
        return chosen

    top = [f for f in files if "/" not in f]
    chosen = [f for f in top if _matches(f, MODEL_UPLOAD_PATTERNS) and not _matches(f, NEVER_UPLOAD)]
    if "config.json" not in chosen:
        raise LensHFError(f"{root}: no config.json; not a saved model folder")
    if not any(f.endswith(".safetensors") for f in chosen):
        pickled = [f for f in top if _matches(f, ("*.bin", "*.pt", "*.pth", "*.pkl"))]
        hint = f" (found only pickled weights {pickled}; re-save with safetensors)" if pickled else ""
        raise LensHFError(f"{root}: no safetensors weights (model.safetensors){hint}; refusing to push")
    return chosen


def push_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    repo_type: str = "model",
    commit_message: str | None = None,
) -> str:
    """Create ``repo_id`` on the Hub if needed and upload exactly :func:`upload_file_list` of ``folder``.

    Args:
        folder: a saved model folder (or dataset folder with ``repo_type="dataset"``).
        repo_id: ``org/name`` (or ``name`` under the logged-in user).
        private: create the repo private (an existing repo keeps its visibility).
        repo_type: "model" or "dataset".
        commit_message: Hub commit message (default: "Upload with lens_hf").

    Returns:
        the repo URL.

    Raises:
        LensHFError: invalid id, a file holding a secret or a local path (:func:`check_publishable`, checked
            before any network call), offline mode, nothing to upload, or a Hub refusal (auth, permissions).
    """
    files = upload_file_list(folder, repo_type=repo_type)
    check_publishable(folder, files, repo_type=repo_type)
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise LensHFError(f"'{repo_id}' is not a valid Hugging Face repo id (org/name)") from None
    if hub_offline():
        raise LensHFError(f"cannot push to '{repo_id}': HF_HUB_OFFLINE is set")
    api = HfApi()
    try:
        url = api.create_repo(repo_id, private=private, repo_type=repo_type, exist_ok=True)
        api.upload_folder(
            repo_id=url.repo_id,
            folder_path=os.fspath(folder),
            repo_type=repo_type,
            allow_patterns=[glob.escape(f) for f in files],
            commit_message=commit_message or "Upload with lens_hf",
        )
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            raise LensHFError(
                f"the Hub refused to write '{repo_id}' (HTTP {status}): log in with `hf auth login` "
                "using a token with write access"
            ) from None
        raise LensHFError(f"pushing to '{repo_id}' failed: {str(err).splitlines()[0]}") from None
    except Exception as err:
        if not _is_network_error(err):
            raise
        raise LensHFError(f"pushing to '{repo_id}' failed: {type(err).__name__}: {err}") from None
    return str(url)


def _is_network_error(err: BaseException) -> bool:
    """Connection-level failures (no network, DNS, TLS, timeouts) from the Hub client's HTTP stack."""
    module = type(err).__module__.split(".")[0]
    return isinstance(err, OSError) or module in {"httpx", "httpx2", "httpcore", "requests", "urllib3"}


__all__ = [
    "CHECKOUT_MODEL_DIR",
    "DEFAULT_MODEL_ENV",
    "DEFAULT_MODEL_ID",
    "cache_model_folder",
    "check_publishable",
    "default_model_path",
    "hub_cache_dir",
    "hub_offline",
    "push_folder",
    "redact_records",
    "resolve_model_path",
    "upload_file_list",
]
