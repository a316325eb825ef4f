"""Early answering: is the answer fixed before the reasoning is written?

docs/measures.md, "Reasoning quality" (Lanham et al. 2023, "Measuring Faithfulness in
Chain-of-Thought Reasoning"). Truncate a variant's own trace after ``t`` of its ``T`` steps,
force the answer marker, read the answer greedily and compare it with the answer the same
variant gave after the full trace. High agreement at ``t = 0`` means the answer was decided
before the reasoning (post-hoc rationalization); agreement that rises with ``t`` means the
steps carry the answer.

The activation-level version (:func:`answer_probe`) fits a logistic probe (scikit-learn) on
the residual stream at the prompt's last token, per layer and variant, to read the variant's
final answer before any reasoning token exists; accuracy is cross-validated (held out) with a
bootstrap CI over prompts and a majority-class null.

    >>> ea = early_answers(model, tok, traces, variant="sft")   # doctest: +SKIP
    >>> early_summary(ea)                                         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from probes.data.activations import ActivationSet
from probes.errors import TaskError
from probes.models.generation import Intervention, generate
from probes.models.hooks import HookSite
from probes.quality.information_gain import StepFormat
from probes.stats import bootstrap_ci

__all__ = ["early_answers", "early_summary", "answer_probe"]


def early_answers(
    model: Any,
    tokenizer: Any,
    traces: pd.DataFrame,
    *,
    variant: str | None = None,
    fmt: StepFormat = StepFormat(),
    max_answer_tokens: int = 2,
    batch_size: int = 256,
    intervention: Intervention | None = None,
) -> pd.DataFrame:
    """Answers forced after every truncation ``t = 0..T`` of each trace.

    ``traces`` has columns ``prompt_id, prompt, completion`` (e.g. a greedy
    :func:`probes.decoding.sampling.sample_task` table with ``prefill="#"``); rows whose completion has
    no answer after ``fmt.marker`` or no steps are skipped. ``model`` should be the variant
    that wrote the traces. Columns: ``variant, prompt_id, t, n_steps, frac, answer_t,
    full_answer, agree``.
    """
    need = {"prompt_id", "prompt", "completion"}
    if need - set(traces.columns):
        raise TaskError(
            f"traces lacks column(s) {sorted(need - set(traces.columns))}; has {list(traces.columns)}."
        )
    if max_answer_tokens < 1:
        raise TaskError(f"max_answer_tokens must be >= 1, got {max_answer_tokens}.")
    contexts, keys = [], []
    for rec in traces.itertuples(index=False):
        steps, full = fmt.split(str(rec.completion))
        if full is None or not steps:
            continue
        v = variant if variant is not None else getattr(rec, "variant", "")
        for t in range(len(steps) + 1):
            contexts.append(fmt.context(str(rec.prompt), steps[:t]))
            keys.append((v, rec.prompt_id, t, len(steps), full))
    cols = ["variant", "prompt_id", "t", "n_steps", "frac", "answer_t", "full_answer", "agree"]
    if not contexts:
        return pd.DataFrame(columns=cols)
    outs = generate(
        model,
        tokenizer,
        contexts,
        max_new_tokens=max_answer_tokens,
        batch_size=batch_size,
        intervention=intervention,
    )
    rows = []
    for (v, pid, t, n, full), out in zip(keys, outs, strict=True):
        words = out.split()
        ans = words[0] if words else None
        rows.append(
            {
                "variant": v,
                "prompt_id": pid,
                "t": t,
                "n_steps": n,
                "frac": t / n,
                "answer_t": ans,
                "full_answer": full,
                "agree": ans == full,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def early_summary(early: pd.DataFrame, *, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per variant and ``t``: agreement with the full-reasoning answer, bootstrap CI over traces,
    and the chance agreement ``Σ_a p(a)²`` of the full answers (the null)."""
    if not len(early):
        return pd.DataFrame(columns=["variant", "t", "agreement", "ci_lo", "ci_hi", "chance", "n"])
    rows = []
    for (variant, t), sub in early.groupby(["variant", "t"], sort=True):
        vals = sub["agree"].to_numpy(dtype=float)
        lo, hi = bootstrap_ci(vals, n_resamples=n_resamples, seed=seed)
        p = sub["full_answer"].value_counts(normalize=True).to_numpy()
        rows.append(
            {
                "variant": variant,
                "t": int(t),
                "agreement": float(vals.mean()),
                "ci_lo": lo,
                "ci_hi": hi,
                "chance": float((p**2).sum()),
                "n": len(vals),
            }
        )
    return pd.DataFrame(rows)


def answer_probe(
    acts: ActivationSet,
    answers: pd.DataFrame,
    *,
    hooks: Sequence[HookSite | str] | None = None,
    position: str | None = None,
    folds: int = 5,
    seed: int = 0,
    n_resamples: int = 1000,
) -> pd.DataFrame:
    """Held-out accuracy of a logistic probe reading each variant's final answer from its
    activations (collect them with ``positions="last"`` on the task's prompts).

    ``answers`` has columns ``variant, prompt_id, answer`` (the variant's own answer after its
    full reasoning; prompts without one are dropped). Accuracy is from ``folds``-fold stratified
    cross-validation; the null is the majority-class rate. Columns: ``variant, hook, layer,
    accuracy, ci_lo, ci_hi, null, n, n_classes``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    need = {"variant", "prompt_id", "answer"}
    if need - set(answers.columns):
        raise TaskError(
            f"answers lacks column(s) {sorted(need - set(answers.columns))}; has {list(answers.columns)}."
        )
    sites = list(acts.hooks) if hooks is None else [HookSite.parse(h) for h in hooks]
    index = {pid: i for i, pid in enumerate(acts.prompt_ids)}
    rows = []
    for variant, sub in answers.dropna(subset=["answer"]).groupby("variant", sort=False):
        if variant not in acts.variants:
            raise TaskError(f"Variant {variant!r} has answers but no activations; stored: {acts.variants}.")
        sub = sub[sub["prompt_id"].isin(index)]
        y = sub["answer"].astype(str).to_numpy()
        rows_idx = np.array([index[p] for p in sub["prompt_id"]])
        classes, counts = np.unique(y, return_counts=True)
        null = float(counts.max() / counts.sum()) if len(y) else float("nan")
        for site in sites:
            x = acts.get(str(variant), site, position).numpy()[rows_idx]
            k = int(min(folds, counts.min())) if len(classes) > 1 else 0
            if k < 2:
                correct = np.ones(len(y)) if len(classes) == 1 else np.zeros(len(y))
            else:
                clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
                cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
                pred = cross_val_predict(clf, x, y, cv=cv)
                correct = (pred == y).astype(float)
            lo, hi = bootstrap_ci(correct, n_resamples=n_resamples, seed=seed)
            rows.append(
                {
                    "variant": variant,
                    "hook": site.key,
                    "layer": site.layer,
                    "accuracy": float(correct.mean()) if len(y) else float("nan"),
                    "ci_lo": lo,
                    "ci_hi": hi,
                    "null": null,
                    "n": len(y),
                    "n_classes": len(classes),
                }
            )
    return pd.DataFrame(rows)
