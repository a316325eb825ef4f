"""Batched generation with the KV cache, optionally under an intervention: the kit's one ``generate``.

Probes never write to a model; an intervention (e.g. a steering vector) is passed in as
a callable ``intervention(model, batch) -> context manager`` by the caller. Batches are
left-padded so every row's next token sits in the last column; ``group_by_length=True``
batches prompts of one token length together instead, so no batch holds padding.

The model is a TransformerLens ``TransformerBridge`` (what :meth:`ModelFamily.open` gives) or
a plain ``transformers`` causal LM (the organism's training and evaluation use one); each is
driven through its own ``generate``.

A model opened from a family whose variant has a prompt protocol (:mod:`probes.models.protocol`)
carries it: each prompt is then rendered (chat template, system prompt, exemplars, prefill),
tokenised with the variant's own tokenizer and BOS policy, and its completion ends at the
variant's EOS ids or first stop string (cut before it). A model without one (the organism's)
gets its prompts exactly as written.

    completions = generate(model, tokenizer, ["N 1 0 1 ="], max_new_tokens=20)

:func:`generate_samples` draws ``n`` samples of each prompt from *one* prompt forward: the
prompts' KV cache is computed once and repeated ``n`` times, and the kit samples every row from
the model's logits with that row's own ``torch.Generator``, so a row's sample depends on its
prompt and its seed only, never on the batch it was drawn in:

    samples = generate_samples(model, tokenizer, ["N 1 0 1 ="], seeds=[[0, 1, 2, 3]])  # 4 samples
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float, Int

from probes.errors import TaskError
from probes.models.protocol import Encoded, PromptProtocol, protocol_of
from probes.models.tokens import Batch, encode, pad_token_id
from probes.models.unbridged import unbridged

__all__ = ["generate", "generate_samples", "sample_token", "Intervention", "FINISH"]

#: Why a completion ended: a stop id or stop string, or the token budget ran out without one.
FINISH = ("stop", "budget")

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
    eos: int | list[int] | None
    pad: int
    stop_strings: tuple[str, ...] = ()
    tokenizer: Any = None


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
    protocol: PromptProtocol | None = None,
    finish: list[str] | None = None,
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
        protocol: how the prompts are rendered and tokenised (default: the protocol the model
            was opened with, see :func:`probes.models.protocol.protocol_of`; none: as written).
            With a protocol, its tokenizer (the variant's own) is used instead of ``tokenizer``,
            and ``prefix`` is written after the rendered prompt (after its prefill).
        finish: a list to fill with each row's :data:`FINISH` reason (``"budget"``: the row used
            all ``max_new_tokens`` without a stop; ``finish.count("budget")`` counts them).
    """
    from tqdm.auto import tqdm

    if max_new_tokens < 1:
        raise TaskError(f"max_new_tokens must be >= 1, got {max_new_tokens}.")
    if batch_size < 1:
        raise TaskError(f"batch_size must be >= 1, got {batch_size}.")
    proto = protocol if protocol is not None else protocol_of(model)
    if proto is not None:
        proto = proto if proto.tokenizer is not None else proto.with_tokenizer(tokenizer)
        tokenizer = proto.tokenizer
    how = _decoding(tokenizer, proto, max_new_tokens, do_sample, temperature, top_p, use_cache)
    eos = tokenizer.eos_token_id
    default_stops = set(proto.stop_ids()) if proto is not None else ({eos} if eos is not None else set())
    stops = set(stop_ids) if stop_ids is not None else default_stops
    head = prefix.strip() if prefix else ""
    texts = [p + " " + head for p in prompts] if head else list(prompts)
    enc = proto.encode(prompts, [head] * len(prompts) if head else None) if proto is not None else None
    device = next(model.parameters()).device
    out: list[str] = [""] * len(texts)
    ends: list[str] = ["stop"] * len(texts)
    with _seeded(seed, device):
        for rows in tqdm(
            _plan(tokenizer, texts, batch_size, group_by_length, enc), desc="generate", disable=not progress
        ):
            batch = _batch(tokenizer, texts, rows, enc, device)
            ctx = intervention(model, batch) if intervention is not None else nullcontext()
            with ctx, torch.inference_mode():
                new = _generate_batch(model, batch, how)
            for i, ids in zip(rows, new.tolist(), strict=True):
                text, ends[i] = _finish(tokenizer, ids, stops, decode, proto, max_new_tokens)
                out[i] = (head + " " + text).strip() if head else text
    if finish is not None:
        finish[:] = ends
    return out


def _finish(
    tokenizer: Any,
    ids: list[int],
    stops: Collection[int],
    decode: Callable[[list[int]], str] | None,
    proto: PromptProtocol | None,
    budget: int,
) -> tuple[str, str]:
    """One row's text (ended before its first stop id, and its first stop string under a
    protocol) and its :data:`FINISH` reason."""
    kept = _until(ids, stops)
    text = _decode(tokenizer, kept, decode)
    hit = len(kept) < len(ids)
    if proto is not None:
        text, cut = proto.cut(text)
        text, hit = text.strip(), hit or cut
    return text, "stop" if hit or len(ids) < budget else "budget"


def _decoding(
    tokenizer: Any,
    proto: PromptProtocol | None,
    max_new_tokens: int,
    do_sample: bool,
    temperature: float,
    top_p: float | None,
    use_cache: bool,
) -> _Decoding:
    """The decoding settings; a protocol adds its EOS ids and stop strings."""
    pad = pad_token_id(tokenizer)
    if proto is None:
        eos = tokenizer.eos_token_id
        return _Decoding(max_new_tokens, do_sample, temperature, top_p, use_cache, eos, pad)
    ids = list(proto.stop_ids())
    eos_arg: int | list[int] | None = (ids[0] if len(ids) == 1 else ids) if ids else None
    return _Decoding(
        max_new_tokens, do_sample, temperature, top_p, use_cache, eos_arg, pad, proto.text_stops(), tokenizer
    )


def _batch(
    tokenizer: Any, texts: Sequence[str], rows: Sequence[int], enc: Encoded | None, device: torch.device
) -> Batch:
    """The left-padded batch of ``rows``: encoded as written, or from the protocol's encoding."""
    if enc is None:
        return encode(tokenizer, [texts[i] for i in rows], padding_side="left", device=device)
    sub = Encoded(
        tuple(enc.ids[i] for i in rows), tuple(enc.tokens[i] for i in rows), tuple(enc.roles[i] for i in rows)
    )
    return sub.batch(pad_token_id(tokenizer), padding_side="left", device=device)


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


def _plan(
    tokenizer: Any, texts: Sequence[str], batch_size: int, group_by_length: bool, enc: Encoded | None = None
) -> list[list[int]]:
    """Indices of ``texts`` per batch: consecutive runs, or runs within each token length
    (of ``enc``, the protocol's encoding, when given)."""
    if not group_by_length:
        return [list(range(b0, min(len(texts), b0 + batch_size))) for b0 in range(0, len(texts), batch_size)]
    by_len: dict[int, list[int]] = {}
    rows = enc.ids if enc is not None else tokenizer(list(texts))["input_ids"]
    for i, ids in enumerate(rows):
        by_len.setdefault(len(ids), []).append(i)
    return [rows[s : s + batch_size] for rows in by_len.values() for s in range(0, len(rows), batch_size)]


def _generate_batch(model: Any, batch: Batch, how: _Decoding) -> torch.Tensor:
    """The new token ids of one batch ``[batch, new]``, through the model's own ``generate``.

    A TransformerBridge whose active hooks all sit on the residual stream generates through its
    own ``transformers`` modules (:func:`probes.models.unbridged.unbridged`: the same hook
    functions run, the Bridge's wrapper components do not); any other hook keeps the Bridge's path.
    """
    if not _is_transformers_model(model):
        with unbridged(model) as hf:
            if hf is not None:
                return _generate_transformers(hf, batch, how)
        return _generate_bridge(model, batch, how)
    return _generate_transformers(model, batch, how)


def _generate_transformers(model: Any, batch: Batch, how: _Decoding) -> torch.Tensor:
    """The new token ids of one batch through ``transformers``' ``generate``."""
    width = batch.input_ids.shape[1]
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
        **_stop_kwargs(how, width),
    )
    return toks[:, width:]


def _generate_bridge(model: Any, batch: Batch, how: _Decoding) -> torch.Tensor:
    """The new token ids of one batch through the TransformerBridge's ``generate``."""
    width = batch.input_ids.shape[1]
    kwargs: dict[str, Any] = _stop_kwargs(how, width)
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


def _stop_kwargs(how: _Decoding, width: int) -> dict[str, Any]:
    """``stopping_criteria`` ending each row once its generated text holds a stop string (both
    model kinds take a transformers criterion list); nothing without stop strings."""
    if not how.stop_strings:
        return {}
    from transformers import StoppingCriteria, StoppingCriteriaList

    class StopText(StoppingCriteria):  # type: ignore[misc]
        """Row ``i`` is done once the text of its last few generated tokens (after the prompt's
        ``width`` columns) contains a stop string. Written here rather than transformers'
        ``StopStringCriteria``, which assumes a BPE-style vocabulary."""

        def __init__(self, tokenizer: Any, stops: Sequence[str]) -> None:
            self.tokenizer, self.stops = tokenizer, tuple(stops)
            self.tail = max(len(s) for s in stops) + 2  # tokens: each decodes to >= 1 character

        def __call__(self, input_ids: torch.Tensor, scores: Any = None, **kwargs: Any) -> torch.Tensor:
            done = [
                any(s in self.tokenizer.decode(row[-self.tail :].tolist()) for s in self.stops)
                for row in input_ids[:, width:]
            ]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return {"stopping_criteria": StoppingCriteriaList([StopText(how.tokenizer, how.stop_strings)])}


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


def sample_token(
    logits: Float[torch.Tensor, "batch vocab"],
    uniforms: Float[torch.Tensor, " batch"],
    *,
    temperature: float = 1.0,
    top_p: float | None = None,
) -> Int[torch.Tensor, " batch"]:
    """One token per row from ``softmax(logits / temperature)`` (restricted to the smallest set of
    most likely tokens whose mass reaches ``top_p``, renormalised), by inverse transform: the
    first token whose cumulative probability (float64) exceeds the row's uniform ``u`` in [0, 1).
    """
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    order = None
    if top_p is not None and top_p < 1.0:
        probs, order = probs.sort(dim=-1, descending=True)
        before = probs.cumsum(-1) - probs  # mass of the more likely tokens
        probs = probs.masked_fill(before >= top_p, 0.0)  # the first token always stays
        probs = probs / probs.sum(-1, keepdim=True)
    cdf = probs.cumsum(-1)
    u = uniforms.double().to(cdf.device).unsqueeze(-1) * cdf[:, -1:]  # exact total, despite rounding
    idx = torch.searchsorted(cdf, u, right=True).clamp_max(cdf.shape[-1] - 1).squeeze(-1)
    return idx if order is None else order.gather(-1, idx.unsqueeze(-1)).squeeze(-1)


def generate_samples(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    seeds: Sequence[Sequence[int]],
    max_new_tokens: int = 32,
    temperature: float = 1.0,
    top_p: float | None = None,
    batch_size: int = 256,
    intervention: Intervention | None = None,
    progress: bool = False,
    prefix: str | None = None,
    protocol: PromptProtocol | None = None,
    finish: list[list[str]] | None = None,
) -> list[list[str]]:
    """``len(seeds[i])`` sampled completions of each prompt ``i``, from one forward of the prompt.

    The prompts (rendered and tokenised as :func:`generate` does, protocol included) run once,
    ``batch_size // n`` at a time (``n``: the most samples of any prompt); their KV cache and
    next-token logits are repeated for each sample, and every decoding step feeds one token per
    (prompt, sample) row. Row ``(i, j)`` draws its uniforms from ``torch.Generator().manual_seed(
    seeds[i][j])`` (one per step, CPU) and picks its tokens with :func:`sample_token`, so its
    completion is the same whichever prompts and samples share its batch (up to the floating-point
    rounding of the model's logits in a batch of another shape), and equals sampling the prompt
    alone with that seed. Stops, stop strings and the returned text follow :func:`generate`;
    ``finish[i][j]`` is the :data:`FINISH` reason of row ``(i, j)``.

    ``intervention(model, batch)`` wraps each prompt batch's prefill and decoding (``batch``: the
    prompts' batch, whose rows the decoding steps repeat); :func:`steering.apply.apply` steers
    such an expanded decoding as it steers plain KV-cached generation.

    The model is driven through its Hugging Face module (a ``TransformerBridge``'s
    ``original_model``, whose modules carry the bridge's hooks, or a plain ``transformers`` model;
    a Bridge with residual-stream hooks only runs on its own ``transformers`` modules, see
    :mod:`probes.models.unbridged`),
    as ``model(input_ids, attention_mask, position_ids, past_key_values)`` with the cache the model
    makes on the prefill, repeated by its ``batch_repeat_interleave``.
    """
    from tqdm.auto import tqdm

    if max_new_tokens < 1:
        raise TaskError(f"max_new_tokens must be >= 1, got {max_new_tokens}.")
    if batch_size < 1:
        raise TaskError(f"batch_size must be >= 1, got {batch_size}.")
    if temperature <= 0:
        raise TaskError(f"temperature must be > 0, got {temperature}; use generate() for greedy decoding.")
    if top_p is not None and not 0 < top_p <= 1:
        raise TaskError(f"top_p must be in (0, 1], got {top_p}.")
    if len(seeds) != len(prompts):
        raise TaskError(
            f"seeds holds {len(seeds)} lists for {len(prompts)} prompts; give one list of sample seeds per prompt."
        )
    proto = protocol if protocol is not None else protocol_of(model)
    if proto is not None:
        proto = proto if proto.tokenizer is not None else proto.with_tokenizer(tokenizer)
        tokenizer = proto.tokenizer
    how = _decoding(tokenizer, proto, max_new_tokens, True, temperature, top_p, True)
    eos = tokenizer.eos_token_id
    stops = set(proto.stop_ids()) if proto is not None else ({eos} if eos is not None else set())
    head = prefix.strip() if prefix else ""
    texts = [p + " " + head for p in prompts] if head else list(prompts)
    enc = proto.encode(prompts, [head] * len(prompts) if head else None) if proto is not None else None
    hf = _hf_module(model)
    device = next(model.parameters()).device
    per = max([len(s) for s in seeds] + [1])
    step = max(1, batch_size // per)
    out: list[list[str]] = [[] for _ in prompts]
    ends: list[list[str]] = [[] for _ in prompts]
    for rows in tqdm(_plan(tokenizer, texts, step, False, enc), desc="sample", disable=not progress):
        rows = [i for i in rows if len(seeds[i])]
        if not rows:
            continue
        batch = _batch(tokenizer, texts, rows, enc, device)
        ctx = intervention(model, batch) if intervention is not None else nullcontext()
        with ctx, torch.inference_mode(), unbridged(model) as fast:
            new = _sample_batch(
                fast if fast is not None else hf, batch, [list(seeds[i]) for i in rows], how, stops
            )
        for i, row_ids in zip(rows, new, strict=True):
            for ids in row_ids:
                text, why = _finish(tokenizer, ids, stops, None, proto, max_new_tokens)
                out[i].append((head + " " + text).strip() if head else text)
                ends[i].append(why)
    if finish is not None:
        finish[:] = ends
    return out


def _hf_module(model: Any) -> Any:
    """The Hugging Face causal LM that runs ``model``'s forward (a bridge's hooks live inside it)."""
    if _is_transformers_model(model):
        return model
    inner = getattr(model, "original_model", None)
    if inner is None:
        raise TaskError(
            f"generate_samples drives a transformers model or a TransformerBridge (its original_model); "
            f"got {type(model).__name__}. Open the variant with family.open(variant)."
        )
    return inner


def _sample_batch(
    hf: Any, batch: Batch, seeds: list[list[int]], how: _Decoding, stops: Collection[int]
) -> list[list[list[int]]]:
    """New token ids of every (prompt, sample) row of one prompt batch: ``[prompt][sample][new]``.

    One prefill of the left-padded prompts; the cache, mask and last logits are then repeated
    row-wise so that row ``r`` of the expanded batch is prompt ``r // n``'s sample ``r % n`` (a
    prompt with fewer than ``n`` seeds has its extra rows decoded and dropped).
    """
    n = max(len(s) for s in seeds)
    mask = batch.attention_mask
    cache, logits, last = cached_prefill(hf, batch.input_ids, mask)
    logits = logits.repeat_interleave(n, dim=0)
    if n > 1:
        cache.batch_repeat_interleave(n)
    mask = mask.repeat_interleave(n, dim=0)
    last = last.repeat_interleave(n, dim=0)
    # each row's uniforms, one per step, from its own generator (CPU: the same on every device)
    flat = [s[j] if j < len(s) else 0 for s in seeds for j in range(n)]
    uniforms = torch.stack(
        [
            torch.rand(
                how.max_new_tokens, generator=torch.Generator().manual_seed(int(sd)), dtype=torch.float64
            )
            for sd in flat
        ]
    )
    stop_t = torch.tensor(sorted(stops), dtype=torch.long, device=logits.device)
    done = torch.zeros(len(flat), dtype=torch.bool, device=logits.device)
    toks: list[torch.Tensor] = []
    for t in range(how.max_new_tokens):
        nxt = sample_token(logits, uniforms[:, t], temperature=how.temperature, top_p=how.top_p).to(
            logits.device
        )
        nxt = torch.where(done, torch.full_like(nxt, how.pad), nxt)
        toks.append(nxt)
        if len(stop_t):
            done |= torch.isin(nxt, stop_t)
        if how.stop_strings:
            done |= _stopped_by_text(how, toks, done)
        if bool(done.all()) or t == how.max_new_tokens - 1:
            break
        mask, last, cache, logits = cached_step(hf, nxt, mask, last, cache)
    ids = torch.stack(toks, dim=1).tolist()
    return [[ids[r * n + j] for j in range(len(s))] for r, s in enumerate(seeds)]


def cached_prefill(
    hf: Any, input_ids: torch.Tensor, mask: torch.Tensor
) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """One forward of left-padded rows through a Hugging Face causal LM with its KV cache:
    ``(cache, logits after each row's last token [batch, vocab], that token's position [batch, 1])``.

    Positions count real tokens only (a left-padded row starts at 0); the last position's logits
    are the only ones computed where the model can (a ``[batch, pos, vocab]`` tensor of a real
    vocabulary is gigabytes), as transformers' own generate does. The cache is the model's own type
    (dynamic, or sliding-window layers)."""
    pos = (mask.long().cumsum(-1) - 1).clamp_min(0)
    keep = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(hf.forward).parameters else {}
    out = hf(input_ids=input_ids, attention_mask=mask, position_ids=pos, use_cache=True, **keep)
    return out.past_key_values, out.logits[:, -1, :], pos[:, -1:]


def cached_step(
    hf: Any, nxt: torch.Tensor, mask: torch.Tensor, last: torch.Tensor, cache: Any
) -> tuple[torch.Tensor, torch.Tensor, Any, torch.Tensor]:
    """Feed one token per row (``nxt [batch]``) after :func:`cached_prefill`: returns the grown
    ``(mask, last position, cache, next logits [batch, vocab])``."""
    mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    last = last + 1
    out = hf(
        input_ids=nxt[:, None], attention_mask=mask, position_ids=last, past_key_values=cache, use_cache=True
    )
    return mask, last, out.past_key_values, out.logits[:, -1, :]


def _stopped_by_text(how: _Decoding, toks: list[torch.Tensor], done: torch.Tensor) -> torch.Tensor:
    """Rows whose last few generated tokens decode to text holding a stop string (as :func:`generate`'s criterion)."""
    tail = max(len(s) for s in how.stop_strings) + 2
    recent = torch.stack(toks[-tail:], dim=1).tolist()
    hit = [
        (not bool(d)) and any(s in how.tokenizer.decode(row) for s in how.stop_strings)
        for row, d in zip(recent, done.tolist(), strict=True)
    ]
    return torch.tensor(hit, dtype=torch.bool, device=done.device)
