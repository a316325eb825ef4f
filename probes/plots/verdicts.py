"""The verdicts: gap recovered per variant (with the rule's thresholds) and the verdict summary."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from probes.plots.style import COLUMN_IN, VERDICT_COLORS, style

__all__ = ["gap_recovered", "verdict_summary"]


def gap_recovered(verdicts: pd.DataFrame, thresholds: Mapping[str, float]) -> Figure:
    """Gap recovered per variant by steering the base and by forcing the format, with 95% CIs,
    coloured by verdict; dotted lines at the verdict rule's ``select_gr_lo`` and
    ``create_gr_hi`` (the thresholds the report wrote, never repeated here). Claim: select
    variants' gains are recoverable from the base; create controls' are not (Venhoff et al.
    2025's measure)."""
    v = verdicts.reset_index(drop=True)
    y = np.arange(len(v))
    with style():
        fig, ax = plt.subplots(figsize=(COLUMN_IN, 0.35 * len(v) + 0.9))
        for k, (col, marker, label) in enumerate(
            (("steer_grc", "o", "steering the base"), ("forced_grc", "s", "forcing the format"))
        ):
            x = v[col].to_numpy(dtype=float)
            lo = v[f"{col}_lo"].to_numpy(dtype=float)
            hi = v[f"{col}_hi"].to_numpy(dtype=float)
            off = (k - 0.5) * 0.28
            colors = [VERDICT_COLORS.get(s, "#999999") for s in v.verdict]
            ax.errorbar(
                x,
                y + off,
                xerr=[np.nan_to_num(x - lo), np.nan_to_num(hi - x)],
                fmt="none",
                ecolor="#444444",
                lw=0.8,
                capsize=1.5,
            )
            ax.scatter(
                x,
                y + off,
                c=colors,
                marker=marker,
                s=16,
                zorder=3,
                label=label,
                edgecolors="k",
                linewidths=0.3,
            )
        for key in ("select_gr_lo", "create_gr_hi"):
            ax.axvline(float(thresholds[key]), color="#888888", lw=0.6, ls=":")
        ax.set_yticks(y, [f"{a} ({b})" for a, b in zip(v.variant, v.verdict, strict=True)])
        ax.invert_yaxis()
        ax.set_xlabel("gap recovered above chance")
        top = float(
            np.nanmax(
                np.r_[v["steer_grc_hi"].to_numpy(dtype=float), v["forced_grc_hi"].to_numpy(dtype=float), 1.0]
            )
        )
        ax.set_xlim(-0.05, min(max(1.1, top + 0.05), 3.0))
        handles = [
            plt.Line2D([], [], marker="o", ls="", color="k", label="steering the base"),
            plt.Line2D([], [], marker="s", ls="", color="k", label="forcing the format"),
        ]
        handles += [
            plt.Line2D([], [], marker="o", ls="", color=c, label=s) for s, c in VERDICT_COLORS.items()
        ]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.4, -0.18), ncol=3, columnspacing=0.8)
        fig.tight_layout()
    return fig


def verdict_summary(verdicts: pd.DataFrame) -> Figure:
    """The verdict table as a figure: base vs variant accuracy per variant, coloured by
    verdict. Claim: the kit's one-line answer per variant, with its evidence."""
    v = verdicts.reset_index(drop=True)
    y = np.arange(len(v))
    with style():
        fig, ax = plt.subplots(figsize=(COLUMN_IN, 0.32 * len(v) + 0.9))
        for i, r in v.iterrows():
            c = VERDICT_COLORS.get(r.verdict, "#999999")
            ax.plot([r.acc_base, r.acc_variant], [i, i], color=c, lw=2, solid_capstyle="round")
            ax.scatter([r.acc_base], [i], color="white", edgecolors=c, zorder=3, s=18)
            ax.scatter([r.acc_variant], [i], color=c, zorder=3, s=18)
            ax.text(1.03, i, r.verdict, va="center", fontsize=7, color=c)
        ax.set_yticks(y, [f"{a}\n({t})" for a, t in zip(v.variant, v.task, strict=True)])
        ax.invert_yaxis()
        ax.set_xlim(0, 1.0)
        ax.set_xlabel("test accuracy (fraction correct): ○ base → ● variant")
        fig.tight_layout()
    return fig
