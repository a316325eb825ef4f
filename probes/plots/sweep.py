"""The steering sweep: accuracy of the steered base against alpha, per layer, with the random control."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from probes.plots.style import COLUMN_IN, PALETTE, style

__all__ = ["steering_sweep"]


def steering_sweep(sweep: pd.DataFrame, position: str | None = None) -> Figure:
    """Accuracy of the steered base vs alpha on the dev split (where every direction ran the whole
    grid), one line per layer; dashed: the mean over the norm-matched random draws, dotted: the
    best draw at each alpha. Claim: a base-derived direction elicits the reasoning mode and random
    directions of equal norm do not (docs/design.md: random controls are mandatory)."""
    df = sweep[sweep.control.isin(["steer", "random"])]
    if position is not None:
        df = df[df.position == position]
    if "split" in df.columns and (df.split == "dev").any():
        df = df[df.split == "dev"]
    units = str(df["units"].iloc[0]) if "units" in df.columns and len(df) else "vector"
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
                    if control == "random" and "draw" in g.columns and g.draw.nunique() > 1:
                        best = g.groupby(["alpha", "draw"]).correct.mean().groupby("alpha").max()
                        ax.plot(best.index, best.to_numpy(), ":", color=PALETTE[i % 8], lw=0.9)
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
            ax.set_xlabel(
                "steering strength α (× mean residual norm)"
                if units == "resid_norm"
                else "steering strength α (× vector)"
            )
            ax.set_title(f"task: {task}" if task else "")
            ax.set_ylim(-0.02, 1.02)
        axes[0][0].set_ylabel("accuracy (fraction correct)")
        axes[0][-1].plot([], [], "k--", label="random dirs., mean")
        if "draw" in df.columns and df[df.control == "random"].draw.nunique() > 1:
            axes[0][-1].plot([], [], "k:", lw=0.9, label="best random dir.")
        axes[0][-1].legend(loc="best")
        fig.tight_layout()
    return fig
