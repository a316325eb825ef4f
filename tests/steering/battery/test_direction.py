"""Direction transfer rows: one per layer and position, null = the random-direction p95, cosines in [-1, 1];
span-share rows against the exact Beta null."""

from __future__ import annotations

import pytest

from steering.battery.rows import TestId

SITES = {(k, p) for k in range(3) for p in ("match:=", "span:scratchpad")}


@pytest.mark.slow
def test_direction_and_span_share_rows(quick_report) -> None:
    from probes.representation.transfer import span_share_null

    cos = [r for r in quick_report.rows if r.test is TestId.DIRECTION and r.variant == "sft"]
    span = [r for r in quick_report.rows if r.test is TestId.DIRECTION_SPAN and r.variant == "sft"]
    assert {(r.layer, r.position) for r in cos} == {(r.layer, r.position) for r in span} == SITES
    for r in cos:
        assert -1 <= r.ci_lo <= r.effect <= r.ci_hi <= 1 and 0 < r.null < 1 and r.value("shift_norm") > 0
    for r in span:
        k, d = int(r.value("span_k")), int(r.value("span_d"))
        assert 0 <= r.ci_lo <= r.effect <= r.ci_hi <= 1 and 1 <= k < d
        assert r.null == pytest.approx(span_share_null(d, k)[1])
