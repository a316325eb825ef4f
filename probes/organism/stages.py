"""Post-training stages of the organism, each a TRL trainer run from the base checkpoint.

docs/design.md, "The model organism" and "Use, don't write" (DPO, SFT, GRPO: TRL). Every
stage starts from the saved base, trains on *trained* strings only, and saves a normal
Hugging Face folder (config.json, model.safetensors, tokenizer files).

* ``sft``: SFTTrainer, neutral prompts -> scratchpad traces.
* ``sft_answers``: SFTTrainer, neutral prompts -> answers only.
* ``dpo``: DPOTrainer, chosen = scratchpad completion, rejected = direct completion.
* ``rl``: GRPOTrainer, reward 1 when the parsed answer is correct (verifiable reward).
* ``dpo_conf``: DPO on pairs the base ranks itself by answer-span confidence, no labels
  (RLSF, "Reinforcement Learning from Self-Feedback": the model's own confidence in its
  answer span is the preference signal).
* ``dpo_noisy``: DPO with a stated fraction of pairs flipped or randomised.
* ``create`` / ``create_far``: SFTTrainer on the control operations.
* ``sft_long``: ``sft``'s data with ``create``'s steps and learning rate (update-size control).
* ``unrelated``: SFTTrainer on filler documents only (no parity gain).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange

from probes.data.tasks import SCORERS
from probes.organism.evaluate import generate
from probes.organism.seeding import seeded
from probes.organism.world import EOS_ID, PAD_ID, encode, make_tokenizer

__all__ = ["StageConfig", "run_sft", "run_dpo", "run_grpo", "confidence_preferences", "answer_confidence"]


@dataclass(frozen=True)
class StageConfig:
    """Optimisation settings of one post-training stage."""

    steps: int
    batch_size: int = 32
    lr: float = 1e-3
    beta: float = 0.1  # DPO / GRPO KL weight
    warmup: int = 5


def _common(cfg: StageConfig, seed: int, out_dir: str, progress: bool) -> dict[str, Any]:
    return {
        "output_dir": out_dir,
        "max_steps": cfg.steps,
        "per_device_train_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": 1,
        "learning_rate": cfg.lr,
        "lr_scheduler_type": "cosine",
        "warmup_steps": cfg.warmup,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "logging_steps": max(1, cfg.steps),
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "bf16": False,
        "fp16": False,
        "seed": seed,
        "data_seed": seed,
        "dataloader_num_workers": 0,
        "disable_tqdm": not progress,
    }


def _load(base: Path):
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(str(base))
    model.generation_config.pad_token_id = PAD_ID
    model.generation_config.eos_token_id = EOS_ID
    return model


def _save(model, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out)
    make_tokenizer(out)
    return out


def _trainer_classes(kind: str) -> tuple[Any, Any]:
    """TRL's (config, trainer) classes of a stage kind: ``sft``, ``dpo`` or ``grpo`` (only that one is imported)."""
    import trl

    prefix = {"sft": "SFT", "dpo": "DPO", "grpo": "GRPO"}[kind]
    return getattr(trl, f"{prefix}Config"), getattr(trl, f"{prefix}Trainer")


@dataclass(frozen=True)
class _StageRun:
    """The inputs of one stage run: the saved base, the output folder, the records, the settings."""

    base: Path
    out: Path
    records: list[dict[str, str]]
    cfg: StageConfig
    seed: int
    progress: bool


def _trl_stage(
    kind: str, run: _StageRun, *, config: dict[str, Any], trainer: dict[str, Any] | None = None
) -> Path:
    """Train the saved base with one TRL trainer on the records and save it to ``run.out``.

    Inside :func:`~probes.organism.seeding.seeded`: TRL's ``Trainer`` seeds the global RNGs
    itself (``set_seed``) and draws from them; the scope hands the caller's states back.
    The order (import, seed, load, config, dataset, trainer) is the one the weights were
    first trained with, kept so the same seed gives the same bits.
    """
    from datasets import Dataset

    config_cls, trainer_cls = _trainer_classes(kind)
    with seeded(run.seed):
        model = _load(run.base)
        with tempfile.TemporaryDirectory(prefix="organism-trl-") as tmp:
            args = config_cls(**_common(run.cfg, run.seed, tmp, run.progress), **config)
            job = trainer_cls(
                model=model,
                args=args,
                train_dataset=Dataset.from_list(run.records),
                processing_class=make_tokenizer(),
                **(trainer or {}),
            )
            job.train()
            model = job.model
    return _save(model, run.out)


def run_sft(
    base: Path, out: Path, records: list[dict[str, str]], cfg: StageConfig, *, seed: int, progress: bool
) -> Path:
    """SFTTrainer on prompt-completion records (loss on the completion only)."""
    run = _StageRun(base, out, records, cfg, seed, progress)
    return _trl_stage("sft", run, config={"max_length": 64, "completion_only_loss": True})


def run_dpo(
    base: Path, out: Path, records: list[dict[str, str]], cfg: StageConfig, *, seed: int, progress: bool
) -> Path:
    """DPOTrainer on ``prompt`` / ``chosen`` / ``rejected`` records; the reference is the base."""
    run = _StageRun(base, out, records, cfg, seed, progress)
    return _trl_stage(
        "dpo", run, config={"beta": cfg.beta, "max_length": 64, "precompute_ref_log_probs": True}
    )


def _correct_reward(completions: list[str], answer: list[str], **_: Any) -> list[float]:
    """Verifiable reward: 1.0 when the scratchpad scorer reads the right answer."""
    score = SCORERS["scratchpad"]
    return [float(score(c, a, "#").correct) for c, a in zip(completions, answer, strict=True)]


def run_grpo(
    base: Path,
    out: Path,
    records: list[dict[str, str]],
    cfg: StageConfig,
    *,
    seed: int,
    progress: bool,
    num_generations: int = 8,
) -> Path:
    """GRPOTrainer with the verifiable answer-correct reward on ``prompt`` / ``answer`` records."""
    return _trl_stage(
        "grpo",
        _StageRun(base, out, records, cfg, seed, progress),
        config={
            "num_generations": num_generations,
            "max_completion_length": 14,
            "temperature": 1.0,
            "beta": cfg.beta,
        },
        trainer={"reward_funcs": _correct_reward},
    )


@torch.no_grad()
def answer_confidence(model, prompts: list[str], completions: list[str]) -> np.ndarray:
    """The model's probability of the answer token of each completion (0 when none parses).

    The answer span is the token after ``>`` in a scratchpad completion, else the first
    token; this is the answer-span confidence of RLSF.
    """
    conf = np.zeros(len(prompts))
    seqs, where = [], []
    for i, (p, c) in enumerate(zip(prompts, completions, strict=True)):
        words = c.split()
        if not words:
            continue
        if words[0] == "#":
            if ">" not in words or words.index(">") + 1 >= len(words):
                continue
            k = words.index(">") + 1
        else:
            k = 0
        ids = encode(p) + encode(" ".join(words[: k + 1]), bos=False)
        seqs.append(ids)
        where.append(i)
    for s in range(0, len(seqs), 512):
        chunk = seqs[s : s + 512]
        n = max(len(x) for x in chunk)
        inp = torch.full((len(chunk), n), PAD_ID, dtype=torch.long)
        for j, x in enumerate(chunk):
            inp[j, : len(x)] = torch.tensor(x)
        probs = model(input_ids=inp).logits.softmax(-1)
        for j, x in enumerate(chunk):
            conf[where[s + j]] = float(probs[j, len(x) - 2, x[-1]])
    return conf


def confidence_preferences(
    base_model, prompts: list[str], *, k: int, seed: int, min_gap: float = 0.1
) -> list[dict[str, str]]:
    """Label-free preference pairs: sample ``k`` completions per prompt from the base,
    prefer the one whose answer the base is most confident in over the least confident.

    Pairs whose confidence gap is below ``min_gap`` carry no signal and are dropped.
    """
    rep = [p for p in prompts for _ in range(k)]
    # HF sampling draws from the global torch RNG: seed it in a fork, the caller's state comes back
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        comps = generate(base_model, rep, 13, do_sample=True, temperature=1.0)
    conf = rearrange(answer_confidence(base_model, rep, comps), "(prompt sample) -> prompt sample", sample=k)
    pairs = []
    for i, p in enumerate(prompts):
        hi, lo = int(conf[i].argmax()), int(conf[i].argmin())
        if conf[i, hi] - conf[i, lo] < min_gap:
            continue
        pairs.append({"prompt": p, "chosen": " " + comps[i * k + hi], "rejected": " " + comps[i * k + lo]})
    return pairs
