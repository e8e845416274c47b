"""ONNX export of model folders (``lens-hf export``).

:func:`export_onnx` turns a model folder or Hub id (the SPT+LSA ViT with or without its convolutional stem,
classifier or regressor; stock ViT, DeiT with its distillation head, Swin, ResNet) into a folder that
``lens-hf predict`` and ``lens-hf evaluate`` run with ONNX Runtime:

- ``model.onnx``: the forward pass ``pixel_values -> logits`` written by ``torch.onnx.export`` (the dynamo
  exporter, torch's default; the model runs with eager attention while it is traced, which every family supports
  and stock Swin needs), opset :data:`DEFAULT_OPSET` unless asked otherwise, one self-contained file.
  Input ``pixel_values``: float32 ``(batch, num_channels, height, width)``, output ``logits``: float32
  ``(batch, num_labels)``; ``batch`` is the one dynamic axis (:data:`DYNAMIC_AXES`), the image size is the fixed
  output size of the image processor. For the distilled DeiT the output is the mean of its two heads, the logits
  the PyTorch pipeline uses; for a regressor the standardised target.
- ``preprocessor_config.json``: the :class:`LensImageProcessor` the PyTorch model runs with (normalisation,
  stretch, resize, crop, standardisation), so images are preprocessed by the same code;
- ``config.json``: the model config (labels, ``problem_type``, ``lens_regression`` scaling, the preprocessing
  record), without the entries that point at remote code (an ONNX folder carries none);
- ``README.md``: how and from what it was exported, the input and output, and the check made at export.

Before the folder is written, ONNX Runtime runs the exported graph on batches of 1 and 3 and its probabilities
(a regressor: its outputs) must match PyTorch's within :data:`TOLERANCE`; the folder is assembled under a
temporary name and renamed when complete, so a failed export leaves nothing behind.

:func:`lens_hf.inference.load_onnx_pipeline` runs such a folder (``load_pipeline`` and the CLI do so for any
folder holding ``model.onnx`` and no safetensors weights). ``onnx``, ``onnxruntime`` and ``onnxscript`` are the
``onnx`` extra (``pip install "lens_hf[onnx]"``).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import importlib.util
import io
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from huggingface_hub import ModelCard, ModelCardData
from transformers import PreTrainedConfig, PreTrainedModel

from lens_hf.errors import LensHFError
from lens_hf.inference import (
    ONNX_FILE,
    ONNX_INPUT,
    ONNX_INSTALL_HINT,
    ONNX_OUTPUT,
    OnnxImageClassifier,
    is_onnx_folder,
    load_classifier,
    load_onnx_pipeline,
)
from lens_hf.processing.image_processing_lens import LensImageProcessor
from lens_hf.processing.pipeline_lens import PREPROCESSOR_FILE, RECORD_FIELD
from lens_hf.redact import public_path
from lens_hf.utils import check_output_location, make_temporary_folder, replace_folder

EXPORT_FORMATS: tuple[str, ...] = ("onnx",)
# Dimension 0 (the batch) of the input and the output is dynamic; channels, height and width are fixed.
DYNAMIC_AXES: dict[str, dict[int, str]] = {ONNX_INPUT: {0: "batch"}, ONNX_OUTPUT: {0: "batch"}}
# torch 2.13's dynamo exporter writes opsets 18 to 23 natively (lower ones only by a conversion that may fail);
# 20 is its default.
OPSETS: tuple[int, ...] = tuple(range(18, 24))
DEFAULT_OPSET = 20
# Largest |ONNX Runtime - PyTorch| accepted at export: softmax probabilities of a classifier, outputs of a regressor.
TOLERANCE = 1e-4
CHECK_BATCHES: tuple[int, ...] = (1, 3)  # the batch sizes of the export check (the traced example has 2)
# config.json entries that name code files; an ONNX folder has none.
_CODE_ENTRIES: tuple[str, ...] = ("auto_map", "custom_pipelines")


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else type(err).__name__


def _check_exporter() -> None:
    """The dynamo exporter imports onnx and onnxscript when it runs, and the check runs ONNX Runtime: say how to
    install them before any work."""
    missing = [
        name for name in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise LensHFError(f"ONNX export needs {', '.join(missing)} ({ONNX_INSTALL_HINT})")


class _Logits(torch.nn.Module):
    """``pixel_values -> logits``: the tensor the pipeline uses, as the exported graph's one output (the
    distilled DeiT's ``logits`` are already the mean of its class and distillation heads)."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits


@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote: the folder, the opset, the input shape ``(batch, C, H, W)`` and the
    largest ONNX Runtime - PyTorch difference of the export check (probabilities; a regressor's outputs)."""

    path: Path
    opset: int
    input_shape: tuple[str | int, ...]
    num_labels: int
    max_abs_diff: float


def _check_request(fmt: str, opset: int) -> None:
    if fmt not in EXPORT_FORMATS:
        raise LensHFError(f"unknown export format {fmt!r} (choose from {', '.join(EXPORT_FORMATS)})")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise LensHFError(f"opset {opset!r} is not supported (choose from {OPSETS[0]} to {OPSETS[-1]})")


def check_export_location(out: str | os.PathLike) -> None:
    """Fail before any work when ``out`` cannot become an ONNX folder: not writable, a file, or a non-empty
    folder other than an earlier export (which is replaced as a whole)."""
    out = Path(out)
    check_output_location(out)
    if out.exists() and not out.is_dir():
        raise LensHFError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_onnx_folder(out):
        raise LensHFError(
            f"{out}: folder is not empty and is not an ONNX export; choose another output folder"
        )


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's progress lines, tracer warnings and notes about optional operator libraries would bury the
    one-line messages of the command line."""
    torch_onnx = logging.getLogger("torch.onnx")
    level = torch_onnx.level
    torch_onnx.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        torch_onnx.setLevel(level)


def _export_graph(model: PreTrainedModel, example: torch.Tensor, file: Path, opset: int) -> None:
    batch = torch.export.Dim("batch", min=1)
    with _quiet_exporter():
        torch.onnx.export(
            _Logits(model),
            (example,),
            str(file),
            input_names=[ONNX_INPUT],
            output_names=[ONNX_OUTPUT],
            dynamic_shapes={ONNX_INPUT: {0: batch}},
            opset_version=opset,
            dynamo=True,
            external_data=False,  # one self-contained file
            verbose=False,
        )


def _compare(model: PreTrainedModel, onnx_model: OnnxImageClassifier, shape: tuple[int, int, int]) -> float:
    """Largest |ONNX Runtime - PyTorch| over inputs of :data:`CHECK_BATCHES` images of ``shape`` (C, H, W):
    softmax probabilities of a classifier, outputs of a regressor."""
    regression = model.config.problem_type == "regression"
    generator = torch.Generator().manual_seed(0)
    worst = 0.0
    for batch in CHECK_BATCHES:
        x = torch.rand(batch, *shape, generator=generator)
        with torch.no_grad():
            expected = model(pixel_values=x).logits.float()
        got = onnx_model(pixel_values=x).logits
        if got.shape != expected.shape:
            raise LensHFError(
                f"the exported graph gives {tuple(got.shape)} for a batch of {batch}, PyTorch {tuple(expected.shape)}"
            )
        if not regression:
            expected, got = expected.softmax(-1), got.softmax(-1)
        worst = max(worst, float((got - expected).abs().max()))
    return worst


def _config_json(config: PreTrainedConfig, processor: LensImageProcessor) -> str:
    data = copy.deepcopy(config).to_diff_dict()
    for key in _CODE_ENTRIES:
        data.pop(key, None)
    data[RECORD_FIELD] = processor.settings()  # as save_model_folder records it
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def _card(
    source: str, model: PreTrainedModel, processor: LensImageProcessor, result: OnnxExport, ort_version: str
) -> str:
    config = model.config
    _, channels, height, width = result.input_shape
    if config.problem_type == "regression":
        output = (
            f"`{ONNX_OUTPUT}`: float32 (batch, 1), the standardised `{config.id2label[0]}`; "
            "`config.json` (`lens_regression`) turns it back into physical units"
        )
        checked = "max |y_onnx - y_torch|"
    else:
        labels = ", ".join(str(config.id2label[i]) for i in range(config.num_labels))
        output = f"`{ONNX_OUTPUT}`: float32 (batch, {config.num_labels}), softmax gives the probabilities of {labels}"
        checked = "max |p_onnx - p_torch|"
    steps = [f"{processor.normalization} normalisation"]
    if processor.stretch != "none":
        steps.append(f"{processor.stretch} stretch")
    if processor.do_resize:
        steps.append(f"resize to {processor.size['height']}x{processor.size['width']}")
    if processor.do_center_crop:
        steps.append(f"centre crop to {processor.crop_size['height']}x{processor.crop_size['width']}")
    if processor.image_mean is not None:
        steps.append("standardisation with the training set's mean and std")
    architecture = ", ".join(config.architectures or [type(model).__name__])
    data = ModelCardData(library_name="onnx", pipeline_tag="image-classification", tags=["onnx", "lens_hf"])
    text = f"""---
{data.to_yaml()}
---

# ONNX export of {source}

`{architecture}` exported by `lens-hf export --format onnx`: `torch.onnx.export` (dynamo exporter,
torch {torch.__version__}, eager attention), ONNX opset {result.opset}, one self-contained `{ONNX_FILE}`.

- input `{ONNX_INPUT}`: float32 (batch, {channels}, {height}, {width}), made by the image processor in
  `{PREPROCESSOR_FILE}` ({", ".join(steps)})
- output {output}
- dynamic axes: `batch` (dimension 0 of the input and the output); the image size is fixed
- checked at export with ONNX Runtime {ort_version} (CPU) on batches of {" and ".join(map(str, CHECK_BATCHES))}:
  {checked} = {result.max_abs_diff:.1e} (tolerance {TOLERANCE:.0e})

Run it with `lens-hf predict --model <this folder> FILES` or `lens-hf evaluate --model <this folder> --data DATA`
(ONNX Runtime; same preprocessing and output columns as the PyTorch model).
"""
    return str(ModelCard(text))


def export_onnx(
    model: str | os.PathLike | None,
    out: str | os.PathLike,
    *,
    fmt: str = "onnx",
    opset: int = DEFAULT_OPSET,
) -> OnnxExport:
    """Export a model folder or Hub id (``None``: the shipped model) to an ONNX folder ``out`` (see the module
    docstring), replacing an earlier export there.

    Raises :class:`LensHFError` (one line) for an unknown format or opset, an output location that cannot be
    written or holds something else, a folder without a model, an ONNX folder as the source, a failed export or
    a graph whose outputs differ from PyTorch's by more than :data:`TOLERANCE`; nothing is written then.
    """
    _check_request(fmt, opset)
    check_export_location(out)
    _check_exporter()
    loaded = load_classifier(model)
    torch_model = loaded.model
    if not isinstance(torch_model, PreTrainedModel):
        raise LensHFError(f"{loaded.path}: already an ONNX model; export the PyTorch model folder instead")
    processor = loaded.processor
    if processor.output_size is None:
        raise LensHFError(
            f"{loaded.path}: the image processor keeps each image's own size; ONNX export needs a fixed size"
        )
    shape = (processor.num_channels, *processor.output_size)
    given = None if model is None else os.fspath(model)
    source = given if given is not None and not Path(given).exists() else public_path(loaded.path)
    torch_model.set_attn_implementation("eager")  # the same math as SDPA, and the form stock Swin exports in
    out = Path(out)
    tmp = make_temporary_folder(out)
    try:
        try:
            _export_graph(torch_model, torch.rand(2, *shape), tmp / ONNX_FILE, opset)
        except Exception as err:  # torch.export / onnxscript raise many kinds of errors, all meaning the same
            raise LensHFError(
                f"{source}: ONNX export of {type(torch_model).__name__} failed ({_first_line(err)})"
            ) from None
        diff = _compare(torch_model, OnnxImageClassifier(tmp / ONNX_FILE, torch_model.config), shape)
        if not np.isfinite(diff) or diff > TOLERANCE:
            raise LensHFError(
                f"{source}: the exported graph differs from the PyTorch model by {diff:.2e} "
                f"(more than {TOLERANCE:g}); nothing written"
            )
        result = OnnxExport(
            path=out,
            opset=opset,
            input_shape=(DYNAMIC_AXES[ONNX_INPUT][0], *shape),
            num_labels=torch_model.config.num_labels,
            max_abs_diff=diff,
        )
        LensImageProcessor(**processor.settings()).to_json_file(str(tmp / PREPROCESSOR_FILE))
        (tmp / "config.json").write_text(_config_json(torch_model.config, processor), encoding="utf-8")
        (tmp / "README.md").write_text(
            _card(source, torch_model, processor, result, importlib.metadata.version("onnxruntime")),
            encoding="utf-8",
        )
        load_onnx_pipeline(tmp)  # the folder as predict will read it
        replace_folder(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


__all__ = [
    "DEFAULT_OPSET",
    "DYNAMIC_AXES",
    "EXPORT_FORMATS",
    "OPSETS",
    "TOLERANCE",
    "OnnxExport",
    "check_export_location",
    "export_onnx",
]
