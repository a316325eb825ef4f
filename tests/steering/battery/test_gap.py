"""Gap recovered and its floored version on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np

from steering.battery.gap import floored, gr_ci, nan0


def test_floored_hand_case() -> None:
    # base 0.25 (below chance 0.5), tuned 1.0, intervention 0.75: the gap is measured from chance
    B = np.array([1, 0, 0, 0], float)
    T = np.ones(4)
    S = np.array([1, 1, 1, 0], float)
    got = floored(S, B, T, chance=0.5, seed=0)
    assert got["chance"] == 0.5 and got["tuned_gap"] == 0.5
    assert math.isclose(got["gr_floor"], (0.75 - 0.5) / (1.0 - 0.5))  # 0.5, not the plain (0.75-0.25)/0.75
    assert got["gr_floor_lo"] <= got["gr_floor"] <= got["gr_floor_hi"]
    # a below-chance base turned into a guesser recovers nothing
    assert floored(np.full(4, 0.5), B, T, chance=0.5, seed=0)["gr_floor"] == 0.0


def test_ci_brackets_and_degenerate_cases() -> None:
    rng = np.random.default_rng(0)
    B = (rng.random(200) < 0.3).astype(float)
    T = (rng.random(200) < 0.9).astype(float)
    S = (rng.random(200) < 0.6).astype(float)
    lo, hi = gr_ci(S, B, T, seed=0)
    point = (S.mean() - B.mean()) / (T.mean() - B.mean())
    assert lo < point < hi and hi - lo < 0.3
    assert all(math.isnan(x) for x in gr_ci(np.array([]), np.array([]), np.array([]), seed=0))
    assert nan0(float("nan")) == 0.0 and nan0(0.3) == 0.3
