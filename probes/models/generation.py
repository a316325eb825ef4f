"""Batched generation with the KV cache, optionally under an intervention.

Probes never write to a model; an intervention (e.g. a steering vector) is passed in as
a callable ``intervention(model, batch) -> context manager`` by the caller. Generation is
left-padded so every row's next token sits in the last column.

    completions = generate(model, tokenizer, ["N 1 0 1 ="], max_new_tokens=20)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from probes.errors import TaskError
from probes.models.tokens import Batch, encode

__all__ = ["generate", "Intervention"]

#: ``intervention(model, batch)`` returns a context manager active during one generate call.
Intervention = Callable[[Any, Batch], AbstractContextManager[Any]]


def generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float | None = None,
    seed: int | None = None,
    batch_size: int = 64,
    intervention: Intervention | None = None,
    use_cache: bool = True,
    progress: bool = False,
) -> list[str]:
    """Complete each prompt; return the decoded continuations (special tokens and padding removed).

    Greedy unless ``do_sample``. With ``seed`` set, sampling is reproducible for the same
    batch composition. ``intervention(model, batch)`` wraps each batched generate call.
    """
    from tqdm.auto import tqdm

    if max_new_tokens < 1:
        raise TaskError(f"max_new_tokens must be >= 1, got {max_new_tokens}.")
    if seed is not None:
        torch.manual_seed(seed)
    device = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    out: list[str] = []
    starts = range(0, len(prompts), batch_size)
    for b0 in tqdm(starts, desc="generate", disable=not progress):
        batch = encode(tokenizer, prompts[b0 : b0 + batch_size], padding_side="left", device=device)
        ctx = intervention(model, batch) if intervention is not None else nullcontext()
        kwargs: dict[str, Any] = {}
        if do_sample:
            kwargs.update(temperature=temperature)
            if top_p is not None:
                kwargs["top_p"] = top_p
        with ctx, torch.inference_mode():
            toks = model.generate(
                batch.input_ids,
                attention_mask=batch.attention_mask,
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                stop_at_eos=eos is not None,
                eos_token_id=eos,
                use_past_kv_cache=use_cache,
                return_type="tokens",
                verbose=False,
                **kwargs,
            )
        new = toks[:, batch.input_ids.shape[1] :].tolist()
        for row in new:
            if eos is not None and eos in row:
                row = row[: row.index(eos)]
            out.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    return out
