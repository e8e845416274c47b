"""Model folders as pipelines, and batch inference on files, folders and datasets (``lens-hf predict/evaluate``).

There is one way an image becomes a prediction: :class:`~lens_hf.processing.LensImageClassificationPipeline`.
:func:`load_pipeline` builds it for a model folder, a Hub id or a model object; :func:`predict_files`,
:func:`evaluate_data` and :func:`predict_arrays` run its ``preprocess`` on each image, its ``forward`` on batches
and its ``postprocess`` on each result, adding what a command needs around it: progress bars, skipping bad files
(``skip_bad``) and every class probability in the model's label order. A regression model
(``config.lens_regression``) gives its target in physical units instead (:func:`evaluate_regression_data` reads
the true values from the data's metadata).

Nothing from a model folder or an input file is ever executed: models are built from transformers' and
lens_hf's own registered classes (the ``*.py`` files a saved folder carries are never imported), weights are
read from safetensors only (or, in a folder written by ``lens-hf export``, from the ONNX graph ``model.onnx``,
run by ONNX Runtime inside the same pipeline), and images go through the safe loader
:mod:`lens_hf.processing.file_io`.
Images are read, checked and preprocessed one at a time and classified a batch at a time, so memory stays
bounded by ``batch_size`` whatever the number of files.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm
from transformers import AutoConfig, PreTrainedConfig, PreTrainedModel, pipeline
from transformers.modeling_outputs import ImageClassifierOutput
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

try:  # the onnx extra: runs the folders `lens-hf export` writes
    import onnxruntime
except ImportError:
    onnxruntime = None

from lens_hf.data.dataset import load_any
from lens_hf.data.readers import SPLIT_FOLDERS, Record, scan_folder
from lens_hf.errors import LensHFError
from lens_hf.hub import default_model_path as hub_default_model_path
from lens_hf.hub import resolve_model_path
from lens_hf.labels import canonical_label
from lens_hf.models.factory import load_model
from lens_hf.processing.file_io import SUFFIXES, LensFileError, is_image_file, read_image
from lens_hf.processing.image_processing_lens import LensImageProcessor
from lens_hf.processing.pipeline_lens import (
    PREPROCESSOR_FILE,
    TASK,
    TTA_MODES,
    LensImageClassificationPipeline,
)
from lens_hf.processing.saving import processor_for_config
from lens_hf.processing.smooth_lens import RESIDUAL_PRESETS
from lens_hf.processing.targets import TargetScaling, apply_transform
from lens_hf.processing.vortex_likelihood import likelihood_log10_mass

REPO_ROOT = Path(__file__).resolve().parent.parent
# An ONNX folder (lens-hf export): the graph pixel_values (batch, C, H, W) -> logits (batch, num_labels).
ONNX_FILE = "model.onnx"
ONNX_INPUT = "pixel_values"
ONNX_OUTPUT = "logits"
ONNX_INSTALL_HINT = 'pip install "lens_hf[onnx]"'
# The model `lens-hf predict` / `lens-hf evaluate` use when no --model is given.
DEFAULT_MODEL_DIR = REPO_ROOT / "checkpoints" / "vit-spt-lsa-model-i"
# Weight files that can only be read by unpickling (i.e. by running code they contain): never loaded.
PICKLED_WEIGHTS: tuple[str, ...] = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
_SUPPORTED = " ".join(SUFFIXES)


def default_model_path() -> Path:
    """The shipped Model I checkpoint (see :func:`lens_hf.hub.default_model_path`: the checkout's copy, the
    Hugging Face cache, a download); a one-line error saying how to get it when none has it."""
    return hub_default_model_path(DEFAULT_MODEL_DIR)


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:300] if lines else type(err).__name__


# ------------------------------------------------------------------------------------------------ loading
def check_model_config(path: Path) -> None:
    """Refuse a folder whose ``config.json`` is missing, not a JSON object, or names a model type that neither
    transformers nor lens_hf defines (its code would have to come from the folder), naming the file."""
    config = path / "config.json"
    if not config.is_file():
        raise LensHFError(f"{path}: not a model folder (no config.json)")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise LensFileError(config, f"not a valid JSON model config ({_first_line(err)})") from None
    if not isinstance(data, dict):
        raise LensFileError(config, f"expected a JSON object, got {type(data).__name__}")
    model_type = data.get("model_type")
    if not isinstance(model_type, str) or model_type not in CONFIG_MAPPING:
        raise LensFileError(
            config,
            f"model_type {model_type!r} is not a transformers or lens_hf model; its code would have to come from "
            "the folder, and lens_hf never runs code from model folders",
        )


def check_model_folder(path: Path) -> None:
    """Refuse folders that cannot be loaded safely, naming the file at fault.

    ``config.json`` must pass :func:`check_model_config`; the weights must be safetensors (a folder holding only
    pickled weights such as ``pytorch_model.bin`` is refused) whose headers parse and whose data is complete.
    """
    check_model_config(path)
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        pickled = sorted(p.name for p in path.iterdir() if p.suffix.lower() in PICKLED_WEIGHTS)
        if pickled:
            raise LensHFError(
                f"{path}: only pickle-based weights ({', '.join(pickled)}); lens_hf loads safetensors only, "
                "because unpickling runs code from the file (convert it with transformers: "
                "model.save_pretrained(folder, safe_serialization=True))"
            )
        raise LensHFError(f"{path}: no model weights (model.safetensors is missing)")
    for file in weights:
        try:
            # Opening parses the header and checks that its tensors cover the file exactly (truncation).
            with safe_open(str(file), framework="pt") as f:
                f.keys()
        except PermissionError:
            raise LensFileError(file, "permission denied") from None
        except Exception as err:  # SafetensorError and OSError: any failure here is a broken file
            raise LensFileError(file, f"corrupt safetensors weights ({_first_line(err)})") from None


def folder_processor(path: Path) -> LensImageProcessor | None:
    """The folder's :class:`LensImageProcessor`, or None when ``preprocessor_config.json`` is missing or holds
    another kind of processor (the pipeline then rebuilds the recorded preprocessing, or refuses). Only the JSON
    settings are read; a broken file raises :class:`LensFileError` naming it."""
    file = path / PREPROCESSOR_FILE
    if not file.is_file():
        return None
    try:
        saved = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise LensFileError(file, f"not a valid JSON processor config ({_first_line(err)})") from None
    if not isinstance(saved, dict) or saved.get("image_processor_type") != LensImageProcessor.__name__:
        return None
    try:
        return LensImageProcessor.from_pretrained(str(path))
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise LensFileError(file, f"invalid image processor settings ({_first_line(err)})") from None


def load_pipeline(
    model_or_path: str | os.PathLike | PreTrainedModel,
    processor: LensImageProcessor | None = None,
    **kwargs: Any,
) -> LensImageClassificationPipeline:
    """The lensing pipeline for a model folder, a Hub id (the local cache when offline) or a model object.

    A folder or Hub id is checked (:func:`check_model_folder`) and loaded with lens_hf's and transformers' own
    classes from safetensors; ``processor`` defaults to its ``preprocessor_config.json`` (if that is missing or
    foreign, the pipeline rebuilds the preprocessing recorded in the model config, or refuses). A folder holding
    ``model.onnx`` and no safetensors weights (written by ``lens-hf export``) runs in ONNX Runtime instead, inside
    the same pipeline (:func:`load_onnx_pipeline`). A model object without ``processor`` gets its
    recorded preprocessing, else one sized from its config. Other keyword arguments go to
    :func:`transformers.pipeline` (``device``, ``batch_size``, ...).
    """
    if isinstance(model_or_path, (str, os.PathLike)):
        path = resolve_model_path(str(model_or_path))
        if is_onnx_folder(path):
            return load_onnx_pipeline(path, processor, **kwargs)
        check_model_folder(path)
        model = load_model(path)
        if processor is None:
            processor = folder_processor(path)
    else:
        model = model_or_path
        if processor is None and not isinstance(getattr(model.config, "lens_preprocessing", None), dict):
            processor = processor_for_config(model.config)
    return pipeline(
        TASK, model=model, image_processor=processor, pipeline_class=LensImageClassificationPipeline, **kwargs
    )


@dataclass
class LoadedModel:
    """A model folder as a lensing pipeline, with its label names in id order."""

    pipeline: LensImageClassificationPipeline
    labels: list[str]
    path: Path

    @property
    def model(self) -> Any:
        """The PyTorch model, or for an ONNX folder its :class:`OnnxImageClassifier`."""
        return self.pipeline.model

    @property
    def processor(self) -> LensImageProcessor:
        return self.pipeline.image_processor

    @property
    def scaling(self) -> TargetScaling | None:
        """What a regression model predicts (target, transform, standardisation); None for a classifier."""
        return self.pipeline.target_scaling


def _one_thread_worker() -> None:
    """Start of a likelihood worker: one BLAS/OpenMP thread (two processes of two threads each on two cores took
    longer than one process; one thread each: 114 s for 300 vortices against 184 s in one process)."""
    threadpool_limits(1)
    torch.set_num_threads(1)


def _likelihood_axion_mass(image: Any) -> tuple[float | None, str, str]:
    """``(m_a, "", "")`` of one raw Model I image (a path or an array) by likelihood, or ``(None, source,
    reason)`` for one that is not raw counts: a worker's answer, which a :class:`LensFileError` (two arguments)
    could not cross a process boundary as."""
    source = str(image) if isinstance(image, (str, os.PathLike)) else "image"
    try:
        if isinstance(image, (str, os.PathLike)):
            image = read_image(image)[0]
        return float(10.0 ** likelihood_log10_mass(np.asarray(image))), "", ""
    except LensFileError as err:
        return None, err.source, err.reason
    except ValueError as err:  # not raw counts (the model's processor refuses them first)
        return None, source, str(err)


class LikelihoodRefiner:
    """``refine`` of :func:`classify`: ``refine.map(images)`` is the axion mass of each raw Model I image by
    likelihood (:func:`lens_hf.processing.vortex_likelihood.likelihood_log10_mass`, about 0.5 s per image on one
    core) instead of the model's, in ``workers`` processes when more than one (each builds its own observer:
    about 3 s and 265 MB). ``close()`` (or ``with``) ends them."""

    def __init__(self, workers: int = 1):
        if workers < 1:
            raise LensHFError(f"--workers must be at least 1, got {workers}")
        self.workers = workers
        self._pool: Any = None

    @staticmethod
    def _answer(result: tuple[float | None, str, str]) -> float:
        value, source, reason = result
        if value is None:
            raise LensFileError(source, reason)
        return value

    def map(self, images: Sequence[Any]) -> list[float]:
        """The axion mass of each image, in order; :class:`LensFileError` for the first that is not raw counts."""
        if self.workers == 1 or len(images) < 2:
            with threadpool_limits(1):  # as in the workers: the same sums, the same answers to the last digit
                return [self._answer(_likelihood_axion_mass(image)) for image in images]
        if self._pool is None:
            # spawn, not fork: this process runs torch, whose threads a forked child would inherit locked
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread_worker
            )
        return [self._answer(r) for r in self._pool.map(_likelihood_axion_mass, images)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __enter__(self) -> LikelihoodRefiner:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def likelihood_refiner(loaded: LoadedModel, workers: int = 1) -> LikelihoodRefiner:
    """The :class:`LikelihoodRefiner` of ``--refine likelihood`` for ``loaded``, in ``workers`` processes. Only
    for an axion-mass model on raw Model I counts (its processor's normalisation is a smooth-lens residual, so
    the inputs are checked to be raw counts); :class:`LensHFError` otherwise."""
    scaling = loaded.scaling
    if scaling is None or scaling.target != "axion_mass":
        raise LensHFError(f"{loaded.path}: --refine likelihood is for axion-mass regression models")
    if RESIDUAL_PRESETS.get(loaded.processor.normalization) != "model_i":
        raise LensHFError(
            f"{loaded.path}: --refine likelihood needs a Model I model on raw counts (normalization "
            f"residual_model_i or residual_lens_model_i), not {loaded.processor.normalization!r}"
        )
    return LikelihoodRefiner(workers)


def load_classifier(name_or_path: str | os.PathLike | None) -> LoadedModel:
    """Load a model folder or Hub id (``None`` = the shipped checkpoint) as a pipeline (:func:`load_pipeline`)."""
    path = default_model_path() if name_or_path is None else resolve_model_path(str(name_or_path))
    pipe = load_pipeline(path)
    id2label = pipe.model.config.id2label
    try:
        labels = [str(id2label[i]) for i in range(len(id2label))]
    except KeyError:
        raise LensFileError(
            path / "config.json", f"id2label is not numbered 0..{len(id2label) - 1}"
        ) from None
    if len(set(labels)) != len(labels):
        raise LensFileError(path / "config.json", f"id2label repeats a label ({', '.join(labels)})")
    return LoadedModel(pipeline=pipe, labels=labels, path=path)


# ------------------------------------------------------------------------------------------------ ONNX
# A folder written by `lens-hf export` (lens_hf.export) runs in ONNX Runtime: OnnxImageClassifier wraps the session
# in the interface of a transformers image classifier (model(pixel_values=...).logits, model.config), so the
# lensing pipeline's own preprocessing, test-time augmentation and postprocessing run unchanged around it.
class OnnxImageClassifier:
    """An exported model run by ONNX Runtime on the CPU, called like a transformers image classifier.

    ``model(pixel_values=x)`` with ``x`` (batch, C, H, W) float32 returns an
    :class:`~transformers.modeling_outputs.ImageClassifierOutput` whose ``logits`` (batch, num_labels) float32
    come from the ONNX graph; ``config`` is the folder's model config. ONNX Runtime uses as many threads as
    torch (``torch.get_num_threads()`` when the session is made), so one setting governs both back ends.
    """

    main_input_name = ONNX_INPUT
    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(self, path: str | os.PathLike, config: PreTrainedConfig) -> None:
        if onnxruntime is None:
            raise LensHFError(f"running ONNX models needs onnxruntime ({ONNX_INSTALL_HINT})")
        self.path = Path(path)
        self.config = config
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: the CLI's output stays one line per problem
        try:
            self.session = onnxruntime.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime's InvalidProtobuf, Fail, NotImplemented, ...
            raise LensFileError(self.path, f"not a valid ONNX model ({_first_line(err)})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in inputs] != [ONNX_INPUT] or not outputs or outputs[0].name != ONNX_OUTPUT:
            raise LensFileError(
                self.path,
                f"expected one input {ONNX_INPUT!r} and an output {ONNX_OUTPUT!r}, found inputs "
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
        array = np.ascontiguousarray(pixel_values.detach().to("cpu", torch.float32).numpy())
        (logits,) = self.session.run([ONNX_OUTPUT], {ONNX_INPUT: array})
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
    """A folder written by :func:`lens_hf.export.export_onnx`: ``model.onnx`` and no safetensors weights (a folder with both is
    a PyTorch model folder)."""
    path = Path(path)
    return (path / ONNX_FILE).is_file() and not any(path.glob("*.safetensors"))


def _onnx_folder_config(path: Path) -> PreTrainedConfig:
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
    config = _onnx_folder_config(path)
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


# ------------------------------------------------------------------------------------------------ files
def collect_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Expand files and folders (searched recursively, hidden entries skipped) into image files.

    Files keep the order given; a folder contributes its files sorted by path. Duplicates are dropped.
    """
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if is_image_file(f)
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
                and f.is_file()
            )
            if not found:
                raise LensHFError(f"{p}: no image files found (supported: {_SUPPORTED})")
            files.extend(found)
        elif p.exists():
            if not is_image_file(p):
                raise LensFileError(p, f"unsupported file type (supported: {_SUPPORTED})")
            files.append(p)
        else:
            raise LensFileError(p, "no such file or folder")
    seen: set[str] = set()
    unique = []
    for f in files:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


@dataclass
class Predictions:
    """Softmax probabilities ``probs`` (N, num_labels) of the N images that could be classified (``sources``),
    the ``(path, reason)`` of the inputs skipped, and ``order``: every input in input order. For a regression
    model (``scaling`` set) ``probs`` (N, 1) holds the predicted target in physical units."""

    labels: list[str]
    probs: np.ndarray
    sources: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    scaling: TargetScaling | None = None

    @property
    def columns(self) -> list[str]:
        """The prediction columns of :meth:`rows` after ``path``: ``label``, ``score``, ``p_<label>``...; for a
        regression model ``log10_<target>`` (log10 transform only) and ``<target>``."""
        if self.scaling is None:
            return ["label", "score", *[f"p_{name}" for name in self.labels]]
        names = [self.scaling.target]
        return [self.scaling.name, *names] if self.scaling.transform != "none" else names

    def _values(self, p: np.ndarray) -> dict[str, Any]:
        if self.scaling is None:
            k = int(p.argmax())
            row: dict[str, Any] = {"label": self.labels[k], "score": float(p[k])}
            row.update({f"p_{name}": float(v) for name, v in zip(self.labels, p)})
            return row
        value = float(p[0])
        row = {self.scaling.target: value}
        if self.scaling.transform != "none":
            row = {self.scaling.name: float(apply_transform([value], self.scaling.transform)[0]), **row}
        return row

    def rows(self, *, include_skipped: bool = False) -> list[dict[str, Any]]:
        """One dict per image: ``file`` (its path) and the :attr:`columns` (``label`` (argmax), ``score`` and
        ``p_<label>``; or the regression target); with ``include_skipped`` also the skipped files (empty
        prediction, ``error`` set), all in input order."""
        out: dict[str, dict[str, Any]] = {}
        for src, p in zip(self.sources, self.probs):
            row: dict[str, Any] = {"file": src, **self._values(p)}
            if include_skipped:
                row["error"] = None
            out[src] = row
        if not include_skipped:
            return list(out.values())
        for src, reason in self.skipped:
            out[src] = {"file": src, **{name: None for name in self.columns}, "error": reason}
        order = self.order or [*self.sources, *(s for s, _ in self.skipped)]
        return [out[s] for s in order if s in out]


# ------------------------------------------------------------------------------------------------ running
def _progress(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None hides the bar when stderr is not a terminal."""
    return None if progress is None else not progress


def _check_tta(tta: str) -> None:
    if tta not in TTA_MODES:
        raise LensHFError(f"unknown test-time augmentation {tta!r} (choose from {', '.join(TTA_MODES)})")


def classify(
    loaded: LoadedModel,
    items: Iterable[tuple[str, Any]],
    *,
    batch_size: int = 64,
    tta: str = "none",
    skip_bad: bool = False,
    total: int | None = None,
    desc: str = "predict",
    progress: bool | None = None,
    refine: LikelihoodRefiner | None = None,
) -> tuple[np.ndarray, list[str], list[tuple[str, str]]]:
    """Classify ``(source, image)`` items through the pipeline, ``batch_size`` images per forward pass.
    ``refine`` (a regression model's only, :func:`likelihood_refiner`): ``refine.map(images)`` replaces the
    predicted values of each batch.

    ``image`` is anything the pipeline takes (a file path, an (H, W) array, ...); ``source`` names it in
    errors and results. Returns the probabilities (N, num_labels) float64 in label-id order (a regression
    model: its prediction in physical units, (N, 1)), the N sources classified and the ``(source, reason)`` of
    those skipped. A bad input (unreadable, constant, NaN logits, ...)
    raises :class:`LensFileError` naming it, unless ``skip_bad``.
    """
    if batch_size < 1:
        raise LensHFError(f"batch size must be at least 1, got {batch_size}")
    _check_tta(tta)
    pipe, labels = loaded.pipeline, loaded.labels
    probs: list[list[float]] = []
    sources: list[str] = []
    skipped: list[tuple[str, str]] = []
    batch: list[tuple[str, torch.Tensor, Any]] = []

    def forward(part: list[tuple[str, torch.Tensor, Any]]) -> None:
        inputs = {"pixel_values": torch.cat([p for _, p, _ in part]), "source": [s for s, _, _ in part]}
        try:
            logits = pipe.forward(inputs, tta=tta)["logits"]
        except LensFileError as err:  # non-finite logits, naming the image
            if not skip_bad:
                raise
            if len(part) == 1:
                skipped.append((part[0][0], err.reason))
                return
            for item in part:  # find the bad one(s); keep the others
                forward([item])
            return
        refined = refine.map([image for _, _, image in part]) if refine is not None else None
        for i, (source, _, _) in enumerate(part):
            scores = pipe.postprocess({"logits": logits[i : i + 1]}, top_k=len(labels))
            by_label = {r["label"]: r["score"] for r in scores}
            values = [by_label[name] for name in labels]
            if refined is not None:
                values = [refined[i]]
            probs.append(values)
            sources.append(source)

    for source, image in tqdm(items, total=total, desc=desc, unit="img", disable=_progress(progress)):
        try:
            pixel_values = pipe.preprocess(image)["pixel_values"]
        except LensFileError as err:
            if not isinstance(image, (str, os.PathLike)):  # name the dataset row, not "input array"
                err = LensFileError(source, err.reason)
            if not skip_bad:
                raise err from None
            skipped.append((source, err.reason))
            continue
        batch.append((source, pixel_values, image if refine is not None else None))
        if len(batch) == batch_size:
            forward(batch)
            batch = []
    if batch:
        forward(batch)
    out = np.asarray(probs, dtype=np.float64).reshape(len(probs), len(labels))
    return out, sources, skipped


def predict_arrays(
    loaded: LoadedModel,
    images: Iterable[np.ndarray],
    *,
    batch_size: int = 64,
    tta: str = "none",
    total: int | None = None,
    desc: str = "predict",
    progress: bool | None = None,
) -> np.ndarray:
    """Softmax probabilities (N, num_labels) for 2-D images (H, W), batched through the pipeline."""
    items = ((f"image {i}", image) for i, image in enumerate(images))
    probs, _, _ = classify(
        loaded, items, batch_size=batch_size, tta=tta, total=total, desc=desc, progress=progress
    )
    return probs


def predict_files(
    loaded: LoadedModel,
    files: Sequence[Path],
    *,
    batch_size: int = 64,
    tta: str = "none",
    skip_bad: bool = False,
    progress: bool | None = None,
    refine: LikelihoodRefiner | None = None,
) -> Predictions:
    """Read every file with the safe loader and classify it (``refine``: see :func:`classify`).

    A bad file (unreadable, hostile, NaN pixels, constant, wrong shape, ...) raises :class:`LensFileError`
    naming it, unless ``skip_bad``: then it is listed in :attr:`Predictions.skipped`. No readable file at all
    raises :class:`LensHFError`.
    """
    probs, sources, skipped = classify(
        loaded,
        ((str(f), str(f)) for f in files),
        batch_size=batch_size,
        tta=tta,
        skip_bad=skip_bad,
        total=len(files),
        desc="predict",
        progress=progress,
        refine=refine,
    )
    if not sources:
        first = f"; first: {skipped[0][0]}: {skipped[0][1]}" if skipped else ""
        raise LensHFError(f"none of the {len(files)} input file(s) could be read{first}")
    return Predictions(
        labels=loaded.labels,
        probs=probs,
        sources=sources,
        skipped=skipped,
        order=[str(f) for f in files],
        scaling=loaded.scaling,
    )


def _folder_records(path: Path, split: str) -> list[Record]:
    """The records of a raw data folder (:func:`lens_hf.data.readers.scan_folder`), only those of ``split``
    when the folder has split sub-folders."""
    records = scan_folder(path)
    if records[0].split is not None:
        wanted = SPLIT_FOLDERS.get(split.lower(), split)
        available = sorted({r.split for r in records})
        if wanted not in available:
            raise LensHFError(f"{path}: no split {split!r} (available: {', '.join(available)})")
        records = [r for r in records if r.split == wanted]
    return records


def _row_names(ds: Any, path: Path, split: str) -> list[str]:
    """A name per row of a saved dataset split: its ``path`` column, else ``<folder>[<split>][<row>]``."""
    paths = ds["path"] if "path" in ds.column_names else [None] * len(ds)
    return [p if p else f"{path}[{split}][{i}]" for i, p in enumerate(paths)]


def evaluate_data(
    loaded: LoadedModel,
    data: str | os.PathLike,
    *,
    split: str = "test",
    batch_size: int = 64,
    tta: str = "none",
    skip_bad: bool = False,
    progress: bool | None = None,
) -> tuple[np.ndarray, Predictions]:
    """Classify a labelled data folder: a saved DatasetDict / parquet folder (``split``) or any raw folder
    :func:`lens_hf.data.readers.scan_folder` reads (its split folders honoured when ``split`` names one).

    Returns the true label ids (N,) in the model's label order and the predictions.
    """
    _check_tta(tta)
    if loaded.scaling is not None:
        raise LensHFError(f"{loaded.path}: a regression model; evaluate it with evaluate_regression_data")
    model_index = {}
    for i, name in enumerate(loaded.labels):
        canon = canonical_label(name)
        if canon is None:
            raise LensHFError(
                f"{loaded.path}: model label {name!r} is not a lensing class; cannot score labelled data"
            )
        model_index[canon] = i

    def to_model_id(label: str) -> int:
        canon = canonical_label(label)
        if canon not in model_index:
            raise LensHFError(
                f"{data}: class {label!r} is not one of the model's labels ({', '.join(loaded.labels)})"
            )
        return model_index[canon]

    path = Path(data)
    if is_saved_dataset(path):
        ds = load_any(path, split=split)
        feature = ds.features["label"]
        if not hasattr(feature, "names"):
            raise LensHFError(f"{path}: the label column is not a class label ({feature})")
        names = feature.names
        y_all = np.array([to_model_id(names[i]) for i in ds["label"]], dtype=np.int64)
        order = _row_names(ds, path, split)
        items = ((order[i], np.asarray(row["image"], dtype=np.float32)) for i, row in enumerate(ds))
        probs, sources, skipped = classify(
            loaded,
            items,
            batch_size=batch_size,
            tta=tta,
            skip_bad=skip_bad,
            total=len(ds),
            desc="evaluate",
            progress=progress,
        )
        if not sources:
            raise LensHFError(f"{path}: none of the {len(ds)} image(s) could be classified")
        dropped = {s for s, _ in skipped}
        y_true = np.array([y for s, y in zip(order, y_all) if s not in dropped], dtype=np.int64)
        preds = Predictions(labels=loaded.labels, probs=probs, sources=sources, skipped=skipped, order=order)
        return y_true, preds
    records = _folder_records(path, split)
    label_of = {r.path: r.label for r in records}
    for r in records:
        to_model_id(r.label)
    preds = predict_files(
        loaded,
        [Path(r.path) for r in records],
        batch_size=batch_size,
        tta=tta,
        skip_bad=skip_bad,
        progress=progress,
    )
    y_true = np.array([to_model_id(label_of[s]) for s in preds.sources], dtype=np.int64)
    return y_true, preds


def evaluate_regression_data(
    loaded: LoadedModel,
    data: str | os.PathLike,
    *,
    split: str = "test",
    batch_size: int = 64,
    tta: str = "none",
    skip_bad: bool = False,
    progress: bool | None = None,
    refine: LikelihoodRefiner | None = None,
) -> tuple[np.ndarray, Predictions, int]:
    """Predict the target of a regression model on data that record it, and return the true values.

    The true value of each image is its metadata: the target column of a saved DatasetDict / parquet folder
    (``split``), else, for a raw folder (:func:`lens_hf.data.readers.scan_folder`, its split folders honoured),
    ``metadata.csv`` or what the file stores (a DeepLense axion file: ``[image, axion_mass]``). Images without a
    finite value under the model's transform (for ``axion_mass``: all but the vortices) are not predicted.

    Returns the true values (N,) in physical units, the predictions (``probs`` (N, 1) in physical units) and the
    number of images without a value.
    """
    _check_tta(tta)
    scaling = loaded.scaling
    if scaling is None:
        raise LensHFError(f"{loaded.path}: a classifier; evaluate it with evaluate_data")
    target, path = scaling.target, Path(data)
    truth: dict[str, float] = {}
    read_skipped: list[tuple[str, str]] = []

    def has_value(value: Any) -> bool:
        return value is not None and bool(np.isfinite(apply_transform([value], scaling.transform))[0])

    if is_saved_dataset(path):
        ds = load_any(path, split=split)
        if target not in ds.column_names:
            raise LensHFError(f"{path}: no {target!r} column for the model's target")
        order = _row_names(ds, path, split)
        column = ds[target]
        keep = [i for i, value in enumerate(column) if has_value(value)]
        truth = {order[i]: float(column[i]) for i in keep}
        items: Iterable[tuple[str, Any]] = (
            (order[i], np.asarray(ds[i]["image"], dtype=np.float32)) for i in keep
        )
        total, num_rows = len(keep), len(ds)
    else:
        records = _folder_records(path, split)
        order = [r.path for r in records]

        def read() -> Iterable[tuple[str, Any]]:
            for rec in records:
                try:
                    image, meta = read_image(rec.path)  # the safe loader; the file's own metadata
                except LensFileError as err:
                    if not skip_bad:
                        raise
                    read_skipped.append((rec.path, err.reason))
                    continue
                value = {**rec.meta, **meta}.get(target)
                if has_value(value):
                    truth[rec.path] = float(value)
                    yield rec.path, image

        items, total, num_rows = read(), len(records), len(records)
    values, sources, skipped = classify(
        loaded,
        items,
        batch_size=batch_size,
        tta=tta,
        skip_bad=skip_bad,
        total=total,
        desc="evaluate",
        progress=progress,
        refine=refine,
    )
    skipped = read_skipped + skipped
    without = num_rows - len(truth) - len(read_skipped)
    if not sources:
        raise LensHFError(f"{path}: no image with a finite {scaling.transform} {target} could be predicted")
    preds = Predictions(
        labels=loaded.labels, probs=values, sources=sources, skipped=skipped, order=order, scaling=scaling
    )
    return np.array([truth[s] for s in sources], dtype=np.float64), preds, without


def is_saved_dataset(path: Path) -> bool:
    """A folder written by ``save_to_disk`` (DatasetDict or Dataset), a folder of parquet shards, or a
    ``.parquet`` file."""
    if path.is_file():
        return path.suffix.lower() == ".parquet"
    return (
        (path / "dataset_dict.json").is_file()
        or (path / "state.json").is_file()
        or any(path.glob("*.parquet"))
        or any(path.glob("data/*.parquet"))
    )


__all__ = [
    "DEFAULT_MODEL_DIR",
    "ONNX_FILE",
    "LoadedModel",
    "OnnxImageClassificationPipeline",
    "OnnxImageClassifier",
    "Predictions",
    "check_model_config",
    "check_model_folder",
    "classify",
    "collect_files",
    "default_model_path",
    "evaluate_data",
    "evaluate_regression_data",
    "folder_processor",
    "is_onnx_folder",
    "is_saved_dataset",
    "LikelihoodRefiner",
    "likelihood_refiner",
    "load_classifier",
    "load_onnx_pipeline",
    "load_pipeline",
    "predict_arrays",
    "predict_files",
]
