"""ONNX export of model folders (``lens-hf export``), and ONNX Runtime as the model behind the lensing pipeline.

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

:func:`load_onnx_pipeline` runs such a folder: :class:`OnnxImageClassifier` wraps an ONNX Runtime session in the
interface of a transformers image classifier (``model(pixel_values=...).logits``, ``model.config``), so the
lensing pipeline's own preprocessing, test-time augmentation and postprocessing run unchanged around it.
``onnx``, ``onnxruntime`` and ``onnxscript`` are the ``onnx`` extra (``pip install "lens_hf[onnx]"``).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from huggingface_hub import ModelCard, ModelCardData
from transformers import AutoConfig, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput

from lens_hf.errors import LensHFError
from lens_hf.inference import check_model_config, folder_processor, load_classifier
from lens_hf.processing.file_io import LensFileError
from lens_hf.processing.image_processing_lens import LensImageProcessor
from lens_hf.processing.pipeline_lens import (
    PREPROCESSOR_FILE,
    RECORD_FIELD,
    TASK,
    LensImageClassificationPipeline,
)
from lens_hf.redact import public_path
from lens_hf.utils import check_output_location, make_temporary_folder, replace_folder

EXPORT_FORMATS: tuple[str, ...] = ("onnx",)
ONNX_FILE = "model.onnx"
INPUT_NAME = "pixel_values"
OUTPUT_NAME = "logits"
# Dimension 0 (the batch) of the input and the output is dynamic; channels, height and width are fixed.
DYNAMIC_AXES: dict[str, dict[int, str]] = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
# torch 2.13's dynamo exporter writes opsets 18 to 23 natively (lower ones only by a conversion that may fail);
# 20 is its default.
OPSETS: tuple[int, ...] = tuple(range(18, 24))
DEFAULT_OPSET = 20
# Largest |ONNX Runtime - PyTorch| accepted at export: softmax probabilities of a classifier, outputs of a regressor.
TOLERANCE = 1e-4
CHECK_BATCHES: tuple[int, ...] = (1, 3)  # the batch sizes of the export check (the traced example has 2)
# config.json entries that name code files; an ONNX folder has none.
_CODE_ENTRIES: tuple[str, ...] = ("auto_map", "custom_pipelines")
_INSTALL_HINT = 'pip install "lens_hf[onnx]"'


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else type(err).__name__


def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise LensHFError(f"running ONNX models needs onnxruntime ({_INSTALL_HINT})") from None
    return onnxruntime


# ------------------------------------------------------------------------------------------------ running
class OnnxImageClassifier:
    """An exported model run by ONNX Runtime on the CPU, called like a transformers image classifier.

    ``model(pixel_values=x)`` with ``x`` (batch, C, H, W) float32 returns an
    :class:`~transformers.modeling_outputs.ImageClassifierOutput` whose ``logits`` (batch, num_labels) float32
    come from the ONNX graph; ``config`` is the folder's model config. ONNX Runtime uses as many threads as
    torch (``torch.get_num_threads()`` when the session is made), so one setting governs both back ends.
    """

    main_input_name = INPUT_NAME
    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(self, path: str | os.PathLike, config: PreTrainedConfig) -> None:
        ort = _onnxruntime()
        self.path = Path(path)
        self.config = config
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: the CLI's output stays one line per problem
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime's InvalidProtobuf, Fail, NotImplemented, ...
            raise LensFileError(self.path, f"not a valid ONNX model ({_first_line(err)})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in inputs] != [INPUT_NAME] or not outputs or outputs[0].name != OUTPUT_NAME:
            raise LensFileError(
                self.path,
                f"expected one input {INPUT_NAME!r} and an output {OUTPUT_NAME!r}, found inputs "
                f"{[i.name for i in inputs]} and outputs {[o.name for o in outputs]} (export it with lens-hf export)",
            )
        width = outputs[0].shape[-1] if outputs[0].shape else None
        if isinstance(width, int) and width != config.num_labels:
            raise LensFileError(
                self.path, f"gives {width} outputs but config.json has {config.num_labels} labels"
            )

    @property
    def input_shape(self) -> list[int | str]:
        """``[batch, C, H, W]`` of the graph's input: ``batch`` is a name, the others are pixel counts."""
        return list(self.session.get_inputs()[0].shape)

    def __call__(self, pixel_values: torch.Tensor, **kwargs: Any) -> ImageClassifierOutput:
        array = pixel_values.detach().to("cpu", torch.float32).numpy()
        (logits,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: array})
        return ImageClassifierOutput(logits=torch.from_numpy(logits))

    # What transformers' Pipeline asks of its model: ONNX Runtime runs on the CPU, in inference mode.
    def to(self, *args: Any, **kwargs: Any) -> OnnxImageClassifier:
        return self

    def eval(self) -> OnnxImageClassifier:
        return self

    def can_generate(self) -> bool:
        return False


class OnnxImageClassificationPipeline(LensImageClassificationPipeline):
    """:class:`LensImageClassificationPipeline` around an :class:`OnnxImageClassifier`: the same preprocessing,
    test-time augmentation, checks and postprocessing; only the forward pass runs in ONNX Runtime."""

    def check_model_type(self, supported_models: list[str] | dict) -> None:
        # transformers compares the model's class with its PyTorch classes; this model is the graph of one of
        # them (config.architectures), checked when it was exported.
        return None


def is_onnx_folder(path: str | os.PathLike) -> bool:
    """A folder written by :func:`export_onnx`: ``model.onnx`` and no safetensors weights (a folder with both is
    a PyTorch model folder)."""
    path = Path(path)
    return (path / ONNX_FILE).is_file() and not any(path.glob("*.safetensors"))


def _read_config(path: Path) -> PreTrainedConfig:
    check_model_config(path)
    try:
        return AutoConfig.from_pretrained(str(path), trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise LensFileError(
            path / "config.json", f"cannot load a model config ({_first_line(err)})"
        ) from None


def load_onnx_pipeline(
    path: str | os.PathLike, processor: LensImageProcessor | None = None, **kwargs: Any
) -> OnnxImageClassificationPipeline:
    """The lensing pipeline of an ONNX folder (:func:`is_onnx_folder`), run by ONNX Runtime on the CPU.

    ``processor`` defaults to the folder's ``preprocessor_config.json`` (missing or foreign: the preprocessing
    recorded in config.json, or a refusal, as for PyTorch folders). Other keyword arguments go to the pipeline
    (``batch_size``, ...). Raises :class:`LensFileError` naming the file at fault: a broken config or model, or a
    model whose input size differs from the processor's output.
    """
    path = Path(path)
    config = _read_config(path)
    model = OnnxImageClassifier(path / ONNX_FILE, config)
    if processor is None:
        processor = folder_processor(path)
    kwargs.setdefault("device", "cpu")
    pipe = OnnxImageClassificationPipeline(model=model, image_processor=processor, task=TASK, **kwargs)
    expected = [pipe.image_processor.num_channels, *(pipe.image_processor.output_size or ())]
    if model.input_shape[1:] != expected:
        raise LensFileError(
            model.path,
            f"takes inputs of shape {model.input_shape[1:]} (channels, height, width) but the image processor "
            f"gives {expected}",
        )
    return pipe


# ------------------------------------------------------------------------------------------------ export
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
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={INPUT_NAME: {0: batch}},
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
            f"`{OUTPUT_NAME}`: float32 (batch, 1), the standardised `{config.id2label[0]}`; "
            "`config.json` (`lens_regression`) turns it back into physical units"
        )
        checked = "max |y_onnx - y_torch|"
    else:
        labels = ", ".join(str(config.id2label[i]) for i in range(config.num_labels))
        output = f"`{OUTPUT_NAME}`: float32 (batch, {config.num_labels}), softmax gives the probabilities of {labels}"
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

- input `{INPUT_NAME}`: float32 (batch, {channels}, {height}, {width}), made by the image processor in
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
    ort = _onnxruntime()
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
            input_shape=(DYNAMIC_AXES[INPUT_NAME][0], *shape),
            num_labels=torch_model.config.num_labels,
            max_abs_diff=diff,
        )
        LensImageProcessor(**processor.settings()).to_json_file(str(tmp / PREPROCESSOR_FILE))
        (tmp / "config.json").write_text(_config_json(torch_model.config, processor), encoding="utf-8")
        (tmp / "README.md").write_text(
            _card(source, torch_model, processor, result, ort.__version__), encoding="utf-8"
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
    "ONNX_FILE",
    "OPSETS",
    "TOLERANCE",
    "OnnxExport",
    "OnnxImageClassificationPipeline",
    "OnnxImageClassifier",
    "check_export_location",
    "export_onnx",
    "is_onnx_folder",
    "load_onnx_pipeline",
]
