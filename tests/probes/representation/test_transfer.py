"""Direction transfer and probe transfer against hand computations and known nulls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from probes.errors import ElicitError
from probes.models.hooks import HookSite
from probes.representation.transfer import (
    _rank_auroc,
    base_subspace,
    direction_transfer,
    probe_transfer,
    random_cosine_null,
    span_share,
    span_share_null,
)


class _Acts:
    """A stand-in activation store: ``get(variant, hook, position)`` returns ``X[variant][layer]``."""

    def __init__(self, X: dict[str, dict[int, torch.Tensor]], labels=(), splits=()) -> None:
        self.X, self.labels, self.splits = X, tuple(labels), tuple(splits)

    def get(self, variant: str, hook, position=None) -> torch.Tensor:
        return self.X[variant][HookSite.parse(hook).layer]


def test_rank_auroc_equals_sklearn() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 40)
        y[:2] = [0, 1]
        s = np.round(rng.normal(size=40), 1)  # ties
        assert _rank_auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_random_cosine_null_matches_theory() -> None:
    for d in (16, 128, 1024):
        null = random_cosine_null(d, n=20000, seed=1)
        # E|cos| of a random unit vector with a fixed one ~ sqrt(2 / (pi d)) (docs/measures.md)
        assert null.mean() == pytest.approx(math.sqrt(2 / (math.pi * d)), rel=0.05)


def test_direction_transfer_by_hand() -> None:
    # every prompt shifts by (1, 0): cosine with (1, 1) is 1/sqrt(2), with no spread to resample
    base = torch.zeros(4, 2)
    acts = _Acts({"base": {0: base}, "v": {0: base + torch.tensor([1.0, 0.0])}})
    df = direction_transfer(
        acts,
        "v",
        {(0, "last"): torch.tensor([1.0, 1.0])},  # type: ignore[arg-type]
        shuffled={(0, "last"): [torch.tensor([0.0, 1.0]), torch.tensor([-1.0, 0.0])]},
        n_random=4000,
        seed=0,
    )
    row = df.iloc[0]
    assert row.cos == pytest.approx(2**-0.5) and row.cos_lo == row.cos_hi == pytest.approx(2**-0.5)
    assert row.shift_norm == pytest.approx(1.0) and row.n == 4 and (row.layer, row.position) == (0, "last")
    assert row.null_shuffled_mean == pytest.approx(0.5)  # |cos| 0 and 1
    assert row.null_random_mean == pytest.approx(2 / math.pi, rel=0.05)  # E|cos θ| for a uniform angle in 2-D


def test_span_share_by_hand_and_its_null_against_monte_carlo() -> None:
    # delta (3, 4, 0) in span{e1}: 9/25; in span{e1, e2}: 1; orthogonal: 0
    e = torch.eye(3, dtype=torch.float64)
    assert span_share(torch.tensor([3.0, 4.0, 0.0]), e[:, :1]) == pytest.approx(0.36)
    assert span_share(torch.tensor([3.0, 4.0, 0.0]), e[:, :2]) == pytest.approx(1.0)
    assert span_share(torch.tensor([0.0, 0.0, 2.0]), e[:, :2]) == pytest.approx(0.0)
    assert math.isnan(span_share(torch.zeros(3), e[:, :1]))
    # the exact null Beta(k/2, (d-k)/2) against random unit directions
    d, k = 64, 8
    g = torch.Generator().manual_seed(0)
    r = torch.randn(20000, d, generator=g, dtype=torch.float64)
    mc = (r[:, :k].pow(2).sum(1) / r.pow(2).sum(1)).numpy()
    mean, p95 = span_share_null(d, k)
    assert mean == pytest.approx(float(mc.mean()), rel=0.02) and mean == pytest.approx(k / d)
    assert p95 == pytest.approx(float(np.quantile(mc, 0.95)), rel=0.03)
    with pytest.raises(ElicitError, match="k < d"):
        span_share_null(8, 8)


def test_base_subspace_is_the_top_principal_directions() -> None:
    g = torch.Generator().manual_seed(1)
    # variance 9 along e0, 4 along e1, 0.01 elsewhere, shifted by a constant offset (centred away)
    X = torch.randn(400, 6, generator=g) * torch.tensor([3.0, 2.0, 0.1, 0.1, 0.1, 0.1]) + 5.0
    B = base_subspace(X, 2)
    assert torch.allclose(B.mT @ B, torch.eye(2, dtype=torch.float64), atol=1e-10)
    assert span_share(torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0, 0.0]), B) == pytest.approx(1.0, abs=1e-3)
    assert span_share(torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 0.0]), B) < 1e-3
    with pytest.raises(ElicitError, match="k <="):
        base_subspace(X, 7)


def test_direction_transfer_reports_the_span_share_with_its_null() -> None:
    # shift (1, 0, 0, 0) on every prompt; the base subspace is span{e0}: share 1, null Beta(1/2, 3/2)
    base = torch.zeros(5, 4)
    acts = _Acts({"base": {0: base}, "v": {0: base + torch.tensor([1.0, 0.0, 0.0, 0.0])}})
    B = torch.eye(4, dtype=torch.float64)[:, :1]
    df = direction_transfer(
        acts,
        "v",
        {(0, "last"): torch.tensor([1.0, 0.0, 0.0, 0.0])},
        bases={(0, "last"): B},  # type: ignore[arg-type]
    )
    row = df.iloc[0]
    assert row.span_share == pytest.approx(1.0) and row.span_lo == row.span_hi == pytest.approx(1.0)
    assert row.span_null_mean == pytest.approx(0.25) and row.span_k == 1
    assert row.span_null_p95 == pytest.approx(span_share_null(4, 1)[1])


def _probe_acts(flip: bool) -> _Acts:
    # label "p" at +1 and "n" at -1 on the first axis; the variant may flip that axis
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([1.0, -1.0] * 8)
    X = torch.stack([y, 0.1 * torch.randn(16, generator=g)], 1).double()
    Xv = X * torch.tensor([-1.0, 1.0], dtype=torch.float64) if flip else X.clone()
    labels = ["p" if v > 0 else "n" for v in y.tolist()]
    return _Acts({"base": {0: X}, "v": {0: Xv}}, labels, ["train"] * 8 + ["test"] * 8)


def test_probe_transfer_reads_the_same_axis_and_fails_on_a_flipped_one() -> None:
    same = probe_transfer(_probe_acts(False), "v", "resid_post.0", ("p", "n"), eval_split="test")  # type: ignore[arg-type]
    assert same["auroc_base_probe"] == 1.0 and same["auroc_own_probe"] == 1.0 and same["ratio"] == 1.0
    assert same["n"] == 8
    flipped = probe_transfer(_probe_acts(True), "v", "resid_post.0", ("p", "n"), eval_split="test")  # type: ignore[arg-type]
    assert (
        flipped["auroc_base_probe"] == 0.0 and flipped["auroc_own_probe"] == 1.0 and flipped["ratio"] == 0.0
    )
    with pytest.raises(ElicitError, match=">= 4 contrast prompts"):
        probe_transfer(_probe_acts(False), "v", "resid_post.0", ("p", "n"), eval_split="dev")  # type: ignore[arg-type]
