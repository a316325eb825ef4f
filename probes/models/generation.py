"""Batched generation with the KV cache, optionally under an intervention: the kit's one ``generate``.

Probes never write to a model; an intervention (e.g. a steering vector) is passed in as
a callable ``intervention(model, batch) -> context manager`` by the caller. Batches are
left-padded so every row's next token sits in the last column; ``group_by_length=True``
batches prompts of one token length together instead, so no batch holds padding.

The model is a TransformerLens ``TransformerBridge`` (what :meth:`ModelFamily.open` gives) or
a plain ``transformers`` causal LM (the organism's training and evaluation use one); each is
driven through its own ``generate``.

    completions = generate(model, tokenizer, ["N 1 0 1 ="], max_new_tokens=20)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from probes.errors import TaskError
from probes.models.tokens import Batch, encode, pad_token_id

__all__ = ["generate", "Intervention"]

#: ``intervention(model, batch)`` returns a context manager active during one generate call.
Intervention = Callable[[Any, Batch], AbstractContextManager[Any]]


@dataclass(frozen=True)
class _Decoding:
    """How one batch is generated: the sampling settings and the special token ids."""

    max_new_tokens: int
    do_sample: bool
    temperature: float
    top_p: float | None
    use_cache: bool
    eos: int | None
    pad: int


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
    prefix: str | None = None,
    group_by_length: bool = False,
    stop_ids: Collection[int] | None = None,
    decode: Callable[[list[int]], str] | None = None,
) -> list[str]:
    """Complete each prompt; return the continuations, in the order of ``prompts``.

    Greedy unless ``do_sample``. With ``seed`` set, sampling is reproducible for the same
    batch composition: the models' ``generate`` draw from the global torch RNG, so it is
    seeded inside :func:`torch.random.fork_rng` and the caller's RNG state is restored on
    exit. Without ``seed``, sampling draws from the caller's global RNG.

    Args:
        prefix: text prefilled after each prompt (after a space, stripped) and kept at the
            start of each continuation (``"# ..."``: the reasoning format forced).
        group_by_length: batch prompts of one token length together (lengths in order of
            first appearance, ``batch_size`` at a time), so no batch is padded.
        stop_ids: a continuation ends before the first of these ids (default: the eos id).
        decode: ids -> text of one continuation (default: ``tokenizer.decode`` without
            special tokens, stripped).
        intervention: ``intervention(model, batch)`` wraps each batched generate call.
    """
    from tqdm.auto import tqdm

    if max_new_tokens < 1:
        raise TaskError(f"max_new_tokens must be >= 1, got {max_new_tokens}.")
    if batch_size < 1:
        raise TaskError(f"batch_size must be >= 1, got {batch_size}.")
    eos = tokenizer.eos_token_id
    how = _Decoding(max_new_tokens, do_sample, temperature, top_p, use_cache, eos, pad_token_id(tokenizer))
    stops = set(stop_ids) if stop_ids is not None else ({eos} if eos is not None else set())
    head = prefix.strip() if prefix else ""
    texts = [p + " " + head for p in prompts] if head else list(prompts)
    device = next(model.parameters()).device
    out: list[str] = [""] * len(texts)
    with _seeded(seed, device):
        for rows in tqdm(
            _plan(tokenizer, texts, batch_size, group_by_length), desc="generate", disable=not progress
        ):
            batch = encode(tokenizer, [texts[i] for i in rows], padding_side="left", device=device)
            ctx = intervention(model, batch) if intervention is not None else nullcontext()
            with ctx, torch.inference_mode():
                new = _generate_batch(model, batch, how)
            for i, ids in zip(rows, new.tolist(), strict=True):
                text = _decode(tokenizer, _until(ids, stops), decode)
                out[i] = (head + " " + text).strip() if head else text
    return out


@contextmanager
def _seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Seed the global RNG for the block and give the caller's state back on exit.

    TransformerLens's and transformers' ``generate`` sample from the global torch RNG (they
    take no ``torch.Generator``), so the seed is set inside ``fork_rng``. A model on the CPU
    draws from the CPU generator only, which alone is seeded (a CUDA generator seeded here
    would stay seeded, lazily, after the block); a model on a GPU gets every generator seeded,
    and every GPU's state is forked and restored.
    """
    if seed is None:
        yield
        return
    cuda = device.type == "cuda"
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count())) if cuda else []):
        if cuda:
            torch.manual_seed(seed)
        else:
            torch.random.default_generator.manual_seed(seed)
        yield


def _plan(tokenizer: Any, texts: Sequence[str], batch_size: int, group_by_length: bool) -> list[list[int]]:
    """Indices of ``texts`` per batch: consecutive runs, or runs within each token length."""
    if not group_by_length:
        return [list(range(b0, min(len(texts), b0 + batch_size))) for b0 in range(0, len(texts), batch_size)]
    by_len: dict[int, list[int]] = {}
    for i, ids in enumerate(tokenizer(list(texts))["input_ids"]):
        by_len.setdefault(len(ids), []).append(i)
    return [rows[s : s + batch_size] for rows in by_len.values() for s in range(0, len(rows), batch_size)]


def _generate_batch(model: Any, batch: Batch, how: _Decoding) -> torch.Tensor:
    """The new token ids of one batch ``[batch, new]``, through the model's own ``generate``."""
    width = batch.input_ids.shape[1]
    if _is_transformers_model(model):
        toks = model.generate(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            max_new_tokens=how.max_new_tokens,
            do_sample=how.do_sample,
            temperature=how.temperature if how.do_sample else None,
            top_k=None,
            top_p=how.top_p if how.do_sample else None,
            pad_token_id=how.pad,
            eos_token_id=how.eos,
            use_cache=how.use_cache,
        )
        return toks[:, width:]
    kwargs: dict[str, Any] = {}
    if how.do_sample:
        kwargs.update(temperature=how.temperature)
        if how.top_p is not None:
            kwargs["top_p"] = how.top_p
    toks = model.generate(
        batch.input_ids,
        attention_mask=batch.attention_mask,
        max_new_tokens=how.max_new_tokens,
        do_sample=how.do_sample,
        stop_at_eos=how.eos is not None,
        eos_token_id=how.eos,
        use_past_kv_cache=how.use_cache,
        return_type="tokens",
        verbose=False,
        **kwargs,
    )
    return toks[:, width:]


def _is_transformers_model(model: Any) -> bool:
    """A plain ``transformers`` model (its ``generate`` keywords), not a TransformerLens bridge."""
    import transformers

    return isinstance(model, transformers.PreTrainedModel)


def _until(ids: list[int], stops: Collection[int]) -> list[int]:
    for k, t in enumerate(ids):
        if t in stops:
            return ids[:k]
    return ids


def _decode(tokenizer: Any, ids: list[int], decode: Callable[[list[int]], str] | None) -> str:
    if decode is not None:
        return decode(ids)
    return str(tokenizer.decode(ids, skip_special_tokens=True)).strip()
