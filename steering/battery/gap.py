"""Gap recovered with bootstrap intervals, plain and measured from max(base, chance), for the behavioural tests."""

from __future__ import annotations

import numpy as np

from probes.stats import bootstrap_ci
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


def floored(S: np.ndarray, B: np.ndarray, T: np.ndarray, chance: float, seed: int) -> dict[str, float]:
    """Gap and gap recovered measured from ``max(acc(base), chance)``: an intervention that only
    turns a below-chance base into a guesser recovers nothing (what the verdict reads)."""
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
    return {
        "chance": chance,
        "gr_floor": nan0(gap_recovered(float(S.mean()), floor, float(T.mean()))) if len(S) else float("nan"),
        "gr_floor_lo": lo,
        "gr_floor_hi": hi,
        "tuned_gap": float(T.mean()) - floor if len(T) else float("nan"),
        "gap_lo": g_lo,
        "gap_hi": g_hi,
    }
