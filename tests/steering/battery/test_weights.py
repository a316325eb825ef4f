"""Weight rows: alignment in [0, 1] against its random null, and the update sizes of the table."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from steering.battery.rows import TestId


@pytest.mark.slow
def test_weight_rows_match_the_table(quick_report) -> None:
    table = pd.read_parquet(quick_report.out / "tables" / "weights.parquet")
    for r in (r for r in quick_report.rows if r.test is TestId.WEIGHTS):
        sub = table[table.variant == r.variant]
        assert math.isclose(r.value("rel_norm"), float(sub.rel_norm.mean()), rel_tol=1e-12)
        assert 0 <= r.effect <= 1 and 0 < r.null < 1 and r.n > 0
