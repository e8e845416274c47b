"""The package works when installed, not only from the checkout: a wheel installed into a fresh virtual
environment outside the checkout simulates a dataset (with its card), writes a model card and predicts with the
default model from the Hugging Face cache; an editable install reads the checkout's hub_cards/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import DatasetCard, ModelCard, snapshot_download

from lens_hf.hub import DEFAULT_MODEL_ID, cache_model_folder
from lens_hf.labels import LABELS

ROOT = Path(__file__).resolve().parents[1]
# What a build reads: the package metadata, the package and the card templates.
SOURCES = ("setup.py", "setup.cfg", "pyproject.toml", "README.md", "lens_hf", "hub_cards", "recipes")


def _copy_sources(dest: Path) -> Path:
    """The checkout's build inputs, copied so that building never writes into the checkout."""
    dest.mkdir(parents=True)
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def _venv(path: Path) -> Path:
    """A fresh venv that sees the system's packages (torch, transformers ...) but not its PYTHONPATH; pip
    runs from the system site-packages, so nothing is downloaded."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(path)], check=True
    )
    return path / "bin"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "HF_HUB_CACHE", "LENS_HF_DEFAULT_MODEL")
    }
    env.update(HF_HOME=str(tmp_path / "hf-home"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return env


def _run(*args: object, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def _pip_install(bin_dir: Path, *args: object, cwd: Path, env: dict[str, str]) -> None:
    result = _run(
        bin_dir / "python", "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
        "--no-build-isolation", "--disable-pip-version-check", "-q", *args, cwd=cwd, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout(tmp_path, model_dir):
    src = _copy_sources(tmp_path / "src")
    env = _env(tmp_path)
    result = _run(
        sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "--no-index",
        "--disable-pip-version-check", "-q", "-w", tmp_path / "wheels", cwd=src, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "wheels").glob("lens_hf-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"lens_hf/hub_cards/model_card.md", "lens_hf/hub_cards/dataset_card.md"} <= names
    assert "lens_hf/reference_results.json" in names
    assert {f"lens_hf/demo/examples/{name}.npy" for name in LABELS} <= names  # the web demo's examples
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "lens_hf").rglob("*.py")}
    assert modules <= names, modules - names
    recipes = {
        f"lens_hf/recipes/{p.relative_to(ROOT / 'recipes').as_posix()}"
        for p in (ROOT / "recipes").rglob("*.*")
    }
    assert {r for r in recipes if "__pycache__" not in r} <= names  # recipes/ ships as lens_hf.recipes

    bin_dir = _venv(tmp_path / "venv")
    _pip_install(bin_dir, wheel, cwd=tmp_path, env=env)
    work = tmp_path / "work"
    work.mkdir()
    assert not work.is_relative_to(ROOT)
    origin = _run(
        bin_dir / "python", "-c", "import importlib.util; print(importlib.util.find_spec('lens_hf').origin)",
        cwd=work, env=env,
    ).stdout.strip()  # fmt: skip
    assert Path(origin).is_relative_to(tmp_path / "venv") and "site-packages" in Path(origin).parts
    lens_hf = bin_dir / "lens-hf"

    # One process of the installed package runs three commands (each process start imports torch and
    # transformers): the recipe scripts load from the package (lens-hf train runs recipes/train_vit_spt_lsa.py's
    # main()), simulate writes a dataset with its card, card writes a model card.
    model = shutil.copytree(model_dir, work / "model")
    code = (
        "import sys; from lens_hf.cli import load_recipe, main\n"
        "print(load_recipe('train_vit_spt_lsa').__file__)\n"
        "for argv in sys.argv[1:]:\n"
        "    code = main(argv.split())\n"
        "    if code: sys.exit(f'{argv}: exit {code}')\n"
    )
    simulate = (
        "simulate --preset model_i --per-class 2 --seed 3 --workers 1 --format hf --splits 1,0,1 --out ds"
    )
    result = _run(bin_dir / "python", "-c", code, simulate, "card --model model", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    recipe = Path(result.stdout.splitlines()[0])
    assert recipe.name == "train_vit_spt_lsa.py" and recipe.is_relative_to(tmp_path / "venv"), recipe
    card = DatasetCard.load(work / "ds" / "README.md")
    assert card.data.configs and "simulated with lenstronomy (lens_hf preset `model_i`, seed 3" in card.text
    assert ModelCard.load(model / "README.md").data.pipeline_tag == "image-classification"

    import datasets

    image = np.asarray(datasets.load_from_disk(str(work / "ds"))["test"][0]["image"], dtype=np.float32)
    np.save(work / "lens.npy", image)
    # `lens-hf cache-model` (tested in test_hub) does this; done here in-process to keep the test short
    snapshot = cache_model_folder(model, DEFAULT_MODEL_ID, cache_dir=tmp_path / "hf-home" / "hub")
    assert snapshot_download(
        DEFAULT_MODEL_ID, cache_dir=tmp_path / "hf-home" / "hub", local_files_only=True
    ) == str(snapshot)
    result = _run(lens_hf, "predict", "lens.npy", "--output", "preds.json", cwd=work, env=env)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads((work / "preds.json").read_text())["predictions"]
    assert row["file"] == "lens.npy" and row["error"] is None


@pytest.mark.slow
def test_editable_install_reads_the_checkouts_templates(tmp_path):
    src = _copy_sources(tmp_path / "src")
    env = _env(tmp_path)
    bin_dir = _venv(tmp_path / "venv")
    _pip_install(bin_dir, "-e", src, cwd=tmp_path, env=env)
    code = "import lens_hf.cards as c; print(c.__file__); print(c.template_path('dataset_card.md'))"
    result = _run(bin_dir / "python", "-c", code, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    module, template = result.stdout.split()
    assert Path(module) == src / "lens_hf" / "cards.py"
    assert Path(template) == src / "hub_cards" / "dataset_card.md"
