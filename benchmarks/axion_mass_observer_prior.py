"""Axion mass on Model I: does the regression model's answer, used as a prior, improve the likelihood observer?

    python benchmarks/axion_mass_observer.py --model checkpoints/axion-mass-model-i   # first: fills the cache
    python benchmarks/axion_mass_observer_prior.py --model checkpoints/axion-mass-model-i

Reads the likelihood grids and the model's answers that ``axion_mass_observer.py`` cached in its ``--work`` folder
(300 validation vortices, seed 9302; 1,000 test vortices, seed 9301). For each temperature of that benchmark and
each width of a Laplace or Gaussian density in log10 m_a centred on the model's answer (width 0: no prior), the
posterior median is scored on the validation vortices; the best few settings are then scored on the test vortices,
beside plain averages of the two answers. Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lens_hf.processing.vortex_likelihood import FINE_GRID, posterior_median

sys.path.insert(0, str(Path(__file__).resolve().parent))
from axion_mass_observer import (  # noqa: E402 - the sibling benchmark's cache and scoring
    TEMPERATURES,
    TEST_SEED,
    VAL_SEED,
    WORK_DIR,
    model_answers,
    scores,
)

WIDTHS = (0.0, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6)  # dex; 0 = the likelihood alone
WEIGHTS = (0.3, 0.5, 0.7)  # on the likelihood, for the plain averages


def load(model: Path, work: Path, seed: int, num: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true log10 m_a, likelihood grids, model answers) of one cached archive."""
    cache = work / f"observer-seed{seed}-{num}.npz"
    if not cache.exists():
        raise SystemExit(f"{cache} is missing: run benchmarks/axion_mass_observer.py first")
    with np.load(cache) as saved:
        names, truth, ll = [str(n) for n in saved["names"]], saved["truth"], saved["ll"]
    answers = model_answers(model, work / f"model_i-seed{seed}-{num}", work)
    return truth, ll, np.array([answers[n] for n in names])


def median(ll: np.ndarray, temperature: float, centre: float, width: float, kind: str) -> float:
    """Posterior median of log10 m_a: the tempered likelihood (angle marginalised) times the prior."""
    if not width:
        return posterior_median(ll, temperature)
    dist = (FINE_GRID - centre) / width
    return posterior_median(ll, temperature, -(np.abs(dist) if kind == "laplace" else 0.5 * dist**2))


def answers(data: tuple, temperature: float, width: float, kind: str) -> np.ndarray:
    _, grids, model = data
    return np.array([median(ll, temperature, c, width, kind) for ll, c in zip(grids, model)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, default=Path("checkpoints/axion-mass-model-i"))
    parser.add_argument("--num", type=int, default=1000, help="test vortices (seed 9301)")
    parser.add_argument("--val-num", type=int, default=300, help="validation vortices (seed 9302)")
    parser.add_argument("--work", type=Path, default=WORK_DIR)
    parser.add_argument("--top", type=int, default=5, help="settings scored on the test vortices")
    args = parser.parse_args(argv)
    val = load(args.model, args.work, VAL_SEED, args.val_num)
    test = load(args.model, args.work, TEST_SEED, args.num)
    tried = sorted(
        (scores(val[0], answers(val, tau, width, kind))["mae"], kind, tau, width)
        for kind in ("laplace", "gaussian")
        for tau in TEMPERATURES
        for width in WIDTHS
        if width or kind == "laplace"  # width 0 is the same for both
    )
    print(
        f"| prior | temperature | width (dex) | validation MAE ({len(val[0])}) | test MAE ({len(test[0])}) |"
    )
    print("|---|---|---|---|---|")
    for mae, kind, tau, width in tried[: args.top]:
        test_mae = scores(test[0], answers(test, tau, width, kind))["mae"]
        print(f"| {kind if width else 'none'} | {tau:g} | {width:g} | {mae:.4f} | {test_mae:.4f} |")
    alone = answers(test, 2.0, 0.0, "laplace")
    for w in WEIGHTS:
        mae = scores(test[0], w * alone + (1 - w) * test[2])["mae"]
        print(f"| average, weight {w:g} on the likelihood (temperature 2) | | | | {mae:.4f} |")


if __name__ == "__main__":
    main()
