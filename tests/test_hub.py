"""lens_hf.hub: Hub ids resolve from a real Hugging Face cache offline; pushes send exactly the right files."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from huggingface_hub import HfApi, RepoUrl, scan_cache_dir
from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

from lens_hf.errors import LensHFError
from lens_hf.hub import push_folder, resolve_model_path, upload_file_list

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _build_cache_entry(cache: Path, repo_id: str, files: dict[str, bytes], commit: str = COMMIT) -> Path:
    """Lay out ``repo_id`` the way huggingface_hub's downloads do and return the snapshot folder.

    ``models--org--name/blobs/<sha256>`` hold the bytes, ``snapshots/<commit>/<file>`` are relative symlinks to
    them, and ``refs/main`` names the commit.
    """
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    for name, data in files.items():
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture
def offline_cache(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A Hub cache holding ``org/name`` (config.json + model.safetensors), with HF_HUB_OFFLINE=1."""
    cache = tmp_path / "hf-cache"
    snapshot = _build_cache_entry(
        cache,
        "org/name",
        {"config.json": json.dumps({"model_type": "vit"}).encode(), "model.safetensors": b"\x00" * 16},
    )
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache, snapshot


def test_cache_entry_is_valid_hf_layout(offline_cache) -> None:
    cache, snapshot = offline_cache
    info = scan_cache_dir(cache)
    assert not info.warnings
    (repo,) = info.repos
    assert repo.repo_id == "org/name" and repo.repo_type == "model"
    (revision,) = repo.revisions
    assert revision.commit_hash == COMMIT and revision.refs == frozenset({"main"})
    assert {f.file_name for f in revision.files} == {"config.json", "model.safetensors"}


def test_resolve_hub_id_from_cache_offline(offline_cache) -> None:
    _, snapshot = offline_cache
    resolved = resolve_model_path("org/name")
    assert resolved == snapshot
    assert json.loads((resolved / "config.json").read_text()) == {"model_type": "vit"}
    assert resolve_model_path("org/name", revision=COMMIT) == snapshot


def test_missing_hub_id_offline_is_one_clean_line(offline_cache) -> None:
    with pytest.raises(LensHFError) as err:
        resolve_model_path("org/missing")
    message = str(err.value)
    assert (
        message == "model 'org/missing' is not a local folder and is not in the Hugging Face cache (offline)"
    )
    assert err.value.__cause__ is None


@pytest.mark.parametrize("bad", ["a/b/c", "bad name!", "../up", "/no/such/folder/here"])
def test_invalid_ids_and_missing_paths(offline_cache, bad: str) -> None:
    with pytest.raises(LensHFError, match="not a local folder and not a valid Hugging Face repo id"):
        resolve_model_path(bad)


def test_local_folder_wins_and_file_is_rejected(tmp_path, offline_cache) -> None:
    folder = tmp_path / "org" / "name"
    folder.mkdir(parents=True)
    assert resolve_model_path(folder) == folder
    (tmp_path / "weights.safetensors").write_bytes(b"x")
    with pytest.raises(LensHFError, match="is a file"):
        resolve_model_path(tmp_path / "weights.safetensors")


def test_hf_home_cache_is_honoured(tmp_path, monkeypatch) -> None:
    home = tmp_path / "hf-home"
    snapshot = _build_cache_entry(home / "hub", "team/lens-model", {"config.json": b"{}"})
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_path("team/lens-model") == snapshot


def test_offline_flag_read_at_import_is_honoured(tmp_path, monkeypatch) -> None:
    """HF_HUB_OFFLINE set before huggingface_hub was imported (only its constant says so) also means offline."""
    cache = tmp_path / "cache"
    snapshot = _build_cache_entry(cache, "org/name", {"config.json": b"{}"})
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    assert resolve_model_path("org/name") == snapshot
    with pytest.raises(LensHFError, match=r"not in the Hugging Face cache \(offline\)"):
        resolve_model_path("org/other")


# ---------------------------------------------------------------------------------------------- uploads

KEEP = [
    "README.md",
    "config.json",
    "configuration_vit_spt_lsa.py",
    "confusion_matrix.png",
    "metrics.json",
    "model.safetensors",
    "modeling_vit_spt_lsa.py",
    "preprocessor_config.json",
    "roc.png",
    "training_args.json",
]
DROP = [
    "training_args.bin",
    "optimizer.pt",
    "scheduler.pt",
    "rng_state.pth",
    "trainer_state.json",
    "pytorch_model.bin",
    "state.pkl",
    "predictions.csv",
    ".DS_Store",
    "checkpoint-10/model.safetensors",
    "checkpoint-10/config.json",
    "runs/events.out.tfevents",
]


def _write_files(folder: Path, names: list[str]) -> None:
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"{}" if name.endswith(".json") else b"x")


def test_upload_file_list_keeps_only_what_a_fresh_process_needs(tmp_path) -> None:
    _write_files(tmp_path, KEEP + DROP)
    assert upload_file_list(tmp_path) == KEEP


def test_upload_file_list_refuses_folders_without_safetensors(tmp_path) -> None:
    _write_files(tmp_path, ["config.json", "pytorch_model.bin"])
    with pytest.raises(LensHFError, match=r"no safetensors weights.*pytorch_model\.bin"):
        upload_file_list(tmp_path)
    (tmp_path / "config.json").unlink()
    _write_files(tmp_path, ["model.safetensors"])
    with pytest.raises(LensHFError, match="no config.json"):
        upload_file_list(tmp_path)
    with pytest.raises(LensHFError, match="not a folder"):
        upload_file_list(tmp_path / "missing")


def test_dataset_upload_list(tmp_path) -> None:
    _write_files(
        tmp_path,
        [
            "README.md",
            "data/train-00000-of-00001.parquet",
            "data/test-00000-of-00001.parquet",
            "dataset_dict.json",
            "train/data-00000-of-00001.arrow",
            "train/state.json",
            "examples.png",
        ],
    )
    assert upload_file_list(tmp_path, repo_type="dataset") == [
        "README.md",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
        "examples.png",
    ]
    empty = tmp_path / "empty"
    _write_files(empty, ["README.md"])
    with pytest.raises(LensHFError, match="no parquet shards"):
        upload_file_list(empty, repo_type="dataset")


@pytest.fixture
def recorded_hub(monkeypatch) -> dict:
    """Replace the two Hub network calls; upload_folder's file selection runs huggingface_hub's own code."""
    calls: dict = {}

    def create_repo(self, repo_id, *, private=None, repo_type=None, exist_ok=False, **kw):
        calls["create_repo"] = {
            "repo_id": repo_id,
            "private": private,
            "repo_type": repo_type,
            "exist_ok": exist_ok,
        }
        prefix = "datasets/" if repo_type == "dataset" else ""
        return RepoUrl(f"https://huggingface.co/{prefix}{repo_id}")

    def upload_folder(self, *, repo_id, folder_path, repo_type=None, allow_patterns=None, **kw):
        monkeypatch.setattr(HfApi, "_validate_yaml", lambda *a, **k: None)  # a Hub API call
        operations = self._prepare_upload_folder_additions(
            folder_path, "", allow_patterns=allow_patterns, ignore_patterns=list(DEFAULT_IGNORE_PATTERNS)
        )
        calls["upload_folder"] = {"repo_id": repo_id, "repo_type": repo_type, "folder_path": folder_path}
        calls["uploaded"] = sorted(op.path_in_repo for op in operations)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


def test_push_uploads_exactly_the_list_and_it_is_sufficient(tmp_path, recorded_hub) -> None:
    import torch
    from transformers import AutoModelForImageClassification, ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=16, patch_size=8, num_channels=1, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, num_labels=3,
    )  # fmt: skip
    model = ViTForImageClassification(config).eval()
    folder = tmp_path / "run"
    model.save_pretrained(folder)
    _write_files(folder, [n for n in KEEP if not (folder / n).exists()] + DROP)
    (folder / "config.json").write_text(json.dumps(json.loads((folder / "config.json").read_text())))

    url = push_folder(folder, "someone/lens-vit", private=True)

    assert url == "https://huggingface.co/someone/lens-vit"
    assert recorded_hub["create_repo"] == {
        "repo_id": "someone/lens-vit",
        "private": True,
        "repo_type": "model",
        "exist_ok": True,
    }
    assert recorded_hub["upload_folder"]["repo_type"] == "model"
    assert recorded_hub["uploaded"] == upload_file_list(folder) == KEEP

    fresh = tmp_path / "downloaded"
    for name in recorded_hub["uploaded"]:
        (fresh / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(folder / name, fresh / name)
    reloaded = AutoModelForImageClassification.from_pretrained(fresh).eval()
    x = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(reloaded(pixel_values=x).logits, model(pixel_values=x).logits)


def test_push_dataset_and_refusals(tmp_path, recorded_hub, monkeypatch) -> None:
    _write_files(tmp_path, ["README.md", "data/train-00000-of-00001.parquet", "train/state.json"])
    url = push_folder(tmp_path, "someone/lens-data", repo_type="dataset")
    assert url == "https://huggingface.co/datasets/someone/lens-data"
    assert recorded_hub["uploaded"] == ["README.md", "data/train-00000-of-00001.parquet"]
    assert recorded_hub["create_repo"]["repo_type"] == "dataset"

    with pytest.raises(LensHFError, match="not a valid Hugging Face repo id"):
        push_folder(tmp_path, "a/b/c", repo_type="dataset")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(LensHFError, match="HF_HUB_OFFLINE is set"):
        push_folder(tmp_path, "someone/lens-data", repo_type="dataset")


def test_push_network_failure_is_one_line(tmp_path, recorded_hub, monkeypatch) -> None:
    import httpx2

    def no_network(self, *args, **kwargs):
        raise httpx2.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(HfApi, "create_repo", no_network)
    _write_files(tmp_path, ["config.json", "model.safetensors"])
    with pytest.raises(LensHFError, match="pushing to 'someone/x' failed: ConnectError") as err:
        push_folder(tmp_path, "someone/x")
    assert "\n" not in str(err.value)
