"""Lensing data: folder readers, Hugging Face dataset building/saving/loading and (lazily) simulation.

``import lens_hf.data`` stays light: the lenstronomy simulator is imported only when ``simulate`` or one
of its functions is first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from lens_hf.data.dataset import (
    DEFAULT_SPLITS,
    FEATURES,
    SPLIT_NAMES,
    build_from_folder,
    build_from_simulation,
    load_any,
    metadata_row,
    parse_splits,
    save_dataset,
    stratified_split,
)
from lens_hf.data.readers import Record, load_images, read_metadata_csv, scan_folder

_LAZY = {
    "simulate": ("lens_hf.data.simulate", None),
    "presets": ("lens_hf.data.presets", None),
    "simulate_image": ("lens_hf.data.simulate", "simulate_image"),
    "iter_simulations": ("lens_hf.data.simulate", "iter_simulations"),
    "write_deeplense": ("lens_hf.data.simulate", "write_deeplense"),
    "PRESETS": ("lens_hf.data.presets", "PRESETS"),
    "SimulationPreset": ("lens_hf.data.presets", "SimulationPreset"),
    "get_preset": ("lens_hf.data.presets", "get_preset"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_SPLITS",
    "FEATURES",
    "SPLIT_NAMES",
    "Record",
    "build_from_folder",
    "build_from_simulation",
    "load_any",
    "load_images",
    "metadata_row",
    "parse_splits",
    "read_metadata_csv",
    "save_dataset",
    "scan_folder",
    "stratified_split",
]
