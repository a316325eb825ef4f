"""pass@k: the estimator equals brute-force enumeration over subsets; curves and crossover."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from probes.decoding.passk import crossover_k, pass_at_k, passk_curve
from probes.errors import ElicitError


def brute_force(n: int, c: int, k: int) -> float:
    outcomes = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", range(1, 9))
def test_estimator_equals_enumeration(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k), abs=1e-12)


def test_estimator_large_n_is_stable() -> None:
    from math import comb

    assert pass_at_k(1000, 3, 500) == pytest.approx(1 - comb(997, 500) / comb(1000, 500), rel=1e-12)


def test_estimator_rejects_bad_input() -> None:
    with pytest.raises(ElicitError, match="1 <= k <= n"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ElicitError, match="0 <= c <= n"):
        pass_at_k(4, 5, 1)


def _table(variant: str, counts: list[int], n: int) -> pd.DataFrame:
    rows = []
    for p, c in enumerate(counts):
        for j in range(n):
            rows.append({"variant": variant, "prompt_id": f"p{p}", "sample": j, "correct": j < c})
    return pd.DataFrame(rows)


def test_curve_and_crossover() -> None:
    n = 8
    base = _table("base", [1] * 9 + [0], n)  # mean pass@k = 0.9 k/8
    tuned = _table("rl", [8] * 6 + [0] * 4, n)  # pass@k = 0.6 for every k
    never = _table("sft", [8] * 10, n)  # always 1.0: the base (at most 0.9) never reaches it
    samples = pd.concat([base, tuned, never])
    curve = passk_curve(samples, n_resamples=200)
    b = curve[curve["variant"] == "base"].set_index("k")["pass_at_k"]
    np.testing.assert_allclose(b.to_numpy(), 0.9 * np.arange(1, n + 1) / n)
    np.testing.assert_allclose(curve[curve["variant"] == "rl"]["pass_at_k"].to_numpy(), 0.6)
    cross = crossover_k(samples, n_resamples=200).set_index("variant")
    assert cross.loc["rl", "crossover_k"] == 6  # 0.9 * 6/8 >= 0.6 > 0.9 * 5/8
    assert bool(cross.loc["rl", "reached"])
    assert cross.loc["rl", "ci_lo"] <= 6 <= cross.loc["rl", "ci_hi"]
    assert cross.loc["sft", "crossover_k"] == n + 1 and not bool(cross.loc["sft", "reached"])


def test_crossover_names_missing_variant() -> None:
    with pytest.raises(ElicitError, match="variants present"):
        crossover_k(_table("base", [1], 4), tuned=["dpo"])
