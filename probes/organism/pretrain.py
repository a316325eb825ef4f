"""Pretraining the organism's base from scratch: a Llama-style model on the base corpus.

docs/design.md, "The model organism": 3 layers, d=128, 4 heads, MLP 512, tied embeddings,
~1,200 AdamW steps, batch 96, lr 3e-3 cosine. A plain torch loop (TRL's trainers are
for post-training; pretraining from scratch needs nothing more than AdamW). Seeded and
deterministic: the same seed on the same machine gives bit-identical weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from probes.errors import OrganismError
from probes.organism.corpus import CorpusConfig, pretraining_docs
from probes.organism.seeding import seeded
from probes.organism.world import BOS_ID, EOS_ID, PAD_ID, VOCAB, Splits, encode, make_tokenizer

__all__ = ["ModelConfig", "PretrainConfig", "new_model", "pretrain"]


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of every variant (Llama-style, tied embeddings)."""

    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    d_mlp: int = 512
    max_len: int = 64


@dataclass(frozen=True)
class PretrainConfig:
    """The base's pretraining run."""

    steps: int = 1000
    batch_size: int = 96
    lr: float = 3e-3
    warmup: int = 60
    weight_decay: float = 0.01
    corpus: CorpusConfig = CorpusConfig()
    #: Each batch's gradient is the sum of this many interleaved halves' gradients (1 or 2); with
    #: 2, the halves run in two processes at once when a worker is given (same bits either way).
    shards: int = 2
    #: Cycles in all when the base misses its gate: after the first ``steps``, pretraining goes on
    #: in warm restarts (Loshchilov & Hutter 2017, SGDR) of ``steps // 2`` steps at half the
    #: previous peak lr, re-checking the gate after each, until it passes or this many cycles ran.
    #: The organism learns its latent mode in a phase transition whose step count depends on the
    #: CPU's floating point (measured: quick seed 0 at 400 steps read 0.53 on one machine, 0.96 at
    #: 800), so a fixed budget passes on one machine and fails on another; a machine whose base
    #: passes after the first cycle trains exactly as with ``max_cycles = 1``.
    max_cycles: int = 6


def _init_model(cfg: ModelConfig, seed: int):
    """A fresh model initialised from the global torch RNG reseeded with ``seed`` (the caller scopes it)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    hf_cfg = LlamaConfig(
        vocab_size=len(VOCAB),
        hidden_size=cfg.d_model,
        intermediate_size=cfg.d_mlp,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_heads,
        max_position_embeddings=cfg.max_len,
        tie_word_embeddings=True,
        bos_token_id=BOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        rms_norm_eps=1e-5,
    )
    torch.manual_seed(seed)  # transformers initialises weights from the global RNG
    model = LlamaForCausalLM(hf_cfg)
    model.generation_config.pad_token_id = PAD_ID
    model.generation_config.eos_token_id = EOS_ID
    model.generation_config.bos_token_id = BOS_ID
    return model


def new_model(cfg: ModelConfig, seed: int):
    """A freshly initialised ``LlamaForCausalLM`` for the organism vocabulary (the caller's RNG is untouched)."""
    with torch.random.fork_rng(devices=[]):
        return _init_model(cfg, seed)


def _batch(docs: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = [encode(d, bos=True, eos=True) for d in docs]
    n = max(len(x) for x in ids)
    inp = torch.full((len(ids), n), PAD_ID, dtype=torch.long)
    for i, x in enumerate(ids):
        inp[i, : len(x)] = torch.tensor(x)
    labels = inp.masked_fill(inp == PAD_ID, -100)
    return inp, labels


def _part_loss(model, inp: torch.Tensor, labels: torch.Tensor, n_total: int) -> torch.Tensor:
    """Next-token cross-entropy summed over one part's real tokens, over the whole batch's count:
    the parts' gradients add up to the gradient of the batch's mean token loss."""
    logits = model(input_ids=inp).logits[:, :-1].float()
    return (
        F.cross_entropy(
            rearrange(logits, "batch pos vocab -> (batch pos) vocab"),
            rearrange(labels[:, 1:], "batch pos -> (batch pos)"),
            ignore_index=-100,
            reduction="sum",
        )
        / n_total
    )


def _flat_grad(params: list[torch.nn.Parameter]) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])


def _set_grad(params: list[torch.nn.Parameter], flat: torch.Tensor) -> None:
    i = 0
    for p in params:
        p.grad = flat[i : i + p.numel()].view_as(p).clone()
        i += p.numel()


def _check_sharding(cfg: PretrainConfig, rank: int | None, rendezvous: str | None) -> None:
    if cfg.max_cycles < 1:
        raise OrganismError(
            f"PretrainConfig.max_cycles must be >= 1 (cycles in all, the first included), got {cfg.max_cycles!r}; "
            "default 4, or 1 for a fixed budget of exactly `steps`."
        )
    if cfg.shards not in (1, 2):
        raise OrganismError(
            f"PretrainConfig.shards must be 1 or 2, got {cfg.shards!r}; use shards=2 (two halves per batch) or 1."
        )
    if rank is not None and (cfg.shards != 2 or rendezvous is None or rank not in (0, 1)):
        raise OrganismError(
            f"Two-process pretraining needs PretrainConfig.shards == 2 (got {cfg.shards}), rank 0 or 1 (got "
            f"{rank!r}) and a rendezvous file (got {rendezvous!r}); or pass rank=None to pretrain in one process."
        )


def cycle_lengths(cfg: PretrainConfig) -> list[int]:
    """Steps of each pretraining cycle: ``steps``, then ``steps // 2`` per warm restart.

    >>> cycle_lengths(PretrainConfig(steps=400, max_cycles=3))
    [400, 200, 200]
    """
    return [cfg.steps] + [max(1, cfg.steps // 2)] * (cfg.max_cycles - 1)


def lr_factor(cfg: PretrainConfig, step: int) -> float:
    """The lr multiplier at global ``step``: linear warmup then cosine decay to 0 over the first
    cycle; each later cycle restarts the cosine at half the previous cycle's peak (no warmup).

    >>> c = PretrainConfig(steps=100, warmup=10, max_cycles=2)
    >>> [round(lr_factor(c, s), 3) for s in (0, 9, 10, 55, 100, 125)]
    [0.1, 1.0, 1.0, 0.5, 0.5, 0.25]
    """
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    start, peak = 0, 1.0
    for n in cycle_lengths(cfg):
        if step < start + n:
            t = (step - cfg.warmup) / max(1, n - cfg.warmup) if start == 0 else (step - start) / n
            return peak * 0.5 * (1 + math.cos(math.pi * t))
        start, peak = start + n, peak / 2
    return 0.0


def _optimizer(params: list[torch.nn.Parameter], cfg: PretrainConfig):
    """AdamW with the schedule of :func:`lr_factor`."""
    opt = torch.optim.AdamW(params, lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(cfg, step))


AllReduce = Callable[[torch.Tensor], None]


@contextmanager
def _pair_group(rank: int, rendezvous: str) -> Iterator[AllReduce]:
    """A private two-rank gloo group on the loopback device; yields an in-place sum all-reduce.

    A process group object of its own (not ``init_process_group``): no default group and no
    ``GLOO_SOCKET_IFNAME`` in the environment are left behind in the caller's process.
    ``_Options`` is the binding's only way to name the device (torch is pinned in pyproject).
    """
    import datetime

    import torch.distributed as dist

    opts = dist.ProcessGroupGloo._Options()  # type: ignore[attr-defined]  # not in torch's stubs
    opts._devices = [dist.ProcessGroupGloo.create_device(interface="lo")]  # loopback: no network is needed
    opts._timeout = datetime.timedelta(minutes=5)
    group = dist.ProcessGroupGloo(dist.FileStore(rendezvous, 2), rank, 2, opts)

    def all_reduce(t: torch.Tensor) -> None:
        group.allreduce([t]).wait()  # type: ignore[attr-defined]  # the binding's method, not in the stubs

    try:
        yield all_reduce
    finally:
        group.shutdown()


def _batch_grad(
    model, params, docs: list[str], shards: int, mine: Sequence[int]
) -> tuple[list[torch.Tensor], float]:
    """Flat gradients of the parts ``mine`` of one batch (cut in ``shards`` interleaved parts), and their loss."""
    parts = [_batch(docs[i::shards]) for i in range(shards)]
    n_total = sum(int((lab[:, 1:] != -100).sum()) for _, lab in parts)
    flats, loss_sum = [], 0.0
    for i in mine:
        model.zero_grad(set_to_none=True)
        loss = _part_loss(model, *parts[i], n_total)
        loss.backward()
        flats.append(_flat_grad(params))
        loss_sum += loss.item()
    return flats, loss_sum


def _train(
    model,
    cfg: PretrainConfig,
    docs_at: Callable[[], list[str]],
    rank: int | None,
    all_reduce: AllReduce | None,
    progress: bool,
    passes: Callable[[Any], bool] | None = None,
) -> int:
    """Pretraining cycles (:func:`cycle_lengths`); with ``all_reduce`` this rank computes part
    ``rank`` only. After each cycle but the last, ``passes(model)`` (the gate; None: run the first
    cycle only) decides whether to stop. Returns the cycles run. In a pair only rank 0 evaluates
    the gate and its decision reaches rank 1 through the all-reduce, so both stop together."""
    from tqdm.auto import tqdm

    params = list(model.parameters())
    opt, sched = _optimizer(params, cfg)
    mine = [int(rank or 0)] if all_reduce is not None else range(cfg.shards)
    lengths = cycle_lengths(cfg) if passes is not None else [cfg.steps]
    for cycle, n in enumerate(lengths, 1):
        desc = "base: pretrain" + (f" (restart {cycle - 1})" if cycle > 1 else "")
        bar = tqdm(range(n), desc=desc, disable=not progress or bool(rank), leave=False)
        for _ in bar:
            flats, loss_sum = _batch_grad(model, params, docs_at(), cfg.shards, mine)
            if all_reduce is not None:
                all_reduce(flats[0])
            grad = flats[0] if len(flats) == 1 else flats[0] + flats[1]
            _set_grad(params, grad)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            bar.set_postfix(loss=f"{loss_sum:.3f}", refresh=False)
        if cycle == len(lengths) or passes is None:
            return cycle
        ok = 0.0
        if not rank:  # rank 0 holds the weights that are saved; it decides, and the pair agrees
            model.eval()
            ok = float(passes(model))
            model.train()
        if all_reduce is not None:
            flag = torch.tensor([ok])
            all_reduce(flag)
            ok = float(flag.item())
        if ok > 0:
            return cycle
    return len(lengths)


def pretrain(
    out: str | Path | None,
    parity: Splits,
    create_far: Splits,
    *,
    seed: int = 0,
    cfg: PretrainConfig = PretrainConfig(),
    model_cfg: ModelConfig = ModelConfig(),
    progress: bool = True,
    rank: int | None = None,
    rendezvous: str | None = None,
    passes: Callable[[Any], bool] | None = None,
):
    """Pretrain the base from scratch; save it (with the tokenizer) to ``out`` when given.

    ``passes`` is the base's gate (a function of the model in eval mode): when given, a base
    that misses it after the first cycle goes on in warm restarts (``cfg.max_cycles``); without
    it, exactly ``cfg.steps`` steps run.

    Right padding with a causal mask: pads never influence real tokens and carry no loss,
    so no attention mask is needed. Every batch is split into ``cfg.shards`` interleaved
    parts whose gradients are computed separately and summed (one addition per element).
    With ``rank``/``rendezvous`` (a file path shared by two processes), rank 0 and rank 1
    each compute one part and a gloo all-reduce adds them; otherwise this process computes
    both. An addition of two floats is commutative, so both ways give the same bits
    (tested), and a CPU whose second intra-op thread buys little trains ~2x faster.
    The global RNGs are seeded inside :func:`~probes.organism.seeding.seeded` (the weight
    init draws from them) and handed back unchanged.
    """
    _check_sharding(cfg, rank, rendezvous)
    with seeded(seed):
        model = _init_model(model_cfg, seed)
        model.train()
        rng = np.random.default_rng([seed, 11])

        def docs_at() -> list[str]:
            return pretraining_docs(cfg.corpus, parity, create_far, cfg.batch_size, rng)

        if rank is None:
            _train(model, cfg, docs_at, None, None, progress, passes)
        else:
            with _pair_group(rank, str(rendezvous)) as all_reduce:
                _train(model, cfg, docs_at, rank, all_reduce, progress, passes)
    model.eval()
    if out is not None and not rank:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out)
        make_tokenizer(out)
    return model
