"""Summaries of a sweep: gap recovered (Venhoff et al. 2025), the one rule that chooses a
steering setting on dev, and the dev-select / test-report table (after Tan et al. 2024)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from probes.errors import ElicitError
from probes.stats import bootstrap_ci

__all__ = ["gap_recovered", "DevChoice", "choose_setting", "summarize_sweep"]


def gap_recovered(acc_intervention: float, acc_base: float, acc_tuned: float) -> float:
    """Venhoff et al. 2025: ``(acc(base+intervention) - acc(base)) / (acc(tuned) - acc(base))``,
    clipped at 0. NaN when the tuned model does not beat the base (no gap to recover)."""
    gap = acc_tuned - acc_base
    if gap <= 0:
        return float("nan")
    return max(0.0, (acc_intervention - acc_base) / gap)


@dataclass(frozen=True)
class DevChoice:
    """The steering setting chosen on dev and its dev accuracy."""

    layer: int
    alpha: float
    dev_acc: float


def choose_setting(steered: pd.DataFrame, dev: str = "dev") -> DevChoice:
    """The (layer, alpha) with the best dev accuracy among ``steered`` rows; ties go to the
    smaller ``|alpha|``, then the earlier layer.

    >>> rows = pd.DataFrame({"split": ["dev"] * 4, "layer": [0, 0, 1, 1], "alpha": [1.0, -2.0, 2.0, 1.0],
    ...                      "correct": [True, False, True, True]})
    >>> choose_setting(rows)
    DevChoice(layer=0, alpha=1.0, dev_acc=1.0)
    """
    dev_acc = steered[steered.split == dev].groupby(["layer", "alpha"])["correct"].mean().reset_index()
    if dev_acc.empty:
        raise ElicitError(
            f"No steered rows on split {dev!r} to choose a setting from; the sweep's splits must include it."
        )
    dev_acc["abs_alpha"] = dev_acc.alpha.abs()
    best = dev_acc.sort_values(["correct", "abs_alpha", "layer"], ascending=[False, True, True]).iloc[0]
    return DevChoice(int(best.layer), float(best.alpha), float(best.correct))


def _per_prompt(df: pd.DataFrame) -> pd.Series:
    return df.groupby("prompt_id")["correct"].mean()


def _nan_gr(s: np.ndarray, u: np.ndarray, t: np.ndarray) -> float:
    g = gap_recovered(float(s.mean()), float(u.mean()), float(t.mean()))
    return 0.0 if np.isnan(g) else g


def _tuned_columns(
    plain: pd.DataFrame, s: pd.Series, u: pd.Series, tuned: Sequence[str], test: str, seed: int
) -> dict[str, float]:
    """Gap recovered toward each tuned variant, with a bootstrap CI over prompts resampled jointly."""
    row: dict[str, float] = {}
    for t in tuned:
        tu = _per_prompt(plain[(plain.variant == t) & (plain.split == test)])
        common = s.index.intersection(tu.index)
        if len(common) == 0:
            continue
        S, U, T = (x.loc[common].to_numpy() for x in (s, u, tu))

        def stat(k: np.ndarray, S: np.ndarray = S, U: np.ndarray = U, T: np.ndarray = T) -> float:
            return _nan_gr(S[k], U[k], T[k])

        lo, hi = bootstrap_ci(np.arange(len(common)), stat, seed=seed)
        row[f"tuned_acc[{t}]"] = float(T.mean())
        row[f"gap_recovered[{t}]"] = gap_recovered(S.mean(), U.mean(), T.mean())
        row[f"gap_recovered_lo[{t}]"], row[f"gap_recovered_hi[{t}]"] = lo, hi
    return row


def summarize_sweep(
    df: pd.DataFrame,
    *,
    tuned: Sequence[str] = (),
    base: str = "base",
    dev: str = "dev",
    test: str = "test",
    seed: int = 0,
) -> pd.DataFrame:
    """Choose (vector, layer, position, alpha) on ``dev``; report on ``test``.

    One row per (steered variant, vector, position) and per tuned variant: the dev-chosen
    setting, test accuracy with a bootstrap CI, the norm-matched random control at the same
    setting, the unsteered accuracy, gap recovered (with a bootstrap CI over test prompts,
    resampled jointly) and the per-prompt distribution (share of prompts flipped to correct /
    to wrong by steering), after Tan et al. 2024. Protocol: ``dev-select/test-report``.
    """
    out = []
    steer = df[df.control == "steer"]
    plain = df[df.control == "none"]
    for (variant, vector, position), grp in steer.groupby(["variant", "vector", "position"]):
        if not (grp.split == dev).any():
            continue
        best = choose_setting(grp, dev)
        layer, alpha = best.layer, best.alpha
        sel = grp[(grp.split == test) & (grp.layer == layer) & (grp.alpha == alpha)]
        rnd = df[
            (df.control == "random")
            & (df.variant == variant)
            & (df.vector == vector)
            & (df.position == position)
            & (df.split == test)
            & (df.layer == layer)
            & (df.alpha == alpha)
        ]
        unsteered = plain[(plain.variant == variant) & (plain.split == test)]
        s, r, u = _per_prompt(sel), _per_prompt(rnd), _per_prompt(unsteered)
        ids = s.index.intersection(u.index)
        s, u = s.loc[ids], u.loc[ids]
        row: dict[str, Any] = {
            "variant": variant,
            "vector": vector,
            "position": position,
            "layer": layer,
            "alpha": alpha,
            "dev_acc": best.dev_acc,
            "n_dev": int(
                grp[(grp.split == dev) & (grp.layer == layer) & (grp.alpha == alpha)].prompt_id.nunique()
            ),
            "test_acc": float(s.mean()),
            "n_test": len(ids),
            "random_acc": float(r.mean()) if len(r) else float("nan"),
            "unsteered_acc": float(u.mean()),
            "flipped_to_correct": float((s > u).mean()),
            "flipped_to_wrong": float((s < u).mean()),
            "protocol": f"{dev}-select/{test}-report",
        }
        row["test_lo"], row["test_hi"] = bootstrap_ci(s.to_numpy(), seed=seed)
        if len(r):
            row["random_lo"], row["random_hi"] = bootstrap_ci(r.to_numpy(), seed=seed)
        row.update(_tuned_columns(plain, s, u, tuned, test, seed))
        out.append(row)
    return pd.DataFrame(out)
