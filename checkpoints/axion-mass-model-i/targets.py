"""Regression targets: the transform of a physical quantity into what a model learns, and back.

A regression model learns a numeric metadata column of the data (``axion_mass`` in eV, ``subhalo_mass_total`` in
Msun, ...) through a ``transform`` (``"log10"`` for the masses, whose priors are log-uniform; ``"none"``), then
standardised with the mean and standard deviation of the transformed training targets, so the single output of
the head is of order one whatever the units. :class:`TargetScaling` holds the four numbers and is saved in the
model config as ``config.lens_regression``; predictions come back in physical units through it.

The module travels with saved models as remote code (the pipeline uses it): it imports only numpy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

TASKS: tuple[str, ...] = ("classification", "regression")
TARGET_TRANSFORMS: tuple[str, ...] = ("none", "log10")
# The transform each known target is learnt in, unless --target_transform says otherwise: the masses span
# orders of magnitude (m_a = 10^U(-24,-22) eV; subhalo masses 1e6-1e10 Msun each).
DEFAULT_TRANSFORMS: dict[str, str] = {"axion_mass": "log10", "subhalo_mass_total": "log10"}
# The model config field that records the target, its transform and its standardisation.
CONFIG_FIELD = "lens_regression"


def default_transform(target: str) -> str:
    """The transform ``target`` is learnt in by default (``"log10"`` for masses, else ``"none"``)."""
    return DEFAULT_TRANSFORMS.get(target, "none")


def check_transform(transform: str) -> str:
    if transform not in TARGET_TRANSFORMS:
        raise ValueError(
            f"unknown target transform {transform!r} (choose from {', '.join(TARGET_TRANSFORMS)})"
        )
    return transform


def apply_transform(values: Any, transform: str) -> np.ndarray:
    """Physical values (n,) -> transformed values (n,) float64. NaN where the transform is undefined
    (missing, infinite, or not positive under ``log10``)."""
    x = np.asarray(values, dtype=np.float64)
    if check_transform(transform) == "none":
        return np.where(np.isfinite(x), x, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(x) & (x > 0), np.log10(np.where(x > 0, x, 1.0)), np.nan)


def invert_transform(values: Any, transform: str) -> np.ndarray:
    """Transformed values (n,) -> physical values (n,) float64 (``10**v`` for ``log10``)."""
    x = np.asarray(values, dtype=np.float64)
    return np.power(10.0, x) if check_transform(transform) == "log10" else x


def transformed_name(target: str, transform: str) -> str:
    """The name of the learnt quantity: ``log10_axion_mass`` for ``log10``, the target itself otherwise."""
    return f"log10_{target}" if transform == "log10" else target


@dataclass(frozen=True)
class TargetScaling:
    """What a regression model's single output means.

    ``output = (transform(value) - mean) / std``: ``target`` names the physical quantity (a metadata column),
    ``transform`` is ``"log10"`` or ``"none"``, ``mean`` and ``std`` are those of the transformed training targets
    (in transformed units: dex for ``log10``).
    """

    target: str
    transform: str
    mean: float
    std: float

    def __post_init__(self) -> None:
        check_transform(self.transform)
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise ValueError(
                f"target scaling needs a finite mean and a positive std, got {self.mean}, {self.std}"
            )

    @classmethod
    def fit(cls, target: str, transform: str, values: Any) -> TargetScaling:
        """The scaling of the physical training targets ``values`` (n,): mean and std of their transform
        (std 1 when all are equal). Every value must have a finite transform."""
        t = apply_transform(values, transform)
        if t.size == 0 or not np.isfinite(t).all():
            raise ValueError(f"{target}: need at least one value, all with a finite {transform} transform")
        std = float(t.std())
        return cls(target, transform, float(t.mean()), std if std > 0 else 1.0)

    def scale(self, values: Any) -> np.ndarray:
        """Physical values (n,) -> standardised model targets (n,) float32."""
        return ((apply_transform(values, self.transform) - self.mean) / self.std).astype(np.float32)

    def unscale(self, outputs: Any) -> np.ndarray:
        """Model outputs (n,) or (n, 1) -> transformed units (n,) float64 (dex for ``log10``)."""
        return np.asarray(outputs, dtype=np.float64).reshape(-1) * self.std + self.mean

    def to_physical(self, outputs: Any) -> np.ndarray:
        """Model outputs (n,) or (n, 1) -> physical units (n,) float64."""
        return invert_transform(self.unscale(outputs), self.transform)

    @property
    def name(self) -> str:
        """Name of the transformed quantity (``log10_axion_mass``)."""
        return transformed_name(self.target, self.transform)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> TargetScaling:
        try:
            return cls(
                str(record["target"]), str(record["transform"]), float(record["mean"]), float(record["std"])
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"invalid {CONFIG_FIELD} record {dict(record)!r} ({err})") from None

    @classmethod
    def from_config(cls, config: Any) -> TargetScaling | None:
        """The scaling a regression model config records (``config.lens_regression``); None for a classifier
        (``problem_type`` not ``"regression"``)."""
        if getattr(config, "problem_type", None) != "regression":
            return None
        record = getattr(config, CONFIG_FIELD, None)
        if not isinstance(record, Mapping):
            raise ValueError(f"a regression model config needs a {CONFIG_FIELD} record, got {record!r}")
        return cls.from_dict(record)


def is_regression(config: Any) -> bool:
    """Whether a model config describes a regression model (``problem_type == "regression"``)."""
    return getattr(config, "problem_type", None) == "regression"


__all__ = [
    "CONFIG_FIELD",
    "DEFAULT_TRANSFORMS",
    "TARGET_TRANSFORMS",
    "TASKS",
    "TargetScaling",
    "apply_transform",
    "default_transform",
    "invert_transform",
    "is_regression",
    "transformed_name",
]
