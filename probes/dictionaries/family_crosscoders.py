"""Crosscoders across a family: one crosscoder per variant against the base, in one table.

Each variant gets its own crosscoder over ``[h_base; h_variant]`` on the same stored token
rows (:func:`probes.dictionaries.crosscoder.train_crosscoder`), read with
:func:`~probes.dictionaries.crosscoder.crosscoder_latents` and counted with
:func:`~probes.dictionaries.crosscoder.crosscoder_summary`. The latent tables are stacked with
a ``variant`` column, the shape :func:`probes.plots.dictionaries.crosscoder_norms` plots::

    cc = family_crosscoders(acts, "resid_post.1", "all", variants=["dpo", "create"], d_sae=512, k=8)
    cc.summary                     # one row per variant: base-only / shared / variant-only counts
    crosscoder_norms(cc.latents)   # relative decoder norms, one panel per variant
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from probes.data.activations import ActivationSet
from probes.dictionaries.crosscoder import (
    Crosscoder,
    CrosscoderError,
    crosscoder_latents,
    crosscoder_summary,
    train_crosscoder,
)
from probes.models.hooks import HookSite
from probes.models.positions import Position

__all__ = ["FamilyCrosscoders", "family_crosscoders"]


@dataclass(frozen=True)
class FamilyCrosscoders:
    """What :func:`family_crosscoders` trained and read.

    Attributes:
        crosscoders: variant -> its crosscoder with the base.
        latents: one row per (variant, latent): the columns of ``crosscoder_latents`` after ``variant``.
        summary: one row per variant: the columns of ``crosscoder_summary`` (``base``, ``variant``, counts).
    """

    crosscoders: Mapping[str, Crosscoder]
    latents: pd.DataFrame
    summary: pd.DataFrame


def family_crosscoders(
    acts: ActivationSet,
    hook: HookSite | str,
    position: str | Position | None = "all",
    *,
    variants: Sequence[str] | None = None,
    base: str = "base",
    **train: Any,
) -> FamilyCrosscoders:
    """Train a crosscoder of ``base`` with each of ``variants`` (default: every other stored
    variant, in store order) and read its latents. ``train`` goes to ``train_crosscoder``
    (``d_sae``, ``k``, ``steps``, ``lr``, ``seed``, ...), the same for every variant."""
    stored = list(acts.variants)
    names = [v for v in stored if v != base] if variants is None else list(variants)
    missing = [v for v in [base, *names] if v not in stored]
    if missing:
        raise CrosscoderError(
            f"Variant(s) {missing} have no stored activations; stored: {stored}. Collect them first."
        )
    if not names or base in names:
        raise CrosscoderError(
            f"family_crosscoders needs variants other than the base {base!r}; got {names}. Stored: {stored}."
        )
    crosscoders: dict[str, Crosscoder] = {}
    latents, summaries = [], []
    for v in names:
        cc = train_crosscoder(acts, base, v, hook, position, **train)
        lat = crosscoder_latents(cc, acts)
        crosscoders[v] = cc
        summaries.append(crosscoder_summary(lat))
        latents.append(lat.assign(variant=v)[["variant", *lat.columns]])
    return FamilyCrosscoders(
        crosscoders, pd.concat(latents, ignore_index=True), pd.concat(summaries, ignore_index=True)
    )
