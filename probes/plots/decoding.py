"""Decoding: pass@k against k per variant."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from probes.plots.style import COLUMN_IN, series_style, style

__all__ = ["pass_at_k"]


def pass_at_k(passk: pd.DataFrame) -> Figure:
    """pass@k vs k (log scale) per variant with 95% CI bands. Claim (Yue et al. 2025): base
    models catch up with tuned models at large k when the tuned model only selects."""
    tasks = list(dict.fromkeys(passk["task"])) if "task" in passk.columns else [None]
    looks = {v: series_style(i) for i, v in enumerate(dict.fromkeys(passk.variant))}
    with style():
        fig, axes = plt.subplots(
            1, len(tasks), figsize=(COLUMN_IN * min(len(tasks), 2), 2.2), sharey=True, squeeze=False
        )
        for ax, task in zip(axes[0], tasks, strict=True):
            sub = passk if task is None else passk[passk.task == task]
            for v in dict.fromkeys(sub.variant):
                g = sub[sub.variant == v].sort_values("k")
                look = looks[v]
                ax.plot(g.k, g.pass_at_k, markersize=2.5, label=v, **look)
                ax.fill_between(g.k, g.ci_lo, g.ci_hi, color=look["color"], alpha=0.10, lw=0)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("k (samples)")
            ax.set_title(f"task: {task}" if task else "")
            ax.set_ylim(-0.02, 1.02)
        axes[0][0].set_ylabel("pass@k (fraction of prompts)")
        handles = [plt.Line2D([], [], markersize=2.5, label=v, **look) for v, look in looks.items()]
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=5, columnspacing=0.8)
        fig.tight_layout()
    return fig
