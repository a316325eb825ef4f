"""Representation transfer: how the tuned-minus-base shift relates to base-derived directions,
and whether linear probes fit on the base read the tuned model.

Definitions (docs/measures.md, "Representation transfer"):

- shift ``δ_v(l, pos) = mean_x h_v(x, l, pos) − mean_x h_base(x, l, pos)`` over the same prompts;
- its cosine with a base-derived direction (e.g. the difference of means of
  :func:`probes.representation.directions.contrast_direction`), against two nulls: random unit directions
  (``|cos| ≈ sqrt(2 / (π d))``) and directions fit on label-shuffled contrasts;
- probe transfer: ``AUROC(base probe on tuned) / AUROC(tuned probe on tuned)``.

The prototype organism showed that at the decision token a *create* control's shift had
cosine 0.70–0.75 with the careful direction (select: 0.81–0.88): report these, never let
them decide alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from probes.data.activations import ActivationSet
from probes.errors import ElicitError
from probes.models.hooks import HookSite
from probes.stats import bootstrap_ci

__all__ = ["direction_transfer", "probe_transfer", "random_cosine_null"]


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))


def random_cosine_null(d: int, n: int = 2000, seed: int = 0) -> np.ndarray:
    """|cos| between a fixed vector and ``n`` seeded random unit directions in ``d`` dims."""
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(n, d, generator=g, dtype=torch.float64)
    return (r[:, 0].abs() / r.norm(dim=1)).numpy()  # by symmetry, the first axis stands for any vector


def direction_transfer(
    shift_acts: ActivationSet,
    variant: str,
    directions: Mapping[tuple[int, str], torch.Tensor],
    *,
    shuffled: Mapping[tuple[int, str], Sequence[torch.Tensor]] | None = None,
    base: str = "base",
    site: str = "resid_post",
    n_random: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Cosine between the shift of ``variant`` and base-derived directions, per (layer, position).

    ``directions[(layer, position)]`` is a base-derived direction; ``shuffled`` gives the same
    directions fit on label-shuffled contrasts (the second null). The CI resamples prompts.
    """
    rows = []
    for (layer, pos), d in directions.items():
        hook = HookSite(layer, site)
        Xb = shift_acts.get(base, hook, pos).double()
        Xv = shift_acts.get(variant, hook, pos).double()
        diff = Xv - Xb  # paired: same prompts
        cos = _cos(diff.mean(0), d)
        idx = np.arange(len(diff))

        def stat(k: np.ndarray, diff: torch.Tensor = diff, d: torch.Tensor = d) -> float:
            return _cos(diff[torch.from_numpy(k)].mean(0), d)

        lo, hi = bootstrap_ci(idx, stat, n_resamples=500, seed=seed)
        null = random_cosine_null(d.shape[0], n_random, seed)
        row = {
            "variant": variant,
            "layer": layer,
            "position": pos,
            "cos": cos,
            "cos_lo": lo,
            "cos_hi": hi,
            "null_random_mean": float(null.mean()),
            "null_random_p95": float(np.quantile(null, 0.95)),
            "shift_norm": float(diff.mean(0).norm()),
            "n": len(diff),
        }
        if shuffled and (layer, pos) in shuffled:
            sc = np.array([abs(_cos(diff.mean(0), s)) for s in shuffled[(layer, pos)]])
            row["null_shuffled_mean"] = float(sc.mean())
            row["null_shuffled_p95"] = float(np.quantile(sc, 0.95))
        rows.append(row)
    return pd.DataFrame(rows)


def _rank_auroc(y: np.ndarray, score: np.ndarray) -> float:
    """AUROC by the Mann-Whitney rank formula (ties averaged). Used inside the bootstrap only,
    where scikit-learn's roc_auc_score (used for the point estimates) costs ~20x more per call;
    tests check the two agree."""
    from scipy.stats import rankdata

    r = rankdata(score)
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    return float((r[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def probe_transfer(
    acts: ActivationSet,
    variant: str,
    hook: HookSite | str,
    contrast: tuple[str, str],
    *,
    position: str | None = None,
    base: str = "base",
    train_split: str | Sequence[str] = "train",
    eval_split: str | Sequence[str] = ("dev", "test"),
    seed: int = 0,
) -> dict[str, float]:
    """Fit logistic probes (scikit-learn) for the contrast on base and on ``variant`` (train
    split), evaluate both on ``variant``'s eval split. Returns the AUROCs and their ratio with
    a bootstrap CI over eval prompts."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    lab = np.asarray([str(x) for x in acts.labels])
    spl = np.asarray([str(x) for x in acts.splits])
    tr_s = [train_split] if isinstance(train_split, str) else list(train_split)
    ev_s = [eval_split] if isinstance(eval_split, str) else list(eval_split)
    keep = np.isin(lab, contrast)
    tr, ev = keep & np.isin(spl, tr_s), keep & np.isin(spl, ev_s)
    if tr.sum() < 4 or ev.sum() < 4:
        raise ElicitError(
            f"Probe transfer needs >= 4 contrast prompts in train and eval splits; got {int(tr.sum())}, {int(ev.sum())}."
        )
    y = (lab == contrast[0]).astype(int)
    Xb = acts.get(base, hook, position).double().numpy()
    Xv = acts.get(variant, hook, position).double().numpy()
    pb = LogisticRegression(max_iter=5000, random_state=seed).fit(Xb[tr], y[tr])
    pv = LogisticRegression(max_iter=5000, random_state=seed).fit(Xv[tr], y[tr])
    sb, sv, ye = pb.decision_function(Xv[ev]), pv.decision_function(Xv[ev]), y[ev]
    a_b, a_v = float(roc_auc_score(ye, sb)), float(roc_auc_score(ye, sv))

    def ratio(k: np.ndarray) -> float:
        if len(set(ye[k])) < 2:
            return float("nan")
        return _rank_auroc(ye[k], sb[k]) / max(_rank_auroc(ye[k], sv[k]), 1e-9)

    lo, hi = bootstrap_ci(
        np.arange(len(ye)), lambda k: np.nan_to_num(ratio(k), nan=1.0), n_resamples=500, seed=seed
    )
    return {
        "auroc_base_probe": a_b,
        "auroc_own_probe": a_v,
        "ratio": a_b / max(a_v, 1e-9),
        "ratio_lo": lo,
        "ratio_hi": hi,
        "n": int(ev.sum()),
    }
