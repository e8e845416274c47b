"""The Hugging Face Hub side: resolve a model name to a folder (offline-aware), choose what to upload, push.

A model name is either a local folder or a Hub repo id (``org/name``). Hub ids go through
``huggingface_hub.snapshot_download``, which uses the standard cache (``HF_HUB_CACHE`` / ``HF_HOME``) and,
with ``HF_HUB_OFFLINE=1``, never touches the network.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from pathlib import Path

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
from huggingface_hub.utils import validate_repo_id

from lens_hf.errors import LensHFError

REPO_TYPES: tuple[str, ...] = ("model", "dataset")

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
        LensHFError: invalid id, offline mode, nothing to upload, or a Hub refusal (auth, permissions).
    """
    files = upload_file_list(folder, repo_type=repo_type)
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


__all__ = ["hub_cache_dir", "hub_offline", "push_folder", "resolve_model_path", "upload_file_list"]
