"""The steering sweep: accuracy of the steered base against alpha, per layer, with the random control."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from probes.plots.style import COLUMN_IN, PALETTE, style

__all__ = ["steering_sweep"]


def steering_sweep(sweep: pd.DataFrame, position: str | None = None) -> Figure:
    """Accuracy of the steered base vs alpha, one line per layer, with the norm-matched random
    direction dashed. Claim: a base-derived direction elicits the reasoning mode and a random
    direction of equal norm does not (docs/design.md: random controls are mandatory)."""
    df = sweep[sweep.control.isin(["steer", "random"])]
    if position is not None:
        df = df[df.position == position]
    tasks = list(dict.fromkeys(df["task"])) if "task" in df.columns else [None]
    with style():
        fig, axes = plt.subplots(
            1,
            len(tasks),
            figsize=(COLUMN_IN * (0.8 * len(tasks) if len(tasks) > 1 else 1.0), 2.3),
            sharey=True,
            squeeze=False,
        )
        for ax, task in zip(axes[0], tasks, strict=True):
            sub = df if task is None else df[df.task == task]
            for i, layer in enumerate(sorted(sub.layer.unique())):
                for control, ls in (("steer", "-"), ("random", "--")):
                    g = sub[(sub.layer == layer) & (sub.control == control)]
                    if g.empty:
                        continue
                    acc = g.groupby("alpha").correct.agg(["mean", "count", "std"]).reset_index()
                    se = 1.96 * np.sqrt(acc["mean"] * (1 - acc["mean"]) / acc["count"].clip(lower=1))
                    ax.plot(
                        acc.alpha,
                        acc["mean"],
                        ls,
                        marker="o" if control == "steer" else None,
                        color=PALETTE[i % 8],
                        label=f"layer {layer}" if control == "steer" else None,
                    )
                    if control == "steer":
                        ax.fill_between(
                            acc.alpha,
                            acc["mean"] - se,
                            acc["mean"] + se,
                            color=PALETTE[i % 8],
                            alpha=0.15,
                            lw=0,
                        )
            ax.set_xlabel("steering strength α (× vector)")
            ax.set_title(f"task: {task}" if task else "")
            ax.set_ylim(-0.02, 1.02)
        axes[0][0].set_ylabel("accuracy (fraction correct)")
        axes[0][-1].plot([], [], "k--", label="random dir., same norm")
        axes[0][-1].legend(loc="best")
        fig.tight_layout()
    return fig
