"""CoT-decoding: branch on the top-k first tokens, continue greedily, pick the most confident path.

docs/measures.md, "Decoding elicitation" (Wang & Zhou 2024, "Chain-of-Thought Reasoning Without
Prompting"). For each prompt the ``k`` most likely first tokens start ``k`` paths, each
continued greedily. A path's confidence is the mean over its *answer tokens* of
``p(top1) − p(top2)`` at the step that produced the token. The chosen path is the most
confident one; branch 0 is plain greedy decoding.

Answer tokens are found by *characters*, so a BPE tokenizer (``Ġ42`` inside a completion,
``42`` on its own) finds them as a word-level one does: the scorer's parsed answer is located in
the path's decoded text (:func:`answer_char_span`: after ``answer_marker`` when the path uses
the reasoning format, else its first occurrence, or its last for the ``gsm8k`` / ``math``
scorers, whose parse is the final answer), and the answer tokens are the path tokens whose
decoded characters overlap that span (:func:`token_span`, from the lengths of decoded prefixes).
A path whose answer cannot be located gets ``span_found = False`` and a ``NaN`` confidence;
:func:`cot_summary` counts those paths and the prompts that fell back to greedy because no path
had a span, so nothing falls back silently.

    >>> paths = cot_decode(model, tok, task, variant="base", k=5)   # doctest: +SKIP
    >>> cot_summary(paths)                                           # doctest: +SKIP

Glossary: ``batch`` rows are (prompt, branch) paths; ``vocab`` the vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int

from probes.data.tasks import Task
from probes.errors import TaskError
from probes.models.generation import _hf_module, _is_transformers_model, cached_prefill, cached_step
from probes.models.protocol import protocol_of
from probes.models.unbridged import unbridged
from probes.stats import bootstrap_ci

__all__ = ["greedy_continue", "answer_char_span", "token_span", "cot_decode", "cot_summary"]

#: the answer marker of each built-in scorer (``answer_marker="auto"``), and the scorers whose
#: parse is the *last* answer of the text
_MARKERS = {"scratchpad": ">", "gsm8k": "####"}
_LAST = ("gsm8k", "math")


def _device(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def _logits(
    model: Any, ids: Int[torch.Tensor, "batch pos"], mask: Int[torch.Tensor, "batch pos"]
) -> torch.Tensor:
    out = model(ids, attention_mask=mask)
    logits = out.logits if hasattr(out, "logits") else out
    return logits


def _next_probs(
    model: Any, rows: Sequence[list[int]], pad_id: int, device: torch.device
) -> Float[torch.Tensor, "batch vocab"]:
    """Next-token probabilities after each (unpadded) row, right-padded in one forward pass."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    with torch.inference_mode():
        logits = _logits(model, ids.to(device), mask.to(device))
    last = torch.tensor([len(r) - 1 for r in rows], device=logits.device)
    return torch.softmax(logits[torch.arange(len(rows), device=logits.device), last].float(), dim=-1).cpu()


def greedy_continue(
    model: Any,
    rows: Sequence[Sequence[int]],
    *,
    max_new_tokens: int,
    eos_id: int | None,
    pad_id: int = 0,
    batch_size: int = 256,
) -> tuple[list[list[int]], list[list[float]]]:
    """Continue each token row greedily; return the new tokens and each token's margin
    ``p(top1) − p(top2)`` at the step that produced it (stops at ``eos_id``, which is dropped).

    A ``transformers`` model or a ``TransformerBridge`` (driven through its Hugging Face module,
    whose modules carry the bridge's hooks) decodes with its KV cache: one prefill of the
    left-padded rows, then one token per step. Any other model (a callable returning logits) is
    re-run on each row's whole text at every step; both give the same tokens
    (``tests/probes/decoding/test_cot_decoding.py``). The uncached loop cost a 135M-parameter model
    on 2 cores 33 minutes for 16 prompts x 10 branches x 64 tokens (SmolLM2, 2026-12-04): each step
    recomputed every earlier position.
    """
    device = _device(model)
    toks: list[list[int]] = [[] for _ in rows]
    margins: list[list[float]] = [[] for _ in rows]
    hf = _cache_module(model)
    for b0 in range(0, len(rows), batch_size):
        live = list(range(b0, min(b0 + batch_size, len(rows))))
        if max_new_tokens < 1 or not live:
            continue
        if hf is not None:
            with unbridged(model) as fast:  # a Bridge without non-residual hooks: its own HF modules
                run = fast if fast is not None else hf
                _continue_cached(run, rows, live, toks, margins, max_new_tokens, eos_id, pad_id, device)
            continue
        for _ in range(max_new_tokens):
            if not live:
                break
            probs = _next_probs(model, [list(rows[i]) + toks[i] for i in live], pad_id, device)
            top = probs.topk(2, dim=-1)
            still = []
            for j, i in enumerate(live):
                tok = int(top.indices[j, 0])
                if eos_id is not None and tok == eos_id:
                    continue
                toks[i].append(tok)
                margins[i].append(float(top.values[j, 0] - top.values[j, 1]))
                still.append(i)
            live = still
    return toks, margins


def _cache_module(model: Any) -> Any | None:
    """The Hugging Face causal LM that runs ``model`` with a KV cache, or ``None`` when it has none."""
    if _is_transformers_model(model) or getattr(model, "original_model", None) is not None:
        return _hf_module(model)
    return None


def _continue_cached(
    hf: Any,
    rows: Sequence[Sequence[int]],
    live: list[int],
    toks: list[list[int]],
    margins: list[list[float]],
    max_new_tokens: int,
    eos_id: int | None,
    pad_id: int,
    device: torch.device,
) -> None:
    """:func:`greedy_continue` of the rows ``live`` through ``hf`` with its KV cache (in place)."""
    width = max(len(rows[i]) for i in live)
    ids = torch.full((len(live), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(live), width), dtype=torch.long)
    for j, i in enumerate(live):
        ids[j, width - len(rows[i]) :] = torch.tensor(list(rows[i]), dtype=torch.long)
        mask[j, width - len(rows[i]) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    with torch.inference_mode():
        cache, logits, last = cached_prefill(hf, ids, mask)
        done = [False] * len(live)
        for t in range(max_new_tokens):
            top = torch.softmax(logits.float(), dim=-1).topk(2, dim=-1)
            top_i, top_v = top.indices[:, 0].tolist(), top.values.cpu()
            for j, i in enumerate(live):
                if done[j]:
                    continue
                if eos_id is not None and top_i[j] == eos_id:
                    done[j] = True
                    continue
                toks[i].append(int(top_i[j]))
                margins[i].append(float(top_v[j, 0] - top_v[j, 1]))
            if all(done) or t == max_new_tokens - 1:
                break
            nxt = torch.tensor([pad_id if d else k for d, k in zip(done, top_i, strict=True)], device=device)
            mask, last, cache, logits = cached_step(hf, nxt, mask, last, cache)


def _answer_pattern(answer: str) -> re.Pattern[str]:
    """The answer as written in text: a number may carry thousands commas (the scorers drop them)."""
    if re.fullmatch(r"[-+]?\d+(\.\d+)?", answer):
        body = ",?".join(re.escape(ch) for ch in answer)
        return re.compile(rf"(?<![\d.]){body}(?!\d)")
    return re.compile(re.escape(answer))


def answer_char_span(
    text: str, answer: str, marker: str | None = None, *, last: bool = False
) -> tuple[int, int] | None:
    """``(start, stop)`` characters of ``answer`` in ``text``: its first occurrence after the first
    ``marker`` when the marker occurs, else its first (``last``: last) occurrence; ``None`` if absent.
    A number also matches written with thousands commas.

        >>> answer_char_span("# 1 1 > 1", "1", ">")
        (8, 9)
        >>> answer_char_span("3 + 4 = 7, so 7", "7", last=True)
        (14, 15)
        >>> answer_char_span("She paid $1,000.", "1000")
        (10, 15)
    """
    if not answer:
        return None
    pat = _answer_pattern(answer)
    if marker and marker in text:
        m = pat.search(text, text.index(marker) + len(marker))
        return (m.start(), m.end()) if m else None
    hits = list(pat.finditer(text))
    if not hits:
        return None
    m = hits[-1] if last else hits[0]
    return (m.start(), m.end())


def token_span(tokenizer: Any, ids: Sequence[int], chars: tuple[int, int]) -> tuple[int, int] | None:
    """``(start, stop)`` of the tokens of ``ids`` whose decoded characters overlap ``chars``, a
    span of ``tokenizer.decode(ids, skip_special_tokens=True)``.

    Token ``i`` covers the characters between the lengths of the decoded prefixes ``ids[:i]`` and
    ``ids[:i+1]`` (decoding prefixes, not the offsets of a re-encoding, which a BPE tokenizer may
    split differently); both ends are found by bisection, about ``2 log2(len(ids))`` decodes.
    """
    lo_c, hi_c = chars
    if not 0 <= lo_c < hi_c:
        return None

    def end(i: int) -> int:  # characters decoded from the first i tokens
        return len(tokenizer.decode(list(ids[:i]), skip_special_tokens=True))

    def first(pred: Any) -> int:  # smallest i in 1..len(ids) with pred(end(i)), else len(ids) + 1
        a, b = 1, len(ids) + 1
        while a < b:
            mid = (a + b) // 2
            if pred(end(mid)):
                b = mid
            else:
                a = mid + 1
        return a

    start = first(lambda e: e > lo_c) - 1  # the first token ending after the span starts
    stop = first(lambda e: e >= hi_c)  # the first prefix that covers the span's end
    if start >= len(ids) or stop > len(ids):
        return None
    return (start, stop)


def _first_branches(
    model: Any, enc: Sequence[list[int]], k: int, pad: int, device: torch.device, batch_size: int
) -> tuple[torch.return_types.topk, list[float]]:
    """The top-``k`` (+1) first tokens of every prompt, and each prompt's first-step margin ``p(top1) − p(top2)``."""
    first = [_next_probs(model, enc[i : i + batch_size], pad, device) for i in range(0, len(enc), batch_size)]
    p0 = torch.cat(first)
    top = p0.topk(min(k + 1, p0.shape[-1]), dim=-1)
    margin0 = (top.values[:, 0] - top.values[:, 1]).tolist() if top.values.shape[1] > 1 else [1.0] * len(enc)
    return top, margin0


def _path_confidence(
    tokenizer: Any, path: list[int], margins: list[float], parsed: str, marker: str | None, last: bool
) -> float:
    """Mean margin over the answer tokens of ``path`` (``NaN`` when the answer is not found)."""
    text = tokenizer.decode(path, skip_special_tokens=True)
    chars = answer_char_span(text, parsed, marker, last=last)
    span = token_span(tokenizer, path, chars) if chars is not None else None
    return float(np.mean(margins[span[0] : span[1]])) if span is not None else float("nan")


def _path_columns(
    tokenizer: Any,
    task: Task,
    answer: str,
    tok: int,
    new: list[int],
    marg: list[float],
    margin0: float,
    *,
    eos: int | None,
    answer_marker: str | None,
    last: bool,
) -> dict[str, Any]:
    """Completion, score and answer confidence of the path that starts with ``tok`` and continues with ``new``."""
    path = ([] if tok == eos else [tok]) + new
    # the margin of the first token is the first step's top1 - top2 (branching is not greedy)
    path_margins = ([margin0] if tok != eos else []) + marg
    completion = tokenizer.decode(path, skip_special_tokens=True).strip()
    sc = task.score(completion, answer)
    conf = float("nan")
    if sc.parsed is not None:
        conf = _path_confidence(
            tokenizer, path, path_margins, sc.parsed, answer_marker if sc.used_format else None, last
        )
    return {
        "completion": completion,
        "parsed": sc.parsed,
        "correct": bool(sc.correct),
        "used_format": bool(sc.used_format),
        "confidence": conf,
        "span_found": not np.isnan(conf),
    }


def _chosen(df: pd.DataFrame) -> np.ndarray:
    """The chosen path of each prompt: the most confident; ties (and all-NaN prompts) go to the lowest branch."""
    keys = [c for c in ("variant", "task", "prompt_id") if c in df.columns]
    ranked = df.assign(_c=df["confidence"].fillna(-np.inf)).sort_values(
        [*keys, "_c", "branch"], ascending=[*([True] * len(keys)), False, True]
    )
    return df.index.isin(ranked.groupby(keys, sort=False).head(1).index)


# the task-level signature (model, tokenizer, task, *, variant, ..., max_new_tokens, batch_size) is
# shared on purpose with probes.decoding.sampling.sample_task: the two are called side by side
def cot_decode(
    model: Any,
    tokenizer: Any,
    task: Task,
    *,
    variant: str,
    k: int = 10,
    max_new_tokens: int | None = None,
    answer_marker: str | None = "auto",
    batch_size: int = 256,
) -> pd.DataFrame:
    """Every (prompt, branch) path with its completion, score and answer confidence.

    ``answer_marker``: the text after which a path in the reasoning format writes its answer;
    ``"auto"`` takes the scorer's (``>`` for ``scratchpad``, ``####`` for ``gsm8k``, else none).

    Columns: ``variant, task, prompt_id, label, split, branch, first_token, first_prob,
    completion, parsed, correct, used_format, confidence, span_found, chosen, greedy``.
    ``confidence`` is ``NaN`` and ``span_found`` false when the answer cannot be located (the
    path has no parsed answer, or it does not occur in the text); such a path is never chosen
    unless all of its prompt's paths are, then branch 0 (greedy) is, and
    :func:`cot_summary` counts it.
    """
    if k < 1:
        raise TaskError(f"k (first-token branches) must be >= 1, got {k}.")
    device = _device(model)
    budget = task.max_new_tokens if max_new_tokens is None else max_new_tokens
    marker = _MARKERS.get(task.scorer) if answer_marker == "auto" else answer_marker
    last = task.scorer in _LAST
    proto = protocol_of(model)  # a variant opened with a prompt protocol is asked its own way
    if proto is not None:
        tokenizer = proto.tokenizer
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos if eos is not None else 0)
    if proto is None:
        enc = tokenizer(list(task.prompts))["input_ids"]
    else:
        enc = [list(row) for row in proto.encode(list(task.prompts)).ids]
    vocab = len(tokenizer)
    if k > vocab:
        raise TaskError(f"k={k} exceeds the vocabulary size {vocab}.")
    top, margin0 = _first_branches(model, enc, k, pad, device, batch_size)
    branches = [
        (i, b, int(top.indices[i, b]), float(top.values[i, b])) for i in range(len(enc)) for b in range(k)
    ]
    cont, margins = greedy_continue(
        model,
        [list(enc[i]) + [tok] for i, _, tok, _ in branches],
        max_new_tokens=max(budget - 1, 0),
        eos_id=eos,
        pad_id=pad,
        batch_size=batch_size,
    )
    out = []
    for (i, b, tok, prob), new, marg in zip(branches, cont, margins, strict=True):
        ex = task.examples[i]
        path = _path_columns(
            tokenizer, task, ex.answer, tok, new, marg, margin0[i], eos=eos, answer_marker=marker, last=last
        )
        out.append(
            {
                "variant": variant,
                "task": task.name,
                "prompt_id": ex.id,
                "label": ex.label,
                "split": ex.split,
                "branch": b,
                "first_token": tokenizer.convert_ids_to_tokens(tok),
                "first_prob": prob,
                **path,
                "greedy": b == 0,
            }
        )
    df = pd.DataFrame(out)
    df["chosen"] = _chosen(df)
    return df


def cot_summary(paths: pd.DataFrame, *, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per variant (and task, when the paths carry one): greedy accuracy, CoT-decoding (chosen-path) accuracy, their difference with a
    paired bootstrap CI over prompts, the oracle (any path correct) and the format rate of chosen
    paths; ``n_no_span`` paths whose answer was not located (``n_unparsed`` of them had no parsed
    answer at all) out of ``n_paths``, and ``n_fallback`` prompts none of whose paths had one
    (their chosen path is greedy by default, not by confidence)."""
    rows = []
    by = ["variant", "task"] if "task" in paths.columns else ["variant"]
    for key, sub in paths.groupby(by, sort=False):
        variant = key[0]
        g = sub[sub["greedy"]].set_index("prompt_id")["correct"].astype(float)
        c = sub[sub["chosen"]].set_index("prompt_id")["correct"].astype(float).reindex(g.index)
        anyc = sub.groupby("prompt_id", sort=False)["correct"].any().reindex(g.index).astype(float)
        fmt = sub[sub["chosen"]].set_index("prompt_id")["used_format"].astype(float).reindex(g.index)
        G, C = g.to_numpy(), c.to_numpy()

        def gain(i: np.ndarray, G: np.ndarray = G, C: np.ndarray = C) -> float:
            return float(C[i].mean() - G[i].mean())

        d_lo, d_hi = bootstrap_ci(np.arange(len(G)), gain, n_resamples=n_resamples, seed=seed)
        c_lo, c_hi = bootstrap_ci(C, n_resamples=n_resamples, seed=seed)
        g_lo, g_hi = bootstrap_ci(G, n_resamples=n_resamples, seed=seed)
        no_span = ~sub["span_found"].astype(bool)
        fallback = no_span.groupby(sub["prompt_id"], sort=False).all()
        rows.append(
            {
                "variant": variant,
                **({"task": key[1]} if len(by) > 1 else {}),
                "greedy_acc": float(G.mean()),
                "greedy_lo": g_lo,
                "greedy_hi": g_hi,
                "cot_acc": float(C.mean()),
                "cot_lo": c_lo,
                "cot_hi": c_hi,
                "diff": float(C.mean() - G.mean()),
                "diff_lo": d_lo,
                "diff_hi": d_hi,
                "oracle_acc": float(anyc.mean()),
                "chosen_format_rate": float(fmt.mean()),
                "k": int(sub["branch"].max()) + 1,
                "n_prompts": len(G),
                "n_paths": len(sub),
                "n_no_span": int(no_span.sum()),
                "n_unparsed": int(sub["parsed"].isna().sum()),
                "n_fallback": int(fallback.sum()),
            }
        )
    return pd.DataFrame(rows)
