"""Model and dataset cards (README.md) rendered from the ``hub_cards/`` templates and saved metrics.

Templates use ``string.Template`` placeholders (``${name}``); everything that varies (YAML front matter,
tables) is built here. The YAML front matter is produced by huggingface_hub's card-data classes, so the
``model-index`` block is exactly what the Hub parses into ``card.data.eval_results``.
"""

from __future__ import annotations

import json
import os
import shlex
import struct
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import Any

from huggingface_hub import DatasetCardData, EvalResult, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from lens_hf.errors import LensHFError
from lens_hf.labels import LABELS
from lens_hf.utils import atomic_write_text

_PACKAGE_DIR = Path(__file__).resolve().parent
# The repository's hub_cards/ (source checkout), or a copy shipped inside the package.
TEMPLATE_DIRS: tuple[Path, ...] = (_PACKAGE_DIR.parent / "hub_cards", _PACKAGE_DIR / "hub_cards")

MODEL_TAGS: tuple[str, ...] = (
    "gravitational-lensing",
    "dark-matter",
    "deeplense",
    "lens_hf",
    "vision-transformer",
)
DATASET_TAGS: tuple[str, ...] = ("gravitational-lensing", "dark-matter", "deeplense", "lens_hf", "simulation")

# Files next to the weights that may describe the training run, most specific first.
TRAINING_FILES: tuple[str, ...] = ("lens_hf_training.json", "training_args.json")

CLASS_PHYSICS: dict[str, str] = {
    "no_substructure": "the main halo only (SIE + external shear), no substructure",
    "subhalo": "25 cold-dark-matter point-mass subhalos, dN/dm ~ m^-0.9 on 1e6-1e10 Msun, 0.25-2.0 arcsec from the centre",
    "vortex": (
        "a superfluid dark-matter vortex: 100 point masses (3e10 Msun in total) on a line through the centre, "
        "its length set by the axion mass m_a = 10^U(-24, -22) eV"
    ),
}

PRESET_NOTES: dict[str, str] = {
    "model_i": (
        "Model I: 150x150 px at 0.05 arcsec/px, Gaussian PSF (FWHM 0.087 arcsec), background rms 0.01 and "
        "Poisson noise with exposure 10^U(3, 3.5) s; elliptical Sersic source (amplitude 20, R = 0.25 arcsec, "
        "n = 1) centred within +-0.35 arcsec"
    ),
    "model_ii": (
        "Model II: 64x64 px, Euclid VIS-like observation (0.101 arcsec/px, seeing 0.16 arcsec, 6-year coadd) "
        "with lenstronomy's noise model; elliptical Sersic source of magnitude 20"
    ),
    "model_iii": (
        "Model III: 64x64 px, HST WFC3/F160W-like observation (0.08 arcsec/px, Gaussian PSF 0.08 arcsec) "
        "with lenstronomy's noise model; elliptical Sersic source of magnitude 20"
    ),
}
LENS_NOTE = (
    "Main lens in every class: singular isothermal ellipsoid with the Einstein radius of a 1e12 Msun halo "
    "(e1 = 0.1) plus external shear (gamma1 = 0.05); lens at z = 0.5, source at z = 1.0, flat LCDM "
    "(H0 = 70, Om0 = 0.3)."
)

# Published macro one-vs-rest ROC-AUC on the official DeepLense test sets (5,000 images per class).
PUBLISHED_AUC: dict[str, list[tuple[str, float]]] = {
    "model_i": [
        ("CoAtNet-nano, ImageNet-pretrained", 0.9955),
        ("EfficientNet-B2", 0.9943),
        ("ResNet + ViT-tiny hybrid", 0.9818),
        ("CvT from scratch", 0.9787),
    ],
    "model_ii": [("any model that trains (saturated)", 1.000)],
    "model_iii": [("any model that trains (saturated)", 1.000)],
}

# Training settings shown in the card's table (the full record goes in a collapsed block).
KEY_SETTINGS: tuple[str, ...] = (
    "model_preset",
    "model_name_or_path",
    "preset",
    "dataset",
    "dataset_name",
    "data_dir",
    "per_class",
    "train_per_class",
    "eval_per_class",
    "test_per_class",
    "sim_seed",
    "image_size",
    "random_crop",
    "num_channels",
    "normalization",
    "augment",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "weight_decay",
    "optim",
    "lr_scheduler_type",
    "warmup_ratio",
    "warmup_steps",
    "lr_schedule",
    "lr_step_epochs",
    "lr_step_gamma",
    "label_smoothing_factor",
    "distillation_alpha",
    "teacher",
    "seed",
    "recipe",
    "world_size",
    "device",
    "global_step",
    "train_runtime_s",
)


# ---------------------------------------------------------------------------------------------- helpers


def _template(name: str) -> Template:
    for folder in TEMPLATE_DIRS:
        path = folder / name
        if path.is_file():
            return Template(path.read_text(encoding="utf-8"))
    raise LensHFError(f"card template {name} not found in {', '.join(str(d) for d in TEMPLATE_DIRS)}")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise LensHFError(f"{path}: cannot read ({type(err).__name__}: {err})") from None
    except json.JSONDecodeError as err:
        raise LensHFError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {"a.b": value}; lists and scalars are kept as values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _lookup(flat: Mapping[str, Any], *names: str) -> Any:
    """The first non-empty value named one of ``names`` (in ``names`` order): a top-level key first,
    then any nested key whose last dotted component matches."""
    for name in names:
        if flat.get(name) not in (None, "", [], {}):
            return flat[name]
        for key, value in flat.items():
            if key.rsplit(".", 1)[-1] == name and value not in (None, "", [], {}):
                return value
    return None


def _is_hub_id(value: Any) -> bool:
    if not isinstance(value, str) or "/" not in value or os.path.exists(value):
        return False
    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def _fmt_auc(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def _fmt_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _command_text(command: Any) -> str | None:
    if command in (None, "", []):
        return None
    if isinstance(command, list | tuple):
        return shlex.join(str(c) for c in command)
    return str(command)


def count_safetensors_parameters(model_dir: str | os.PathLike) -> int | None:
    """Number of values stored in the folder's safetensors weights (read from the file headers only)."""
    root = Path(model_dir)
    files = sorted(root.glob("model*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        try:
            with open(file, "rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                if length > 100_000_000:
                    return None
                header = json.loads(f.read(length))
        except (OSError, struct.error, ValueError):
            return None
        for key, entry in header.items():
            if key != "__metadata__" and isinstance(entry, Mapping):
                count = 1
                for dim in entry.get("shape", []):
                    count *= int(dim)
                total += count
    return total


def _format_params(params: Any) -> str:
    n = int(params)
    return f"{n / 1e6:.2f} M ({n:,})" if n >= 100_000 else f"{n:,}"


# ------------------------------------------------------------------------------------------- model card


def _load_training(model_dir: Path, training: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge the training records found in the folder, then ``training`` on top (it wins)."""
    merged: dict[str, Any] = {}
    for name in reversed(TRAINING_FILES):
        path = model_dir / name
        if path.is_file():
            data = _read_json(path)
            if isinstance(data, Mapping):
                merged.update(data)
    if training:
        merged.update(training)
    return merged


def _check_metrics(metrics: Mapping[str, Any], source: str) -> None:
    needed = ("labels", "accuracy", "roc_auc_per_class", "roc_auc_macro", "roc_auc_micro", "num_samples")
    missing = [k for k in needed if k not in metrics]
    if missing:
        raise LensHFError(
            f"{source}: missing metric key(s) {missing}; write it with lens_hf.metrics.write_evaluation"
        )


def _eval_results(metrics: Mapping[str, Any], dataset_type: str, dataset_name: str) -> list[EvalResult]:
    common = {
        "task_type": "image-classification",
        "task_name": "Image classification",
        "dataset_type": dataset_type,
        "dataset_name": dataset_name,
        "dataset_split": str(metrics.get("split", "test")),
    }
    results = []
    for config, title in (("macro", "macro"), ("micro", "micro")):
        value = metrics.get(f"roc_auc_{config}")
        if value is not None:
            results.append(
                EvalResult(
                    metric_type="roc_auc",
                    metric_name=f"ROC-AUC ({title}, one-vs-rest)",
                    metric_config=config,
                    metric_value=round(float(value), 6),
                    **common,
                )
            )
    for label, value in metrics["roc_auc_per_class"].items():
        if value is not None:
            results.append(
                EvalResult(
                    metric_type="roc_auc",
                    metric_name=f"ROC-AUC ({label})",
                    metric_config=str(label),
                    metric_value=round(float(value), 6),
                    **common,
                )
            )
    results.append(
        EvalResult(
            metric_type="accuracy",
            metric_name="Accuracy",
            metric_value=round(float(metrics["accuracy"]), 6),
            **common,
        )
    )
    return results


def _model_rows(config: Mapping[str, Any], preproc: Mapping[str, Any], params: Any) -> str:
    rows: list[tuple[str, str]] = []
    model_type = config.get("model_type", "unknown")
    archs = config.get("architectures") or []
    rows.append(("architecture", f"`{model_type}`" + (f" (`{archs[0]}`)" if archs else "")))
    id2label = config.get("id2label") or {}
    if id2label:
        ordered = [id2label[k] for k in sorted(id2label, key=lambda k: int(k))]
        rows.append(("classes", ", ".join(f"{i}: `{name}`" for i, name in enumerate(ordered))))
    size = config.get("image_size") or preproc.get("size")
    if isinstance(size, Mapping):
        size = f"{size.get('height')}x{size.get('width')}"
    elif isinstance(size, list | tuple):
        size = "x".join(str(s) for s in size)
    elif size is not None:
        size = f"{size}x{size}"
    channels = config.get("num_channels")
    if size is not None or channels is not None:
        rows.append(("input", f"{size or '?'} px, {channels if channels is not None else '?'} channel(s)"))
    for key, title in (
        ("patch_size", "patch size (px)"),
        ("hidden_size", "hidden size"),
        ("embed_dim", "embedding size"),
        ("num_hidden_layers", "layers"),
        ("depths", "stage depths"),
        ("num_attention_heads", "attention heads"),
        ("window_size", "window size"),
    ):
        if config.get(key) is not None:
            rows.append((title, _fmt_value(config[key])))
    if params is not None:
        rows.append(("parameters", _format_params(params)))
    if preproc:
        processor = preproc.get("image_processor_type", "image processor")
        norm = preproc.get("normalization")
        rows.append(
            ("preprocessing", f"`{processor}`" + (f", per-image `{norm}` normalisation" if norm else ""))
        )
    return "\n".join(f"| {a} | {b} |" for a, b in rows)


def _training_section(flat: Mapping[str, Any], info: Mapping[str, Any]) -> str:
    parts = []
    command = _command_text(_lookup(flat, "command"))
    if command:
        parts.append(f"Command:\n\n```bash\n{command}\n```")
    else:
        parts.append("The training command was not recorded with this model.")
    rows = []
    for name in KEY_SETTINGS:
        for key, value in flat.items():
            if key.rsplit(".", 1)[-1] == name and value not in (None, "", [], {}):
                rows.append(f"| `{key}` | {_fmt_value(value)} |")
                break
    if rows:
        parts.append("| setting | value |\n|---|---|\n" + "\n".join(rows))
    if info:
        record = json.dumps(info, indent=2, sort_keys=True, default=str)
        parts.append(
            "<details>\n<summary>All recorded training arguments</summary>\n\n"
            f"```json\n{record}\n```\n\n</details>"
        )
    return "\n\n".join(parts)


def _evaluation_data(metrics: Mapping[str, Any]) -> str:
    """' of `folder` (lens_hf simulation `model_i`, seed 999, 1000 images per class)' for metrics written by
    ``lens-hf evaluate --data folder``; '' when the metrics name no data folder."""
    data = metrics.get("data")
    if not isinstance(data, str) or not data:
        return ""
    from lens_hf.data.simulate import MANIFEST_NAME

    folder = Path(data)
    text = f" of `{folder.name}`"
    try:
        sim = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        text += (
            f" (lens_hf simulation `{sim['preset']}`, seed {int(sim['seed'])}, "
            f"{int(sim['per_class'])} images per class)"
        )
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return text


def _results_section(metrics: Mapping[str, Any] | None, model_dir: Path) -> str:
    if metrics is None:
        return "No evaluation was recorded with this model (no `metrics.json`)."
    split = metrics.get("split", "test")
    lines = [
        f"One-vs-rest ROC-AUC from softmax probabilities on the `{split}` split{_evaluation_data(metrics)}: "
        f"{metrics['num_samples']} images.",
        "",
        "| metric | value |",
        "|---|---|",
        f"| ROC-AUC macro | {_fmt_auc(metrics['roc_auc_macro'])} |",
        f"| ROC-AUC micro | {_fmt_auc(metrics['roc_auc_micro'])} |",
    ]
    lines += [f"| ROC-AUC `{k}` | {_fmt_auc(v)} |" for k, v in metrics["roc_auc_per_class"].items()]
    lines.append(f"| accuracy | {float(metrics['accuracy']):.4f} |")
    if metrics.get("roc_auc_note"):
        lines += ["", f"Note: {metrics['roc_auc_note']}."]
    cm = metrics.get("confusion_matrix")
    labels = list(metrics["labels"])
    if cm:
        lines += ["", "Confusion matrix (rows: true class, columns: predicted class):", ""]
        lines.append("| true \\ predicted | " + " | ".join(f"`{x}`" for x in labels) + " |")
        lines.append("|---" * (len(labels) + 1) + "|")
        lines += [f"| `{labels[i]}` | " + " | ".join(str(v) for v in row) + " |" for i, row in enumerate(cm)]
    for file, alt in (
        ("roc.png", "ROC curves"),
        ("confusion_matrix.png", "Confusion matrix"),
        ("learning_curves.png", "Learning curves"),
    ):
        if (model_dir / file).is_file():
            lines += ["", f"![{alt}]({file})"]
    return "\n".join(lines)


def _training_budget(info: Mapping[str, Any]) -> str | None:
    """'from scratch, 52 min on cpu (1 process)' from a lens_hf training record, or None."""
    runtime = info.get("train_runtime_s")
    if not isinstance(runtime, (int, float)) or runtime <= 0:
        return None
    start = (
        "fine-tuned from a checkpoint"
        if (info.get("model_args") or {}).get("model_name_or_path")
        else "from scratch"
    )
    device = training_device(info)
    world = info.get("world_size") or 1
    return f"{start}, {runtime / 60:.0f} min of training on {device} ({world} process{'es' if world != 1 else ''})"


def training_device(info: Mapping[str, Any]) -> str:
    """'cuda:0 (NVIDIA H100 80GB HBM3)' from a lens_hf training record's ``device`` and ``device_name``."""
    device = info.get("device") or "an unrecorded device"
    if info.get("device_name") and info["device_name"] != device:
        device = f"{device} ({info['device_name']})"
    return device


def _limitations(
    preset: str | None, dataset: Any, metrics: Mapping[str, Any] | None, info: Mapping[str, Any] | None = None
) -> str:
    if preset:
        origin = (
            f"Trained and evaluated on images simulated by lens_hf (the `{preset}` preset, lenstronomy, after the "
            "public DeepLense recipes); these are not the official DeepLense archives."
        )
    elif dataset:
        origin = f"Trained and evaluated on the images in `{dataset}`; DeepLense-style data are simulations."
    else:
        origin = "Trained and evaluated on simulated lensing images."
    items = [
        origin,
        "Domain shift: real observations differ in PSF, noise, lens-galaxy light and source morphology; "
        "expect lower performance on real data and validate before any scientific use.",
        "Every image gets one of the three classes, including images that belong to none of them.",
    ]
    published = PUBLISHED_AUC.get(preset or "")
    if published:
        best_name, best = published[0]
        text = (
            f"Published macro ROC-AUC on the official {preset.replace('_', ' ').title()} test set: "
            + "; ".join(f"{v:.4f} ({n})" for n, v in published)
            + "."
        )
        if metrics is not None and metrics.get("roc_auc_macro") is not None:
            ours = float(metrics["roc_auc_macro"])
            text += (
                f" This model: {ours:.4f} ({ours - best:+.4f} against the best, {best_name}) on a "
                "lens_hf-simulated test set, so the comparison is indicative, not like for like."
            )
            budget = _training_budget(info or {})
            if budget and ours < best:
                text += (
                    f" The published models start from ImageNet weights and train for many GPU hours; this one was "
                    f"trained {budget}."
                )
        items.append(text)
    return "\n".join(f"- {item}" for item in items)


def render_model_card(
    model_dir: str | os.PathLike,
    *,
    metrics: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
    params: int | None = None,
) -> str:
    """The README.md text for a saved model folder.

    Args:
        model_dir: folder with ``config.json`` (and optionally ``preprocessor_config.json``, safetensors
            weights, ``metrics.json``, ``lens_hf_training.json`` / ``training_args.json``, PNG figures).
        metrics: the dict of :func:`lens_hf.metrics.write_evaluation`; default: the folder's ``metrics.json``
            (no results section if there is none).
        training: the training record (command, presets, arguments); merged over the folder's JSON records.
        repo_id: the Hub id used in the usage snippets and the model-index name.
        params: parameter count; default: counted from the safetensors headers.

    Returns:
        Markdown with YAML front matter (license, library, pipeline tag, tags, datasets, model-index).
    """
    root = Path(model_dir)
    config_path = root / "config.json"
    if not config_path.is_file():
        raise LensHFError(f"{root}: no config.json; not a saved model folder")
    config = _read_json(config_path)
    preproc_path = root / "preprocessor_config.json"
    preproc = _read_json(preproc_path) if preproc_path.is_file() else {}

    if metrics is None and (root / "metrics.json").is_file():
        metrics = _read_json(root / "metrics.json")
        _check_metrics(metrics, str(root / "metrics.json"))
    elif metrics is not None:
        _check_metrics(metrics, "metrics")

    info = _load_training(root, training)
    flat = _flatten(info)
    # lens_hf.training records the data it used as {"source": folder | "simulated", "preset", "splits", ...}.
    described = info.get("dataset") if isinstance(info.get("dataset"), Mapping) else {}
    if described:
        dataset = described.get("source")
        preset = described.get("preset")
    else:
        dataset = _lookup(flat, "dataset", "dataset_name", "data_dir", "train_dir", "dataset_path")
        preset = _lookup(flat, "simulation_preset", "data_preset") or (
            None if dataset else _lookup(flat, "preset")
        )
    if isinstance(dataset, str) and dataset.startswith("simulat"):
        dataset = None
    if metrics is not None:
        preset = preset or (None if dataset else metrics.get("preset"))
        dataset = dataset or metrics.get("dataset")
    dataset_id = dataset if _is_hub_id(dataset) else None
    if params is None:
        params = _lookup(flat, "num_parameters", "params", "n_parameters") or count_safetensors_parameters(
            root
        )

    name = repo_id.split("/")[-1] if repo_id else root.resolve().name
    model_ref = repo_id or f"path/to/{name}"
    preset_title = str(preset).replace("_", " ").title() if preset else None
    dataset_type = dataset_id or (f"deeplense-{preset}" if preset else "lens_hf-custom")
    dataset_name = (
        f"DeepLense {preset_title} (lens_hf simulation)"
        if preset_title
        else str(dataset or "lens_hf dataset")
    )

    card_data = ModelCardData(
        license="mit",
        library_name="transformers",
        pipeline_tag="image-classification",
        tags=list(MODEL_TAGS),
        datasets=[dataset_id] if dataset_id else None,
        metrics=["roc_auc", "accuracy"],
        model_name=name,
        eval_results=_eval_results(metrics, dataset_type, dataset_name) if metrics is not None else None,
    )

    arch = config.get("model_type", "image")
    summary = (
        f"A `{arch}` classifier of strong gravitational-lensing images into the three DeepLense dark-matter "
        f"substructure classes ({', '.join(f'`{x}`' for x in LABELS)}), trained with lens_hf"
        + (f" on {dataset_name}." if preset_title or dataset else ".")
    )
    if metrics is not None and metrics.get("roc_auc_macro") is not None:
        summary += f" Macro one-vs-rest ROC-AUC {float(metrics['roc_auc_macro']):.4f} on {metrics['num_samples']} held-out images."

    data_lines = []
    if preset:
        data_lines.append(f"Simulation preset `{preset}`. " + PRESET_NOTES.get(str(preset), "") + ".")
        data_lines.append(LENS_NOTE)
    if dataset:
        link = (
            f"[`{dataset_id}`](https://huggingface.co/datasets/{dataset_id})"
            if dataset_id
            else f"`{dataset}`"
        )
        data_lines.append(f"Dataset: {link}.")
    splits = described.get("splits")
    if isinstance(splits, Mapping) and splits:
        data_lines.append("Images: " + ", ".join(f"{k} {v}" for k, v in splits.items()) + ".")
    else:
        per_class = _lookup(flat, "per_class", "train_per_class")
        if per_class:
            data_lines.append(f"Training images per class: {per_class}.")
    size = described.get("image_size")
    if isinstance(size, list | tuple) and all(size):
        extras = [f"{described[k]}" for k in ("normalization",) if described.get(k)]
        data_lines.append(
            f"Source images {'x'.join(str(v) for v in size)} px"
            + (f", per-image `{extras[0]}` normalisation" if extras else "")
            + (f", `{described['augment']}` augmentation" if described.get("augment") else "")
            + "."
        )
    if not data_lines:
        data_lines.append("The training data were not recorded with this model.")
    data_lines.append("Classes: " + "; ".join(f"`{k}`: {v}" for k, v in CLASS_PHYSICS.items()) + ".")

    return _template("model_card.md").substitute(
        front_matter=card_data.to_yaml().strip(),
        title=name,
        summary=summary,
        model_rows=_model_rows(config, preproc, params),
        data_section="\n\n".join(data_lines),
        training_section=_training_section(flat, info),
        results_section=_results_section(metrics, root),
        model_ref=model_ref,
        limitations=_limitations(str(preset) if preset else None, dataset, metrics, info),
    )


def write_model_card(model_dir: str | os.PathLike, **kwargs: Any) -> Path:
    """Render :func:`render_model_card` into ``model_dir/README.md`` (atomic) and return its path."""
    return atomic_write_text(Path(model_dir) / "README.md", render_model_card(model_dir, **kwargs))


# ----------------------------------------------------------------------------------------- dataset card


def _size_category(rows: int) -> str:
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if rows < limit:
            return name
    return "1M<n<10M"


def render_dataset_card(info: Mapping[str, Any]) -> str:
    """The README.md text of a saved dataset folder (parquet shards under ``data/<split>-*.parquet``).

    Args:
        info: ``preset`` (simulation preset name or None), ``per_class`` (images per class), ``seed``,
            ``splits`` ({split name: rows}), ``image_size`` (int or (H, W) px), ``normalization``,
            ``source`` ("simulation" or the folder the images came from), ``command`` (str or argv list);
            optional ``repo_id``, ``labels`` (class names in id order) and ``simulation`` (a dict of the
            preset's parameters, rendered as a table).
    """
    splits = info.get("splits")
    if not isinstance(splits, Mapping) or not splits:
        raise LensHFError("dataset card: info['splits'] must be a non-empty {split: rows} mapping")
    labels = list(info.get("labels") or LABELS)
    preset = info.get("preset")
    source = info.get("source") or ("simulation" if preset else None)
    simulated = bool(preset) and str(source).lower().startswith("simulat")
    total = sum(int(n) for n in splits.values())
    repo_id = info.get("repo_id")
    preset_title = str(preset).replace("_", " ").title() if preset else None
    title = (
        repo_id.split("/")[-1]
        if repo_id
        else (f"DeepLense {preset_title} lensing images" if preset else "Lensing images")
    )

    card_data = DatasetCardData(
        license="mit",
        task_categories=["image-classification"],
        tags=list(DATASET_TAGS),
        pretty_name=title,
        size_categories=[_size_category(total)],
        configs=[
            {
                "config_name": "default",
                "data_files": [{"split": str(s), "path": f"data/{s}-*.parquet"} for s in splits],
            }
        ],
    )

    size = info.get("image_size")
    if isinstance(size, list | tuple) and size and all(size):
        size_text = "x".join(str(s) for s in size) + " px"
    elif isinstance(size, int):
        size_text = f"{size}x{size} px"
    else:
        size_text = "size as in the source"
    summary = (
        f"{total} strong gravitational-lensing images in {len(labels)} dark-matter substructure classes "
        + (
            f"simulated with lenstronomy (lens_hf preset `{preset}`, seed {info.get('seed')}, "
            f"{info.get('per_class')} images per class)."
            if simulated
            else f"read from `{source}`" + (f" (preset `{preset}`)." if preset else ".")
        )
    )

    sim_lines = []
    if preset:
        note = PRESET_NOTES.get(str(preset))
        sim_lines.append(f"Preset `{preset}`" + (f": {note}." if note else "."))
        sim_lines.append(LENS_NOTE)
    if not simulated and source:
        sim_lines.append(
            f"Images read from `{source}`; their simulation parameters are those of that archive."
        )
    simulation = info.get("simulation")
    if isinstance(simulation, Mapping) and simulation:
        rows = "\n".join(f"| `{k}` | {_fmt_value(v)} |" for k, v in _flatten(simulation).items())
        sim_lines.append("| parameter | value |\n|---|---|\n" + rows)
    if not sim_lines:
        sim_lines.append("No simulation parameters were recorded.")

    return _template("dataset_card.md").substitute(
        front_matter=card_data.to_yaml().strip(),
        title=title,
        summary=summary,
        class_rows="\n".join(
            f"| {i} | `{name}` | {CLASS_PHYSICS.get(name, '')} |" for i, name in enumerate(labels)
        ),
        split_rows="\n".join(f"| `{s}` | {int(n)} |" for s, n in splits.items()),
        image_size_text=size_text,
        normalization=f"`{info.get('normalization') or 'minmax'}` per image",
        label_names=", ".join(f"`{x}`" for x in labels),
        simulation_section="\n\n".join(sim_lines),
        command=_command_text(info.get("command")) or "# command not recorded",
        dataset_ref=repo_id or "path/to/this/folder",
        first_split=str(next(iter(splits))),
    )


def write_dataset_card(out_dir: str | os.PathLike, info: Mapping[str, Any]) -> Path:
    """Render :func:`render_dataset_card` into ``out_dir/README.md`` (atomic) and return its path."""
    return atomic_write_text(Path(out_dir) / "README.md", render_dataset_card(info))


__all__ = [
    "count_safetensors_parameters",
    "render_dataset_card",
    "render_model_card",
    "write_dataset_card",
    "write_model_card",
]
