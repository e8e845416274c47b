"""lens_hf.hub: Hub ids resolve from a real Hugging Face cache offline; pushes send exactly the right files and
nothing that holds a secret or a local path; the default model resolves from a checkout, the cache or the Hub."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import HfApi, RepoUrl, scan_cache_dir
from huggingface_hub.utils._paths import DEFAULT_IGNORE_PATTERNS

from lens_hf.errors import LensHFError
from lens_hf.hub import (
    CHECKOUT_MODEL_DIR,
    DEFAULT_MODEL_ENV,
    DEFAULT_MODEL_ID,
    cache_model_folder,
    check_publishable,
    default_model_path,
    push_folder,
    resolve_model_path,
    upload_file_list,
)

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


def _tiny_vit():
    """A randomly initialised 1-layer stock ViT on 16 px single-channel images, 3 classes, in eval mode."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(
        image_size=16, patch_size=8, num_channels=1, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32, num_labels=3,
    )  # fmt: skip
    return ViTForImageClassification(config).eval()


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
    from transformers import AutoModelForImageClassification

    model = _tiny_vit()
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


# ------------------------------------------------------------------------ nothing secret or local is pushed
TOKEN = "hf_" + "Q7vLr2XpN9sKd4TbW1mZc8YfJ3hGa6Ue0o"  # the shape of a real access token (34 characters)


def _saved_model(tmp_path: Path) -> Path:
    """A real saved tiny ViT folder (config, safetensors) with a metrics file."""
    from lens_hf.metrics import softmax, write_evaluation

    folder = tmp_path / "runs" / "model"
    _tiny_vit().save_pretrained(folder)
    y = np.arange(30) % 3
    write_evaluation(folder, y, softmax(np.eye(3)[y] + np.random.default_rng(0).normal(size=(30, 3))))
    return folder


def _all_text(folder: Path, files: list[str]) -> str:
    return "\n".join((folder / f).read_bytes().decode("utf-8", "replace") for f in files)


def test_card_then_push_publishes_no_token_and_no_local_path(
    tmp_path, monkeypatch, cli, recorded_hub
) -> None:
    """A training record written with --hub_token and absolute paths in its command: after `lens-hf card`, no
    file push would upload holds the token or the working directory, and push goes through."""
    monkeypatch.chdir(tmp_path)
    folder = _saved_model(tmp_path)
    record = {
        "command": shlex.join(
            [
                sys.executable,
                str(tmp_path / "recipes" / "train_vit_spt_lsa.py"),
                "--hub_token",
                TOKEN,
                "--output_dir",
                str(folder),
                "--dataset",
                str(tmp_path / "data" / "model_i"),
            ]
        ),
        "training_args": {"hub_token": TOKEN, "output_dir": str(folder), "logging_dir": str(folder / "logs")},
        "data_args": {"dataset": str(tmp_path / "data" / "model_i")},
        "dataset": {"source": str(tmp_path / "data" / "model_i"), "splits": {"train": 30, "test": 30}},
    }
    (folder / "lens_hf_training.json").write_text(json.dumps(record))
    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / "metrics.json").write_text(
        json.dumps({**metrics, "model": str(folder), "data": str(tmp_path / "t")})
    )
    with pytest.raises(
        LensHFError, match=r"lens_hf_training\.json: .*token-like string; refusing to publish"
    ):
        push_folder(folder, "someone/lens-vit")
    assert "create_repo" not in recorded_hub

    result = cli("card", "--model", folder)
    assert result.code == 0, result.err
    assert "masked secrets and local paths in lens_hf_training.json, metrics.json" in result.out
    files = upload_file_list(folder)
    assert {"README.md", "lens_hf_training.json", "metrics.json", "config.json", "model.safetensors"} <= set(
        files
    )
    published = _all_text(folder, files)
    assert TOKEN not in published and str(tmp_path) not in published
    saved = json.loads((folder / "lens_hf_training.json").read_text())
    assert saved["command"] == (
        f"{Path(sys.executable).name} recipes/train_vit_spt_lsa.py --hub_token '***' --output_dir runs/model "
        "--dataset data/model_i"
    )
    assert saved["training_args"] == {
        "hub_token": "***",
        "output_dir": "runs/model",
        "logging_dir": "runs/model/logs",
    }
    assert "Dataset: `data/model_i` (a local folder, not published with this model)." in published

    assert push_folder(folder, "someone/lens-vit") == "https://huggingface.co/someone/lens-vit"
    assert recorded_hub["uploaded"] == files


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("modeling_extra.py", f'TOKEN = "{TOKEN}"\n', "line 1 holds a token-like string"),
        ("README.md", "---\nlicense: mit\n---\ntrained in {cwd}/runs\n", "line 4 holds the local path"),
        ("README.md", "see {home}/notes.txt\n", "line 1 holds the local path"),
        (
            "metrics.json",
            '{{"data": "/mnt/lab/test_set"}}',
            "holds the absolute local path '/mnt/lab/test_set'",
        ),
        ("training_args.json", '{{"push": "{token}"}}', "holds a token-like string"),
    ],
)
def test_push_refuses_a_file_with_a_secret_or_a_local_path(
    tmp_path, monkeypatch, recorded_hub, name, content, problem
):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "model"
    _write_files(folder, ["config.json", "model.safetensors"])
    (folder / name).write_text(content.format(cwd=tmp_path, home=Path.home(), token=TOKEN))
    with pytest.raises(LensHFError) as err:
        push_folder(folder, "someone/lens-vit")
    message = str(err.value)
    assert message.startswith(f"{folder / name}: {problem}") and "refusing to publish" in message
    assert TOKEN not in message and "\n" not in message
    assert "create_repo" not in recorded_hub  # refused before any network call


def test_push_refuses_secret_environment_values_and_weights_metadata(tmp_path, monkeypatch, recorded_hub):
    from safetensors.numpy import save_file

    folder = tmp_path / "model"
    _write_files(folder, ["config.json"])
    save_file(
        {"w": np.zeros(2, np.float32)}, str(folder / "model.safetensors"), metadata={"source": "/srv/x/run"}
    )
    with pytest.raises(LensHFError, match=r"model\.safetensors: holds the absolute local path '/srv/x/run'"):
        push_folder(folder, "someone/lens-vit")
    save_file({"w": np.zeros(2, np.float32)}, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "README.md").write_text("pushed with not-prefixed-secret-value\n")
    monkeypatch.setenv("MY_SERVICE_PASSWORD", "not-prefixed-secret-value")
    with pytest.raises(LensHFError, match=r"README\.md: line 1 holds a token-like string"):
        push_folder(folder, "someone/lens-vit")
    monkeypatch.delenv("MY_SERVICE_PASSWORD")
    assert push_folder(folder, "someone/lens-vit").endswith("someone/lens-vit")


def test_dataset_push_checks_parquet_string_columns(tmp_path, monkeypatch, recorded_hub) -> None:
    """Absolute paths left in a dataset's parquet shards (the path column, or the path inside the image struct)
    or its record are caught."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "ds"
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# data\n")
    shard = folder / "data" / "train-00000-of-00001.parquet"

    def write(paths: list, image_paths: list) -> None:
        images = [{"bytes": b"\x00", "path": p} for p in image_paths]
        pq.write_table(pa.table({"image": images, "label": [0, 1], "path": paths}), shard)

    write(["cdm/a.npy", None], [None, None])
    (folder / "lens_hf_dataset.json").write_text(json.dumps({"source": "archive", "splits": {"train": 2}}))
    assert push_folder(folder, "someone/lens-data", repo_type="dataset").endswith(
        "datasets/someone/lens-data"
    )

    write(["cdm/a.npy", str(tmp_path / "archive" / "cdm" / "b.npy")], [None, None])
    with pytest.raises(LensHFError, match=r"train-00000-of-00001\.parquet: holds the absolute local path"):
        push_folder(folder, "someone/lens-data", repo_type="dataset")
    write(["cdm/a.npy", "cdm/b.npy"], ["/home/someone/archive/cdm/a.npy", None])
    with pytest.raises(LensHFError, match=r"parquet: holds the absolute local path '/home/someone/archive"):
        push_folder(folder, "someone/lens-data", repo_type="dataset")
    write(["cdm/a.npy", "cdm/b.npy"], [None, None])
    (folder / "lens_hf_dataset.json").write_text(json.dumps({"source": str(tmp_path / "archive")}))
    with pytest.raises(LensHFError, match=r"lens_hf_dataset\.json: holds the absolute local path"):
        push_folder(folder, "someone/lens-data", repo_type="dataset")
    assert "create_repo" not in recorded_hub or recorded_hub["create_repo"]["repo_id"] == "someone/lens-data"


def test_code_identifiers_and_the_shipped_checkpoint_pass_the_check(tmp_path) -> None:
    """No false alarms: names such as hf_logging in code, and the shipped model folder as committed."""
    folder = tmp_path / "model"
    _write_files(folder, ["config.json", "model.safetensors"])
    (folder / "helpers.py").write_text("hf_logging = hf_quantizer = hf_dataset_path = 'ok/relative'\n")
    check_publishable(folder, upload_file_list(folder))
    if (CHECKOUT_MODEL_DIR / "config.json").is_file():
        check_publishable(CHECKOUT_MODEL_DIR, upload_file_list(CHECKOUT_MODEL_DIR))


# --------------------------------------------------------------------------- the default model and the cache
def test_cache_model_folder_writes_a_snapshot_the_hub_library_reads(tmp_path, monkeypatch) -> None:
    from huggingface_hub import snapshot_download, try_to_load_from_cache

    folder = _saved_model(tmp_path)
    (folder / "optimizer.pt").write_bytes(b"never cached")
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    snapshot = cache_model_folder(folder, "team/lens-model")
    assert snapshot == cache_model_folder(folder, "team/lens-model")  # same content, same snapshot
    found = snapshot_download("team/lens-model", cache_dir=cache, local_files_only=True)
    assert Path(found) == snapshot
    assert sorted(p.name for p in snapshot.iterdir()) == upload_file_list(folder)
    assert try_to_load_from_cache("team/lens-model", "config.json", cache_dir=cache) == str(
        snapshot / "config.json"
    )
    info = scan_cache_dir(cache)
    assert not info.warnings and [r.repo_id for r in info.repos] == ["team/lens-model"]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model_path("team/lens-model") == snapshot

    (folder / "metrics.json").write_text(json.dumps({"data": TOKEN}))
    with pytest.raises(LensHFError, match="token-like string"):
        cache_model_folder(folder, "team/lens-model")
    assert snapshot_download("team/lens-model", cache_dir=cache, local_files_only=True) == str(snapshot)


def test_default_model_resolution_order(tmp_path, monkeypatch, model_dir) -> None:
    """LENS_HF_DEFAULT_MODEL, then the checkout's folder, then the Hugging Face cache; offline and uncached:
    one line saying how to get it."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(DEFAULT_MODEL_ENV, raising=False)
    missing = tmp_path / "no-checkout"
    with pytest.raises(LensHFError) as err:
        default_model_path(missing)
    message = str(err.value)
    assert DEFAULT_MODEL_ID in message and "lens-hf cache-model" in message and "--model" in message
    assert "\n" not in message and err.value.__cause__ is None

    snapshot = cache_model_folder(model_dir, DEFAULT_MODEL_ID)
    assert default_model_path(missing) == snapshot
    assert default_model_path(model_dir) == model_dir  # a checkout's copy comes first
    monkeypatch.setenv(DEFAULT_MODEL_ENV, str(tmp_path))
    assert default_model_path(model_dir) == tmp_path  # the variable overrides both
    monkeypatch.setenv(DEFAULT_MODEL_ENV, "org/not-cached")
    with pytest.raises(
        LensHFError, match=f"^{DEFAULT_MODEL_ENV}: model 'org/not-cached' is not a local folder"
    ):
        default_model_path(model_dir)


def test_cache_model_command_and_predict_without_model(tmp_path, monkeypatch, cli, model_dir, deeplense_dir):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv(DEFAULT_MODEL_ENV, raising=False)
    monkeypatch.setattr("lens_hf.inference.DEFAULT_MODEL_DIR", tmp_path / "no-checkout")
    result = cli("predict", deeplense_dir)
    assert result.code == 2 and len(result.err_lines) == 1 and "lens-hf cache-model" in result.err
    result = cli("cache-model", "--model", model_dir)
    assert result.code == 0, result.err
    assert f"as {DEFAULT_MODEL_ID} in" in result.out
    result = cli("predict", deeplense_dir)
    assert result.code == 0, result.err
    assert "12 image(s) classified" in result.err
    result = cli("cache-model", "--model", tmp_path / "nothing")
    assert result.code == 2 and "no such model folder" in result.err
