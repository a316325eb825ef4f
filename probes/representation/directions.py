"""Directions from a labelled contrast: which prompts are on each side, and the difference of means.

docs/measures.md, "Representation transfer" and "Steering baselines". A contrast ``(a, b)``
names the positive and the negative side by task label (a side may be several labels);
the difference-of-means direction is ``mean_{x ∈ a} h(x) − mean_{x ∈ b} h(x)`` (CAA, Rimsky /
Panickssery et al. 2024). :func:`steering.vector.fit_vector` and the transfer test both read
their directions from here.

    >>> X = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    >>> contrast_direction(X, ["a", "a", "b", "b"], ("a", "b")).tolist()
    [2.0, -2.0]

Glossary of dimensions: ``prompt`` (one row per prompt), ``d_model``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from jaxtyping import Bool, Float

from probes.errors import ElicitError

__all__ = ["label_mask", "contrast_masks", "mean_difference", "contrast_direction"]

#: A side of a contrast: one task label, or several.
Side = str | Sequence[str]


def label_mask(labels: Sequence[str | None], side: Side) -> Bool[np.ndarray, " prompt"]:
    """Which prompts carry one of the labels of ``side`` (an unlabelled prompt never does)."""
    wanted = {side} if isinstance(side, str) else {str(s) for s in side}
    return np.array([lab is not None and str(lab) in wanted for lab in labels], dtype=bool)


def contrast_masks(
    labels: Sequence[str | None],
    contrast: tuple[Side, Side],
    *,
    keep: Bool[np.ndarray, " prompt"] | None = None,
    where: str = "",
) -> tuple[Bool[np.ndarray, " prompt"], Bool[np.ndarray, " prompt"]]:
    """The positive and negative prompts of ``contrast`` (among ``keep``, when given).

    Raises :class:`ElicitError` unless each side has at least two prompts; ``where`` (e.g.
    ``" (split='train')"``) is added to the message.
    """
    pos, neg = label_mask(labels, contrast[0]), label_mask(labels, contrast[1])
    if keep is not None:
        pos, neg = pos & keep, neg & keep
    if pos.sum() < 2 or neg.sum() < 2:
        raise ElicitError(
            f"Contrast {contrast} has {int(pos.sum())} positive and {int(neg.sum())} negative prompts{where}; "
            f"need at least 2 of each. Labels present: {sorted({str(x) for x in labels})}."
        )
    return pos, neg


def mean_difference(
    positive: Float[torch.Tensor, "n_pos d_model"], negative: Float[torch.Tensor, "n_neg d_model"]
) -> Float[torch.Tensor, " d_model"]:
    """``mean(positive) − mean(negative)`` over rows, in the rows' dtype."""
    return positive.mean(0) - negative.mean(0)


def contrast_direction(
    X: Float[torch.Tensor, "prompt d_model"], labels: Sequence[str | None], contrast: tuple[Side, Side]
) -> Float[torch.Tensor, " d_model"]:
    """The difference of means (float64) of the rows of ``X`` labelled ``contrast[0]`` and ``contrast[1]``."""
    pos, neg = contrast_masks(labels, contrast)
    return mean_difference(X[torch.from_numpy(pos)].double(), X[torch.from_numpy(neg)].double())
