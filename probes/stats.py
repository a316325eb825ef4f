"""Bootstrap confidence intervals over prompts, on ``scipy.stats.bootstrap``.

docs/measures.md ("Statistics"): bootstrap over prompts for 95% intervals; a verdict is never
printed without its effect size and interval. The resampler is scipy's (seeded through
``rng``), never a hand-written loop::

    >>> import numpy as np
    >>> lo, hi = bootstrap_ci(np.arange(20.0))
    >>> lo < 9.5 < hi
    True
    >>> m, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0])
    >>> m
    2.5

For a statistic of several per-prompt arrays (a ratio of sums, say), resample prompt
*indices*: ``bootstrap_ci(np.arange(n), lambda idx: num[idx].sum() / den[idx].sum())``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from probes.errors import ElicitError

__all__ = ["bootstrap_ci", "mean_ci"]

METHODS = ("percentile", "basic", "BCa")


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], Any] = np.mean,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    *,
    method: str = "percentile",
) -> tuple[float, float]:
    """``(low, high)`` of a ``confidence`` bootstrap interval of ``statistic(values)``.

    ``values`` are resampled with replacement (one entry per prompt). ``statistic`` takes a
    1-D array and returns a scalar; it is called once per resample (not vectorized), so any
    function of an index array works. With fewer than two values, or values whose resamples
    are all equal, the interval collapses to the point estimate.
    """
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ElicitError(f"bootstrap_ci needs a 1-D array of per-prompt values, got shape {arr.shape}.")
    if not 0 < confidence < 1:
        raise ElicitError(f"confidence must be in (0, 1), got {confidence!r}; e.g. 0.95.")
    if method not in METHODS:
        raise ElicitError(f"method must be one of {METHODS}, got {method!r}.")
    if n_resamples < 1:
        raise ElicitError(f"n_resamples must be >= 1, got {n_resamples}.")
    if len(arr) == 0:
        return (float("nan"), float("nan"))
    point = float(statistic(arr))
    if len(arr) < 2:
        return (point, point)
    res = stats.bootstrap(
        (arr,),
        lambda x: statistic(x),
        n_resamples=n_resamples,
        vectorized=False,
        confidence_level=confidence,
        method=method,
        rng=np.random.default_rng(seed),
    )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if np.isnan(lo) or np.isnan(hi):  # degenerate data (every resample equal)
        return (point, point)
    return (lo, hi)


def mean_ci(
    values: Sequence[float] | np.ndarray, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``values`` and its bootstrap interval."""
    arr = np.asarray(values, dtype=float)
    lo, hi = bootstrap_ci(arr, np.mean, n_resamples=n_resamples, confidence=confidence, seed=seed)
    return (float(arr.mean()) if len(arr) else float("nan"), lo, hi)
