"""Pretraining the organism's base from scratch: a Llama-style model on the base corpus.

DESIGN.md, "The model organism": 3 layers, d=128, 4 heads, MLP 512, tied embeddings,
~1,200 AdamW steps, batch 96, lr 3e-3 cosine. A plain torch loop (TRL's trainers are
for post-training; pretraining from scratch needs nothing more than AdamW). Seeded and
deterministic: the same seed on the same machine gives bit-identical weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from probes.organism.corpus import CorpusConfig, pretraining_docs
from probes.organism.world import BOS_ID, EOS_ID, PAD_ID, VOCAB, Splits, encode, make_tokenizer

__all__ = ["ModelConfig", "PretrainConfig", "new_model", "pretrain", "seed_everything"]


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


def seed_everything(seed: int, threads: int = 2) -> None:
    """Seed python/numpy/torch, fix the thread count and ask torch for deterministic kernels."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def new_model(cfg: ModelConfig, seed: int):
    """A freshly initialised ``LlamaForCausalLM`` for the organism vocabulary."""
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
    torch.manual_seed(seed)
    model = LlamaForCausalLM(hf_cfg)
    model.generation_config.pad_token_id = PAD_ID
    model.generation_config.eos_token_id = EOS_ID
    model.generation_config.bos_token_id = BOS_ID
    return model


def _batch(docs: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = [encode(d, bos=True, eos=True) for d in docs]
    n = max(len(x) for x in ids)
    inp = torch.full((len(ids), n), PAD_ID, dtype=torch.long)
    for i, x in enumerate(ids):
        inp[i, : len(x)] = torch.tensor(x)
    labels = inp.masked_fill(inp == PAD_ID, -100)
    return inp, labels


def pretrain(
    out: str | Path | None,
    parity: Splits,
    create_far: Splits,
    *,
    seed: int = 0,
    cfg: PretrainConfig = PretrainConfig(),
    model_cfg: ModelConfig = ModelConfig(),
    progress: bool = True,
):
    """Pretrain the base from scratch; save it (with the tokenizer) to ``out`` when given.

    Right padding with a causal mask: pads never influence real tokens and carry no loss,
    so no attention mask is needed.
    """
    from tqdm.auto import tqdm

    seed_everything(seed)
    model = new_model(model_cfg, seed)
    model.train()
    opt = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, betas=(0.9, 0.98), weight_decay=cfg.weight_decay
    )

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    rng = np.random.default_rng([seed, 11])
    bar = tqdm(range(cfg.steps), desc="base: pretrain", disable=not progress, leave=False)
    for _ in bar:
        inp, labels = _batch(pretraining_docs(cfg.corpus, parity, create_far, cfg.batch_size, rng))
        loss = model(input_ids=inp, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    model.eval()
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out)
        make_tokenizer(out)
    return model
