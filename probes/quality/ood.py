"""Out-of-distribution drop: accuracy on held-out variants of a task relative to in-distribution.

docs/measures.md, "Reasoning quality": the seed's claim that RL-tuned models match templates
rather than learn procedures predicts a larger drop on longer strings and unseen formats.
A task declares its OOD examples through :attr:`probes.data.tasks.Example.split` (e.g.
``ood_long``, ``ood_tag``; any name a user chooses); the in-distribution reference is the
``id_split`` examples with the same labels. The ratio ``acc(OOD) / acc(ID)`` gets a 95%
bootstrap interval that resamples the two prompt sets independently.

    >>> table = pd.DataFrame({"variant": ["v"] * 4, "split": ["test", "test", "ood_long", "ood_long"],
    ...                       "label": ["n"] * 4, "correct": [True, True, True, False]})
    >>> ood_table(table)[["variant", "ood_split", "label", "id_acc", "ood_acc", "ratio"]].to_dict("records")[0]
    {'variant': 'v', 'ood_split': 'ood_long', 'label': 'all', 'id_acc': 1.0, 'ood_acc': 0.5, 'ratio': 0.5}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from probes.errors import TaskError

__all__ = ["ood_table", "ratio_ci", "OOD_PREFIX"]

#: Splits whose name starts with this are out-of-distribution by default.
OOD_PREFIX = "ood"


def ratio_ci(
    id_correct: np.ndarray, ood_correct: np.ndarray, *, n_resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% bootstrap interval of ``mean(ood) / mean(id)``, the two samples resampled independently."""
    a, b = np.asarray(id_correct, float), np.asarray(ood_correct, float)
    if len(a) == 0 or len(b) == 0:
        return (float("nan"), float("nan"))
    point = b.mean() / a.mean() if a.mean() > 0 else float("nan")
    if len(a) < 2 or len(b) < 2 or (a.min() == a.max() and b.min() == b.max()):
        return (point, point)

    def stat(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        den = x.mean(axis=axis)
        return np.where(den > 0, y.mean(axis=axis) / np.where(den > 0, den, 1.0), np.nan)

    res = stats.bootstrap(
        (a, b),
        stat,
        paired=False,
        vectorized=True,
        n_resamples=n_resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if np.isnan(lo) or np.isnan(hi):
        return (point, point)
    return (lo, hi)


def ood_table(
    samples: pd.DataFrame,
    *,
    id_split: str | Sequence[str] = "test",
    ood_splits: Sequence[str] | None = None,
    by_label: bool = True,
    n_resamples: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy ratio OOD / ID per variant and OOD split (pooled over labels, and per label).

    ``samples`` has columns ``variant, split, label, correct`` (e.g. greedy
    :func:`probes.decoding.sampling.sample_task` tables of the ID and OOD tasks, concatenated).
    ``ood_splits`` defaults to every split starting with ``"ood"``. Columns: ``variant,
    ood_split, label, id_acc, ood_acc, ratio, ci_lo, ci_hi, n_id, n_ood``.
    """
    need = {"variant", "split", "label", "correct"}
    if need - set(samples.columns):
        raise TaskError(
            f"samples lacks column(s) {sorted(need - set(samples.columns))}; has {list(samples.columns)}."
        )
    ids = {id_split} if isinstance(id_split, str) else set(id_split)
    present = sorted({str(s) for s in samples["split"].dropna()})
    if not ids & set(present):
        raise TaskError(f"No in-distribution split {sorted(ids)} in the samples; splits present: {present}.")
    oods = [s for s in present if s.startswith(OOD_PREFIX)] if ood_splits is None else list(ood_splits)
    missing = [s for s in oods if s not in present]
    if missing or not oods:
        raise TaskError(
            f"OOD split(s) {missing or oods} not in the samples; splits present: {present}. Declare OOD "
            "examples with Example(split='ood_...') (see probes.organism.tasks.parity_ood_task)."
        )
    rows = []
    for variant, sub in samples.groupby("variant", sort=False):
        id_rows = sub[sub["split"].isin(ids)]
        for split in oods:
            o = sub[sub["split"] == split]
            labels = sorted({str(x) for x in o["label"].dropna()})
            groups: list[tuple[str, pd.DataFrame, pd.DataFrame]] = [
                ("all", id_rows[id_rows["label"].astype(str).isin(labels)] if labels else id_rows, o)
            ]
            if by_label and len(labels) > 1:
                groups += [
                    (lab, id_rows[id_rows["label"].astype(str) == lab], o[o["label"].astype(str) == lab])
                    for lab in labels
                ]
            for lab, a_df, b_df in groups:
                a = a_df["correct"].to_numpy(dtype=float)
                b = b_df["correct"].to_numpy(dtype=float)
                id_acc = float(a.mean()) if len(a) else float("nan")
                ood_acc = float(b.mean()) if len(b) else float("nan")
                lo, hi = ratio_ci(a, b, n_resamples=n_resamples, seed=seed)
                rows.append(
                    {
                        "variant": variant,
                        "ood_split": split,
                        "label": lab,
                        "id_acc": id_acc,
                        "ood_acc": ood_acc,
                        "ratio": ood_acc / id_acc if id_acc > 0 else float("nan"),
                        "ci_lo": lo,
                        "ci_hi": hi,
                        "n_id": len(a),
                        "n_ood": len(b),
                    }
                )
    return pd.DataFrame(rows)
