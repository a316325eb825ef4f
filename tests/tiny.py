"""Tiny random checkpoints of real architectures, built locally (no downloads).

``make_checkpoint(arch, folder, seed)`` writes a Hugging Face folder (config.json,
model.safetensors, tokenizer files) that ``load_family`` loads like a hub model.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers

from probes.models.tokens import word_tokenizer

ARCHS = ("llama", "qwen2", "olmo2", "gemma2", "gpt2", "gpt_neox")

SYMBOLS = list("abcdefghijklmnopqrstuvwxyz0123456789=#>+-*/.,:;!?") + ["Wait", "N", "C", "D"]
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]


def make_tokenizer(extra: list[str] | None = None) -> transformers.PreTrainedTokenizerFast:
    """A whitespace word-level tokenizer that prepends <bos>."""
    tok: transformers.PreTrainedTokenizerFast = word_tokenizer(SPECIALS + SYMBOLS + (extra or []))
    return tok


#: The turn markers a tiny chat variant adds to the base's vocabulary (as special tokens).
CHAT_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
#: A Jinja chat template in the style of Tulu / OLMo 2 (each turn ``<|role|>`` then its text);
#: it writes the BOS itself, as Llama 3's and OLMo 2's templates do.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] | trim }}\n"
    "{% if m['role'] == 'assistant' %}<|end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def make_chat_tokenizer(template: str = CHAT_TEMPLATE) -> transformers.PreTrainedTokenizerFast:
    """:func:`make_tokenizer` plus the :data:`CHAT_TOKENS` (added special tokens, ids after the
    base vocabulary) and ``template`` as its chat template (saved with the tokenizer)."""
    tok = make_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": CHAT_TOKENS})
    tok.chat_template = template
    return tok


def make_config(arch: str, vocab_size: int, d_model: int = 64, n_layers: int = 2, n_ctx: int = 128):
    common = dict(vocab_size=vocab_size, bos_token_id=1, eos_token_id=2, pad_token_id=0)
    if arch in ("llama", "qwen2", "olmo2"):
        cls = {
            "llama": transformers.LlamaConfig,
            "qwen2": transformers.Qwen2Config,
            "olmo2": transformers.Olmo2Config,
        }[arch]
        return cls(
            hidden_size=d_model,
            intermediate_size=2 * d_model,
            num_hidden_layers=n_layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=n_ctx,
            tie_word_embeddings=(arch == "qwen2"),
            **common,
        )
    if arch == "gemma2":
        return transformers.Gemma2Config(
            hidden_size=d_model,
            intermediate_size=2 * d_model,
            num_hidden_layers=n_layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=d_model // 4,
            max_position_embeddings=n_ctx,
            sliding_window=n_ctx,
            **common,
        )
    if arch == "gpt2":
        return transformers.GPT2Config(
            n_embd=d_model, n_layer=n_layers, n_head=4, n_positions=n_ctx, **common
        )
    if arch == "gpt_neox":
        return transformers.GPTNeoXConfig(
            hidden_size=d_model,
            intermediate_size=2 * d_model,
            num_hidden_layers=n_layers,
            num_attention_heads=4,
            max_position_embeddings=n_ctx,
            **common,
        )
    raise ValueError(f"unknown arch {arch!r}; choose from {ARCHS}")


def make_checkpoint(
    arch: str,
    folder: str | Path,
    seed: int = 0,
    d_model: int = 64,
    n_layers: int = 2,
    tokenizer: transformers.PreTrainedTokenizerFast | None = None,
    max_shard_size: str | None = None,
    vocab_size: int | None = None,
) -> Path:
    """Write a randomly initialised checkpoint of ``arch`` (seeded) with a local tokenizer
    (``vocab_size``: a larger embedding than the tokenizer needs, as real checkpoints pad it)."""
    folder = Path(folder)
    tok = tokenizer or make_tokenizer()
    cfg = make_config(arch, vocab_size or len(tok), d_model=d_model, n_layers=n_layers)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(cfg)
    # make the random weights a bit larger than the default init so layers matter
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.08)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(folder, **kwargs)
    tok.save_pretrained(folder)
    return folder


def perturb_checkpoint(src: str | Path, dst: str | Path, scale: float = 0.05, seed: int = 1) -> Path:
    """A 'fine-tune' of ``src``: the same architecture with every matrix nudged."""
    src, dst = Path(src), Path(dst)
    model = transformers.AutoModelForCausalLM.from_pretrained(src)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    model.save_pretrained(dst)
    transformers.AutoTokenizer.from_pretrained(src).save_pretrained(dst)
    return dst


#: The corpus :func:`make_bpe_tokenizer` learns its merges from: numbers after a space, so the
#: byte-level BPE holds ``Ġ42`` (space + 42) as one token, as GPT-2-style vocabularies do.
BPE_CORPUS = ["The answer is 42.", "so 6 * 7 = 42", "Q: 6 * 7 = ?", "A: 42", "The answer is 7."] * 20


def make_bpe_tokenizer(vocab_size: int = 300) -> transformers.PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (GPT-2 style: ``Ġ`` marks a leading space) trained here on
    :data:`BPE_CORPUS` with ``tokenizers`` (no download); ``<|endoftext|>`` is its EOS and pad."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(BPE_CORPUS, trainer=trainer)
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
