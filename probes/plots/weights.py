"""Weight geometry: update norm, stable rank and principal-subspace overlap per layer."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from probes.plots.style import COLUMN_IN, layer_ticks, legend_below, series_style, style

__all__ = ["weight_geometry"]


def weight_geometry(weights: pd.DataFrame) -> Figure:
    """Per layer and matrix type: relative update norm, stable rank of ΔW and its overlap with
    the base's top-4 singular subspaces, per variant. Claim tested: RL updates are small yet
    full-rank and off the principal directions (Mukherjee et al. 2025; Zhu et al. 2025)."""
    mats = weights[weights.component.isin(["q", "k", "v", "o", "gate", "up", "down"])]
    variants = list(dict.fromkeys(mats.variant))
    ov = (
        "overlap@4"
        if "overlap@4" in mats.columns
        else next((c for c in mats.columns if c.startswith("overlap@")), None)
    )
    panels = [("rel_norm", "‖ΔW‖_F / ‖W‖_F"), ("stable_rank", "stable rank of ΔW")] + (
        [(ov, f"{ov} (top-k overlap)")] if ov else []
    )
    with style():
        fig, axes = plt.subplots(1, len(panels), figsize=(COLUMN_IN * 2, 2.2))
        for ax, (col, label) in zip(axes, panels, strict=True):
            for i, v in enumerate(variants):
                g = mats[mats.variant == v].groupby("layer")[col].mean()
                ax.plot(g.index, g.to_numpy(), **series_style(i), label=v)
            ax.set_xlabel("layer")
            ax.set_ylabel(label)
            layer_ticks(ax, mats.layer.dropna().unique())
            if col == "rel_norm":
                ax.set_yscale("log")
        legend_below(fig, axes[-1], ncol=8)
        fig.tight_layout()
    return fig
