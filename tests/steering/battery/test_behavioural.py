"""Steering the base: each row's gap recovered is the Venhoff ratio of the accuracies it reports,
and its null is every random draw and the label-shuffled vector, each given the same dev search."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from steering.battery.rows import TestId
from steering.battery.verdict import THRESHOLDS
from steering.sweep import gap_recovered


def _dev_best(rows: pd.DataFrame, min_kl: float = 0.0) -> tuple[int, float, float]:
    """(layer, alpha, dev accuracy) of the best nonzero-alpha setting on dev (ties: smaller |alpha|,
    layer), among the settings whose median dev KL reaches ``min_kl`` when any does."""
    dev = rows[(rows.split == "dev") & (rows.alpha != 0)]
    kl = dev.groupby(["layer", "alpha"]).kl.median()
    if (kl >= min_kl).any():
        ok = set(kl[kl >= min_kl].index)
        dev = dev[[(a, b) in ok for a, b in zip(dev.layer, dev.alpha, strict=True)]]
    acc = dev.groupby(["layer", "alpha"]).correct.mean().reset_index()
    acc["a"] = acc.alpha.abs()
    best = acc.sort_values(["correct", "a", "layer"], ascending=[False, True, True]).iloc[0]
    return int(best.layer), float(best.alpha), float(best.correct)


@pytest.mark.slow
def test_steering_rows_follow_the_definition(quick_report) -> None:
    rows = [r for r in quick_report.rows if r.test is TestId.STEERING]
    assert {r.variant for r in rows} == {"sft", "create"}
    sweep = pd.read_parquet(quick_report.out / "tables" / "sweep.parquet")
    for r in rows:
        assert math.isclose(
            r.effect,
            gap_recovered(r.value("acc_intervention"), r.value("acc_base"), r.value("acc_tuned")),
            abs_tol=1e-12,
        ) or math.isnan(r.effect)
        assert r.ci_lo <= r.ci_hi and r.n > 0 and r.value("alpha") in (0.25, 0.5)
        task = sweep[sweep.task == r.task]
        # the chosen setting is the dev-best nonzero one, reported on test
        # (among the settings that passed the manipulation check: median dev KL >= min_kl)
        assert _dev_best(task[task.control == "steer"], THRESHOLDS["min_kl"])[:2] == (
            r.layer,
            r.value("alpha"),
        )
        # the null: 20 random draws and the shuffled vector, each with its own dev-chosen setting
        nulls = task[task.control.isin(["random", "shuffled"])]
        assert set(nulls[nulls.control == "random"].draw) == set(range(20)) and r.value("n_random") == 20
        best = {key: _dev_best(g) for key, g in nulls.groupby(["control", "draw"])}
        # each null was run on test at exactly its own dev-chosen setting
        for (c, k), (layer, alpha, _) in best.items():
            t = nulls[(nulls.control == c) & (nulls.draw == k) & (nulls.split == "test")]
            assert set(zip(t.layer, t.alpha, strict=True)) == {(layer, alpha)}
        top = max(best.items(), key=lambda kv: (kv[1][2], kv[0][0] == "random", -kv[0][1]))[0]
        assert r.value("random_best_draw") == top[1]
        # the paired difference is steered minus the best null, on the same test prompts
        steer_t = task[(task.control == "steer") & (task.split == "test") & (task.layer == r.layer)]
        S = steer_t[steer_t.alpha == r.value("alpha")].set_index("prompt_id").correct.astype(float)
        R = nulls[(nulls.control == top[0]) & (nulls.draw == top[1]) & (nulls.split == "test")]
        R = R.set_index("prompt_id").correct.astype(float).loc[S.index]
        assert r.value("diff_vs_random") == pytest.approx(float((S - R).mean()))
        assert r.value("diff_vs_random_lo") <= r.value("diff_vs_random") <= r.value("diff_vs_random_hi")
        assert 0 < r.value("diff_vs_random_p") <= 1
        # the manipulation check: the hook fired on every organism prompt and moved the next token
        assert r.value("fired_share") == 1.0 and r.value("n_not_fired") == 0
        kl = steer_t[steer_t.alpha == r.value("alpha")].kl
        assert r.value("kl_median") == pytest.approx(float(np.median(kl))) and r.value("kl_median") > 0


def test_the_hierarchical_interval_resamples_the_draws() -> None:
    """Two random draws, one of which flips every prompt: a resample that holds it (3 in 4 on
    average) has a best null as good as the vector (difference 0), one that does not has 1."""
    from steering.battery.behavioural import _hierarchical, _Setting
    from steering.sweep.summary import DevChoice

    ids = pd.Index([f"p{i}" for i in range(40)])

    def null(control: str, draw: int, dev: float, value: float) -> _Setting:
        return _Setting(
            control,
            draw,
            DevChoice(0, 0.5, dev),
            pd.Series(value, index=ids),
            pd.Series(1, index=ids),
            pd.Series(0.1, index=ids),
        )

    S = np.ones(len(ids))
    flips = [null("random", 0, 1.0, 1.0), null("random", 1, 0.0, 0.0), null("shuffled", -1, 0.0, 0.0)]
    lo, hi = _hierarchical(S, flips, ids, seed=0)
    assert (lo, hi) == (0.0, 1.0)
    quiet = [null("random", k, 0.0, 0.0) for k in range(20)] + [null("shuffled", -1, 0.0, 0.0)]
    assert _hierarchical(S, quiet, ids, seed=0) == (1.0, 1.0)
    # the shuffled vector is in every resample: a flipping shuffled vector closes the gap always
    always = [null("random", 0, 0.0, 0.0), null("shuffled", -1, 1.0, 1.0)]
    assert _hierarchical(S, always, ids, seed=0) == (0.0, 0.0)
