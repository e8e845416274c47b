"""Save a classifier as a self-contained model folder.

A folder written by :func:`save_model_folder` holds ``config.json`` (with the preprocessing the model was
trained with, ``lens_preprocessing``), ``model.safetensors``, ``preprocessor_config.json`` (with ``auto_map``)
and the code files of the processor. For lens_hf's own models it also holds the model code and the pipeline
(``custom_pipelines`` in config.json; the model's own ``save_pretrained`` writes them), so

    pipeline("image-classification", model=folder, trust_remote_code=True)

gives :class:`LensImageClassificationPipeline` (which reads .npy/.fits paths) in a Python where lens_hf is not
installed, while ``pipeline("image-classification", model=folder)`` works without ``trust_remote_code`` where
lens_hf is imported. Stock ViT/DeiT/Swin/ResNet folders carry no pipeline entry (see ``save_model_folder``):
they load anywhere, classify arrays with ``trust_remote_code=True``, and read file paths where lens_hf is imported.
Loading folders back as pipelines is :func:`lens_hf.inference.load_pipeline`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from transformers import PreTrainedConfig, PreTrainedModel

# saving.py does not travel with model folders: it may import the rest of lens_hf.
from lens_hf.utils import make_temporary_folder, replace_folder

from .image_processing_lens import LensImageProcessor
from .pipeline_lens import RECORD_FIELD, TASK

CODE_FILES: tuple[str, ...] = ("image_processing_lens.py", "pipeline_lens.py", "file_io.py")
_CORE_FILES: tuple[str, ...] = ("config.json", "preprocessor_config.json", *CODE_FILES)


def _is_lens_hf_class(obj: Any) -> bool:
    return type(obj).__module__.split(".")[0] == "lens_hf"


def _weight_files(folder: Path) -> list[str]:
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name.endswith(".safetensors") or p.name == "model.safetensors.index.json"
    )


def _check_folder(folder: Path, model: PreTrainedModel) -> list[str]:
    """Verify a freshly written folder; returns its file names. Raises RuntimeError naming what is missing."""
    names = sorted(p.name for p in folder.iterdir())
    required = (
        _CORE_FILES
        if _is_lens_hf_class(model)
        else ("config.json", "preprocessor_config.json", "image_processing_lens.py", "file_io.py")
    )
    missing = [name for name in required if name not in names]
    if not _weight_files(folder):
        missing.append("model.safetensors")
    if any(name.endswith((".bin", ".pt", ".pth", ".pkl")) for name in names):
        raise RuntimeError(f"{folder}: pickle-based weight files were written ({', '.join(names)})")
    if _is_lens_hf_class(model):
        code = {Path(file).name for file in _module_files(model) + _module_files(model.config)}
        missing += sorted(code - set(names))
    if missing:
        raise RuntimeError(f"{folder}: incomplete model folder, missing {', '.join(missing)}")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    impl = config.get("custom_pipelines", {}).get(TASK, {}).get("impl")
    if _is_lens_hf_class(model) and impl != "pipeline_lens.LensImageClassificationPipeline":
        raise RuntimeError(
            f"{folder}: config.json does not name the lensing pipeline (custom_pipelines={config.get('custom_pipelines')})"
        )
    processor = json.loads((folder / "preprocessor_config.json").read_text(encoding="utf-8"))
    if processor.get("auto_map", {}).get("AutoImageProcessor") != "image_processing_lens.LensImageProcessor":
        raise RuntimeError(f"{folder}: preprocessor_config.json has no auto_map for LensImageProcessor")
    return names


def _module_files(obj: Any) -> list[str]:
    module = sys.modules[type(obj).__module__]
    return [module.__file__] if getattr(module, "__file__", None) else []


def _write_extra(folder: Path, extra_files: dict[str, bytes]) -> None:
    for name, data in extra_files.items():
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"extra file name {name!r} must be a relative path inside the model folder")
        target = folder / rel
        if target.exists() or rel.name.endswith(".safetensors"):
            raise ValueError(f"extra file {name!r} would overwrite a file the model folder needs")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"extra file {name!r}: expected bytes, got {type(data).__name__}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(bytes(data))


def save_model_folder(
    model: PreTrainedModel,
    processor: LensImageProcessor,
    out_dir: str | os.PathLike,
    *,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write ``model`` + ``processor`` (+ ``extra_files``, name -> bytes) as a loadable folder at ``out_dir``.

    Everything is written into a temporary sibling folder, checked, and only then moved to ``out_dir``, which
    it replaces as a whole if it exists: ``out_dir`` is never left half-written. Weights are safetensors only.
    Returns the absolute path of the folder.
    """
    # By name: a processor loaded through remote code is the same class from another module.
    if type(processor).__name__ != LensImageProcessor.__name__:
        raise TypeError(f"processor must be a LensImageProcessor, got {type(processor).__name__}")
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    tmp = make_temporary_folder(out)  # also removes what killed earlier saves left next to out_dir
    try:
        # Recorded with the weights: a folder that loses its preprocessor_config.json can rebuild it.
        setattr(model.config, RECORD_FIELD, processor.settings())
        if not _is_lens_hf_class(model):
            # Stock transformers configs cannot drop a `custom_pipelines` entry where lens_hf is imported (ours
            # does), and transformers refuses such a folder without trust_remote_code: so no pipeline entry here.
            # The processor still travels as remote code; importing lens_hf gives the file-reading pipeline.
            model.config.__dict__.pop("custom_pipelines", None)
        model.save_pretrained(tmp)  # lens_hf's model also writes its code and the pipeline's
        processor.save_pretrained(tmp)
        if extra_files:
            _write_extra(tmp, extra_files)
        _check_folder(tmp, model)
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def processor_for_config(config: PreTrainedConfig) -> LensImageProcessor:
    """Default processor for a model config: its ``image_size`` and ``num_channels``, min-max normalisation."""
    size = getattr(config, "image_size", 150)
    return LensImageProcessor(size=size, num_channels=int(getattr(config, "num_channels", 1)))


__all__ = ["CODE_FILES", "TASK", "install_model_folder", "processor_for_config", "save_model_folder"]


def install_model_folder(
    model: PreTrainedModel, processor: LensImageProcessor, output_dir: str | os.PathLike
) -> Path:
    """Write the model folder (model, processor, their code) into ``output_dir``, keeping what else is there
    (checkpoints, logs). The folder is built and checked by :func:`save_model_folder` in a temporary sibling,
    then each file is renamed into place. Returns ``output_dir``."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = make_temporary_folder(out)  # also removes what killed earlier runs left next to output_dir
    try:
        built = save_model_folder(model, processor, staging / "model")
        for src in sorted(p for p in built.rglob("*") if p.is_file()):
            target = out / src.relative_to(built)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
