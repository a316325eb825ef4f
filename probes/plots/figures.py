"""Paper figures from saved result tables (never from models).

Each plot function takes tidy tables and returns a matplotlib ``Figure`` in the kit's one
style (column width, 8 pt fonts, Okabe–Ito colour-blind-safe palette, CIs as bands or
error bars, labelled axes with units). :func:`render_all` reads a results folder written
by ``elicit report`` / ``elicit run`` and saves every figure whose tables exist as vector
PDF plus PNG::

    render_all("elicit-out", "elicit-out/figures")

The registry :data:`FIGURES` maps a figure name to (tables it needs, function, claim).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["STYLE", "PALETTE", "style", "FIGURES", "render", "render_all", "save_figure"]

#: Okabe & Ito (2008) colour-blind-safe palette.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
COLUMN_IN = 3.4  # one column of a two-column paper, inches
STYLE: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 6.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.prop_cycle": matplotlib.rcsetup.cycler(color=PALETTE),
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "legend.frameon": False,
    "figure.dpi": 200,
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}
#: Extra colours after the eight Okabe–Ito ones (Tol's wine, grey), for families of 9-10 variants.
EXTENDED = PALETTE + ["#882255", "#999999"]
VERDICT_COLORS = {"select": PALETTE[0], "create": PALETTE[3], "inconclusive": "#999999"}


@contextmanager
def style():
    """The kit's figure style as a context (never changes global rcParams)."""
    with plt.rc_context(STYLE):
        yield


def save_figure(fig: Figure, out: str | Path) -> list[Path]:
    """Save ``fig`` as ``out.pdf`` (vector) and ``out.png``; close it; return both paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_suffix(".pdf"), out.with_suffix(".png")]
    for p in paths:
        fig.savefig(p, bbox_extra_artists=list(fig.legends) or None, bbox_inches="tight")
    plt.close(fig)
    return paths


# ------------------------------------------------------------------ steering
def steering_sweep(sweep: pd.DataFrame, position: str | None = None) -> Figure:
    """Accuracy of the steered base vs alpha, one line per layer, with the norm-matched random
    direction dashed. Claim: a base-derived direction elicits the reasoning mode and a random
    direction of equal norm does not (docs/design.md: random controls are mandatory)."""
    df = sweep[sweep.control.isin(["steer", "random"])]
    if position is not None:
        df = df[df.position == position]
    tasks = list(dict.fromkeys(df["task"])) if "task" in df.columns else [None]
    with style():
        fig, axes = plt.subplots(1, len(tasks), figsize=(COLUMN_IN * (0.8 * len(tasks) if len(tasks) > 1 else 1.0), 2.3), sharey=True, squeeze=False)
        for ax, task in zip(axes[0], tasks, strict=True):
            sub = df if task is None else df[df.task == task]
            for i, layer in enumerate(sorted(sub.layer.unique())):
                for control, ls in (("steer", "-"), ("random", "--")):
                    g = sub[(sub.layer == layer) & (sub.control == control)]
                    if g.empty:
                        continue
                    acc = g.groupby("alpha").correct.agg(["mean", "count", "std"]).reset_index()
                    se = 1.96 * np.sqrt(acc["mean"] * (1 - acc["mean"]) / acc["count"].clip(lower=1))
                    ax.plot(acc.alpha, acc["mean"], ls, marker="o" if control == "steer" else None, color=PALETTE[i % 8],
                            label=f"layer {layer}" if control == "steer" else None)
                    if control == "steer":
                        ax.fill_between(acc.alpha, acc["mean"] - se, acc["mean"] + se, color=PALETTE[i % 8], alpha=0.15, lw=0)
            ax.set_xlabel("steering strength α (× vector)")
            ax.set_title(f"task: {task}" if task else "")
            ax.set_ylim(-0.02, 1.02)
        axes[0][0].set_ylabel("accuracy (fraction correct)")
        axes[0][-1].plot([], [], "k--", label="random dir., same norm")
        axes[0][-1].legend(loc="best")
        fig.tight_layout()
    return fig


def gap_recovered(verdicts: pd.DataFrame) -> Figure:
    """Gap recovered per variant by steering the base and by forcing the format, with 95% CIs,
    coloured by verdict. Claim: select variants' gains are recoverable from the base; create
    controls' are not (Venhoff et al. 2025's measure)."""
    v = verdicts.reset_index(drop=True)
    y = np.arange(len(v))
    with style():
        fig, ax = plt.subplots(figsize=(COLUMN_IN, 0.35 * len(v) + 0.9))
        for k, (col, marker, label) in enumerate((("steer_grc", "o", "steering the base"), ("forced_grc", "s", "forcing the format"))):
            x = v[col].to_numpy(dtype=float)
            lo = v[f"{col}_lo"].to_numpy(dtype=float)
            hi = v[f"{col}_hi"].to_numpy(dtype=float)
            off = (k - 0.5) * 0.28
            colors = [VERDICT_COLORS.get(s, "#999999") for s in v.verdict]
            ax.errorbar(x, y + off, xerr=[np.nan_to_num(x - lo), np.nan_to_num(hi - x)], fmt="none", ecolor="#444444", lw=0.8, capsize=1.5)
            ax.scatter(x, y + off, c=colors, marker=marker, s=16, zorder=3, label=label, edgecolors="k", linewidths=0.3)
        ax.axvline(0.5, color="#888888", lw=0.6, ls=":")
        ax.axvline(0.35, color="#888888", lw=0.6, ls=":")
        ax.set_yticks(y, [f"{a} ({b})" for a, b in zip(v.variant, v.verdict, strict=True)])
        ax.invert_yaxis()
        ax.set_xlabel("gap recovered above chance")
        top = float(np.nanmax(np.r_[v["steer_grc_hi"].to_numpy(dtype=float), v["forced_grc_hi"].to_numpy(dtype=float), 1.0]))
        ax.set_xlim(-0.05, min(max(1.1, top + 0.05), 3.0))
        handles = [plt.Line2D([], [], marker="o", ls="", color="k", label="steering the base"),
                   plt.Line2D([], [], marker="s", ls="", color="k", label="forcing the format")]
        handles += [plt.Line2D([], [], marker="o", ls="", color=c, label=s) for s, c in VERDICT_COLORS.items()]
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.4, -0.18), ncol=3, columnspacing=0.8)
        fig.tight_layout()
    return fig


def direction_transfer(battery: pd.DataFrame) -> Figure:
    """Cosine of each variant's activation shift with the base reasoning direction per layer,
    at the decision token and in the computation, against the random / shuffled null (grey
    band). Claim tested: a cosine alone does not separate select from create."""
    d = battery[battery.test == "direction"]
    positions = list(dict.fromkeys(d.position))
    with style():
        fig, axes = plt.subplots(1, len(positions), figsize=(COLUMN_IN * (1 if len(positions) == 1 else 2), 2.3), sharey=True, squeeze=False)
        for ax, pos in zip(axes[0], positions, strict=True):
            sub = d[d.position == pos]
            for i, variant in enumerate(dict.fromkeys(sub.variant)):
                g = sub[sub.variant == variant].sort_values("layer")
                ax.errorbar(g.layer + (i - 3) * 0.04, g.effect, yerr=[g.effect - g.ci_lo, g.ci_hi - g.effect], marker="o",
                            color=PALETTE[i % 8], label=variant, capsize=1.5, lw=1)
            null = sub.groupby("layer")["null"].max()
            ax.fill_between(null.index, -null.to_numpy(), null.to_numpy(), color="#BBBBBB", alpha=0.5, lw=0, label="null (p95)")
            ax.set_xlabel("layer (residual stream after block)")
            ax.set_title(f"position {pos}")
            ax.set_xticks(sorted(sub.layer.unique()))
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
            ax.errorbar(g.layer + (i - 3) * 0.04, g.effect, yerr=[(g.effect - g.ci_lo).clip(lower=0), (g.ci_hi - g.effect).clip(lower=0)],
                        marker="o", color=PALETTE[i % 8], label=variant, capsize=1.5)
        ax.axhline(1.0, color="#888888", lw=0.6, ls=":")
        ax.set_xlabel("layer (residual stream after block)")
        ax.set_ylabel("AUROC ratio\n(base probe / own probe)")
        ax.set_xticks(sorted(d.layer.unique()))
        _legend_below(fig, ax)
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


def sae_transfer(sae: pd.DataFrame) -> Figure:
    """Base-SAE transfer per variant: FVU (left) and CE-loss recovered (right) with 95% CIs.
    Claim (Kissane et al. 2024): if the tuned model runs on the base's features, the base SAE
    reconstructs it about as well as the base itself."""
    d = sae.reset_index(drop=True)
    y = np.arange(len(d))
    with style():
        fig, axes = plt.subplots(1, 2, figsize=(COLUMN_IN * 1.6, 0.3 * len(d) + 1.0), sharey=True)
        for ax, col, label in ((axes[0], "fvu", "FVU (fraction of variance unexplained)"),
                               (axes[1], "ce_recovered", "CE loss recovered (fraction)")):
            x = d[col].to_numpy(dtype=float)
            lo, hi = d[f"{col}_lo"].to_numpy(dtype=float), d[f"{col}_hi"].to_numpy(dtype=float)
            colors = [PALETTE[0] if v == "base" else PALETTE[1] for v in d.variant]
            ax.errorbar(x, y, xerr=[np.nan_to_num(x - lo), np.nan_to_num(hi - x)], fmt="none", ecolor="#444444", lw=0.8, capsize=1.5)
            ax.scatter(x, y, c=colors, s=16, zorder=3, edgecolors="k", linewidths=0.3)
            ax.set_xlabel(label)
        labels = [f"{v} ({t})" if "task" in d.columns else v for v, t in zip(d.variant, d.get("task", d.variant), strict=True)]
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
        fig, axes = plt.subplots(rows_n, cols, figsize=(COLUMN_IN * 2 if cols > 1 else COLUMN_IN, 1.4 * rows_n + 0.5),
                                 sharex=True, squeeze=False)
        for ax, v in zip(axes.flat, variants, strict=False):
            x = d[d.variant == v].rel_norm
            ax.hist(x, bins=25, range=(0, 1), color=PALETTE[0])
            ax.axvspan(0.9, 1.0, color=PALETTE[3], alpha=0.15, lw=0)
            ax.axvspan(0.0, 0.1, color=PALETTE[2], alpha=0.15, lw=0)
            ax.set_title(f"{v}: {int((x > 0.9).sum())} variant-only / {len(x)} live")
            ax.set_yscale("log")
        for ax in axes.flat[len(variants):]:
            ax.axis("off")
        for ax in axes[-1]:
            ax.set_xlabel("relative decoder norm Δ")
        for ax in axes[:, 0]:
            ax.set_ylabel("latents (log)")
        fig.tight_layout()
    return fig


def weight_geometry(weights: pd.DataFrame) -> Figure:
    """Per layer and matrix type: relative update norm, stable rank of ΔW and its overlap with
    the base's top-4 singular subspaces, per variant. Claim tested: RL updates are small yet
    full-rank and off the principal directions (Mukherjee et al. 2025; Zhu et al. 2025)."""
    mats = weights[weights.component.isin(["q", "k", "v", "o", "gate", "up", "down"])]
    variants = list(dict.fromkeys(mats.variant))
    ov = "overlap@4" if "overlap@4" in mats.columns else next((c for c in mats.columns if c.startswith("overlap@")), None)
    panels = [("rel_norm", "‖ΔW‖_F / ‖W‖_F"), ("stable_rank", "stable rank of ΔW")] + ([(ov, f"{ov} (top-k overlap)")] if ov else [])
    with style():
        fig, axes = plt.subplots(1, len(panels), figsize=(COLUMN_IN * 2, 2.2))
        for ax, (col, label) in zip(axes, panels, strict=True):
            for i, v in enumerate(variants):
                g = mats[mats.variant == v].groupby("layer")[col].mean()
                ax.plot(g.index, g.to_numpy(), marker="o", color=PALETTE[i % 8], label=v)
            ax.set_xlabel("layer")
            ax.set_ylabel(label)
            ax.set_xticks(sorted(mats.layer.dropna().unique().astype(int)))
            if col == "rel_norm":
                ax.set_yscale("log")
        _legend_below(fig, axes[-1], ncol=8)
        fig.tight_layout()
    return fig


def pass_at_k(passk: pd.DataFrame) -> Figure:
    """pass@k vs k (log scale) per variant with 95% CI bands. Claim (Yue et al. 2025): base
    models catch up with tuned models at large k when the tuned model only selects."""
    tasks = list(dict.fromkeys(passk["task"])) if "task" in passk.columns else [None]
    colors = {v: EXTENDED[i % len(EXTENDED)] for i, v in enumerate(dict.fromkeys(passk.variant))}
    with style():
        fig, axes = plt.subplots(1, len(tasks), figsize=(COLUMN_IN * min(len(tasks), 2), 2.2), sharey=True, squeeze=False)
        for ax, task in zip(axes[0], tasks, strict=True):
            sub = passk if task is None else passk[passk.task == task]
            for v in dict.fromkeys(sub.variant):
                g = sub[sub.variant == v].sort_values("k")
                c = colors[v]
                ax.plot(g.k, g.pass_at_k, marker="o", markersize=2.5, color=c, label=v)
                ax.fill_between(g.k, g.ci_lo, g.ci_hi, color=c, alpha=0.10, lw=0)
            ax.set_xscale("log", base=2)
            ax.set_xlabel("k (samples)")
            ax.set_title(f"task: {task}" if task else "")
            ax.set_ylim(-0.02, 1.02)
        axes[0][0].set_ylabel("pass@k (fraction of prompts)")
        handles = [plt.Line2D([], [], color=c, marker="o", markersize=2.5, label=v) for v, c in colors.items()]
        fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=5, columnspacing=0.8)
        fig.tight_layout()
    return fig


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
            ax.plot(g.step + (i - len(focus) / 2) * 0.06, g.ig, marker="o", color=PALETTE[i % 8], label=v)
            ax.fill_between(g.step, g.ci_lo, g.ci_hi, color=PALETTE[i % 8], alpha=0.10, lw=0)
        ax.axhline(0, color="#888888", lw=0.6)
        ax.set_xlabel("reasoning step t (scratchpad token)")
        ax.set_ylabel("IG_t (nats)")
        ax.legend(ncol=3, loc="upper left")
        fig.tight_layout()
    return fig


def _legend_below(fig: Figure, ax: Any, ncol: int = 4) -> None:
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=ncol, columnspacing=0.8)


def _opt(name: str) -> Callable[..., Figure] | None:
    """Plot functions that live beside the measure they plot (SAE, weights, decoding)."""
    return globals().get(name)


#: name -> (tables it reads, plot function name)
FIGURES: dict[str, tuple[tuple[str, ...], str]] = {
    "steering_sweep": (("sweep",), "steering_sweep"),
    "gap_recovered": (("verdicts",), "gap_recovered"),
    "direction_transfer": (("battery",), "direction_transfer"),
    "probe_transfer": (("battery",), "probe_transfer"),
    "verdict_summary": (("verdicts",), "verdict_summary"),
    "sae_transfer": (("sae_transfer",), "sae_transfer"),
    "crosscoder_norms": (("crosscoder",), "crosscoder_norms"),
    "weight_geometry": (("weights",), "weight_geometry"),
    "pass_at_k": (("passk",), "pass_at_k"),
    "information_gain": (("ig_profile",), "information_gain"),
}


def _tables(results: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted((results / "tables").glob("*.parquet"))}


def render(name: str, results: str | Path, out: str | Path) -> list[Path]:
    """Render one figure of :data:`FIGURES` from ``results/tables`` into ``out/name.{pdf,png}``."""
    from probes.errors import ElicitError

    if name not in FIGURES:
        raise ElicitError(f"Unknown figure {name!r}. Figures: {sorted(FIGURES)}.")
    needs, fn_name = FIGURES[name]
    tables = _tables(Path(results))
    missing = [t for t in needs if t not in tables]
    if missing:
        raise ElicitError(f"Figure {name!r} needs table(s) {missing} under {str(Path(results) / 'tables')!r}; run `elicit report` first.")
    fn = _opt(fn_name)
    if fn is None:
        raise ElicitError(f"Plot function {fn_name!r} is not available.")
    fig = fn(*[tables[t] for t in needs])
    return save_figure(fig, Path(out) / name)


def render_all(results: str | Path, out: str | Path) -> dict[str, list[Path]]:
    """Every figure whose tables exist under ``results/tables``; returns name -> files."""
    tables = _tables(Path(results))
    done: dict[str, list[Path]] = {}
    for name, (needs, _) in FIGURES.items():
        if all(t in tables for t in needs) and not any(tables[t].empty for t in needs):
            done[name] = render(name, results, out)
    return done


def register(name: str, tables: tuple[str, ...], fn: Callable[..., Figure]) -> None:
    """Add a figure to the registry (used by modules that own a measure's plot)."""
    globals()[fn.__name__] = fn
    FIGURES[name] = (tables, fn.__name__)


Tables = Mapping[str, pd.DataFrame]
