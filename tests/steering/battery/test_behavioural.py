"""Steering the base: each row's gap recovered is the Venhoff ratio of the accuracies it reports."""

from __future__ import annotations

import math

import pytest

from steering.battery.rows import TestId
from steering.sweep import gap_recovered


@pytest.mark.slow
def test_steering_rows_follow_the_definition(quick_report) -> None:
    rows = [r for r in quick_report.rows if r.test is TestId.STEERING]
    assert {r.variant for r in rows} == {"sft", "create"}
    sweep = __import__("pandas").read_parquet(quick_report.out / "tables" / "sweep.parquet")
    for r in rows:
        assert math.isclose(
            r.effect,
            gap_recovered(r.value("acc_intervention"), r.value("acc_base"), r.value("acc_tuned")),
            abs_tol=1e-12,
        ) or math.isnan(r.effect)
        assert r.ci_lo <= r.ci_hi and r.n > 0 and r.value("alpha") in (0.0, 2.0, 8.0)
        # the chosen setting is the dev-best one, reported on test
        dev = sweep[(sweep.control == "steer") & (sweep.split == "dev") & (sweep.task == r.task)]
        best = dev.groupby(["layer", "alpha"]).correct.mean().max()
        chosen = dev[(dev.layer == r.layer) & (dev.alpha == r.value("alpha"))].correct.mean()
        assert chosen == best
