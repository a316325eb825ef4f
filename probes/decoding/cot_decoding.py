"""CoT-decoding: branch on the top-k first tokens, continue greedily, pick the most confident path.

docs/measures.md, "Decoding elicitation" (Wang & Zhou 2024, "Chain-of-Thought Reasoning Without
Prompting"). For each prompt the ``k`` most likely first tokens start ``k`` paths, each
continued greedily. A path's confidence is the mean over its *answer tokens* of
``p(top1) − p(top2)`` at the step that produced the token. The chosen path is the most
confident one; branch 0 is plain greedy decoding.

Answer tokens are found through the task scorer's parse: when the completion uses the
reasoning format, the first occurrence of the parsed answer's tokens after ``answer_marker``
(organism: ``>``); otherwise their first occurrence in the completion (a direct answer).

    >>> paths = cot_decode(model, tok, task, variant="base", k=5)   # doctest: +SKIP
    >>> cot_summary(paths)                                           # doctest: +SKIP

Glossary: ``batch`` rows are (prompt, branch) paths; ``vocab`` the vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int

from probes.data.tasks import Task
from probes.errors import TaskError
from probes.models.protocol import protocol_of
from probes.stats import bootstrap_ci

__all__ = ["greedy_continue", "answer_token_span", "cot_decode", "cot_summary"]


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
    ``p(top1) − p(top2)`` at the step that produced it (stops at ``eos_id``, which is dropped)."""
    device = _device(model)
    toks: list[list[int]] = [[] for _ in rows]
    margins: list[list[float]] = [[] for _ in rows]
    for b0 in range(0, len(rows), batch_size):
        live = list(range(b0, min(b0 + batch_size, len(rows))))
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


def answer_token_span(
    tokens: Sequence[str], answer_tokens: Sequence[str], marker: str | None
) -> tuple[int, int] | None:
    """``(start, stop)`` of the answer tokens in a path's tokens: first occurrence after
    ``marker`` when the marker is present, else the first occurrence anywhere; ``None`` if absent."""
    m = len(answer_tokens)
    if m == 0:
        return None
    start = 0
    if marker is not None and marker in tokens:
        start = list(tokens).index(marker) + 1
    for s in range(start, len(tokens) - m + 1):
        if list(tokens[s : s + m]) == list(answer_tokens):
            return (s, s + m)
    return None


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
    tokenizer: Any, path: list[int], margins: list[float], parsed: str, marker: str | None
) -> float:
    """Mean margin over the answer tokens of ``path`` (``NaN`` when the answer is not found)."""
    ans = tokenizer.convert_ids_to_tokens(tokenizer(parsed, add_special_tokens=False)["input_ids"])
    span = answer_token_span(tokenizer.convert_ids_to_tokens(path), ans, marker)
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
            tokenizer, path, path_margins, sc.parsed, answer_marker if sc.used_format else None
        )
    return {
        "completion": completion,
        "parsed": sc.parsed,
        "correct": bool(sc.correct),
        "used_format": bool(sc.used_format),
        "confidence": conf,
    }


def _chosen(df: pd.DataFrame) -> np.ndarray:
    """The chosen path of each prompt: the most confident; ties (and all-NaN prompts) go to the lowest branch."""
    ranked = df.assign(_c=df["confidence"].fillna(-np.inf)).sort_values(
        ["variant", "prompt_id", "_c", "branch"], ascending=[True, True, False, True]
    )
    return df.index.isin(ranked.groupby(["variant", "prompt_id"], sort=False).head(1).index)


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
    answer_marker: str | None = ">",
    batch_size: int = 256,
) -> pd.DataFrame:
    """Every (prompt, branch) path with its completion, score and answer confidence.

    Columns: ``variant, task, prompt_id, label, split, branch, first_token, first_prob,
    completion, parsed, correct, used_format, confidence, chosen, greedy``. ``confidence`` is
    ``NaN`` when the answer cannot be located (such a path is never chosen unless all are NaN,
    then branch 0 is).
    """
    if k < 1:
        raise TaskError(f"k (first-token branches) must be >= 1, got {k}.")
    device = _device(model)
    budget = task.max_new_tokens if max_new_tokens is None else max_new_tokens
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
            tokenizer, task, ex.answer, tok, new, marg, margin0[i], eos=eos, answer_marker=answer_marker
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
    """Per variant: greedy accuracy, CoT-decoding (chosen-path) accuracy, their difference with a
    paired bootstrap CI over prompts, the oracle (any path correct) and the format rate of chosen paths."""
    rows = []
    for variant, sub in paths.groupby("variant", sort=False):
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
        rows.append(
            {
                "variant": variant,
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
            }
        )
    return pd.DataFrame(rows)
