"""Shared fixtures: a tiny saved model folder, tiny DeepLense-layout image folders, an in-process ``lens-hf``
runner, file-tree snapshots and an offline Hugging Face cache."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from lens_hf.labels import DEEPLENSE_FOLDERS, LABELS

# A 1-layer SPT+LSA ViT on 32 px inputs: milliseconds per image on one CPU thread.
TINY_VIT: dict = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "patch_size": 8,
}
MODEL_INPUT_PX = 32
IMAGE_PX = 40
HUB_COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def lens_image(rng: np.random.Generator, label_id: int, size: int = IMAGE_PX) -> np.ndarray:
    """(size, size) int64 Poisson counts of a ring whose radius depends on the class (so classes differ)."""
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    radius = size * (0.18 + 0.08 * label_id)
    ring = np.exp(-((np.hypot(x, y) - radius) ** 2) / 4.0)
    return rng.poisson(5.0 + 200.0 * ring).astype(np.int64)


def write_deeplense_like(root: Path, per_class: int = 4, *, size: int = IMAGE_PX, seed: int = 0) -> Path:
    """A DeepLense Model I style folder ``{no_sub,cdm,axion}/<folder>_sim_<n>.npy``: int64 counts, and for
    ``axion`` the archives' object array ``[image, axion_mass_eV]`` (written here, never loaded by pickle)."""
    rng = np.random.default_rng(seed)
    for label_id, label in enumerate(LABELS):
        folder = root / DEEPLENSE_FOLDERS[label]
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = lens_image(rng, label_id, size)
            path = folder / f"{DEEPLENSE_FOLDERS[label]}_sim_{1000 + i}.npy"
            if label == "vortex":
                record = np.empty(2, dtype=object)
                record[0], record[1] = image, 10.0 ** rng.uniform(-24, -22)
                np.save(path, record, allow_pickle=True)
            else:
                np.save(path, image)
    return root


def tree(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under ``root`` ("<dir>" for folders): a byte-exact snapshot."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_dir() and not p.is_symlink():
            out[rel] = "<dir>"
        elif p.is_file() and os.access(p, os.R_OK):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "<unreadable>"
    return out


@dataclass
class CliResult:
    """Exit status and captured output of one ``lens-hf`` run."""

    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def cli(capsys):
    """Run ``lens_hf.cli.main(args)`` in-process and return a :class:`CliResult`."""
    from lens_hf.cli import main

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A saved (random) tiny SPT+LSA classifier folder, written with ``save_model_folder``. Read-only for tests:
    copy it (:func:`copy_model`) before changing anything."""
    import torch

    from lens_hf.models.factory import create_model
    from lens_hf.processing import LensImageProcessor, save_model_folder

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = create_model("vit-spt-lsa-tiny", image_size=MODEL_INPUT_PX, **TINY_VIT)
    processor = LensImageProcessor(size={"height": MODEL_INPUT_PX, "width": MODEL_INPUT_PX})
    return save_model_folder(model, processor, tmp_path_factory.mktemp("models") / "tiny-vit-spt-lsa")


def copy_model(model_dir: Path, dest: Path) -> Path:
    """A private copy of the tiny model folder."""
    shutil.copytree(model_dir, dest)
    return dest


@pytest.fixture(scope="session")
def deeplense_dir(tmp_path_factory) -> Path:
    """A clean DeepLense-layout folder, 4 images per class. Read-only for tests."""
    return write_deeplense_like(tmp_path_factory.mktemp("deeplense") / "data", per_class=4)


def build_hub_cache(cache: Path, repo_id: str, folder: Path, commit: str = HUB_COMMIT) -> Path:
    """Lay ``folder``'s files out as huggingface_hub's downloads do: ``models--org--name/blobs/<sha256>``,
    ``snapshots/<commit>/<file>`` relative symlinks to the blobs, ``refs/main`` naming the commit.
    Returns the snapshot folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    for src in sorted(p for p in folder.iterdir() if p.is_file()):
        data = src.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        (snapshot / src.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture
def offline_hub(tmp_path, monkeypatch, model_dir) -> Path:
    """An offline Hub cache (HF_HUB_CACHE, HF_HUB_OFFLINE=1) holding the tiny model as ``lens-hf/tiny-lens``."""
    cache = tmp_path / "hf-cache"
    build_hub_cache(cache, "lens-hf/tiny-lens", model_dir)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache
