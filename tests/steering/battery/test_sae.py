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


def test_planted_variant_adds_sparse_unit_directions() -> None:
    import torch

    from steering.battery.sae import planted_variant

    h = torch.randn(4000, 32, generator=torch.Generator().manual_seed(0))
    hv, dirs = planted_variant(h, n_planted=4, p=0.05, seed=1)
    assert dirs.shape == (4, 32) and torch.allclose(dirs @ dirs.T, torch.eye(4), atol=1e-5)
    coef = (hv - h) @ dirs.T  # the planted part, coordinate by coordinate
    assert torch.allclose(hv - h, coef @ dirs, atol=1e-4)
    fired = (coef.abs() > 1e-6).float().mean(0)
    assert torch.all((fired > 0.03) & (fired < 0.07))  # ~5% of rows each
    mean_norm = float(h.norm(dim=-1).mean())
    on = coef[coef.abs() > 1e-6]
    assert float(on.min()) >= 0.25 * mean_norm - 1e-4 and float(on.max()) <= 0.75 * mean_norm + 1e-4
    again, _ = planted_variant(h, n_planted=4, p=0.05, seed=1)
    assert torch.equal(again, hv)


@pytest.mark.slow
def test_crosscoder_rows_carry_convergence_and_both_controls(quick_report) -> None:
    cc = [r for r in quick_report.rows if r.test is TestId.CROSSCODER]
    assert cc
    for r in cc:
        assert (
            r.value("control_identical_variant_only") == 0.0
        )  # an identical copy has no variant-only latent
        assert r.value("control_planted_recall") >= 0.75  # the planted directions are found
        assert r.value("converged") in (0.0, 1.0) and r.value("steps") in (250.0, 500.0)  # SMALL's schedule
        assert ("NOT converged" in r.detail) == (r.value("converged") == 0.0)
    for r in (r for r in quick_report.rows if r.test is TestId.SAE_FVU):
        assert r.value("converged") in (0.0, 1.0) and 0.0 <= r.value("dead_share") <= 1.0
