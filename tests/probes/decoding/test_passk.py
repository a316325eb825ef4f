"""pass@k: the estimator equals brute-force enumeration over subsets; curves and crossover."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from probes.data.tasks import Task
from probes.decoding.passk import (
    answer_count,
    crossover_k,
    first_crossover,
    guess_pass_at_k,
    pass_at_k,
    passk_curve,
)
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


@pytest.mark.parametrize(("m", "k"), [(1, 1), (2, 1), (2, 3), (3, 2), (4, 3), (5, 4)])
def test_guesser_equals_enumeration_of_guess_sequences(m: int, k: int) -> None:
    # every sequence of k uniform guesses among m answers is equally likely; answer 0 is right
    seqs = list(itertools.product(range(m), repeat=k))
    assert guess_pass_at_k(m, k) == pytest.approx(sum(0 in s for s in seqs) / len(seqs), abs=1e-12)


def test_guesser_rejects_bad_input() -> None:
    with pytest.raises(ElicitError, match="m=0"):
        guess_pass_at_k(0, 1)
    with pytest.raises(ElicitError, match="k=0"):
        guess_pass_at_k(2, 0)


def test_answer_count_reads_answers_through_the_scorer() -> None:
    recs = [
        {"id": f"q{i}", "prompt": "Q", "answer": f"# {a} #### {a}"} for i, a in enumerate([6, 6, 8, "1,000"])
    ]
    recs.append({"id": "q9", "prompt": "Q", "answer": "#### 1000"})
    assert answer_count(Task.from_records("g", recs, scorer="gsm8k")) == 3  # 6, 8, 1000


def test_ties_at_saturation_are_not_a_crossover() -> None:
    ks = [1, 2, 3, 4]
    # both saturate at 1 from k = 3: equal, never overtaken; a gap within the tolerance neither
    assert first_crossover([0.5, 0.9, 1.0, 1.0], [0.8, 0.95, 1.0, 1.0], ks) == (5, 5)
    assert first_crossover([0.5, 0.9, 1.0, 1.0], [0.8, 0.995, 0.995, 0.995], ks) == (5, 5)
    assert first_crossover([0.5, 0.9, 1.0, 1.0], [0.8, 0.95, 0.98, 0.98], ks) == (3, 5)
    n = 4
    samples = pd.concat([_table("base", [4] * 5, n), _table("rl", [4] * 5, n)])
    row = crossover_k(samples, n_resamples=50).iloc[0]
    assert row["crossover_k"] == n + 1 and not row["reached"]  # the old rule (>=) said k = 1


def test_overtaking_at_the_guessing_level_is_reported_apart() -> None:
    ks = [1, 2, 3, 4, 5]
    guess = [guess_pass_at_k(2, k) for k in ks]  # 0.5, 0.75, 0.875, 0.9375, 0.96875
    # the base overtakes at k = 2 (0.76 > 0.61) but a coin does as well there (0.76 <= 0.77):
    # at guessing; at k = 4 it beats the coin by more than the margin (0.99 > 0.9575)
    base, tuned = [0.3, 0.76, 0.85, 0.99, 0.99], [0.6, 0.6, 0.6, 0.6, 0.6]
    assert first_crossover(base, tuned, ks, guess=guess) == (4, 2)
    # a base that never leaves the guessing level never crosses over
    assert first_crossover([0.3, 0.76, 0.88, 0.95, 0.97], tuned, ks, guess=guess) == (6, 2)
    # the same curves without a guesser: k = 2
    assert first_crossover(base, tuned, ks) == (2, 6)


def test_crossover_table_carries_the_guesser() -> None:
    n = 4
    # per prompt c of 4 correct: base 1 of 4 everywhere (pass@k = k/4), tuned 2 of 4 on half
    # the prompts (mean pass@k = (1 - C(2,k)/C(4,k)) / 2: 0.25, 0.417, 0.5, 0.5)
    samples = pd.concat([_table("base", [1] * 6, n), _table("rl", [2] * 3 + [0] * 3, n)])
    free = crossover_k(samples, n_resamples=50).iloc[0]
    assert free["crossover_k"] == 2 and free["guess_k"] == n + 1  # 0.5 > 0.417 + 0.01
    coin = crossover_k(samples, n_answers=2, n_resamples=50).iloc[0]
    # at k = 2, 3 the base (0.5, 0.75) is below a coin (0.75, 0.875); at k = 4 (1.0) it beats
    # the coin (0.9375) by more than the margin
    assert coin["crossover_k"] == 4 and coin["guess_k"] == 2 and coin["reached"]
    assert coin["passn_guess"] == pytest.approx(1 - 0.5**4) and coin["n_answers"] == 2
