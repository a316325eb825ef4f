"""Information gain per reasoning step, under one fixed scoring model.

docs/measures.md, "Reasoning quality" (Wu et al. 2025, "Knowledge or Reasoning?": SFT lowers
information gain by 38.9% on average). For a trace with steps ``s_1..s_T`` and answer ``a``::

    IG_t = log p(a | prompt, s_≤t) − log p(a | prompt, s_<t)

``log p(a | context)`` is read by teacher forcing the answer after an answer-forcing
template (:class:`StepFormat`): the context after ``t`` steps is
``prompt + " " + head + " " + s_1 ... s_t + " " + marker`` and the continuation is
``" " + a``. The sum over steps telescopes to ``log p(a | full trace) − log p(a | no steps)``.
Scoring every variant's traces with the *same* model keeps the variants comparable.

    >>> fmt = StepFormat()                     # the organism: '# 1 1 2 > 1'
    >>> fmt.split("# 1 1 2 > 1")
    (['1', '1', '2'], '1')
    >>> fmt.context("N 1 1 0 =", ["1", "2"])
    'N 1 1 0 = # 1 2 >'

Table columns: ``variant, prompt_id, step (1..T), step_text, logp_prev, logp, ig``.

Wu et al.'s own InfoGain (their reference code's ``InformationGainScorer``) is
:func:`wu_information_gain`: under the same fixed model, the perplexity of the *whole* text
``question + s_1..s_t + marker + a`` after each step ``t`` (``PPL_t``; ``PPL_0`` has no step),

    InfoGain = Σ_{t=1..T} (PPL_{t−1} − PPL_t) / (T + 1)

(the sum telescopes to ``(PPL_0 − PPL_T) / (T + 1)``), and their −38.9% is the relative change of
its mean between two models' traces (:func:`wu_relative_change`). The answer-only increment above
is a different quantity and keeps its own name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float

from probes.errors import TaskError
from probes.models.tokens import encode
from probes.stats import bootstrap_ci

__all__ = [
    "StepFormat",
    "answer_logprob",
    "information_gain",
    "ig_profile",
    "ig_totals",
    "text_perplexity",
    "wu_information_gain",
    "wu_relative_change",
]


@dataclass(frozen=True)
class StepFormat:
    """How a trace splits into steps and how the answer is forced.

    Attributes:
        head: text that opens the reasoning (organism: the format prefix ``#``; ``""`` if none).
        separator: text between steps (organism: ``" "``, each count token is a step; e.g. ``"\\n"``).
        marker: text that introduces the answer (organism: ``>``; GSM8K-style: ``####``).
        joiner: text between prompt, head, steps, marker and answer.
    """

    head: str = "#"
    separator: str = " "
    marker: str = ">"
    joiner: str = " "

    def __post_init__(self) -> None:
        if not self.marker:
            raise TaskError(
                "StepFormat.marker must be non-empty (the text that introduces the answer, e.g. '>')."
            )
        if not self.separator:
            raise TaskError("StepFormat.separator must be non-empty (e.g. ' ' or '\\n').")

    def split(self, trace: str) -> tuple[list[str], str | None]:
        """``(steps, answer)`` of a trace; ``answer`` is ``None`` when the marker is missing."""
        text = trace.strip()
        if self.head and text.startswith(self.head):
            text = text[len(self.head) :]
        answer: str | None = None
        if self.marker in text:
            text, tail = text.split(self.marker, 1)
            words = tail.split()
            answer = words[0] if words else None
        steps = [s.strip() for s in text.split(self.separator) if s.strip()]
        return steps, answer

    def context(self, prompt: str, steps: Sequence[str]) -> str:
        """The text after which the answer is forced, given the first steps."""
        parts = [prompt.rstrip()]
        if self.head:
            parts.append(self.head)
        if steps:
            parts.append(self.separator.join(steps))
        parts.append(self.marker)
        return self.joiner.join(parts)

    def continuation(self, answer: str) -> str:
        return self.joiner + answer.strip()


def answer_logprob(
    model: Any, tokenizer: Any, contexts: Sequence[str], answers: Sequence[str], *, batch_size: int = 256
) -> Float[np.ndarray, " prompt"]:
    """``log p(answer | context)``: the summed log-probabilities of the answer's tokens, teacher forced."""
    if len(contexts) != len(answers):
        raise TaskError(
            f"Got {len(contexts)} contexts but {len(answers)} answers; give one answer per context."
        )
    device = next(model.parameters()).device
    out = np.zeros(len(contexts))
    for b0 in range(0, len(contexts), batch_size):
        ctx = list(contexts[b0 : b0 + batch_size])
        full = [c + a for c, a in zip(ctx, answers[b0 : b0 + batch_size], strict=True)]
        c_ids = tokenizer(ctx)["input_ids"]
        c_len = [len(r) for r in c_ids]
        batch = encode(tokenizer, full, padding_side="right", device=device)
        for i, r in enumerate(c_ids):
            if batch.input_ids[i, : len(r)].tolist() != list(r):
                raise TaskError(
                    f"Context {ctx[i]!r} tokenises differently once the answer is appended, so the answer's "
                    "tokens cannot be separated; change StepFormat.joiner (e.g. to ' ')."
                )
        with torch.inference_mode():
            res = model(batch.input_ids, attention_mask=batch.attention_mask)
        logits = res.logits if hasattr(res, "logits") else res
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()
        ids = batch.input_ids.cpu()
        for i, (n_ctx, n_full) in enumerate(zip(c_len, batch.lengths, strict=True)):
            if n_full <= n_ctx:
                raise TaskError(
                    f"The answer adds no tokens after context {ctx[i]!r}; check StepFormat.joiner and the answer."
                )
            pos = torch.arange(n_ctx, n_full)
            out[b0 + i] = float(logp[i, pos - 1, ids[i, pos]].sum())
    return out


def _split_traces(
    prompts: Sequence[str],
    traces: Sequence[str],
    answers: Sequence[str | None] | None,
    ids: Sequence[str] | None,
    fmt: StepFormat,
) -> list[tuple[str, str, list[str], str]]:
    """``(prompt_id, prompt, steps, answer)`` of every trace with steps and an answer (the given
    one, else the one written after ``fmt.marker``); the others are skipped."""
    if len(prompts) != len(traces):
        raise TaskError(f"Got {len(prompts)} prompts but {len(traces)} traces; give one trace per prompt.")
    names = [str(i) for i in range(len(prompts))] if ids is None else [str(i) for i in ids]
    out = []
    for i, (p, tr) in enumerate(zip(prompts, traces, strict=True)):
        steps, own = fmt.split(tr)
        a = answers[i] if answers is not None and answers[i] is not None else own
        if a is not None and steps:
            out.append((names[i], p, steps, a))
    return out


def information_gain(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    traces: Sequence[str],
    answers: Sequence[str | None] | None = None,
    *,
    ids: Sequence[str] | None = None,
    variant: str = "",
    fmt: StepFormat = StepFormat(),
    batch_size: int = 256,
) -> pd.DataFrame:
    """``IG_t`` for every step of every trace, scored by ``model`` (the fixed scoring variant).

    ``answers[i]`` is the answer whose probability is tracked (default, or ``None`` entries: the
    answer written in the trace after ``fmt.marker``; traces without one are skipped). ``variant``
    names whose traces these are. A trace with no steps contributes no rows.
    """
    contexts, targets, keys = [], [], []
    for pid, p, steps, a in _split_traces(prompts, traces, answers, ids, fmt):
        for t in range(len(steps) + 1):
            contexts.append(fmt.context(p, steps[:t]))
            targets.append(fmt.continuation(a))
            keys.append((pid, t, steps[t - 1] if t else ""))
    if not contexts:
        return pd.DataFrame(columns=["variant", "prompt_id", "step", "step_text", "logp_prev", "logp", "ig"])
    lp = answer_logprob(model, tokenizer, contexts, targets, batch_size=batch_size)
    rows = []
    for j, (pid, t, text) in enumerate(keys):
        if t == 0:
            continue
        rows.append(
            {
                "variant": variant,
                "prompt_id": pid,
                "step": t,
                "step_text": text,
                "logp_prev": lp[j - 1],
                "logp": lp[j],
                "ig": lp[j] - lp[j - 1],
            }
        )
    return pd.DataFrame(rows)


def ig_totals(ig: pd.DataFrame, *, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per variant: mean total IG per trace (``= logp(full) − logp(no steps)``) with a bootstrap CI,
    the mean per-step IG and the mean final ``log p(a | full trace)``."""
    if not len(ig):
        return pd.DataFrame(
            columns=[
                "variant",
                "total_ig",
                "ci_lo",
                "ci_hi",
                "ig_per_step",
                "final_logp",
                "n_traces",
                "mean_steps",
            ]
        )
    rows = []
    for variant, sub in ig.groupby("variant", sort=False):
        per = sub.groupby("prompt_id", sort=False).agg(
            total=("ig", "sum"), steps=("ig", "size"), final=("logp", "last")
        )
        lo, hi = bootstrap_ci(per["total"].to_numpy(), n_resamples=n_resamples, seed=seed)
        rows.append(
            {
                "variant": variant,
                "total_ig": float(per["total"].mean()),
                "ci_lo": lo,
                "ci_hi": hi,
                "ig_per_step": float((per["total"] / per["steps"]).mean()),
                "final_logp": float(per["final"].mean()),
                "n_traces": len(per),
                "mean_steps": float(per["steps"].mean()),
            }
        )
    return pd.DataFrame(rows)


def ig_profile(ig: pd.DataFrame, *, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per variant and step index: mean IG with a bootstrap CI over traces."""
    if not len(ig):
        return pd.DataFrame(columns=["variant", "step", "ig", "ci_lo", "ci_hi", "n"])
    rows = []
    for (variant, step), sub in ig.groupby(["variant", "step"], sort=True):
        vals = sub["ig"].to_numpy()
        lo, hi = bootstrap_ci(vals, n_resamples=n_resamples, seed=seed)
        rows.append(
            {
                "variant": variant,
                "step": int(step),
                "ig": float(vals.mean()),
                "ci_lo": lo,
                "ci_hi": hi,
                "n": len(vals),
            }
        )
    return pd.DataFrame(rows)


def text_perplexity(
    model: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 256
) -> Float[np.ndarray, " text"]:
    """``exp(mean NLL)`` of each whole text under ``model``: every token after the first is
    predicted from the ones before it (the tokenizer's special tokens included, as it adds them)."""
    device = next(model.parameters()).device
    out = np.zeros(len(texts))
    for b0 in range(0, len(texts), batch_size):
        batch = encode(tokenizer, list(texts[b0 : b0 + batch_size]), padding_side="right", device=device)
        with torch.inference_mode():
            res = model(batch.input_ids, attention_mask=batch.attention_mask)
        logits = res.logits if hasattr(res, "logits") else res
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()
        ids = batch.input_ids.cpu()
        for i, n in enumerate(batch.lengths):
            if n < 2:
                raise TaskError(f"Text {texts[b0 + i]!r} has {n} token(s); a perplexity needs at least 2.")
            pos = torch.arange(1, n)
            out[b0 + i] = float(torch.exp(-logp[i, pos - 1, ids[i, pos]].mean()))
    return out


def wu_information_gain(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    traces: Sequence[str],
    answers: Sequence[str | None] | None = None,
    *,
    ids: Sequence[str] | None = None,
    variant: str = "",
    fmt: StepFormat = StepFormat(),
    batch_size: int = 256,
) -> pd.DataFrame:
    """Wu et al.'s InfoGain of each trace, scored by ``model`` (one fixed model for every variant).

    ``PPL_t`` is :func:`text_perplexity` of ``fmt.context(prompt, steps[:t]) + fmt.continuation(a)``
    (question, the first ``t`` steps, the answer marker and the answer: the whole text), and
    ``info_gain = Σ_{t=1..T} (PPL_{t−1} − PPL_t) / (T + 1)``. ``answers`` as in
    :func:`information_gain`. One row per trace with steps: ``variant, prompt_id, n_steps, ppl_0,
    ppl_final, info_gain``.
    """
    texts, keys = [], []
    for pid, p, steps, a in _split_traces(prompts, traces, answers, ids, fmt):
        for t in range(len(steps) + 1):
            texts.append(fmt.context(p, steps[:t]) + fmt.continuation(a))
        keys.append((pid, len(steps)))
    cols = ["variant", "prompt_id", "n_steps", "ppl_0", "ppl_final", "info_gain"]
    if not texts:
        return pd.DataFrame(columns=cols)
    ppl = text_perplexity(model, tokenizer, texts, batch_size=batch_size)
    rows, j = [], 0
    for pid, T in keys:
        seq = ppl[j : j + T + 1]
        j += T + 1
        gain = float(np.sum(seq[:-1] - seq[1:]) / (T + 1))
        rows.append(
            {
                "variant": variant,
                "prompt_id": pid,
                "n_steps": T,
                "ppl_0": float(seq[0]),
                "ppl_final": float(seq[-1]),
                "info_gain": gain,
            }
        )
    return pd.DataFrame(rows, columns=cols)


def wu_relative_change(
    gains: pd.DataFrame, reference: str, *, n_resamples: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per variant: mean InfoGain (:func:`wu_information_gain`) with a bootstrap CI over traces, and
    its relative change against ``reference``'s mean, ``(IG_v − IG_ref) / |IG_ref|`` (Wu et al.'s
    −38.9% for SFT), with an interval resampling both variants' traces.

    >>> g = pd.DataFrame({"variant": ["a", "a", "b", "b"], "info_gain": [2.0, 2.0, 1.0, 1.0]})
    >>> wu_relative_change(g, "a").set_index("variant").rel_change.tolist()
    [0.0, -0.5]
    """
    cols = ["variant", "info_gain", "ci_lo", "ci_hi", "rel_change", "rel_lo", "rel_hi", "n_traces"]
    if not len(gains) or reference not in set(gains["variant"]):
        return pd.DataFrame(columns=cols)
    ref = gains.loc[gains["variant"] == reference, "info_gain"].to_numpy(float)
    rng = np.random.default_rng(seed)
    rows = []
    for variant, sub in gains.groupby("variant", sort=False):
        x = sub["info_gain"].to_numpy(float)
        lo, hi = bootstrap_ci(x, n_resamples=n_resamples, seed=seed)
        base = float(ref.mean())
        rel = (float(x.mean()) - base) / abs(base) if base != 0 else float("nan")
        boots = []
        for _ in range(n_resamples):
            rb = float(rng.choice(ref, len(ref)).mean())
            if rb != 0:
                boots.append((float(rng.choice(x, len(x)).mean()) - rb) / abs(rb))
        r_lo, r_hi = np.percentile(boots, [2.5, 97.5]) if boots else (np.nan, np.nan)
        rows.append(
            {
                "variant": variant,
                "info_gain": float(x.mean()),
                "ci_lo": lo,
                "ci_hi": hi,
                "rel_change": rel,
                "rel_lo": float(r_lo),
                "rel_hi": float(r_hi),
                "n_traces": len(x),
            }
        )
    return pd.DataFrame(rows, columns=cols)
