"""Reasoning quality: information gain per step."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from probes.plots.style import COLUMN_IN, PALETTE, series_style, style

__all__ = ["information_gain"]


def information_gain(ig_profile: pd.DataFrame) -> Figure:
    """Information gain per reasoning step (nats) per variant's own traces, under one fixed
    scoring model, with 95% CIs, for base / sft / sft_answers / dpo / rl when present (all
    variants otherwise). Claim (Wu et al. 2025): SFT lowers information gain per step."""
    present = list(dict.fromkeys(ig_profile.variant))
    focus = [v for v in ("base", "sft", "sft_answers", "dpo", "rl") if v in present] or present
    with style():
        fig, ax = plt.subplots(figsize=(COLUMN_IN, 2.2))
        for i, v in enumerate(focus):
            g = ig_profile[ig_profile.variant == v].sort_values("step")
            ax.plot(g.step + (i - len(focus) / 2) * 0.06, g.ig, **series_style(i), label=v)
            ax.fill_between(g.step, g.ci_lo, g.ci_hi, color=PALETTE[i % 8], alpha=0.10, lw=0)
        ax.axhline(0, color="#888888", lw=0.6)
        ax.set_xlabel("reasoning step t (scratchpad token)")
        ax.set_ylabel("IG_t (nats)")
        ax.legend(ncol=3, loc="upper left")
        fig.tight_layout()
    return fig
