"""Representation transfer: how the tuned-minus-base shift relates to base-derived directions,
and whether linear probes fit on the base read the tuned model.

Definitions (docs/measures.md, "Representation transfer"):

- shift ``δ_v(l, pos) = mean_x h_v(x, l, pos) − mean_x h_base(x, l, pos)`` over the same prompts;
- its cosine with a base-derived direction (e.g. the difference of means of
  :func:`probes.representation.directions.contrast_direction`), against random unit directions of
  the same dimension (``|cos| ≈ sqrt(2 / (π d))``);
- its span share: the share of ``‖δ‖²`` inside the span of the base's top-``k`` principal
  directions at that site (:func:`base_subspace`), against its exact null for a random direction,
  ``Beta(k/2, (d−k)/2)`` (mean ``k/d``; :func:`span_share_null`);
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

__all__ = [
    "direction_transfer",
    "probe_transfer",
    "random_cosine_null",
    "base_subspace",
    "span_share",
    "span_share_null",
]


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))


def random_cosine_null(d: int, n: int = 2000, seed: int = 0) -> np.ndarray:
    """|cos| between a fixed vector and ``n`` seeded random unit directions in ``d`` dims."""
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(n, d, generator=g, dtype=torch.float64)
    return (r[:, 0].abs() / r.norm(dim=1)).numpy()  # by symmetry, the first axis stands for any vector


def base_subspace(X: torch.Tensor, k: int) -> torch.Tensor:
    """``[d, k]``: the top-``k`` principal directions of the rows of ``X`` (the base's activations at
    one site over prompts): right singular vectors of the centred rows, in float64.

    >>> X = torch.tensor([[3.0, 0.0, 0.0], [-3.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])
    >>> base_subspace(X, 1).abs().flatten().tolist()
    [1.0, 0.0, 0.0]
    """
    if not 1 <= k <= min(X.shape):
        raise ElicitError(f"base_subspace needs 1 <= k <= min{tuple(X.shape)}, got k={k}.")
    Xc = X.double() - X.double().mean(0)
    return torch.linalg.svd(Xc, full_matrices=False).Vh[:k].mT


def span_share(delta: torch.Tensor, basis: torch.Tensor) -> float:
    """``‖Bᵀδ‖² / ‖δ‖²`` for orthonormal columns ``B``: the share of the shift's squared norm in
    their span (1 inside it, 0 orthogonal to it; NaN for a zero shift).

    >>> span_share(torch.tensor([3.0, 4.0, 0.0]), torch.eye(3)[:, :1])   # 9 / 25
    0.36
    """
    d = delta.double()
    n2 = float(d @ d)
    if n2 == 0:
        return float("nan")
    return float((basis.double().mT @ d).pow(2).sum()) / n2


def span_share_null(d: int, k: int) -> tuple[float, float]:
    """(mean, 95th percentile) of :func:`span_share` for a uniformly random direction in ``d``
    dimensions and a fixed ``k``-dimensional subspace: exactly ``Beta(k/2, (d−k)/2)`` (the squared
    norm of ``k`` of ``d`` coordinates of a random unit vector), mean ``k/d``.

    >>> m, p95 = span_share_null(64, 8); round(m, 3), round(p95, 3)
    (0.125, 0.232)
    """
    from scipy.stats import beta

    if not 1 <= k < d:
        raise ElicitError(f"span_share_null needs 1 <= k < d, got k={k}, d={d}.")
    return k / d, float(beta.ppf(0.95, k / 2, (d - k) / 2))


def direction_transfer(
    shift_acts: ActivationSet,
    variant: str,
    directions: Mapping[tuple[int, str], torch.Tensor],
    *,
    shuffled: Mapping[tuple[int, str], Sequence[torch.Tensor]] | None = None,
    bases: Mapping[tuple[int, str], torch.Tensor] | None = None,
    base: str = "base",
    site: str = "resid_post",
    n_random: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Cosine between the shift of ``variant`` and base-derived directions, per (layer, position).

    ``directions[(layer, position)]`` is a base-derived direction; its null is the ``|cos|`` of
    ``n_random`` seeded random unit directions of the same dimension. ``shuffled`` (optional) gives
    the same directions fit on label-shuffled contrasts, reported as ``null_shuffled_*`` for
    information only: a shuffled contrast's direction is not independent of the shift (both
    carry the prompts' shared mean structure), so its ``|cos|`` band reaches 0.9 and is no null
    for this statistic. ``bases[(layer, position)]`` (``[d, k]`` orthonormal, e.g.
    :func:`base_subspace`) adds the span share with its exact random-direction null. CIs
    resample prompts.
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
        if bases is not None and (layer, pos) in bases:
            B = bases[(layer, pos)]

            def share(k: np.ndarray, diff: torch.Tensor = diff, B: torch.Tensor = B) -> float:
                return span_share(diff[torch.from_numpy(k)].mean(0), B)

            s_lo, s_hi = bootstrap_ci(idx, share, n_resamples=500, seed=seed)
            s_mean, s_p95 = span_share_null(d.shape[0], B.shape[1])
            row.update(
                span_share=span_share(diff.mean(0), B),
                span_lo=s_lo,
                span_hi=s_hi,
                span_null_mean=s_mean,
                span_null_p95=s_p95,
                span_k=int(B.shape[1]),
            )
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
