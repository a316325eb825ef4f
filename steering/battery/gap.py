"""Gap recovered with bootstrap intervals, plain and measured from max(base, chance), for the behavioural tests."""

from __future__ import annotations

import numpy as np

from probes.stats import bootstrap_ci
from steering.battery.verdict import THRESHOLDS
from steering.sweep import gap_recovered

__all__ = ["nan0", "gr_ci", "floored"]


def nan0(x: float) -> float:
    return 0.0 if np.isnan(x) else x


def gr_ci(S: np.ndarray, B: np.ndarray, T: np.ndarray, seed: int, floor: float = 0.0) -> tuple[float, float]:
    def stat(k: np.ndarray) -> float:
        return nan0(gap_recovered(S[k].mean(), max(B[k].mean(), floor), T[k].mean()))

    if len(S) == 0:
        return float("nan"), float("nan")
    return bootstrap_ci(np.arange(len(S)), stat, n_resamples=1000, seed=seed)


def _margin_ci(
    S: np.ndarray, B: np.ndarray, T: np.ndarray, chance: float, cut: float, seed: int
) -> tuple[float, float]:
    """95% interval of ``(acc(S) - f) - cut * (acc(T) - f)``, ``f = max(acc(B), chance)``: the gap
    recovered tested against ``cut`` on the difference, linear in the accuracies, so it stays stable
    when the gap is small (the ratio's interval does not). ``>= 0`` means GR >= ``cut``."""
    if len(S) == 0:
        return float("nan"), float("nan")

    def stat(k: np.ndarray) -> float:
        f = max(float(B[k].mean()), chance)
        return float(S[k].mean() - f - cut * (T[k].mean() - f))

    return bootstrap_ci(np.arange(len(S)), stat, n_resamples=1000, seed=seed)


def floored(S: np.ndarray, B: np.ndarray, T: np.ndarray, chance: float, seed: int) -> dict[str, float]:
    """Gap and gap recovered measured from ``max(acc(base), chance)``: an intervention that only
    turns a below-chance base into a guesser recovers nothing (what the verdict reads). With
    ``margin_select_lo`` / ``margin_create_hi``: the bounds of the gap-recovered test against the
    verdict's cut points done on the difference (:func:`_margin_ci`)."""
    floor = max(float(B.mean()), chance) if len(B) else chance
    lo, hi = gr_ci(S, B, T, seed, floor=chance)
    g_lo, g_hi = (
        bootstrap_ci(
            np.arange(len(T)),
            lambda k: float(T[k].mean() - max(B[k].mean(), chance)),
            n_resamples=1000,
            seed=seed,
        )
        if len(T)
        else (float("nan"), float("nan"))
    )
    margins = {
        name: _margin_ci(S, B, T, chance, THRESHOLDS[cut], seed)[side]
        for name, cut, side in (
            ("margin_select_lo", "select_gr_lo", 0),
            ("margin_create_hi", "create_gr_hi", 1),
        )
    }
    return {
        **margins,
        "chance": chance,
        "gr_floor": nan0(gap_recovered(float(S.mean()), floor, float(T.mean()))) if len(S) else float("nan"),
        "gr_floor_lo": lo,
        "gr_floor_hi": hi,
        "tuned_gap": float(T.mean()) - floor if len(T) else float("nan"),
        "gap_lo": g_lo,
        "gap_hi": g_hi,
    }
