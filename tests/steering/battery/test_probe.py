"""Probe transfer rows: effect = AUROC(base probe) / AUROC(own probe), null = 0.5 / AUROC(own)."""

from __future__ import annotations

import math

import pytest

from steering.battery.rows import TestId


@pytest.mark.slow
def test_probe_rows(quick_report) -> None:
    rows = [r for r in quick_report.rows if r.test is TestId.PROBE]
    assert sorted((r.variant, r.layer) for r in rows) == [(v, k) for v in ("create", "sft") for k in range(3)]
    for r in rows:
        own, base = r.value("auroc_own_probe"), r.value("auroc_base_probe")
        assert math.isclose(r.effect, base / own, rel_tol=1e-9) and math.isclose(
            r.null, 0.5 / own, rel_tol=1e-9
        )
