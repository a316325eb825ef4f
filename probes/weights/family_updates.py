"""A family's weight updates in one table: :func:`probes.weights.geometry.weight_diff` of
every variant against the base, stacked with a ``variant`` column.

The stacked table is what :func:`probes.weights.geometry.summarize_weight_diff` groups
(``by=["variant", "component"]``) and :func:`probes.plots.weights.weight_geometry` plots::

    table = family_weight_diff(family, ["sft", "dpo", "rl"])
    summarize_weight_diff(table, by=["variant", "component"])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from probes.models.family import ModelFamily
from probes.weights.geometry import weight_diff
from probes.weights.measures import WeightDiffError

__all__ = ["family_weight_diff"]


def family_weight_diff(
    family: ModelFamily, variants: Sequence[str] | None = None, *, base: str = "base", **measure: Any
) -> pd.DataFrame:
    """``weight_diff(family, v, base=base, **measure)`` for each of ``variants`` (default: every
    variant but the base, in family order), one row per (variant, parameter)."""
    names = [v for v in family.variants if v != base] if variants is None else list(variants)
    unknown = [v for v in [base, *names] if v not in family.variants]
    if unknown:
        raise WeightDiffError(
            f"Unknown variant(s) {unknown} of family {family.name!r}; variants: {family.variants}."
        )
    if not names or base in names:
        raise WeightDiffError(f"family_weight_diff needs variants other than the base {base!r}; got {names}.")
    tables = []
    for v in names:
        df = weight_diff(family, v, base=base, **measure)
        tables.append(df.assign(variant=v)[["variant", *df.columns]])
    out = pd.concat(tables, ignore_index=True)
    out.attrs.update({"family": family.name, "base_variant": base, "variants": names})
    return out
