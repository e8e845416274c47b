"""Model and dataset cards (README.md): huggingface_hub's ``ModelCard`` / ``DatasetCard`` rendered from the
Jinja templates in ``hub_cards/``.

The YAML front matter comes from ``ModelCardData`` / ``DatasetCardData`` (the ``model-index`` block from
``EvalResult`` objects, so the Hub reads the metrics back); the physics comes from the simulation presets
table (:mod:`lens_hf.data.presets`); published reference numbers come from ``reference_results.json``. A card
publishes no secret and no absolute local path: the training record is read through
:func:`lens_hf.redact.redact_record`, a dataset is linked only when it is a Hub id, and every local path is
shown as :func:`lens_hf.redact.public_path` makes it.

Cards read :mod:`lens_hf.data` (presets, simulation records); :mod:`lens_hf.data` should not import this module:
the code that saves a dataset renders its card with :func:`render_dataset_card` (``card_yaml`` takes the
``configs`` / ``dataset_info`` blocks ``datasets`` needs).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData, EvalResult, ModelCard, ModelCardData
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from safetensors import safe_open

from lens_hf.data.presets import PRESETS, einstein_radius
from lens_hf.data.simulate import MANIFEST_NAME
from lens_hf.errors import LensHFError
from lens_hf.labels import LABELS
from lens_hf.redact import public_path, redact_argv, redact_record
from lens_hf.utils import atomic_write_text

_PACKAGE_DIR = Path(__file__).resolve().parent
# Installed package (the build copies hub_cards/ to lens_hf/hub_cards/), then the source checkout's hub_cards/.
TEMPLATE_DIRS: tuple[Path, ...] = (_PACKAGE_DIR / "hub_cards", _PACKAGE_DIR.parent / "hub_cards")
REFERENCE_RESULTS_FILE = _PACKAGE_DIR / "reference_results.json"

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
# The same evaluation with D4 test-time augmentation (`lens-hf evaluate --tta d4`'s metrics.json), shown beside
# metrics.json; and the CPU inference speed written by benchmarks/bench_inference.py.
TTA_METRICS_FILE = "metrics_tta_d4.json"
# The same evaluation of a Model I axion-mass model with the likelihood in place of the network's answer
# (`lens-hf evaluate --refine likelihood`'s metrics.json), shown beside metrics.json.
REFINE_METRICS_FILE = "metrics_refine_likelihood.json"
REFINE_PLOT_FILE = "regression_refine_likelihood.png"  # that evaluation's regression.png
SPEED_FILE = "inference_speed.json"

# What each class contains, when no preset says more (images read from a folder).
CLASS_MEANING: dict[str, str] = {
    "no_substructure": "the smooth main halo only",
    "subhalo": "cold-dark-matter point-mass subhalos",
    "vortex": "a superfluid dark-matter vortex (a line of mass)",
}

# Training settings shown in the card's table, in this order (the full record is a file beside the card).
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
    "center_crop",
    "random_crop",
    "num_channels",
    "normalization",
    "augment",
    "num_train_epochs",
    "max_steps",
    "max_train_minutes",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "weight_decay",
    "optim",
    "lr_schedule",
    "lr_scheduler_type",
    "warmup_ratio",
    "warmup_steps",
    "lr_step_epochs",
    "lr_step_gamma",
    "lr_step_time_fraction",
    "lr_decay_by_time_limit_at_epoch",
    "label_smoothing_factor",
    "regression_loss",
    "teacher",
    "distillation_alpha",
    "distillation_type",
    "distillation_temperature",
    "seed",
    "recipe",
    "world_size",
    "device",
    "global_step",
    "train_runtime_s",
    "resumed_from",  # train_runtime_s is then the time after resuming
)
# Settings that only mean something when the images were simulated during training.
_SIMULATION_SETTINGS = frozenset(
    {"preset", "per_class", "train_per_class", "eval_per_class", "test_per_class", "sim_seed"}
)

# Units of the SimulationPreset fields shown in the simulation-settings table (values come from the preset).
_UNITS: dict[str, str] = {
    "num_pix": "px per side",
    "pixel_scale": "arcsec/px",
    "psf_fwhm": "arcsec",
    "psf_truncation": "Gaussian sigma",
    "background_rms": "counts/s per px",
    "log10_exposure_range": "log10 s",
    "H0": "km/s/Mpc",
    "main_halo_mass": "Msun",
    "source_magnitude": "mag",
    "source_r_sersic": "arcsec",
    "source_center_max": "arcsec",
    "subhalo_mass_min": "Msun",
    "subhalo_mass_max": "Msun",
    "subhalo_r_min": "arcsec",
    "subhalo_r_max": "arcsec",
    "vortex_mass": "Msun",
    "log10_axion_mass_range": "log10 eV",
    "vortex_length_coeff": "arcsec per 1e-22 eV",
}
# Fields one renderer ignores (see the SimulationPreset comments): left out of that renderer's table.
_RENDERER_ONLY: dict[str, str] = {
    "psf_fwhm": "image_model",
    "psf_truncation": "image_model",
    "background_rms": "image_model",
    "log10_exposure_range": "image_model",
    "instrument": "sim_api",
    "instrument_band": "sim_api",
    "instrument_psf_type": "sim_api",
    "instrument_coadd_years": "sim_api",
    "add_noise": "sim_api",
    "z_source_convention": "sim_api",
}


# ---------------------------------------------------------------------------------------------- helpers
def template_path(name: str) -> Path:
    """The card template ``name`` (``model_card.md``, ``dataset_card.md``) of the installed package or checkout."""
    for folder in TEMPLATE_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise LensHFError(f"card template {name} not found in {', '.join(str(d) for d in TEMPLATE_DIRS)}")


@lru_cache(maxsize=1)
def _reference_results() -> dict[str, Any]:
    return json.loads(REFERENCE_RESULTS_FILE.read_text(encoding="utf-8"))


def published_results(dataset: str | None = None) -> list[dict[str, Any]]:
    """Published classification results (``reference_results.json``): one group per DeepLense data set with
    ``metric_name``, ``evaluation``, ``test_images_per_class``, ``note`` and ``results`` (rows of ``model``,
    ``start``, ``value``, best first); only the group of ``dataset`` (``"model_i"`` ...) when given."""
    groups = _reference_results()["classification"]
    return [dict(g) for g in groups if dataset is None or g["dataset"] == dataset]


def published_regression() -> dict[str, Any]:
    """Published axion-mass regression errors (``reference_results.json``): ``metric_name``, ``datasets``,
    ``results`` (rows of ``model`` and ``values`` {dataset: MAE in dex})."""
    return dict(_reference_results()["axion_mass_regression"])


def dataset_title(name: str) -> str:
    """'model_i' -> 'Model I'."""
    head, _, tail = str(name).partition("_")
    return f"{head.title()} {tail.upper()}" if tail else head.title()


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
    if not isinstance(value, str) or value.count("/") != 1 or os.path.exists(value):
        return False
    try:
        validate_repo_id(value)
    except HFValidationError:
        return False
    return True


def _number(value: Any) -> str:
    """1e12 -> '1e12', 0.05 -> '0.05', 3.0 -> '3', (3.0, 3.5) -> '3 to 3.5'."""
    if isinstance(value, list | tuple):
        return " to ".join(_number(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    text = f"{value:.6g}"
    return text.replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def _fmt_value(value: Any) -> str:
    """A recorded setting for a table cell: numbers as :func:`_number`, lists comma-separated."""
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _command_text(command: Any) -> str | None:
    """A recorded command as one publishable line: secrets masked, absolute paths made relative."""
    if command in (None, "", []):
        return None
    argv = [str(c) for c in command] if isinstance(command, list | tuple) else None
    if argv is None:
        try:
            argv = shlex.split(str(command))
        except ValueError:
            return str(redact_record({"command": str(command)})["command"])
    return shlex.join(redact_argv(argv))


def count_safetensors_parameters(model_dir: str | os.PathLike) -> int | None:
    """Number of values stored in the folder's ``model*.safetensors`` weights (read from the headers only);
    None without weights or with an unreadable file."""
    files = sorted(Path(model_dir).glob("model*.safetensors"))
    if not files:
        return None
    total = 0
    try:
        for file in files:
            with safe_open(str(file), framework="np") as f:
                for name in f.keys():
                    count = 1
                    for dim in f.get_slice(name).get_shape():
                        count *= int(dim)
                    total += count
    except Exception:  # SafetensorError or OSError: a broken file gives no count, not a failed card
        return None
    return total


def _format_params(params: Any) -> str:
    n = int(params)
    return f"{n / 1e6:.2f} M ({n:,})" if n >= 100_000 else f"{n:,}"


# ------------------------------------------------------------------------------------ physics from presets
def _preset_params(preset: str | None, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The parameters a simulation used: ``params`` when recorded, else the preset table's entry; None if
    neither is known."""
    if isinstance(params, Mapping) and params:
        return dict(params)
    if preset and str(preset) in PRESETS:
        return dataclasses.asdict(PRESETS[str(preset)])
    return None


def simulation_settings(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, value with unit) rows of the settings a simulation actually used: fields that are unset or
    belong to the other renderer (Model I's ``ImageModel`` vs Models II/III's ``SimAPI``) are left out."""
    renderer = params.get("renderer")
    rows = []
    for name, value in params.items():
        if name in ("name", "description") or value is None:
            continue
        if name in _RENDERER_ONLY and _RENDERER_ONLY[name] != renderer:
            continue
        unit = _UNITS.get(name)
        rows.append((name, _number(value) + (f" {unit}" if unit else "")))
    return rows


def class_physics(params: Mapping[str, Any] | None) -> dict[str, str]:
    """{label: what its lenses contain}, with the numbers of the simulation ``params`` when known."""
    if not params:
        return dict(CLASS_MEANING)
    p = params
    return {
        "no_substructure": "the main halo only (SIE + external shear), no substructure",
        "subhalo": (
            f"{p['n_subhalos']} cold-dark-matter point-mass subhalos, dN/dm ~ m^{_number(p['subhalo_beta'])} on "
            f"{_number(p['subhalo_mass_min'])}-{_number(p['subhalo_mass_max'])} Msun, "
            f"{_number(p['subhalo_r_min'])}-{_number(p['subhalo_r_max'])} arcsec from the centre"
        ),
        "vortex": (
            f"a superfluid dark-matter vortex: {p['vortex_n_elements']} point masses "
            f"({_number(p['vortex_mass'])} Msun in total) on a line through the centre, half-length "
            f"{_number(p['vortex_length_coeff'])} / (2 m_a) x 1e-22 arcsec for an axion mass "
            f"m_a = 10^U({_number(p['log10_axion_mass_range'][0])}, {_number(p['log10_axion_mass_range'][1])}) eV"
        ),
    }


def lens_text(params: Mapping[str, Any]) -> str:
    """One sentence on the main lens, source and cosmology of a simulation."""
    p = params
    theta = einstein_radius(
        p["main_halo_mass"], p["z_lens"], p["z_source"], H0=p["H0"], Om0=p["Om0"], Ob0=p["Ob0"]
    )
    return (
        f"Main lens in every class: a singular isothermal ellipsoid of {_number(p['main_halo_mass'])} Msun "
        f"(Einstein radius {theta:.2f} arcsec, e1 = {_number(p['sie_e1'])}, e2 = {_number(p['sie_e2'])}) with "
        f"external shear (gamma1 = {_number(p['shear_gamma1'])}, gamma2 = {_number(p['shear_gamma2'])}) at "
        f"z = {_number(p['z_lens'])}; elliptical Sersic source at z = {_number(p['z_source'])}; flat LCDM "
        f"(H0 = {_number(p['H0'])}, Om0 = {_number(p['Om0'])})."
    )


def _class_rows(labels: Sequence[str], params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    physics = class_physics(params)
    return [(name, physics.get(name, "")) for name in labels]


# ------------------------------------------------------------------------------------------- model card
def _load_training(model_dir: Path, training: Mapping[str, Any] | None) -> dict[str, Any]:
    """The folder's training records merged (``training`` on top), made publishable."""
    merged: dict[str, Any] = {}
    for name in reversed(TRAINING_FILES):
        path = model_dir / name
        if path.is_file():
            data = _read_json(path)
            if isinstance(data, Mapping):
                merged.update(data)
    if training:
        merged.update(training)
    return redact_record(merged)


REGRESSION_KEYS = (
    "target",
    "transform",
    "quantity",
    "mae",
    "rmse",
    "r2",
    "bias",
    "num_samples",
    "mae_binned",
)


def _is_regression(metrics: Mapping[str, Any] | None) -> bool:
    """Whether ``metrics`` are those of :func:`lens_hf.metrics.write_regression_evaluation`."""
    return metrics is not None and "mae" in metrics


def _check_metrics(metrics: Mapping[str, Any], source: str) -> None:
    if _is_regression(metrics):
        needed, writer = REGRESSION_KEYS, "write_regression_evaluation"
    else:
        needed = ("labels", "accuracy", "roc_auc_per_class", "roc_auc_macro", "roc_auc_micro", "num_samples")
        writer = "write_evaluation"
    missing = [k for k in needed if k not in metrics]
    if missing:
        raise LensHFError(
            f"{source}: missing metric key(s) {missing}; write it with lens_hf.metrics.{writer}"
        )


def _eval_results(metrics: Mapping[str, Any], dataset_type: str, dataset_name: str) -> list[EvalResult]:
    common = {
        "task_type": "image-classification",
        "task_name": "Image classification",
        "dataset_type": dataset_type,
        "dataset_name": dataset_name,
        "dataset_split": str(metrics.get("split", "test")),
    }
    if _is_regression(metrics):
        # The Hub has no image-regression task id; the model runs as (and is tagged) image-classification, and
        # the metric names say what is measured.
        quantity, unit = metrics["quantity"], " (dex)" if metrics["transform"] == "log10" else ""
        rows = [
            ("mae", f"MAE of {quantity}{unit}"),
            ("rmse", f"RMSE of {quantity}{unit}"),
            ("r2", f"R2 of {quantity}"),
        ]
        return [
            EvalResult(
                metric_type=key,
                metric_name=name,
                metric_config=quantity,
                metric_value=round(float(metrics[key]), 6),
                **common,
            )
            for key, name in rows
            if metrics[key] is not None
        ]
    results = []
    for config in ("macro", "micro"):
        value = metrics.get(f"roc_auc_{config}")
        if value is not None:
            results.append(
                EvalResult(
                    metric_type="roc_auc",
                    metric_name=f"ROC-AUC ({config}, one-vs-rest)",
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


LOSS_NAMES = {"mse": "MSE", "l1": "L1", "huber": "Huber"}


def _model_rows(
    config: Mapping[str, Any], preproc: Mapping[str, Any], params: Any, loss: Any = None
) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    archs = config.get("architectures") or []
    rows.append(
        ("architecture", f"`{config.get('model_type', 'unknown')}`" + (f" (`{archs[0]}`)" if archs else ""))
    )
    id2label = config.get("id2label") or {}
    regression = config.get("lens_regression")
    if isinstance(regression, Mapping):
        rows.append(
            (
                "output",
                f"`{_quantity(regression)}`, standardised with the training targets' mean "
                f"{float(regression['mean']):.4g} and std {float(regression['std']):.4g} "
                f"({LOSS_NAMES.get(str(loss or 'mse'), str(loss))} loss)",
            )
        )
    elif id2label:
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
    return rows


def _used(name: str, flat: Mapping[str, Any], simulated: bool) -> bool:
    """Whether a recorded setting took part in the run (defaults of unused options are left out)."""
    if name in _SIMULATION_SETTINGS:
        return simulated
    if name in ("dataset", "dataset_name", "data_dir"):
        return not simulated
    if name == "max_steps":
        return (_lookup(flat, "max_steps") or -1) > 0
    if name == "model_preset":  # a --model_name_or_path checkpoint is loaded instead of building the preset
        return not _lookup(flat, "model_name_or_path")
    if name == "regression_loss":
        return _lookup(flat, "task") == "regression"
    if name in ("distillation_alpha", "distillation_type"):
        return bool(_lookup(flat, "teacher"))
    if name == "distillation_temperature":
        return bool(_lookup(flat, "teacher")) and _lookup(flat, "distillation_type") == "soft"
    schedule = _lookup(flat, "lr_schedule")
    if name in ("lr_step_epochs", "lr_step_gamma"):
        return schedule == "step"
    if name in ("lr_step_time_fraction", "lr_decay_by_time_limit_at_epoch"):
        return schedule == "step" and bool(_lookup(flat, "max_train_minutes"))
    if name == "lr_scheduler_type":
        return schedule != "step"
    return True


def _settings_rows(flat: Mapping[str, Any], simulated: bool) -> list[tuple[str, str]]:
    rows = []
    for name in KEY_SETTINGS:
        if not _used(name, flat, simulated):
            continue
        for key, value in flat.items():
            if key.rsplit(".", 1)[-1] == name and value not in (None, "", [], {}):
                rows.append((key, _fmt_value(value)))
                break
    return rows


def simulation_of(folder: str | os.PathLike) -> dict[str, Any] | None:
    """``{"preset", "seed", "per_class"}`` of a folder written by ``lens-hf simulate`` (its manifest), else None.
    Evaluations record it, so a card names the test set's seed wherever it is rendered."""
    try:
        sim = json.loads((Path(folder) / MANIFEST_NAME).read_text(encoding="utf-8"))
        return {"preset": str(sim["preset"]), "seed": int(sim["seed"]), "per_class": int(sim["per_class"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _evaluation_data(metrics: Mapping[str, Any]) -> str:
    """' of `folder` (lens_hf simulation `model_i`, seed 999, 1000 images per class)' for metrics written by
    ``lens-hf evaluate --data folder``; '' when the metrics name no data folder. The simulation comes from the
    metrics' ``simulation`` record, else from the folder's manifest when it is still there."""
    data = metrics.get("data")
    if not isinstance(data, str) or not data:
        return ""
    text = f" of `{Path(public_path(data)).name or data}`"
    sim = metrics.get("simulation") if isinstance(metrics.get("simulation"), Mapping) else simulation_of(data)
    try:
        text += (
            f" (lens_hf simulation `{sim['preset']}`, seed {int(sim['seed'])}, "
            f"{int(sim['per_class'])} images per class)"
        )
    except (KeyError, TypeError, ValueError):
        pass
    return text


def _regression_results(
    metrics: Mapping[str, Any],
    model_dir: Path,
    tta_metrics: Mapping[str, Any] | None = None,
    refine_metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    unit = " dex" if metrics["transform"] == "log10" else ""

    def values(m: Mapping[str, Any]) -> list[str]:
        return [
            f"{float(m['mae']):.4f}{unit}",
            f"{float(m['rmse']):.4f}{unit}",
            f"{float(m['bias']):+.4f}{unit}",
            "n/a" if m["r2"] is None else f"{float(m['r2']):.4f}",
            *[f"{float(m.get(k, float('nan'))):.3f}" for k in metrics if k.startswith("within_")],
            *[_fmt_auc(b["mae"]) for b in m["mae_binned"]],
        ]

    names = [
        "MAE",
        "RMSE",
        "bias (predicted - true)",
        "R2",
        *[f"within {k[7:]}{unit}" for k in metrics if k.startswith("within_")],
        *[
            f"MAE, true in [{b['low']:.2f}, {b['high']:.2f}] ({b['num_samples']} images)"
            for b in metrics["mae_binned"]
        ],
    ]
    columns, headers = [values(metrics)], ["value"]
    if tta_metrics is not None or refine_metrics is not None:
        headers = ["the network"]
    if tta_metrics is not None:
        columns.append(values(tta_metrics))
        headers.append("with `--tta d4` (mean of 8 views)")
    if refine_metrics is not None:
        columns.append(values(refine_metrics))
        headers.append("with `--refine likelihood`")
    intro = (
        f"Errors of `{metrics['quantity']}` on the `{metrics.get('split', 'test')}` split"
        f"{_evaluation_data(metrics)}: {int(metrics['num_samples']):,} images that have a value of "
        f"`{metrics['target']}`{_tta_text(metrics)}."
    )
    if refine_metrics is not None:
        intro += (
            " `--refine likelihood` (`lens-hf predict` and `lens-hf evaluate`, Model I raw counts only) answers "
            "instead the posterior median of log10 m_a from a likelihood of the image: the smooth lens fitted, "
            "the vortex rendered on a grid of masses and angles, the angle marginalised (about 0.5 s an image "
            "on one CPU core after the first); the network's answer is not used."
        )
    return {
        "intro": intro,
        "headers": headers,
        "rows": [(name, [col[i] for col in columns]) for i, name in enumerate(names)],
        "figures": [
            (file, alt)
            for file, alt in (
                ("regression.png", "Predicted vs true"),
                (REFINE_PLOT_FILE, "Predicted vs true with --refine likelihood"),
                ("learning_curves.png", "Learning curves"),
            )
            if (model_dir / file).is_file() and (file != REFINE_PLOT_FILE or refine_metrics is not None)
        ],
    }


def _check_refine_pair(metrics: Mapping[str, Any], refine_metrics: Mapping[str, Any]) -> None:
    """The refined metrics must be the same evaluation as ``metrics`` (data, split, images, TTA) of a regression
    model, with ``refine`` likelihood, beside metrics without it."""
    if not (_is_regression(metrics) and _is_regression(refine_metrics)):
        raise LensHFError("--refine likelihood metrics are for regression models, beside regression metrics")
    if refine_metrics.get("refine") != "likelihood":
        raise LensHFError(
            f"the refined metrics were not measured with --refine likelihood (refine: {refine_metrics.get('refine')!r})"
        )
    if metrics.get("refine", "none") != "none":
        raise LensHFError(
            f"the metrics beside the --refine likelihood ones must be without it (refine: {metrics.get('refine')!r})"
        )
    _check_same_evaluation(
        metrics, refine_metrics, ("data", "split", "num_samples", "tta"), "--refine likelihood"
    )


def _check_same_evaluation(
    metrics: Mapping[str, Any], other: Mapping[str, Any], keys: tuple[str, ...], option: str
) -> None:
    """``other`` (the evaluation with ``option``) must be of the same data as ``metrics``: the same ``keys``."""
    for key in keys:
        if metrics.get(key) != other.get(key):
            raise LensHFError(
                f"the metrics with and without {option} are not from the same evaluation ({key}: "
                f"{metrics.get(key)!r} vs {other.get(key)!r})"
            )


def _check_tta_pair(metrics: Mapping[str, Any], tta_metrics: Mapping[str, Any]) -> None:
    """The D4 metrics must be the same evaluation as ``metrics`` (data, split, images), with ``tta`` d4."""
    if _is_regression(metrics) != _is_regression(tta_metrics):
        raise LensHFError(
            "the test-time augmentation metrics and the metrics are of different kinds of model"
        )
    if tta_metrics.get("tta") != "d4":
        raise LensHFError(
            f"the test-time augmentation metrics were not measured with --tta d4 (tta: {tta_metrics.get('tta')!r})"
        )
    if metrics.get("tta", "none") != "none":
        raise LensHFError(
            f"the metrics beside the --tta d4 ones must be without it (tta: {metrics.get('tta')!r})"
        )
    _check_same_evaluation(metrics, tta_metrics, ("data", "split", "num_samples"), "--tta d4")


def _tta_text(metrics: Mapping[str, Any]) -> str:
    return " with D4 test-time augmentation (`--tta d4`)" if metrics.get("tta") == "d4" else ""


def _results(
    metrics: Mapping[str, Any] | None,
    model_dir: Path,
    tta_metrics: Mapping[str, Any] | None = None,
    refine_metrics: Mapping[str, Any] | None = None,
) -> dict[str, Any] | None:
    if metrics is None:
        return None
    if _is_regression(metrics):
        return _regression_results(metrics, model_dir, tta_metrics, refine_metrics)

    def values(m: Mapping[str, Any]) -> list[str]:
        return [
            _fmt_auc(m["roc_auc_macro"]),
            _fmt_auc(m["roc_auc_micro"]),
            *[_fmt_auc(m["roc_auc_per_class"].get(k)) for k in metrics["roc_auc_per_class"]],
            f"{float(m['accuracy']):.4f}",
        ]

    names = [
        "ROC-AUC macro",
        "ROC-AUC micro",
        *[f"ROC-AUC `{k}`" for k in metrics["roc_auc_per_class"]],
        "accuracy",
    ]
    columns = [values(metrics)]
    headers = ["value"]
    if tta_metrics is not None:
        columns.append(values(tta_metrics))
        headers = ["without TTA", "with `--tta d4` (mean softmax of 8 views)"]
    rows = [(name, [col[i] for col in columns]) for i, name in enumerate(names)]
    labels = [str(x) for x in metrics["labels"]]
    matrix = metrics.get("confusion_matrix") or []
    intro = (
        f"One-vs-rest ROC-AUC from softmax probabilities on the `{metrics.get('split', 'test')}` split"
        f"{_evaluation_data(metrics)}: {int(metrics['num_samples']):,} images{_tta_text(metrics)}."
    )
    if tta_metrics is not None:
        intro += (
            " D4 test-time augmentation averages the softmax over the 8 rotations and flips of each image, which"
            " leave the lensing classes unchanged (8x the compute)."
        )
    return {
        "intro": intro,
        "headers": headers,
        "rows": rows,
        "note": metrics.get("roc_auc_note"),
        "labels": labels,
        "confusion": [(labels[i], list(row)) for i, row in enumerate(matrix)],
        "figures": [
            (file, alt)
            for file, alt in (
                ("roc.png", "ROC curves"),
                ("confusion_matrix.png", "Confusion matrix"),
                ("learning_curves.png", "Learning curves"),
            )
            if (model_dir / file).is_file()
        ],
    }


def _speed(speed: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The CPU inference speed table from benchmarks/bench_inference.py's record, or None."""
    if speed is None:
        return None
    try:
        rows = [
            (
                "with `--tta d4`" if r["tta"] == "d4" else "without TTA",
                f"{float(r['forward_images_per_s']):,.0f}",
                f"{float(r['predict_images_per_s']):,.0f}",
            )
            for r in speed["results"]
        ]
        machine = speed["machine"]
        where = (
            f"batch {int(speed['batch_size'])}, {int(speed['num_images'])} simulated `{speed['preset']}` images "
            f"(seed {int(speed['seed'])}), {machine['cpu']} with {int(machine['threads'])} torch thread(s), "
            f"torch {machine['torch']}"
        )
    except (KeyError, TypeError, ValueError) as err:
        raise LensHFError(f"{SPEED_FILE}: not a record of benchmarks/bench_inference.py ({err!r})") from None
    return {"where": where, "rows": rows, "command": speed.get("command"), "date": speed.get("date")}


def _fmt_auc(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.4f}"


def training_device(info: Mapping[str, Any]) -> str:
    """'cuda:0 (NVIDIA H100 80GB HBM3)' from a lens_hf training record's ``device`` and ``device_name``."""
    device = info.get("device") or "an unrecorded device"
    if info.get("device_name") and info["device_name"] != device:
        device = f"{device} ({info['device_name']})"
    return device


def _training_budget(info: Mapping[str, Any]) -> str | None:
    """'from scratch, 4.6 min of training on cpu (1 process)' from a lens_hf training record, or None."""
    runtime = info.get("train_runtime_s")
    if not isinstance(runtime, int | float) or runtime <= 0:
        return None
    model_args = info.get("model_args") if isinstance(info.get("model_args"), Mapping) else {}
    start = "fine-tuned from a checkpoint" if model_args.get("model_name_or_path") else "from scratch"
    world = info.get("world_size") or 1
    resumed = info.get("resumed_from")
    return (
        f"{start}, {runtime / 60:.1f} min of training on {training_device(info)} "
        f"({world} process{'es' if world != 1 else ''}"
        + (f"; the time after resuming from `{Path(str(resumed)).name}`" if resumed else "")
        + ")"
    )


def _published(
    preset: str | None,
    metrics: Mapping[str, Any] | None,
    info: Mapping[str, Any],
    tta_metrics: Mapping[str, Any] | None = None,
) -> dict | None:
    """The published results on the preset's DeepLense data set, and how this model's number relates."""
    if _is_regression(metrics):
        return _published_regression(preset, metrics)
    groups = published_results(preset) if preset else []
    if not groups:
        return None
    group = groups[0]
    per_class = group.get("test_images_per_class")
    where = f"{group['evaluation']}" + (f", {int(per_class):,} images per class" if per_class else "")
    comparison = None
    if metrics is not None and metrics.get("roc_auc_macro") is not None and group["results"]:
        best = max(group["results"], key=lambda r: r["value"])
        ours = float(metrics["roc_auc_macro"])
        comparison = (
            f"This model: {ours:.4f} on the {int(metrics['num_samples']):,} lens_hf-simulated images above "
            f"({ours - best['value']:+.4f} against the best published, {best['model']} {best['value']})"
        )
        if tta_metrics is not None and tta_metrics.get("roc_auc_macro") is not None:
            tta = float(tta_metrics["roc_auc_macro"])
            comparison += f", {tta:.4f} with `--tta d4` ({tta - best['value']:+.4f})"
        comparison += "; a different test set, so the comparison is indicative, not like for like."
        budget = _training_budget(info)
        if budget:
            comparison += f" This model was trained {budget}."
    return {
        "title": dataset_title(preset),
        "metric_name": group["metric_name"],
        "where": where,
        "source": group.get("source"),
        "note": group.get("note"),
        "results": [(r["model"], r.get("start") or "not stated", str(r["value"])) for r in group["results"]],
        "comparison": comparison,
    }


def _published_regression(preset: str | None, metrics: Mapping[str, Any]) -> dict | None:
    """The published axion-mass errors on the preset's DeepLense data set, for a log10 axion-mass model."""
    group = published_regression()
    if not preset or preset not in group["datasets"] or metrics.get("quantity") != "log10_axion_mass":
        return None
    ours = float(metrics["mae"])
    return {
        "title": dataset_title(preset),
        "metric_name": group["metric_name"],
        "where": group["evaluation"],
        "source": group.get("source"),
        "note": group.get("note"),
        "results": [(r["model"], "not stated", str(r["values"][preset])) for r in group["results"]],
        "comparison": (
            f"This model: {ours:.4f} dex on the {int(metrics['num_samples']):,} lens_hf-simulated vortex images "
            "above; a different test set, so the comparison is indicative, not like for like."
        ),
    }


def _quantity(regression: Mapping[str, Any]) -> str:
    target = regression.get("target")
    return f"log10_{target}" if regression.get("transform") == "log10" else str(target)


def _training_data(
    info: Mapping[str, Any], flat: Mapping[str, Any], metrics: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What the model was trained on, from the (publishable) training record."""
    described = info.get("dataset") if isinstance(info.get("dataset"), Mapping) else {}
    hub_name = described.get("hub_id") or _lookup(flat, "dataset_name")
    dataset_id = hub_name if _is_hub_id(hub_name) else None
    local = described.get("source") or _lookup(flat, "dataset", "data_dir", "train_dir", "dataset_path")
    if not isinstance(local, str) or local.lower().startswith("simulat") or local == dataset_id:
        local = None
    simulated = not (local or dataset_id)
    preset = described.get("preset") or _lookup(flat, "simulation_preset", "data_preset")
    if simulated:
        preset = preset or _lookup(flat, "preset") or (metrics or {}).get("preset")
    params = _preset_params(preset, described.get("simulation")) if simulated else None

    lines = []
    if simulated and preset:
        seeds = described.get("seeds")
        lines.append(
            f"Simulated during training by lens_hf with the `{preset}` preset"
            + (f" ({params['description']})" if params and params.get("description") else "")
            + (
                "; seeds " + ", ".join(f"{k} {v}" for k, v in seeds.items())
                if isinstance(seeds, Mapping) and seeds
                else ""
            )
            + "."
        )
        if params:
            lines.append(lens_text(params))
    if dataset_id:
        lines.append(f"Dataset: [`{dataset_id}`](https://huggingface.co/datasets/{dataset_id}).")
    elif local:
        lines.append(f"Dataset: `{local}` (a local folder, not published with this model).")
    splits = described.get("splits")
    regression = described.get("regression") if isinstance(described.get("regression"), Mapping) else {}
    if isinstance(regression.get("splits"), Mapping) and regression["splits"]:
        skipped = regression.get("skipped") if isinstance(regression.get("skipped"), Mapping) else {}
        lines.append(
            f"Images with a value of `{regression.get('target')}`: "
            + ", ".join(f"{k} {int(v):,}" for k, v in regression["splits"].items())
            + (
                f" (skipped without one: {', '.join(f'{k} {int(v):,}' for k, v in skipped.items())})"
                if skipped
                else ""
            )
            + "."
        )
    elif isinstance(splits, Mapping) and splits:
        lines.append("Images: " + ", ".join(f"{k} {int(v):,}" for k, v in splits.items()) + ".")
    elif simulated and _lookup(flat, "per_class", "train_per_class"):
        lines.append(f"Training images per class: {_lookup(flat, 'per_class', 'train_per_class')}.")
    size = described.get("image_size")
    if isinstance(size, list | tuple) and size and all(size):
        parts = [f"Source images {'x'.join(str(v) for v in size)} px"]
        if described.get("normalization"):
            parts.append(f"per-image `{described['normalization']}` normalisation")
        if described.get("center_crop"):
            parts.append(f"central {described['center_crop']} px crop")
        if described.get("random_crop"):
            parts.append(f"random {described['random_crop']} px crop")
        if described.get("augment"):
            parts.append(f"`{described['augment']}` augmentation")
        lines.append(", ".join(parts) + ".")
    if not lines:
        lines.append("The training data were not recorded with this model.")
    return {
        "lines": lines,
        "preset": preset if simulated else None,
        "params": params,
        "dataset": local,
        "dataset_id": dataset_id,
        "simulated": simulated and bool(preset),
    }


def render_model_card(
    model_dir: str | os.PathLike,
    *,
    metrics: Mapping[str, Any] | None = None,
    training: Mapping[str, Any] | None = None,
    repo_id: str | None = None,
    params: int | None = None,
    tta_metrics: Mapping[str, Any] | None = None,
    speed: Mapping[str, Any] | None = None,
    refine_metrics: Mapping[str, Any] | None = None,
) -> str:
    """The README.md text for a saved model folder.

    Args:
        model_dir: folder with ``config.json`` (and optionally ``preprocessor_config.json``, safetensors
            weights, ``metrics.json``, ``lens_hf_training.json`` / ``training_args.json``, PNG figures).
        metrics: the dict of :func:`lens_hf.metrics.write_evaluation`; default: the folder's ``metrics.json``
            (no results section if there is none).
        training: the training record (command, presets, arguments); merged over the folder's JSON records.
        repo_id: the Hub id used in the usage snippets and the model-index name.
        params: parameter count; default: the record's ``num_parameters``, else counted from the safetensors
            headers.
        tta_metrics: the same evaluation as ``metrics`` with ``--tta d4``, shown beside it; default: the
            folder's ``metrics_tta_d4.json`` (when the card reads the folder's ``metrics.json``).
        speed: the CPU inference speed record of ``benchmarks/bench_inference.py``; default: the folder's
            ``inference_speed.json``.
        refine_metrics: for a regression model, the same evaluation as ``metrics`` with ``--refine
            likelihood``, shown beside it; default: the folder's ``metrics_refine_likelihood.json`` (when the
            card reads the folder's ``metrics.json``).

    Returns:
        Markdown with YAML front matter (license, library, pipeline tag, tags, datasets, model-index).
    """
    root = Path(model_dir)
    if not (root / "config.json").is_file():
        raise LensHFError(f"{root}: no config.json; not a saved model folder")
    config = _read_json(root / "config.json")
    preproc_path = root / "preprocessor_config.json"
    preproc = _read_json(preproc_path) if preproc_path.is_file() else {}
    from_folder = metrics is None
    if metrics is None and (root / "metrics.json").is_file():
        metrics = _read_json(root / "metrics.json")
        _check_metrics(metrics, str(root / "metrics.json"))
    elif metrics is not None:
        _check_metrics(metrics, "metrics")
    if tta_metrics is None and from_folder and metrics is not None and (root / TTA_METRICS_FILE).is_file():
        tta_metrics = _read_json(root / TTA_METRICS_FILE)
    if tta_metrics is not None:
        if metrics is None:
            raise LensHFError("test-time augmentation metrics need the metrics without it (metrics.json)")
        _check_metrics(tta_metrics, TTA_METRICS_FILE)
        _check_tta_pair(metrics, tta_metrics)
    if (
        refine_metrics is None
        and from_folder
        and metrics is not None
        and (root / REFINE_METRICS_FILE).is_file()
    ):
        refine_metrics = _read_json(root / REFINE_METRICS_FILE)
    if refine_metrics is not None:
        if metrics is None:
            raise LensHFError("--refine likelihood metrics need the metrics without it (metrics.json)")
        _check_metrics(refine_metrics, REFINE_METRICS_FILE)
        _check_refine_pair(metrics, refine_metrics)
    if speed is None and (root / SPEED_FILE).is_file():
        speed = _read_json(root / SPEED_FILE)

    regression = config.get("lens_regression") if isinstance(config.get("lens_regression"), Mapping) else None
    info = _load_training(root, training)
    flat = _flatten(info)
    data = _training_data(info, flat, metrics)
    preset = data["preset"]
    if params is None:
        params = _lookup(flat, "num_parameters", "params", "n_parameters") or count_safetensors_parameters(
            root
        )

    name = repo_id.split("/")[-1] if repo_id else root.resolve().name
    if preset:
        dataset_name = f"DeepLense {dataset_title(preset)} (lens_hf simulation)"
        dataset_type = f"deeplense-{preset}"
    else:
        dataset_name = data["dataset_id"] or data["dataset"] or "lens_hf dataset"
        dataset_type = data["dataset_id"] or "lens_hf-custom"

    card_data = ModelCardData(
        license="mit",
        library_name="transformers",
        pipeline_tag="image-classification",
        tags=list(MODEL_TAGS),
        datasets=[data["dataset_id"]] if data["dataset_id"] else None,
        metrics=["mae", "rmse", "r2"] if regression else ["roc_auc", "accuracy"],
        model_name=name,
        eval_results=_eval_results(metrics, dataset_type, dataset_name) if metrics is not None else None,
    )
    trained_on = f" on {dataset_name}." if preset or data["dataset"] or data["dataset_id"] else "."
    if regression:
        summary = (
            f"A `{config.get('model_type', 'image')}` regressor of `{regression['target']}` from strong "
            f"gravitational-lensing images (it learns `{_quantity(regression)}`), trained with lens_hf{trained_on}"
        )
    else:
        summary = (
            f"A `{config.get('model_type', 'image')}` classifier of strong gravitational-lensing images into the "
            f"three DeepLense dark-matter substructure classes ({', '.join(f'`{x}`' for x in LABELS)}), trained "
            f"with lens_hf{trained_on}"
        )
    if _is_regression(metrics):
        unit = " dex" if metrics["transform"] == "log10" else ""
        summary += (
            f" MAE {float(metrics['mae']):.4f}{unit} on the {int(metrics['num_samples']):,} images of the "
            f"`{metrics.get('split', 'test')}` split{_evaluation_data(metrics)}."
        )
    elif metrics is not None and metrics.get("roc_auc_macro") is not None:
        summary += (
            f" Macro one-vs-rest ROC-AUC {float(metrics['roc_auc_macro']):.4f} on the "
            f"{int(metrics['num_samples']):,} images of the `{metrics.get('split', 'test')}` split"
            f"{_evaluation_data(metrics)}."
        )
    training_file = next((f for f in TRAINING_FILES if (root / f).is_file()), None)
    card = ModelCard.from_template(
        card_data,
        template_path=str(template_path("model_card.md")),
        title=name,
        summary=summary,
        model_rows=_model_rows(config, preproc, params, _lookup(flat, "regression_loss")),
        data_lines=data["lines"],
        preset=preset,
        simulation_rows=simulation_settings(data["params"]) if data["params"] else [],
        classes=_class_rows(LABELS, data["params"]),
        command=_command_text(_lookup(flat, "command")),
        settings=_settings_rows(flat, data["simulated"]),
        training_file=_training_file_text(training_file),
        record=None if training_file or not info else json.dumps(info, indent=2, sort_keys=True, default=str),
        results=_results(metrics, root, tta_metrics, refine_metrics),
        speed=_speed(speed),
        published=_published(preset, metrics, info, tta_metrics),
        model_ref=repo_id or f"path/to/{name}",
        regression=regression and {"target": regression.get("target"), "quantity": _quantity(regression)},
        origin=(
            f"Trained and evaluated on images simulated by lens_hf (the `{preset}` preset, lenstronomy, after "
            "the public DeepLense recipes); these are not the official DeepLense archives."
            if preset
            else f"Trained and evaluated on the images of `{data['dataset_id'] or data['dataset']}`."
            if data["dataset"] or data["dataset_id"]
            else "Trained and evaluated on simulated lensing images."
        ),
    )
    return str(card)


def _training_file_text(name: str | None) -> str | None:
    """How the card names the training record: lens_hf's own by what it is (its file name, ``lens_hf_`` and
    ``training``, reads like an access token to secret scanners), any other by its file name."""
    if name is None:
        return None
    if name == TRAINING_FILES[0]:
        return "lens_hf's run record, the training JSON file next to the weights"
    return f"`{name}`"


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


def _folder_simulation(source: str | None) -> dict[str, Any] | None:
    """The lens_hf simulation record of a source folder (``lens-hf simulate --format deeplense`` writes one)."""
    if not source:
        return None
    try:
        manifest = json.loads((Path(source) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("preset") else None


def render_dataset_card(info: Mapping[str, Any], *, card_yaml: Mapping[str, Any] | None = None) -> str:
    """The README.md text of a saved dataset folder (parquet shards under ``data/<split>-*.parquet``).

    Args:
        info: ``preset`` (simulation preset name or None), ``per_class`` (images per class), ``seed``,
            ``splits`` ({split name: rows}), ``image_size`` (int or (H, W) px), ``normalization``,
            ``source`` ("simulation ..." or the folder the images came from), ``command`` (str or argv list);
            optional ``repo_id``, ``labels`` (class names in id order), ``simulation`` (the parameters the
            simulation used; default: the preset's table entry) and ``parquet`` (False: the folder holds the
            ``save_to_disk`` copy only, and the card loads it with ``load_from_disk``).
        card_yaml: extra YAML front matter (``configs``, ``dataset_info`` as ``datasets`` writes them); its
            ``configs`` replace the default one-shard-pattern-per-split block.
    """
    raw = dict(info)
    info = redact_record(raw)
    splits = info.get("splits")
    if not isinstance(splits, Mapping) or not splits:
        raise LensHFError("dataset card: info['splits'] must be a non-empty {split: rows} mapping")
    labels = list(info.get("labels") or LABELS)
    preset = info.get("preset")
    source = info.get("source") or ("simulation" if preset else None)
    simulated = bool(preset) and str(source).lower().startswith("simulat")
    from_folder = None if simulated else _folder_simulation(raw.get("source"))
    if from_folder:
        preset = preset or from_folder["preset"]
    recorded = info.get("simulation") or (from_folder or {}).get("preset_params")
    params = _preset_params(preset, recorded) if simulated or recorded else None
    total = sum(int(n) for n in splits.values())
    repo_id = info.get("repo_id")
    title = (
        repo_id.split("/")[-1]
        if repo_id
        else (f"DeepLense {dataset_title(preset)} lensing images" if preset else "Lensing images")
    )
    yaml = dict(card_yaml or {})
    parquet = info.get("parquet", True) is not False
    card_data = DatasetCardData(
        license="mit",
        task_categories=["image-classification"],
        tags=list(DATASET_TAGS),
        pretty_name=title,
        size_categories=[_size_category(total)],
        configs=yaml.pop("configs", None)
        or (
            [
                {
                    "config_name": "default",
                    "data_files": [{"split": str(s), "path": f"data/{s}-*.parquet"} for s in splits],
                }
            ]
            if parquet
            else None
        ),
        **yaml,
    )

    size = info.get("image_size")
    if isinstance(size, list | tuple) and size and all(size):
        size_text = "x".join(str(s) for s in size) + " px"
    elif isinstance(size, int):
        size_text = f"{size}x{size} px"
    else:
        size_text = "size as in the source"
    if simulated:
        origin = (
            f"simulated with lenstronomy (lens_hf preset `{preset}`, seed {info.get('seed')}, "
            f"{info.get('per_class')} images per class)."
        )
    else:
        origin = f"read from `{source}`" + (
            f" (a lens_hf simulation: preset `{from_folder['preset']}`, seed {from_folder.get('seed')}, "
            f"{from_folder.get('per_class')} images per class)."
            if from_folder
            else "."
        )
    summary = f"{total:,} strong gravitational-lensing images in {len(labels)} dark-matter substructure classes {origin}"

    sim_lines = []
    if params:
        name = preset or params.get("name") or "custom"
        sim_lines.append(f"Preset `{name}`: {params.get('description') or name}.")
        sim_lines.append(lens_text(params))
    elif source:
        sim_lines.append(f"Images read from `{source}`; no simulation settings were recorded with them.")
    else:
        sim_lines.append("No simulation settings were recorded.")

    card = DatasetCard.from_template(
        card_data,
        template_path=str(template_path("dataset_card.md")),
        title=title,
        summary=summary,
        classes=[(i, name, text) for i, (name, text) in enumerate(_class_rows(labels, params))],
        split_rows=[(str(s), int(n)) for s, n in splits.items()],
        image_size_text=size_text,
        normalization=f"`{info.get('normalization') or 'minmax'}` per image",
        label_names=", ".join(f"`{x}`" for x in labels),
        simulation_lines=sim_lines,
        simulation_rows=simulation_settings(params) if params else [],
        command=_command_text(info.get("command")) or "# command not recorded",
        dataset_ref=repo_id or "path/to/this/folder",
        first_split=str(next(iter(splits))),
        parquet=parquet,
    )
    return str(card)


def write_dataset_card(out_dir: str | os.PathLike, info: Mapping[str, Any]) -> Path:
    """Render :func:`render_dataset_card` into ``out_dir/README.md`` (atomic) and return its path."""
    return atomic_write_text(Path(out_dir) / "README.md", render_dataset_card(info))


__all__ = [
    "REFERENCE_RESULTS_FILE",
    "TEMPLATE_DIRS",
    "class_physics",
    "count_safetensors_parameters",
    "dataset_title",
    "lens_text",
    "published_regression",
    "published_results",
    "render_dataset_card",
    "render_model_card",
    "simulation_settings",
    "template_path",
    "training_device",
    "write_dataset_card",
    "write_model_card",
]
