"""Battery test 6: weight-update size and alignment of residual-writing updates with the base direction (info only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from probes.models.family import ModelFamily
from probes.stats import bootstrap_ci
from steering.battery.rows import BatteryRow, TestId
from steering.vector import SteeringVector

__all__ = ["weight_rows"]


def weight_rows(
    family: ModelFamily, variants: Sequence[str], vector: SteeringVector
) -> tuple[list[BatteryRow], pd.DataFrame]:
    """Update size, and alignment ``‖dᵀΔW‖₂/‖ΔW‖₂`` of each residual-writing update with the base
    reasoning direction of its own layer, against seeded random unit directions (info only)."""
    from probes.weights.geometry import weight_diff

    dirs = {f"L{k}": vector.directions[k] / vector.directions[k].norm() for k in vector.layers}
    rows, tables = [], []
    base_spectra: dict = {}  # the base's SVDs, computed once for every variant
    for v in variants:
        if v == "base":
            continue
        df = weight_diff(family, v, directions=dirs, base_spectra=base_spectra)
        tables.append(df.assign(variant=v, shape=df["shape"].astype(str)))
        rel = float(df.rel_norm.mean())
        writers = df[df.writes_residual & df.layer.isin(list(vector.layers))]
        own = np.array([r[f"align:L{int(r['layer'])}"] for r in writers.to_dict("records")], dtype=float)
        null_arr = writers.align_null_p95.to_numpy(dtype=float)
        # an unchanged matrix (ΔW = 0) has no output space: its alignment is NaN and is left out
        own = own[np.isfinite(own)]
        null = float(null_arr[np.isfinite(null_arr)].mean()) if np.isfinite(null_arr).any() else float("nan")
        effect = float(own.mean()) if len(own) else float("nan")
        lo, hi = bootstrap_ci(own, n_resamples=500) if len(own) > 1 else (float("nan"), float("nan"))
        rows.append(
            BatteryRow.make(
                TestId.WEIGHTS,
                v,
                "",
                None,
                "residual writers",
                effect,
                null,
                lo,
                hi,
                len(own),
                f"mean relative update norm {rel:.3g} over {len(df)} tensors; alignment of {len(own)} residual-writing "
                f"updates with their layer's base direction {effect:.3f} (random p95 {null:.3f})",
                rel_norm=rel,
                stable_rank_mean=float(df.stable_rank.mean()),
            )
        )
    return rows, pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
