"""Representation tests: direction transfer (cosines against their null) and probe transfer."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from probes.plots.style import COLUMN_IN, layer_ticks, legend_below, series_style, style

__all__ = ["direction_transfer", "probe_transfer"]


def direction_transfer(battery: pd.DataFrame) -> Figure:
    """Cosine of each variant's activation shift with the base reasoning direction per layer,
    at the decision token and in the computation, against the random / shuffled null (grey
    band: random unit directions of the same dimension). Claim tested: a cosine alone does not
    separate select from create."""
    d = battery[battery.test == "direction"]
    positions = list(dict.fromkeys(d.position))
    with style():
        fig, axes = plt.subplots(
            1,
            len(positions),
            figsize=(COLUMN_IN * (1 if len(positions) == 1 else 2), 2.3),
            sharey=True,
            squeeze=False,
        )
        for ax, pos in zip(axes[0], positions, strict=True):
            sub = d[d.position == pos]
            for i, variant in enumerate(dict.fromkeys(sub.variant)):
                g = sub[sub.variant == variant].sort_values("layer")
                ax.errorbar(
                    g.layer + (i - 3) * 0.04,
                    g.effect,
                    yerr=[g.effect - g.ci_lo, g.ci_hi - g.effect],
                    **series_style(i),
                    label=variant,
                    capsize=1.5,
                    lw=1,
                )
            null = sub.groupby("layer")["null"].max()
            ax.fill_between(
                null.index,
                -null.to_numpy(),
                null.to_numpy(),
                color="#BBBBBB",
                alpha=0.5,
                lw=0,
                label="null (p95)",
            )
            ax.set_xlabel("layer (residual stream after block)")
            ax.set_title(f"position {pos}")
            layer_ticks(ax, sub.layer.unique())
        axes[0][0].set_ylabel("cos(shift, base direction)")
        handles, labels = axes[0][-1].get_legend_handles_labels()
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=5, columnspacing=0.8)
        fig.tight_layout()
    return fig


def probe_transfer(battery: pd.DataFrame) -> Figure:
    """AUROC of the base's probe on each variant over the variant's own probe, per layer.
    Claim: a ratio near 1 means the tuned model still represents the contrast the base's way."""
    d = battery[battery.test == "probe"]
    with style():
        fig, ax = plt.subplots(figsize=(COLUMN_IN, 2.2))
        for i, variant in enumerate(dict.fromkeys(d.variant)):
            g = d[d.variant == variant].sort_values("layer")
            ax.errorbar(
                g.layer + (i - 3) * 0.04,
                g.effect,
                yerr=[(g.effect - g.ci_lo).clip(lower=0), (g.ci_hi - g.effect).clip(lower=0)],
                **series_style(i),
                label=variant,
                capsize=1.5,
            )
        ax.axhline(1.0, color="#888888", lw=0.6, ls=":")
        ax.set_xlabel("layer (residual stream after block)")
        ax.set_ylabel("AUROC ratio\n(base probe / own probe)")
        layer_ticks(ax, d.layer.unique())
        legend_below(fig, ax)
        fig.tight_layout()
    return fig
