"""Shift, direction transfer and probe transfer against hand computations and known nulls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from probes.representation.transfer import _rank_auroc, contrast_direction, random_cosine_null


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


def test_contrast_direction_is_difference_of_means() -> None:
    X = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    d = contrast_direction(X, ["a", "a", "b", "b"], ("a", "b"))
    assert torch.allclose(d, torch.tensor([2.0, -2.0], dtype=torch.float64))
