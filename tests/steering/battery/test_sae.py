"""SAE rows: the null is the base's own FVU; crosscoder shares are fractions of live latents."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from steering.battery.rows import TestId


@pytest.mark.slow
def test_sae_rows_match_the_tables(quick_report) -> None:
    transfer = pd.read_parquet(quick_report.out / "tables" / "sae_transfer.parquet")
    base_fvu = float(transfer[transfer.variant == "base"].fvu.iloc[0])
    fvu = [r for r in quick_report.rows if r.test is TestId.SAE_FVU]
    assert {r.variant for r in fvu} == {"sft", "create"}
    for r in fvu:
        assert r.null == base_fvu and math.isclose(
            r.effect, float(transfer[transfer.variant == r.variant].fvu.iloc[0])
        )
    for r in (r for r in quick_report.rows if r.test is TestId.CROSSCODER):
        assert 0 <= r.effect <= 1 and 0 <= r.null <= 1 and r.n >= 1
