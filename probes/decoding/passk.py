"""pass@k with the unbiased estimator, curves per variant, and the base-vs-tuned crossover k.

docs/measures.md, "Decoding elicitation". Chen et al. 2021: with ``n`` samples of which ``c`` are
correct, ``pass@k = 1 − C(n−c, k) / C(n, k)``. Yue et al. 2025 found RL-tuned models win at
k = 1 while their base catches up and overtakes by k in the tens to hundreds; the
*crossover k* is the smallest k at which the base's mean pass@k exceeds the tuned one's by more
than a tie tolerance, where the base also beats a uniform guesser over the task's ``m`` distinct
answers (``1 − (1 − 1/m)^k``) by more than a margin; an overtaking at the guessing level is
reported apart (``guess_k``).

    >>> pass_at_k(4, 1, 1)
    0.25
    >>> pass_at_k(4, 1, 4)
    1.0
    >>> pass_at_k(5, 0, 3)
    0.0
    >>> guess_pass_at_k(2, 3)
    0.875

Glossary of table columns: ``variant``, ``prompt_id``, ``k``, ``pass_at_k`` (mean over
prompts), ``ci_lo``/``ci_hi`` (95% bootstrap over prompts), ``n_prompts``, ``n_samples``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from jaxtyping import Float

from probes.data.tasks import Task
from probes.errors import ElicitError
from probes.stats import bootstrap_ci

__all__ = [
    "pass_at_k",
    "guess_pass_at_k",
    "answer_count",
    "per_prompt_counts",
    "passk_matrix",
    "passk_curve",
    "crossover_k",
    "first_crossover",
]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` correct (Chen et al. 2021).

    Computed in the numerically stable product form
    ``1 − Π_{i=n−c+1..n} (1 − k / i)``, which equals ``1 − C(n−c, k) / C(n, k)`` exactly.
    """
    if not (
        isinstance(n, int | np.integer)
        and isinstance(c, int | np.integer)
        and isinstance(k, int | np.integer)
    ):
        raise ElicitError(f"pass_at_k needs integers n, c, k; got n={n!r}, c={c!r}, k={k!r}.")
    if n < 1 or not 0 <= c <= n:
        raise ElicitError(f"pass_at_k needs n >= 1 and 0 <= c <= n; got n={n}, c={c}.")
    if not 1 <= k <= n:
        raise ElicitError(
            f"pass_at_k needs 1 <= k <= n (= {n} samples); got k={k}. Draw more samples or lower k."
        )
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def guess_pass_at_k(m: int, k: int) -> float:
    """pass@k of a guesser answering uniformly at random among ``m`` distinct answers: each of
    ``k`` independent guesses is right with probability ``1/m``, so ``1 − (1 − 1/m)^k`` exactly."""
    if not isinstance(m, int | np.integer) or m < 1:
        raise ElicitError(f"guess_pass_at_k needs m (distinct answers) an integer >= 1; got m={m!r}.")
    if not isinstance(k, int | np.integer) or k < 1:
        raise ElicitError(f"guess_pass_at_k needs k an integer >= 1; got k={k!r}.")
    return float(1.0 - (1.0 - 1.0 / float(m)) ** int(k))


def answer_count(task: Task) -> int:
    """``m``, the number of distinct reference answers of ``task`` as its scorer reads them (the
    scorer's parse of each reference, e.g. the number after ``####``; the stripped text where the
    scorer parses nothing)."""
    seen = set()
    for e in task.examples:
        parsed = task.score(e.answer, e.answer).parsed
        seen.add(parsed if parsed is not None else e.answer.strip())
    if not seen:
        raise ElicitError(f"Task {task.name!r} has no examples, so no answers to count.")
    return len(seen)


def per_prompt_counts(samples: pd.DataFrame, by: Sequence[str] = ("variant",)) -> pd.DataFrame:
    """``(n, c)`` per prompt from a sampling table (columns ``prompt_id``, ``correct`` and ``by``)."""
    need = {*by, "prompt_id", "correct"}
    missing = need - set(samples.columns)
    if missing:
        raise ElicitError(
            f"Sampling table lacks column(s) {sorted(missing)} (has {list(samples.columns)}); "
            "pass the table from probes.decoding.sampling.sample_task."
        )
    g = samples.groupby([*by, "prompt_id"], sort=False)["correct"]
    return g.agg(n="size", c="sum").reset_index()


def passk_matrix(n: np.ndarray, c: np.ndarray, ks: Sequence[int]) -> Float[np.ndarray, "prompt k"]:
    """pass@k of each prompt (rows) at each k (columns)."""
    return np.array([[pass_at_k(int(ni), int(ci), int(k)) for k in ks] for ni, ci in zip(n, c, strict=True)])


def _ks(counts: pd.DataFrame, ks: Sequence[int] | None) -> list[int]:
    n_min = int(counts["n"].min())
    if ks is None:
        return list(range(1, n_min + 1))
    bad = [k for k in ks if not 1 <= int(k) <= n_min]
    if bad:
        raise ElicitError(f"k values {bad} are outside 1..{n_min} (the fewest samples any prompt has).")
    return [int(k) for k in ks]


def passk_curve(
    samples: pd.DataFrame, ks: Sequence[int] | None = None, *, n_resamples: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Mean pass@k over prompts with a bootstrap CI, for every variant and k.

    ``ks`` defaults to every k from 1 to the smallest per-prompt sample count.
    """
    counts = per_prompt_counts(samples)
    rows = []
    for variant, sub in counts.groupby("variant", sort=False):
        kk = _ks(sub, ks)
        mat = passk_matrix(sub["n"].to_numpy(), sub["c"].to_numpy(), kk)
        for j, k in enumerate(kk):
            col = mat[:, j]
            lo, hi = bootstrap_ci(col, n_resamples=n_resamples, seed=seed)
            rows.append(
                {
                    "variant": variant,
                    "k": k,
                    "pass_at_k": float(col.mean()),
                    "ci_lo": lo,
                    "ci_hi": hi,
                    "n_prompts": len(sub),
                    "n_samples": int(sub["n"].min()),
                }
            )
    return pd.DataFrame(rows)


def first_crossover(
    base: Sequence[float],
    tuned: Sequence[float],
    ks: Sequence[int],
    *,
    guess: Sequence[float] | None = None,
    tie_tol: float = 0.01,
    guess_margin: float = 0.02,
) -> tuple[int, int]:
    """``(crossover_k, guess_k)`` of two mean pass@k curves over ``ks``; ``max(ks) + 1`` means "none".

    The base *overtakes* at k when ``base[k] > tuned[k] + tie_tol`` (two curves saturated at 1
    tie, never cross). An overtaking is *at guessing* when ``base[k] <= guess[k] + guess_margin``
    (the base does no better than a uniform guesser there). ``crossover_k`` is the first
    overtaking not at guessing, ``guess_k`` the first one at guessing. Without ``guess`` no
    overtaking is at guessing.

        >>> first_crossover([0.2, 0.5, 0.9], [0.4, 0.5, 0.6], [1, 2, 3])
        (3, 4)
        >>> first_crossover([0.2, 0.76, 0.99], [0.4, 0.6, 0.6], [1, 2, 3], guess=[0.5, 0.75, 0.875])
        (3, 2)
    """
    if tie_tol < 0 or guess_margin < 0:
        raise ElicitError(f"tie_tol and guess_margin must be >= 0; got {tie_tol} and {guess_margin}.")
    b, t = np.asarray(base, dtype=np.float64), np.asarray(tuned, dtype=np.float64)
    ahead = b > t + tie_tol
    if guess is None:
        at_guess = np.zeros_like(ahead)
    else:
        at_guess = b <= np.asarray(guess, dtype=np.float64) + guess_margin
    never = int(max(ks)) + 1

    def first(mask: np.ndarray) -> int:
        hit = np.nonzero(mask)[0]
        return int(ks[hit[0]]) if len(hit) else never

    return first(ahead & ~at_guess), first(ahead & at_guess)


def crossover_k(
    samples: pd.DataFrame,
    tuned: Sequence[str] | None = None,
    *,
    base: str = "base",
    n_answers: int | None = None,
    tie_tol: float = 0.01,
    guess_margin: float = 0.02,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """The smallest k at which the base's mean pass@k overtakes each tuned variant's
    (:func:`first_crossover`: by more than ``tie_tol``, and above the uniform guesser over
    ``n_answers`` distinct answers by more than ``guess_margin``; see :func:`answer_count`).

    Prompts are paired (the same prompt ids for both variants) and resampled together for a
    95% bootstrap interval. When the base never overtakes up to n samples the crossover is
    reported as ``n + 1`` with ``reached = False`` ("none up to n"); ``guess_k`` is the first
    k where it overtakes only at the guessing level (``n + 1``: never). ``n_answers=None``
    compares with no guesser.

    Columns: ``variant, base, crossover_k, ci_lo, ci_hi, reached, guess_k, n_answers,
    pass1_base, pass1_tuned, pass1_guess, passn_base, passn_tuned, passn_guess, tie_tol,
    guess_margin, n_prompts, n_samples``.
    """
    counts = per_prompt_counts(samples)
    have = list(dict.fromkeys(counts["variant"]))
    if base not in have:
        raise ElicitError(f"Sampling table has no base variant {base!r}; variants present: {have}.")
    tuned = [v for v in have if v != base] if tuned is None else list(tuned)
    missing = [v for v in tuned if v not in have]
    if missing:
        raise ElicitError(f"Variant(s) {missing} are not in the sampling table; variants present: {have}.")
    b = counts[counts["variant"] == base].set_index("prompt_id")
    rows = []
    for v in tuned:
        t = counts[counts["variant"] == v].set_index("prompt_id")
        shared = [p for p in b.index if p in t.index]
        if not shared:
            raise ElicitError(
                f"Variants {base!r} and {v!r} share no prompt ids; sample both on the same task."
            )
        bb, tt = b.loc[shared], t.loc[shared]
        n_min = int(min(bb["n"].min(), tt["n"].min()))
        ks = list(range(1, n_min + 1))
        mb = passk_matrix(bb["n"].to_numpy(), bb["c"].to_numpy(), ks)
        mt = passk_matrix(tt["n"].to_numpy(), tt["c"].to_numpy(), ks)
        never = n_min + 1
        guess = None if n_answers is None else [guess_pass_at_k(n_answers, k) for k in ks]

        def stat(
            idx: np.ndarray,
            mb: np.ndarray = mb,
            mt: np.ndarray = mt,
            ks: list[int] = ks,
            guess: list[float] | None = guess,
        ) -> float:
            b, t = mb[idx].mean(0), mt[idx].mean(0)
            return float(
                first_crossover(b, t, ks, guess=guess, tie_tol=tie_tol, guess_margin=guess_margin)[0]
            )

        point, at_guess = first_crossover(
            mb.mean(0), mt.mean(0), ks, guess=guess, tie_tol=tie_tol, guess_margin=guess_margin
        )
        lo, hi = bootstrap_ci(np.arange(len(shared)), stat, n_resamples=n_resamples, seed=seed)
        rows.append(
            {
                "variant": v,
                "base": base,
                "crossover_k": point,
                "ci_lo": lo,
                "ci_hi": hi,
                "reached": point < never,
                "guess_k": at_guess,
                "n_answers": n_answers,
                "pass1_base": float(mb[:, 0].mean()),
                "pass1_tuned": float(mt[:, 0].mean()),
                "pass1_guess": float("nan") if guess is None else guess[0],
                "passn_base": float(mb[:, -1].mean()),
                "passn_tuned": float(mt[:, -1].mean()),
                "passn_guess": float("nan") if guess is None else guess[-1],
                "tie_tol": tie_tol,
                "guess_margin": guess_margin,
                "n_prompts": len(shared),
                "n_samples": n_min,
            }
        )
    return pd.DataFrame(rows)
