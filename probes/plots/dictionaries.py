"""Dictionaries: base-SAE transfer (FVU, CE recovered) and crosscoder relative decoder norms."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from probes.plots.style import COLUMN_IN, PALETTE, style

__all__ = ["sae_transfer", "crosscoder_norms"]


def sae_transfer(sae: pd.DataFrame) -> Figure:
    """Base-SAE transfer per variant: FVU (left) and CE-loss recovered (right) with 95% CIs.
    Claim (Kissane et al. 2024): if the tuned model runs on the base's features, the base SAE
    reconstructs it about as well as the base itself."""
    d = sae.reset_index(drop=True)
    y = np.arange(len(d))
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(COLUMN_IN * 1.6, 0.3 * len(d) + 1.0), sharey=True)
        for ax, col, label in (
            (axes[0], "fvu", "FVU (fraction of variance unexplained)"),
            (axes[1], "ce_recovered", "CE loss recovered (fraction)"),
        ):
            x = d[col].to_numpy(dtype=float)
            lo, hi = d[f"{col}_lo"].to_numpy(dtype=float), d[f"{col}_hi"].to_numpy(dtype=float)
            colors = [PALETTE[0] if v == "base" else PALETTE[1] for v in d.variant]
            ax.errorbar(
                x,
                y,
                xerr=[np.nan_to_num(x - lo), np.nan_to_num(hi - x)],
                fmt="none",
                ecolor="#444444",
                lw=0.8,
                capsize=1.5,
            )
            ax.scatter(x, y, c=colors, s=16, zorder=3, edgecolors="k", linewidths=0.3)
            ax.set_xlabel(label)
        labels = [
            f"{v} ({t})" if "task" in d.columns else v
            for v, t in zip(d.variant, d.get("task", d.variant), strict=True)
        ]
        axes[0].set_yticks(y, labels)
        axes[0].invert_yaxis()
        fig.tight_layout()
    return fig


def crosscoder_norms(cc: pd.DataFrame) -> Figure:
    """Histogram of relative decoder norms Δ of live crosscoder latents, one panel per variant;
    Δ > 0.9 variant-only, < 0.1 base-only (Lindsey et al. 2024; Minder et al. 2025)."""
    d = cc[cc["alive"]] if "alive" in cc.columns else cc
    variants = list(dict.fromkeys(d.variant))
    cols = min(3, len(variants))
    rows_n = int(np.ceil(len(variants) / cols))
    with style():
        fig, axes = plt.subplots(
            rows_n,
            cols,
            figsize=(COLUMN_IN * 2 if cols > 1 else COLUMN_IN, 1.4 * rows_n + 0.5),
            sharex=True,
            squeeze=False,
        )
        for ax, v in zip(axes.flat, variants, strict=False):
            x = d[d.variant == v].rel_norm
            ax.hist(x, bins=25, range=(0, 1), color=PALETTE[0])
            ax.axvspan(0.9, 1.0, color=PALETTE[3], alpha=0.15, lw=0)
            ax.axvspan(0.0, 0.1, color=PALETTE[2], alpha=0.15, lw=0)
            ax.set_title(f"{v}: {int((x > 0.9).sum())} variant-only / {len(x)} live")
            ax.set_yscale("log")
        for ax in axes.flat[len(variants) :]:
            ax.axis("off")
        for ax in axes[-1]:
            ax.set_xlabel("relative decoder norm Δ")
        for ax in axes[:, 0]:
            ax.set_ylabel("latents (log)")
        fig.tight_layout()
    return fig
