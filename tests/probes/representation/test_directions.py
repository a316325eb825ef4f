"""Contrast sides and the difference of means (probes.representation.directions) by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from probes.errors import ElicitError
from probes.representation.directions import contrast_direction, contrast_masks, label_mask, mean_difference

LABELS = ["a", "b", None, "a", "c", "b"]


def test_label_mask_matches_one_or_several_labels() -> None:
    assert label_mask(LABELS, "a").tolist() == [True, False, False, True, False, False]
    assert label_mask(LABELS, ["b", "c"]).tolist() == [False, True, False, False, True, True]
    assert label_mask(LABELS, "None").tolist() == [False] * 6  # an unlabelled prompt is on no side
    assert label_mask([], "a").dtype == bool


def test_contrast_masks_respect_keep_and_need_two_per_side() -> None:
    pos, neg = contrast_masks(LABELS, ("a", ["b", "c"]))
    assert pos.tolist() == [True, False, False, True, False, False]
    assert neg.tolist() == [False, True, False, False, True, True]
    keep = np.array([True, True, True, True, False, True])
    pos, neg = contrast_masks(LABELS, ("a", ["b", "c"]), keep=keep)
    assert neg.tolist() == [False, True, False, False, False, True]
    with pytest.raises(
        ElicitError, match=r"1 positive and 2 negative prompts \(split='x'\); need at least 2"
    ):
        contrast_masks(LABELS, ("c", "b"), where=" (split='x')")


def test_mean_difference_by_hand_keeps_the_dtype() -> None:
    pos = torch.tensor([[1.0, 2.0], [3.0, 2.0]])
    neg = torch.tensor([[0.0, 1.0], [0.0, 3.0], [0.0, 5.0]])
    d = mean_difference(pos, neg)
    assert d.tolist() == [2.0, -1.0] and d.dtype == torch.float32


def test_contrast_direction_is_the_float64_difference_of_means() -> None:
    X = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 3.0], [9.0, 9.0]])
    d = contrast_direction(X, ["a", "a", "b", "b", None], ("a", "b"))
    assert d.dtype == torch.float64 and d.tolist() == [2.0, -2.0]
    with pytest.raises(ElicitError, match="need at least 2"):
        contrast_direction(X, ["a", "b", "b", "b", "b"], ("a", "b"))
