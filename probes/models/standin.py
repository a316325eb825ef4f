"""A stand-in family: tiny random checkpoints of a real architecture in local folders.

For trying a family file, a JSONL task and the battery settings where no real weights can be
downloaded (``notebooks/05_bring_your_own_family``). :func:`standin_family` writes one Hugging
Face folder per variant (``config.json``, ``model.safetensors``, tokenizer files): the base is
a seeded random initialisation and variant ``i`` adds ``step * i`` times seeded Gaussian noise
to every parameter. It also writes ``gsm.jsonl``, GSM8K-style toy questions (``"Q 3 + 3 = ?"``,
answer ``"# 3 + 3 #### 6"``) with a ``reasoning`` / ``direct`` label and a ``train`` / ``dev``
/ ``test`` split, for the ``gsm8k`` scorer. The models are random: they answer nothing right.

    >>> root = standin_family(tmp / "stand-in")          # doctest: +SKIP
    >>> sorted(p.name for p in root.iterdir())           # doctest: +SKIP
    ['base', 'dpo', 'gsm.jsonl', 'sft']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from probes.errors import FamilyError
from probes.models.tokens import word_tokenizer

__all__ = ["STANDIN_SYMBOLS", "standin_tokenizer", "standin_questions", "standin_family"]

#: Word-level vocabulary of the stand-in tokenizer (after the four special tokens).
STANDIN_SYMBOLS = tuple(str(d) for d in range(10)) + tuple("+=?#") + ("Q", "A")
_SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")


def standin_tokenizer() -> Any:  # transformers.PreTrainedTokenizerFast
    """A whitespace word-level tokenizer over :data:`STANDIN_SYMBOLS` that prepends ``<bos>``."""
    return word_tokenizer(_SPECIALS + STANDIN_SYMBOLS)


def standin_questions(n: int = 30) -> list[dict[str, str]]:
    """``n`` JSONL records ``{id, question, answer, label, split}``: question ``i`` asks ``i + i``,
    labels alternate ``reasoning`` / ``direct``, splits cycle ``train`` / ``dev`` / ``test``."""
    return [
        {
            "id": f"q{i}",
            "question": f"Q {i} + {i} = ?",
            "answer": f"# {i} + {i} #### {2 * i}",
            "label": ("reasoning", "direct")[i % 2],
            "split": ("train", "dev", "test")[i % 3],
        }
        for i in range(n)
    ]


def standin_family(
    root: str | Path,
    *,
    variants: Sequence[str] = ("base", "sft", "dpo"),
    model_type: str = "olmo2",
    step: float = 0.01,
    seed: int = 0,
    n_questions: int = 30,
) -> Path:
    """Write the stand-in checkpoints (one folder per variant) and ``gsm.jsonl`` under ``root``.

    ``model_type`` is any transformers causal-LM type (``olmo2``, ``llama``, ``qwen2``, ...): 2
    layers, d_model 64, 4 heads, MLP 128. Returns ``root``.
    """
    import transformers

    root = Path(root)
    if not variants or len(set(variants)) != len(variants):
        raise FamilyError(f"variants must be distinct names, the base first; got {list(variants)}.")
    taken = [v for v in variants if (root / v).exists()]
    if taken:
        raise FamilyError(
            f"{str(root)!r} already holds {taken}; pass an empty folder (e.g. tempfile.mkdtemp())."
        )
    tok = standin_tokenizer()
    try:
        cfg = transformers.AutoConfig.for_model(
            model_type,
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
        )
    except ValueError as err:
        raise FamilyError(
            f"Unknown model_type {model_type!r} ({err}); e.g. 'olmo2', 'llama', 'qwen2'."
        ) from err
    for i, name in enumerate(variants):
        # transformers initialises from the global torch RNG: seed it inside fork_rng so the
        # caller's RNG state is restored on exit (no hidden process state)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = transformers.AutoModelForCausalLM.from_config(cfg)
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(step * i * torch.randn_like(p))
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    (root / "gsm.jsonl").write_text("".join(json.dumps(r) + "\n" for r in standin_questions(n_questions)))
    return root
