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

:func:`standin_checkpoints` does the same for a *shipped* family file: one tiny checkpoint of
the family's architecture per variant, in folders laid out like its hub ids (``ROOT/allenai/
OLMo-2-0425-1B``, ...), a chat template on the tokenizer of every variant whose prompt
protocol asks for one, and the file's task JSONL (GSM8K-style, no labels, no splits). Then
``load_family(file, checkpoints=ROOT)`` runs the file unchanged::

    >>> standin_checkpoints("configs/families/olmo2-1b.toml", tmp, model_type="olmo2")  # doctest: +SKIP
    >>> fam = load_family("configs/families/olmo2-1b.toml", checkpoints=tmp)          # doctest: +SKIP
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from probes.errors import FamilyError
from probes.models.tokens import word_tokenizer

__all__ = [
    "STANDIN_SYMBOLS",
    "STANDIN_CHAT_TOKENS",
    "STANDIN_CHAT_TEMPLATE",
    "standin_tokenizer",
    "standin_questions",
    "standin_family",
    "standin_checkpoints",
]

#: Word-level vocabulary of the stand-in tokenizer (after the four special tokens).
STANDIN_SYMBOLS = tuple(str(d) for d in range(10)) + tuple("+=?#") + ("Q", "A")
_SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
#: Turn markers a stand-in chat variant adds to the vocabulary (special tokens).
STANDIN_CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
#: A Tulu / OLMo 2 style chat template (it writes the BOS itself).
STANDIN_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def standin_tokenizer(chat: bool = False) -> Any:  # transformers.PreTrainedTokenizerFast
    """A whitespace word-level tokenizer over :data:`STANDIN_SYMBOLS` that prepends ``<bos>``;
    with ``chat``, plus :data:`STANDIN_CHAT_TOKENS` and :data:`STANDIN_CHAT_TEMPLATE`."""
    tok = word_tokenizer(_SPECIALS + STANDIN_SYMBOLS)
    if chat:
        tok.add_special_tokens({"additional_special_tokens": list(STANDIN_CHAT_TOKENS)})
        tok.chat_template = STANDIN_CHAT_TEMPLATE
    return tok


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
    root = Path(root)
    if not variants or len(set(variants)) != len(variants):
        raise FamilyError(f"variants must be distinct names, the base first; got {list(variants)}.")
    taken = [v for v in variants if (root / v).exists()]
    if taken:
        raise FamilyError(
            f"{str(root)!r} already holds {taken}; pass an empty folder (e.g. tempfile.mkdtemp())."
        )
    tok = standin_tokenizer()
    cfg = _config(model_type, len(tok))
    for i, name in enumerate(variants):
        _write_variant(root / name, cfg, tok, seed, step * i)
    (root / "gsm.jsonl").write_text("".join(json.dumps(r) + "\n" for r in standin_questions(n_questions)))
    return root


def _config(model_type: str, vocab_size: int) -> Any:
    """The stand-in architecture: 2 layers, d_model 64, 4 heads, MLP 128."""
    import transformers

    try:
        return transformers.AutoConfig.for_model(
            model_type,
            vocab_size=vocab_size,
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


def _write_variant(folder: Path, cfg: Any, tok: Any, seed: int, noise: float) -> None:
    """The seeded base initialisation plus ``noise`` times one seeded Gaussian draw per parameter."""
    import transformers

    # transformers initialises from the global torch RNG: seed it inside fork_rng so the
    # caller's RNG state is restored on exit (no hidden process state)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = transformers.AutoModelForCausalLM.from_config(cfg)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(noise * torch.randn_like(p))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


def standin_checkpoints(
    family_file: str | Path,
    root: str | Path,
    *,
    model_type: str,
    step: float = 0.01,
    seed: int = 0,
    n_questions: int = 30,
) -> Path:
    """Tiny random checkpoints for every variant of a family file, at ``root/<hub id>``.

    Variant ``i`` (in file order) is the seeded base plus ``step * i`` Gaussian noise; a variant
    whose ``[variants.NAME.prompt]`` sets ``chat_template = true`` gets a tokenizer with the
    chat markers and :data:`STANDIN_CHAT_TEMPLATE` (the others the plain one; every embedding
    is sized for the chat vocabulary, as real chat fine-tunes pad theirs). Each task's JSONL is
    written under ``root`` at the task's ``path``: ``n_questions`` GSM8K-style records
    ``{id, question, answer}`` without labels or splits. Returns ``root``.
    """
    path = Path(family_file)
    data = tomllib.loads(path.read_text())
    root = Path(root)
    variants = data.get("variants", {})
    chat = standin_tokenizer(chat=True)
    cfg = _config(model_type, len(chat))
    for i, (name, entry) in enumerate(variants.items()):
        source = entry["path"] if isinstance(entry, dict) else str(entry)
        folder = root / source
        if folder.exists():
            raise FamilyError(f"{str(folder)!r} already exists (variant {name!r}); pass an empty root.")
        wants_chat = isinstance(entry, dict) and bool(entry.get("prompt", {}).get("chat_template"))
        _write_variant(folder, cfg, chat if wants_chat else standin_tokenizer(), seed, step * i)
    records = [{k: r[k] for k in ("id", "question", "answer")} for r in standin_questions(n_questions)]
    for table in data.get("tasks", {}).values():
        task_path = root / (table["path"] if isinstance(table, dict) else str(table))
        task_path.parent.mkdir(parents=True, exist_ok=True)
        task_path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return root
