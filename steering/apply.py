"""Adding a steering vector to a TransformerLens model, exactly where asked.

    with apply(model, vector, layers=[1], alpha=2.0, positions="match:="):
        logits = model(tokens)                     # plain forward
        out = model.generate(tokens, ...)          # KV-cached generation, left-padded batches

The hook adds ``alpha * v[layer]`` to the residual stream at ``vector.site`` of each layer,
at these positions (resolved from the token ids of each forward call, so padding and the
KV cache are handled):

- ``"all"``: every real token, prompt and generated;
- ``"prompt"``: every real prompt token; ``"generated"``: generated tokens only;
- ``"last"``: the last prompt token;
- ``"match:TOKEN[:OFFSET:WINDOW]"``: a window relative to the first occurrence of TOKEN in
  the prompt (``"match:="`` is the organism's decision token).

Alpha units: ``units="vector"`` (default) adds ``alpha`` times the stored vector;
``units="resid_norm"`` adds ``alpha`` times the layer's mean residual norm along the unit
direction, so alpha = 1 is a step as long as a typical residual vector. ``alpha`` may be a
tensor with one value per batch row (one generate call covers several strengths).

Hooks exist only inside the context and are removed in ``finally``, also on error.

The context yields a :class:`SteerRecord`, the manipulation check of the call: how many positions
of each row were steered (a row whose decision token is missing gets 0 and is *not* steered), and,
with ``record_logits=True``, the log-probabilities of the next token after each row's prompt as
the steered model gave them (compare with the unsteered ones for the KL the push caused):

    with apply(model, vector, layers=[1], alpha=2.0, positions="match:=", record_logits=True) as rec:
        out = model.generate(tokens, ...)
    rec.positions      # tensor [batch]: steered positions per row (0: the hook never fired there)
    rec.first_logprobs # tensor [batch, vocab]: log p(next token | prompt) under the push
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from probes.errors import ElicitError
from probes.models.hooks import validate_hooks
from probes.models.positions import Match, parse_position
from steering.vector import SteeringVector

__all__ = ["apply", "SteerRecord", "STEER_POSITIONS", "steer_positions_key"]

STEER_POSITIONS = ("all", "prompt", "generated", "last")
UNITS = ("vector", "resid_norm")


def steer_positions_key(positions: str) -> str:
    """Validate a steering position spec and return its canonical string."""
    if positions in STEER_POSITIONS:
        return positions
    try:
        pos = parse_position(positions)
    except ElicitError:
        pos = None
    if not isinstance(pos, Match):
        raise ElicitError(
            f"Unknown steering position {positions!r}. Valid: {list(STEER_POSITIONS)} or "
            "'match:TOKEN[:OFFSET:WINDOW]' (e.g. 'match:=')."
        )
    return pos.key


def _token_ids(tokenizer: Any, token: str) -> set[int]:
    ids = set()
    for cand in (token, "Ġ" + token, "▁" + token):
        i = tokenizer.convert_tokens_to_ids(cand)
        if i is not None and i != tokenizer.unk_token_id:
            ids.add(int(i))
    if not ids:
        raise ElicitError(
            f"Token {token!r} is not a single token of this tokenizer; choose another match token."
        )
    return ids


@dataclass
class _State:
    """Tracks which absolute positions a forward call covers (prompt pass vs decode steps)."""

    prompt: torch.Tensor | None = None  # token ids of the prompt pass
    seen: int = 0


@dataclass
class SteerRecord:
    """What one :func:`apply` context did, per batch row (the manipulation check).

    ``positions``: the number of positions steered in each row, summed over every forward call
    of the context (prompt pass and decode steps), ``None`` before the first call. When the
    decoding repeats each prompt row for several samples (an expanded KV cache,
    :func:`probes.models.generation.generate_samples`), a prompt row sums its samples' counts.
    ``first_logprobs``: with ``record_logits=True``, the float32 log-probabilities of the next
    token at the last column of the first prompt pass (the last prompt token of every row, as
    batches are left-padded), as the steered model gave them; else ``None``. ``calls``: forward
    calls seen.
    """

    positions: torch.Tensor | None = None
    first_logprobs: torch.Tensor | None = None
    calls: int = 0

    def fired(self) -> torch.Tensor:
        """Rows where the hook added anything (``positions > 0``); all False before any call."""
        if self.positions is None:
            return torch.zeros(0, dtype=torch.bool)
        return self.positions > 0


class _Steerer:
    def __init__(self, model: Any, positions: str, pad_id: int | None) -> None:
        self.positions = steer_positions_key(positions)
        self.pad_id = pad_id
        self.state = _State()
        self.record = SteerRecord()
        self.mask: torch.Tensor | None = None  # [batch, pos] of the current call
        self.idle = False  # the current call steers no position (a decode step of a prompt-only push)
        self.match: Match | None = None
        self.match_ids: set[int] = set()
        if self.positions not in STEER_POSITIONS:
            m = parse_position(self.positions)
            assert isinstance(m, Match)
            self.match = m
            self.match_ids = _token_ids(model.tokenizer, m.token)

    def _real(self, ids: torch.Tensor) -> torch.Tensor:
        """Mask of non-padding tokens (leading and trailing runs of the pad id)."""
        if self.pad_id is None:
            return torch.ones_like(ids, dtype=torch.bool)
        is_pad = ids == self.pad_id
        lead = torch.cumprod(is_pad.long(), dim=1).bool()
        trail = torch.cumprod(is_pad.flip(1).long(), dim=1).bool().flip(1)
        return ~(lead | trail)

    def _prompt_mask(self, ids: torch.Tensor) -> torch.Tensor:
        real = self._real(ids)
        if self.positions in ("all", "prompt"):
            return real
        mask = torch.zeros_like(ids, dtype=torch.bool)
        if self.positions == "generated":
            return mask
        if self.positions == "last":
            last = ids.shape[1] - 1 - torch.argmax(real.flip(1).long(), dim=1)
            mask[torch.arange(ids.shape[0]), last] = True
            return mask
        assert self.match is not None
        hit = torch.zeros_like(ids, dtype=torch.bool)
        for t in self.match_ids:
            hit |= ids == t
        hit &= real
        for row in range(ids.shape[0]):
            where = torch.nonzero(hit[row]).flatten()
            if len(where) <= self.match.occurrence:
                continue  # no decision token in this row: nothing is added (documented)
            start = int(where[self.match.occurrence]) + self.match.offset
            lo, hi = max(start, 0), min(start + self.match.window, ids.shape[1])
            mask[row, lo:hi] = True
        return mask

    def on_tokens(self, ids: torch.Tensor, hook: Any) -> torch.Tensor:
        st = self.state
        L = ids.shape[1]
        is_continuation = (
            st.prompt is not None
            and st.prompt.shape[0] == ids.shape[0]
            and st.prompt.shape[1] < L
            and torch.equal(ids[:, : st.prompt.shape[1]], st.prompt.to(ids.device))
        )
        if (
            st.prompt is not None
            and L == 1
            and ids.shape[0] % st.prompt.shape[0] == 0
            and st.seen >= st.prompt.shape[1]
        ):
            # cached decode step: one generated token per row (rows = the prompts, or each prompt
            # repeated for its samples when the prompt's cache was expanded: generate_samples)
            gen = self.positions in ("all", "generated")
            self.mask = torch.full_like(ids, gen, dtype=torch.bool)
            self.idle = not gen  # nothing is added at this step: the hooks pass x through
            st.seen += 1
            if self.idle:
                self._count_idle(ids.shape[0])
                return ids
        elif is_continuation:
            # uncached generation: the whole sequence again
            assert st.prompt is not None
            P = st.prompt.shape[1]
            self.idle = False
            mask = torch.zeros_like(ids, dtype=torch.bool)
            mask[:, :P] = self._prompt_mask(st.prompt.to(ids.device))
            if self.positions in ("all", "generated"):
                mask[:, P:] = True
            self.mask = mask
            st.seen = L
        else:
            self.idle = False
            st.prompt = ids.detach().clone()
            st.seen = L
            self.mask = self._prompt_mask(ids)
        self._count(self.mask)
        return ids

    def _count_idle(self, rows: int) -> None:
        """:meth:`_count` of a call that steers no position (adds zeros, without a tensor op)."""
        rec = self.record
        if rec.positions is None or (rows != len(rec.positions) and rows % len(rec.positions)):
            self._count(torch.zeros((rows, 1), dtype=torch.bool))
            return
        rec.calls += 1

    def _count(self, mask: torch.Tensor) -> None:
        rec = self.record
        n = mask.sum(dim=1).to("cpu")
        if rec.positions is not None and len(n) > len(rec.positions) and len(n) % len(rec.positions) == 0:
            n = n.view(len(rec.positions), -1).sum(dim=1)  # an expanded decode step: per prompt, summed
        if rec.positions is None or rec.positions.shape != n.shape:
            rec.positions = n.clone()
        else:
            rec.positions += n
        rec.calls += 1

    def on_logits(self, logits: torch.Tensor, hook: Any) -> torch.Tensor:
        """Keep the next-token log-probs after the prompt of the first prompt pass."""
        if self.record.first_logprobs is None and self.record.calls == 1:
            self.record.first_logprobs = logits[:, -1, :].detach().float().log_softmax(-1).cpu()
        return logits


def _deltas(model: Any, vec: SteeringVector, units: str) -> dict[int, torch.Tensor]:
    """The vector added at each of its layers, on the model's device and dtype, in ``units``."""
    param = next(model.parameters())
    deltas: dict[int, torch.Tensor] = {}
    for layer in vec.layers:
        d = vec.directions[layer].to(device=param.device, dtype=param.dtype)
        if d.shape[-1] != model.cfg.d_model:
            raise ElicitError(
                f"Vector {vec.name!r} has d_model={d.shape[-1]} but the model has {model.cfg.d_model}."
            )
        if units == "resid_norm":
            if layer not in vec.resid_norms:
                raise ElicitError(
                    f"units='resid_norm' needs the vector's mean residual norm at layer {layer}; it has none."
                )
            d = d / d.norm().clamp_min(1e-12) * vec.resid_norms[layer]
        deltas[layer] = d
    return deltas


def _add_hook(steerer: _Steerer, layer: int, delta: torch.Tensor, alpha: torch.Tensor):
    """The hook adding ``alpha * delta`` where the steerer's mask of the current call is set."""

    def add(x: torch.Tensor, hook: Any) -> torch.Tensor:
        mask = steerer.mask
        if steerer.idle and mask is not None and mask.shape == x.shape[:2]:
            return x  # a decode step where nothing is steered: x + 0, without the tensor ops
        if mask is None or mask.shape != x.shape[:2]:
            raise ElicitError(
                f"Steering hook at layer {layer} saw shape {tuple(x.shape)} without matching token ids; "
                "steer only through model(...) / model.generate(...) calls with token inputs."
            )
        a, d = alpha, delta
        if d.device != x.device or d.dtype != x.dtype:
            # a model spread over devices (device_map) hands each block's activation on its own
            # device: the vector follows the activation, never the reverse
            a, d = a.to(device=x.device, dtype=x.dtype), d.to(device=x.device, dtype=x.dtype)
        if a.dim() == 1:
            if a.shape[0] != x.shape[0]:
                raise ElicitError(f"Per-row alpha has {a.shape[0]} values for a batch of {x.shape[0]} rows.")
            a = a[:, None, None]
        return x + a * mask[..., None].to(device=x.device, dtype=x.dtype) * d

    return add


@contextmanager
def apply(
    model: Any,
    vector: SteeringVector,
    *,
    layers: Sequence[int] | int | None = None,
    alpha: float | torch.Tensor = 1.0,
    positions: str = "all",
    units: str = "vector",
    record_logits: bool = False,
) -> Iterator[SteerRecord]:
    """Add ``alpha * vector`` at ``layers`` and ``positions`` while the context is open; yields
    the :class:`SteerRecord` of the context (``record_logits`` also keeps the first prompt
    pass's next-token log-probs, for the KL of the push).

    Never changes the model's weights, device or dtype; the vector is moved to the
    model's device and dtype for the addition only (a copy).
    """
    if units not in UNITS:
        raise ElicitError(f"Unknown alpha units {units!r}. Valid: {list(UNITS)}.")
    if isinstance(layers, int):
        layers = [layers]
    chosen = list(vector.layers if layers is None else layers)
    vec = vector.select(chosen)
    names = validate_hooks(model, [vec.hook_site(layer) for layer in chosen])
    deltas = _deltas(model, vec, units)
    param = next(model.parameters())
    alpha_t = torch.as_tensor(alpha, dtype=param.dtype, device=param.device)
    steerer = _Steerer(model, positions, getattr(model.tokenizer, "pad_token_id", None))
    hooks = [("embed.hook_in", steerer.on_tokens)] + [
        (name, _add_hook(steerer, layer, deltas[layer], alpha_t))
        for name, layer in zip(names, chosen, strict=True)
    ]
    if record_logits:
        hooks.append((validate_hooks(model, ["unembed.hook_out"])[0], steerer.on_logits))
    for name, fn in hooks:
        model.add_hook(name, fn)
    try:
        yield steerer.record
    finally:
        _remove(model, hooks)


def _remove(model: Any, hooks: Sequence[tuple[str, Any]]) -> None:
    """Remove exactly our hooks (others on the same hook points stay)."""
    for name, fn in hooks:
        hp = model.hook_dict[name]
        for handle in list(hp.fwd_hooks):
            if getattr(handle, "user_hook", None) is fn:
                handle.hook.remove()
                hp.fwd_hooks.remove(handle)
