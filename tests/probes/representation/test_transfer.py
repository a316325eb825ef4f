"""Direction transfer and probe transfer against hand computations and known nulls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from probes.errors import ElicitError
from probes.models.hooks import HookSite
from probes.representation.transfer import _rank_auroc, direction_transfer, probe_transfer, random_cosine_null


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
