"""Forcing the format: rows carry the prefill and the Venhoff ratio of their accuracies."""

from __future__ import annotations

import math

import pytest

from steering.battery.rows import TestId
from steering.sweep import gap_recovered


@pytest.mark.slow
def test_forced_rows(quick_report) -> None:
    rows = [r for r in quick_report.rows if r.test is TestId.FORCED_FORMAT]
    assert {r.variant for r in rows} == {"sft", "create"} and all(r.position == "prefill:#" for r in rows)
    for r in rows:
        want = gap_recovered(r.value("acc_intervention"), r.value("acc_base"), r.value("acc_tuned"))
        assert (math.isnan(want) and math.isnan(r.effect)) or math.isclose(r.effect, want, abs_tol=1e-12)
    # the quick organism's base reasons when `#` is forced: forcing lifts it well above its free
    # accuracy (measured: 0.625 forced on neutral prompts; the full organism recovers sft's whole gap)
    sft = next(r for r in rows if r.variant == "sft")
    assert sft.value("acc_intervention") >= sft.value("acc_base") + 0.15 and sft.effect > 0.3


@pytest.mark.slow
def test_forced_rows_count_budget_cut_completions(quick_report) -> None:
    """Each forced-format row carries the share of the base's forced completions that the budget
    cut off, as the stored per-completion finish reasons give it."""
    import json

    rows = [r for r in quick_report.rows if r.test is TestId.FORCED_FORMAT]
    for r in rows:
        (ends_file,) = (quick_report.out / "work" / "forced").glob(f"{r.task}-*-finish.json")
        ends = json.loads(ends_file.read_text())
        assert set(ends.values()) <= {"stop", "budget"} and len(ends) == r.n
        assert r.value("budget_share") == sum(f == "budget" for f in ends.values()) / len(ends)
