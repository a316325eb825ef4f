"""SAE rows: the null is the base's own FVU; crosscoder shares are fractions of live latents."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from steering.battery.rows import TestId


@pytest.mark.slow
def test_sae_rows_match_the_tables(quick_report) -> None:
    transfer = pd.read_parquet(quick_report.out / "tables" / "sae_transfer.parquet")
    fvu = [r for r in quick_report.rows if r.test is TestId.SAE_FVU]
    assert {r.variant for r in fvu} == {"sft", "create"}
    for r in fvu:  # each variant is judged on its own task, against the base's FVU on that task
        on_task = transfer[transfer.task == r.task]
        assert r.null == float(on_task[on_task.variant == "base"].fvu.iloc[0])
        assert math.isclose(r.effect, float(on_task[on_task.variant == r.variant].fvu.iloc[0]))
    for r in (r for r in quick_report.rows if r.test is TestId.CROSSCODER):
        assert 0 <= r.effect <= 1 and 0 <= r.null <= 1 and r.n >= 1
