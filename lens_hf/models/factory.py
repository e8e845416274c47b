"""Named model presets for lensing images, fine-tuning any image-classification checkpoint, loading saved models.

Every preset is sized for single-channel 150x150 px images (DeepLense Model I) and also builds at 64x64 px
(Models II/III) through `image_size`. Stock transformers classes are used untouched; the SPT+LSA ViT is ours.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import torch
import transformers
from huggingface_hub.errors import StrictDataclassError
from safetensors import SafetensorError
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForImageClassification,
    DeiTConfig,
    DeiTForImageClassificationWithTeacher,
    PreTrainedConfig,
    PreTrainedModel,
    ResNetConfig,
    ResNetForImageClassification,
    SwinConfig,
    SwinForImageClassification,
    ViTConfig,
    ViTForImageClassification,
)

from lens_hf.errors import LensHFError
from lens_hf.labels import LABELS
from lens_hf.processing.targets import CONFIG_FIELD, TASKS, TargetScaling

from .vit_spt_lsa import ViTSPTLSAConfig, ViTSPTLSAForImageClassification, ViTSPTLSAModel
from .vit_spt_lsa.modeling_vit_spt_lsa import ViTSPTLSAPatchEmbeddings

# family -> (config class, model class)
FAMILIES: dict[str, tuple[type[PreTrainedConfig], type[PreTrainedModel]]] = {
    "vit": (ViTConfig, ViTForImageClassification),
    "vit_spt_lsa": (ViTSPTLSAConfig, ViTSPTLSAForImageClassification),
    "deit": (DeiTConfig, DeiTForImageClassificationWithTeacher),
    "swin": (SwinConfig, SwinForImageClassification),
    "resnet": (ResNetConfig, ResNetForImageClassification),
}

# lens_hf's own classes that `load_model` may instantiate by architecture name.
OWN_CLASSES: dict[str, type[PreTrainedModel]] = {
    "ViTSPTLSAForImageClassification": ViTSPTLSAForImageClassification,
    "ViTSPTLSAModel": ViTSPTLSAModel,
}

NATIVE_IMAGE_SIZE = 150  # px, DeepLense Model I


@dataclass(frozen=True)
class ModelPreset:
    """One named model: its family (a key of `FAMILIES`) and config kwargs at 150 px, 1 channel (read-only)."""

    family: str
    config: Mapping[str, Any]
    description: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))


# The ViT-like tiny presets share one size so their comparison is about the architecture only:
# 15x15 patches of 10 px, width 192, 6 layers, 3 heads of 64, MLP ratio 2 (as the SPT/LSA paper on small data).
_VIT_TINY: dict[str, Any] = {
    "image_size": NATIVE_IMAGE_SIZE,
    "patch_size": 10,
    "hidden_size": 192,
    "num_hidden_layers": 6,
    "num_attention_heads": 3,
    "intermediate_size": 384,
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "layer_norm_eps": 1e-6,
}

MODEL_PRESETS: dict[str, ModelPreset] = {
    "vit-tiny": ModelPreset("vit", _VIT_TINY, "stock ViT (transformers ViTForImageClassification)"),
    "vit-spt-lsa-tiny": ModelPreset(
        "vit_spt_lsa",
        {**_VIT_TINY, "use_spt": True, "use_lsa": True},
        "ViT with Shifted Patch Tokenization and Locality Self-Attention (Lee et al. 2021)",
    ),
    "vit-spt-tiny": ModelPreset(
        "vit_spt_lsa", {**_VIT_TINY, "use_spt": True, "use_lsa": False}, "ablation: SPT only"
    ),
    "vit-lsa-tiny": ModelPreset(
        "vit_spt_lsa", {**_VIT_TINY, "use_spt": False, "use_lsa": True}, "ablation: LSA only"
    ),
    "vit-spt-lsa-stem": ModelPreset(
        "vit_spt_lsa",
        {
            **_VIT_TINY,
            # Model I: the central 100 px (5") holding the ring and its arcs, resampled to 64 px
            # (--image_size 96 --center_crop 64); 4x4 tokens, each a 2x2 SPT patch of the stem's 8x8 map.
            "image_size": 64,
            "patch_size": 16,
            "conv_stem_channels": [32, 64, 128],
            "pooling": "mean",
        },
        "SPT+LSA ViT behind a 3-convolution stem (stride 8); the shipped Model I model",
    ),
    "deit-tiny": ModelPreset(
        "deit",
        _VIT_TINY,
        "stock DeiT with a distillation token (DeiTForImageClassificationWithTeacher; logits = mean of both heads)",
    ),
    "swin-tiny": ModelPreset(
        "swin",
        {
            "image_size": NATIVE_IMAGE_SIZE,
            "patch_size": 5,  # 30x30 tokens at 150 px, then 15x15 and 8x8 (HF pads odd maps)
            "embed_dim": 48,
            "depths": [2, 2, 2],
            "num_heads": [3, 6, 12],
            "window_size": 5,
            "mlp_ratio": 2.0,
        },
        "stock Swin Transformer, 3 stages",
    ),
    "resnet-18": ModelPreset(
        "resnet",
        {
            "embedding_size": 64,
            "hidden_sizes": [64, 128, 256, 512],
            "depths": [2, 2, 2, 2],
            "layer_type": "basic",
            "downsample_in_first_stage": False,
        },
        "stock ResNet-18 (basic blocks), the CNN baseline and distillation teacher",
    ),
}


def list_presets() -> list[str]:
    """Names of the model presets, in table order."""
    return list(MODEL_PRESETS)


def _get_preset(name: str) -> ModelPreset:
    if name not in MODEL_PRESETS:
        raise LensHFError(f"unknown model preset {name!r}; choose one of: {', '.join(MODEL_PRESETS)}")
    return MODEL_PRESETS[name]


def _label_maps(labels: Sequence[str]) -> tuple[dict[int, str], dict[str, int]]:
    labels = list(labels)
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise LensHFError(f"labels must be at least two distinct names, got {labels}")
    return dict(enumerate(labels)), {name: i for i, name in enumerate(labels)}


def _head_kwargs(task: str, labels: Sequence[str], target: str | TargetScaling | None) -> dict[str, Any]:
    """Config fields of the head: one output per label for ``"classification"``; for ``"regression"`` one output
    named after ``target`` (a metadata column, or its :class:`TargetScaling`, then recorded as
    ``config.lens_regression``), ``problem_type="regression"`` so transformers' own loss is the MSE."""
    if task not in TASKS:
        raise LensHFError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    if task == "classification":
        id2label, label2id = _label_maps(labels)
        return {"id2label": id2label, "label2id": label2id}
    if target is None:
        raise LensHFError("a regression model needs a target (the metadata column it predicts)")
    name = target.target if isinstance(target, TargetScaling) else str(target)
    kwargs: dict[str, Any] = {"id2label": {0: name}, "label2id": {name: 0}, "problem_type": "regression"}
    if isinstance(target, TargetScaling):
        kwargs[CONFIG_FIELD] = target.to_dict()
    return kwargs


def _square_size(value: Any) -> int:
    """An int image/patch size from an int or an (h, w) pair."""
    if isinstance(value, (list, tuple)):
        return int(value[0])
    return int(value)


def nearest_divisor(image_size: int, target: int, multiple_of: int = 1) -> int:
    """The divisor of `image_size` (>= 2 when possible, a multiple of `multiple_of`) closest to `target`; ties go
    to the larger one. `target` itself when no divisor qualifies (the config then explains the problem)."""
    divisors = [d for d in range(2, image_size + 1) if image_size % d == 0 and d % multiple_of == 0]
    if not divisors:
        return target if multiple_of > 1 else 1
    return min(divisors, key=lambda d: (abs(d - target), -d))


def swin_max_window(image_size: int, patch_size: int, num_stages: int) -> int:
    """Largest `window_size` HF Swin runs with: the side of the last stage's feature map.

    HF pads the image to whole patches and odd feature maps before each 2x2 merge, so the side is
    ceil(image / patch) halved (rounding up) once per stage after the first. A larger window is clamped at run
    time to the map while the relative-position table keeps the configured size, and the forward pass fails.
    """
    side = math.ceil(image_size / patch_size)
    for _ in range(num_stages - 1):
        side = math.ceil(side / 2)
    return side


def check_swin_config(config: SwinConfig) -> None:
    """Raise `LensHFError` naming a working window when HF Swin cannot run this window/image/patch combination."""
    image_size = _square_size(config.image_size)
    patch_size = _square_size(config.patch_size)
    num_stages = len(config.depths)
    largest = swin_max_window(image_size, patch_size, num_stages)
    if config.window_size > largest:
        raise LensHFError(
            f"swin window_size {config.window_size} does not fit {image_size} px images with patch_size "
            f"{patch_size} and {num_stages} stages (last feature map {largest}x{largest}); "
            f"use window_size={largest} or smaller"
        )


def _sized_kwargs(preset: ModelPreset, image_size: int, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Preset kwargs adapted to `image_size`: patch size kept when it divides the image, else the nearest
    divisor (10 -> 8 at 64 px); the Swin window clamped to what the last stage allows. Explicit overrides win."""
    kwargs = copy.deepcopy(dict(preset.config))
    if preset.family == "resnet":
        return {**kwargs, **overrides}
    kwargs["image_size"] = image_size
    if "patch_size" not in overrides and image_size % kwargs["patch_size"] != 0:
        # A conv stem of k stride-2 layers needs patches that are multiples of 2**k.
        stride = 2 ** len(overrides.get("conv_stem_channels", kwargs.get("conv_stem_channels")) or [])
        kwargs["patch_size"] = nearest_divisor(image_size, kwargs["patch_size"], multiple_of=stride)
    kwargs.update(overrides)
    if preset.family == "swin" and "window_size" not in overrides:
        largest = swin_max_window(kwargs["image_size"], kwargs["patch_size"], len(kwargs["depths"]))
        kwargs["window_size"] = min(kwargs["window_size"], largest)
    return kwargs


def create_model(
    preset: str,
    *,
    image_size: int | None = None,
    num_channels: int = 1,
    labels: Sequence[str] = LABELS,
    task: str = "classification",
    target: str | TargetScaling | None = None,
    **overrides: Any,
) -> PreTrainedModel:
    """A randomly initialised classifier (or regressor) from a named preset.

    Args:
        preset: a name from `MODEL_PRESETS`.
        image_size: input side in px (150 for Model I, 64 for Models II/III); inputs are
            (batch, num_channels, image_size, image_size). Default: the preset's own size.
        num_channels: input channels (1 for lensing images).
        labels: class names in id order; the head has len(labels) outputs.
        task: ``"classification"``, or ``"regression"``: one output, ``config.problem_type = "regression"``.
        target: for regression, the metadata column predicted, or its
            :class:`~lens_hf.processing.targets.TargetScaling` (saved as ``config.lens_regression``).
        **overrides: config fields replacing the preset's (e.g. `num_hidden_layers=2`, `window_size=4`).

    Raises:
        LensHFError: unknown preset, or sizes the architecture cannot run (one-line reason).
    """
    entry = _get_preset(preset)
    if image_size is None:
        image_size = int(entry.config.get("image_size", NATIVE_IMAGE_SIZE))
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
        raise LensHFError(f"image_size must be an integer >= 8 px, got {image_size!r}")
    config_class, model_class = FAMILIES[entry.family]
    kwargs = _sized_kwargs(entry, image_size, overrides)
    kwargs.update(num_channels=num_channels, **_head_kwargs(task, labels, target))
    try:
        config = config_class(**kwargs)
    except (ValueError, TypeError, StrictDataclassError) as err:
        raise LensHFError(f"model preset {preset!r} at {image_size} px: {_one_line(err)}") from err
    if entry.family == "swin":
        check_swin_config(config)
    if entry.family == "resnet":
        # ResNet takes any size; recorded so every preset's config tells the input size it was built for.
        config.image_size = image_size
    model = model_class(config)
    if entry.family == "deit":
        deit_paper_init(model)
    return model


@torch.no_grad()
def deit_paper_init(model: PreTrainedModel) -> None:
    """Give a from-scratch DeiT the initialisation of Touvron et al. (2021) and timm: class token, distillation
    token and position embeddings drawn from a truncated normal (std ``config.initializer_range``).

    transformers 5 sets all three to zero in ``DeiTPreTrainedModel._init_weights``: both tokens then start
    equal and no token knows where it is, and a DeiT trained from scratch on lensing images learns slower than
    the ViT of the same size (benchmarks/README.md). Checkpoints loaded with ``from_pretrained`` keep their
    weights: this is called only on models built from a preset."""
    std = model.config.initializer_range
    embeddings = model.base_model.embeddings
    for name in ("cls_token", "distillation_token", "position_embeddings"):
        tensor = getattr(embeddings, name, None)
        if tensor is not None:
            nn.init.trunc_normal_(tensor, mean=0.0, std=std)  # as ViT's _init_weights and timm


def _one_line(err: BaseException) -> str:
    """The message of `err` on one line."""
    text = str(err).strip() or type(err).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _read_config(name_or_path: str | Path) -> PreTrainedConfig:
    """The config of a local model folder or a Hub id (no remote code)."""
    source = str(name_or_path)
    local = Path(source).expanduser()
    if local.exists() and not (local / "config.json").is_file():
        raise LensHFError(f"{source}: not a model folder (no config.json)")
    try:
        # Never the folder's own code, and never an interactive "run the custom code? [y/N]" prompt.
        return AutoConfig.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as err:
        raise LensHFError(f"{source}: cannot load a model config ({_one_line(err)})") from err


def _class_by_name(name: str) -> type[PreTrainedModel] | None:
    cls = OWN_CLASSES.get(name) or getattr(transformers, name, None)
    if isinstance(cls, type) and issubclass(cls, PreTrainedModel):
        return cls
    return None


def _image_classification_class(config: PreTrainedConfig) -> type[PreTrainedModel] | None:
    try:
        return AutoModelForImageClassification._model_mapping[type(config)]
    except KeyError:
        return None


def load_model(name_or_path: str | Path) -> PreTrainedModel:
    """Load a saved model (local folder or Hub id) as the class its `config.architectures` names.

    Only transformers' classes and lens_hf's registered ones are used (never remote code), and only
    safetensors weights are read. The model is returned in eval mode.
    """
    source = str(name_or_path)
    config = _read_config(source)
    architectures = list(config.architectures or [])
    model_class = next((c for c in map(_class_by_name, architectures) if c is not None), None)
    if model_class is None and not architectures:
        model_class = _image_classification_class(config)
    if model_class is None:
        raise LensHFError(
            f"{source}: architecture {architectures or config.model_type} is not a transformers or lens_hf class"
        )
    try:
        model, info = model_class.from_pretrained(
            source, config=config, use_safetensors=True, output_loading_info=True
        )
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        raise LensHFError(f"{source}: cannot load {model_class.__name__} weights ({_one_line(err)})") from err
    missing = list(info.get("missing_keys") or [])
    if missing:
        # from_pretrained would silently initialise these at random: refuse instead of predicting noise.
        raise LensHFError(
            f"{source}: the weights lack {len(missing)} tensor(s) {model_class.__name__} needs "
            f"(e.g. {sorted(missing)[0]}); the weights file does not belong to this config"
        )
    return model.eval()


def _finetuning_class(config: PreTrainedConfig, architecture: str | None) -> type[PreTrainedModel]:
    """The classifier class to fine-tune: `architecture` if given, else the checkpoint's own classifier class
    (keeps DeiTForImageClassificationWithTeacher), else the image-classification class of its model type."""
    candidates = [architecture] if architecture else list(config.architectures or [])
    image_classes = set(AutoModelForImageClassification._model_mapping.values()) | {
        DeiTForImageClassificationWithTeacher
    }
    for name in candidates:
        cls = _class_by_name(name)
        if cls is not None and (architecture or cls in image_classes):
            return cls
        if architecture:
            raise LensHFError(f"unknown architecture {architecture!r}: not a transformers or lens_hf class")
    cls = _image_classification_class(config)
    if cls is None:
        raise LensHFError(
            f"model type {config.model_type!r} has no image-classification class in transformers"
        )
    return cls


def _input_layer(model: PreTrainedModel, num_channels: int) -> tuple[str, nn.Module]:
    """The layer that reads the pixels: SPT patch embeddings, or the first Conv2d taking `num_channels`."""
    for name, module in model.named_modules():
        if isinstance(module, ViTSPTLSAPatchEmbeddings) and module.stem is None:
            return name, module  # with a conv stem, its first convolution reads the pixels (found next)
        if isinstance(module, nn.Conv2d) and module.in_channels == num_channels:
            return name, module
    raise LensHFError(f"{type(model).__name__}: no input convolution taking {num_channels} channels found")


def _fold_channels(model: PreTrainedModel, state: dict[str, torch.Tensor], in_channels: int) -> None:
    """Fold the input layer of `model` from `in_channels` to 1 channel in `state`, in place.

    Summing a kernel over its input channels gives exactly the response of the original layer to a grey
    image replicated on every channel. SPT's LayerNorm sees the replicated patch vector with the same mean and
    variance as the single-channel one, so its affine weights are folded into the projection, which is summed.
    """
    name, layer = _input_layer(model, in_channels)
    prefix = f"{name}." if name else ""
    if isinstance(layer, nn.Conv2d):
        key = f"{prefix}weight"
        state[key] = state[key].sum(dim=1, keepdim=True)  # (out, C, kh, kw) -> (out, 1, kh, kw)
        return
    if not layer.use_spt:
        key = f"{prefix}projection.weight"
        state[key] = state[key].sum(dim=1, keepdim=True)
        return
    weight = state[f"{prefix}projection.weight"]  # (hidden, p*p*5*C)
    bias = state[f"{prefix}projection.bias"]
    norm_weight = state[f"{prefix}layernorm.weight"]
    norm_bias = state[f"{prefix}layernorm.bias"]
    hidden = weight.shape[0]
    effective = weight * norm_weight  # LayerNorm scale moved into the projection
    # (hidden, p*p*5*C) -> (hidden, p*p*5, C): features are pixel-major, channel-minor
    folded = effective.reshape(hidden, -1, in_channels).sum(dim=-1)
    state[f"{prefix}projection.weight"] = folded
    state[f"{prefix}projection.bias"] = bias + weight @ norm_bias
    state[f"{prefix}layernorm.weight"] = torch.ones(folded.shape[1], dtype=norm_weight.dtype)
    state[f"{prefix}layernorm.bias"] = torch.zeros(folded.shape[1], dtype=norm_bias.dtype)


def _widen_channels(model: PreTrainedModel, state: dict[str, torch.Tensor], num_channels: int) -> None:
    """Widen the one-channel input layer of `model` to `num_channels` in `state`, in place: the first channel
    keeps its weights and the new ones start at zero, so the widened model answers as the original one does
    (exactly for a convolution; SPT's LayerNorm over the patch vector sees the zero channels too).
    """
    name, layer = _input_layer(model, 1)
    prefix = f"{name}." if name else ""
    if isinstance(layer, nn.Conv2d) or not layer.use_spt:
        key = f"{prefix}weight" if isinstance(layer, nn.Conv2d) else f"{prefix}projection.weight"
        weight = state[key]  # (out, 1, kh, kw)
        state[key] = torch.cat(
            [weight, weight.new_zeros((weight.shape[0], num_channels - 1, *weight.shape[2:]))], 1
        )
        return
    # SPT: (hidden, p*p*5) -> (hidden, p*p*5*C), features pixel-major and channel-minor.
    for key in (f"{prefix}projection.weight", f"{prefix}layernorm.weight", f"{prefix}layernorm.bias"):
        value = state[key]
        wide = value.new_zeros((*value.shape, num_channels))
        wide[..., 0] = value
        if key.endswith("layernorm.weight"):
            wide[..., 1:] = 1.0
        state[key] = wide.reshape(*value.shape[:-1], -1)


def _resize_position_embeddings(state: dict[str, torch.Tensor], old_grid: int, new_grid: int) -> list[str]:
    """Bicubically resize every (1, extra + grid^2, dim) position embedding; extra (CLS, distillation) tokens kept."""
    resized = []
    for key, value in state.items():
        if not key.endswith("position_embeddings") or value.ndim != 3:
            continue
        extra = value.shape[1] - old_grid**2
        if not 0 <= extra <= 2:
            raise LensHFError(
                f"{key}: {value.shape[1]} positions do not match a {old_grid}x{old_grid} patch grid"
            )
        dim = value.shape[-1]
        # (1, grid*grid, dim) -> (1, dim, grid, grid)
        grid = value[:, extra:].reshape(1, old_grid, old_grid, dim).permute(0, 3, 1, 2)
        grid = nn.functional.interpolate(
            grid.float(), size=(new_grid, new_grid), mode="bicubic", align_corners=False
        ).to(value.dtype)
        # (1, dim, new, new) -> (1, new*new, dim)
        state[key] = torch.cat([value[:, :extra], grid.permute(0, 2, 3, 1).reshape(1, -1, dim)], dim=1)
        resized.append(key)
    return resized


def load_for_finetuning(
    name_or_path: str | Path,
    *,
    image_size: int | None = None,
    num_channels: int = 1,
    labels: Sequence[str] = LABELS,
    architecture: str | None = None,
    task: str = "classification",
    target: str | TargetScaling | None = None,
) -> PreTrainedModel:
    """Load any image-classification checkpoint ready to fine-tune on lensing images.

    The head gets one output per label (re-initialised unless the checkpoint already has exactly these labels),
    an RGB input layer is folded to 1 channel by summing its kernel over the input channels (ViT, DeiT, Swin,
    ResNet and the SPT+LSA ViT), and with `image_size` the position embeddings are resized bicubically.

    Args:
        name_or_path: a local model folder or a Hub id.
        image_size: new input side in px; None keeps the checkpoint's.
        num_channels: input channels of the returned model (1, the checkpoint's own count, or for a one-channel
            checkpoint any count: the new channels start with zero weights).
        labels: class names in id order.
        architecture: a transformers/lens_hf class name overriding the checkpoint's architecture
            (e.g. "DeiTForImageClassificationWithTeacher" for distillation).
        task, target: as in :func:`create_model` (a regression head has one output).

    Returns:
        The model, in train mode, with `config.num_channels`, `config.image_size` and the label maps updated.
    """
    source = str(name_or_path)
    config = _read_config(source)
    model_class = _finetuning_class(config, architecture)
    head = _head_kwargs(task, labels, target)
    if task == "classification":
        head["problem_type"] = None  # a regression checkpoint fine-tuned as a classifier
    # The head's fields go on the config itself: a field the checkpoint's config lacks (the regression scaling)
    # would otherwise be passed to the model's __init__.
    load_config = copy.deepcopy(config)
    for key, value in head.items():
        setattr(load_config, key, value)
    try:
        model = model_class.from_pretrained(
            source, config=load_config, ignore_mismatched_sizes=True, use_safetensors=True
        )
    except (OSError, ValueError, RuntimeError) as err:
        raise LensHFError(f"{source}: cannot load {model_class.__name__} weights ({_one_line(err)})") from err
    if dict(config.id2label or {}) != head["id2label"] or config.problem_type != model.config.problem_type:
        _reset_head(model)
    if task == "classification" and hasattr(model.config, CONFIG_FIELD):
        delattr(model.config, CONFIG_FIELD)  # the scaling of the regression checkpoint's target

    old_channels = int(model.config.num_channels)
    if num_channels not in (1, old_channels) and old_channels != 1:
        raise LensHFError(
            f"{source}: cannot turn {old_channels} input channels into {num_channels}; use 1 or {old_channels}"
        )
    has_size = hasattr(model.config, "image_size")
    old_size = _square_size(model.config.image_size) if has_size else None
    new_size = old_size if image_size is None else int(image_size)
    if num_channels == old_channels and new_size == old_size:
        if image_size is not None and not has_size:
            model.config.image_size = int(image_size)
        return model.train()

    state = {key: value.detach().clone() for key, value in model.state_dict().items()}
    if num_channels < old_channels:
        _fold_channels(model, state, old_channels)
    elif num_channels > old_channels:
        _widen_channels(model, state, num_channels)
    new_config = copy.deepcopy(model.config)
    new_config.num_channels = num_channels
    if new_size != old_size:
        new_config.image_size = new_size
        if has_size and hasattr(model.config, "patch_size"):
            patch = _square_size(model.config.patch_size)
            _resize_position_embeddings(state, old_size // patch, new_size // patch)
    if isinstance(new_config, ViTSPTLSAConfig):
        try:
            new_config.check_architecture()
        except ValueError as err:
            raise LensHFError(f"{source}: {err}") from err
    if isinstance(new_config, SwinConfig):
        check_swin_config(new_config)
    new_model = type(model)(new_config)
    new_model.load_state_dict(state, strict=True)
    return new_model.train()


def _reset_head(model: PreTrainedModel) -> None:
    """Re-initialise the linear layers outside the base model (the classification heads)."""
    base = model.base_model_prefix
    std = getattr(model.config, "initializer_range", None) or 0.02
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and not name.startswith(f"{base}."):
            with torch.no_grad():
                module.weight.normal_(mean=0.0, std=std)
                if module.bias is not None:
                    module.bias.zero_()


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Optimizer parameter groups: weight decay on the weights of linear and convolution layers only.

    Those are the >= 2-D parameters that multiply inputs; norms, biases, CLS/distillation tokens, position
    embeddings, relative-position tables and LSA temperatures get none. Frozen parameters are left out.
    """
    decay_ids = {
        id(module.weight)
        for module in model.modules()
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and module.weight.ndim >= 2
    }
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if id(param) in decay_ids else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameter values (a shared tensor counted once); with `trainable_only`, those with requires_grad."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "FAMILIES",
    "MODEL_PRESETS",
    "ModelPreset",
    "check_swin_config",
    "count_parameters",
    "create_model",
    "list_presets",
    "load_for_finetuning",
    "load_model",
    "nearest_divisor",
    "param_groups",
    "swin_max_window",
]
