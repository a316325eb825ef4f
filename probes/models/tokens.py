"""Tokenising texts into padded batches, the one way every module does it.

Positions are resolved on each text's *unpadded* tokens and shifted by the padding, so
left- and right-padded batches read the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import torch
from jaxtyping import Int

from probes.errors import ElicitError, TaskError

__all__ = [
    "Batch",
    "encode",
    "tokenize",
    "check_rows",
    "context_length",
    "pad_token_id",
    "pad_rows",
    "word_tokenizer",
]


@dataclass(frozen=True)
class Batch:
    """A padded batch. ``offsets[i]`` is the index of text i's first real token."""

    input_ids: Int[torch.Tensor, "batch pos"]
    attention_mask: Int[torch.Tensor, "batch pos"]
    lengths: tuple[int, ...]
    tokens: tuple[tuple[str, ...], ...]
    padding_side: str

    @property
    def offsets(self) -> tuple[int, ...]:
        width = self.input_ids.shape[1]
        if self.padding_side == "left":
            return tuple(width - n for n in self.lengths)
        return tuple(0 for _ in self.lengths)

    def last_index(self) -> Int[torch.Tensor, " batch"]:
        """Index of each row's last real token."""
        return torch.tensor([o + n - 1 for o, n in zip(self.offsets, self.lengths, strict=True)])


def context_length(config: Mapping[str, Any]) -> int | None:
    """The model's context length from its HF config, if stated."""
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        if isinstance(config.get(key), int):
            return int(config[key])
    return None


def tokenize(
    tokenizer: Any,
    texts: Sequence[str],
    *,
    max_length: int | None = None,
    ids: Sequence[str] | None = None,
    add_special_tokens: bool = True,
) -> tuple[list[list[int]], tuple[tuple[str, ...], ...]]:
    """Each text's token ids (unpadded) and token strings, checked like :func:`encode`.

    Tokenise once, pad many times: ``pad_rows(rows[b0:b1], ...)`` gives the batch that
    ``encode(tokenizer, texts[b0:b1])`` would (each text is tokenised on its own either way)."""
    rows = tokenizer(list(texts), add_special_tokens=add_special_tokens)["input_ids"]
    check_rows(rows, ids=ids, max_length=max_length)
    return rows, tuple(tuple(tokenizer.convert_ids_to_tokens(row)) for row in rows)


def encode(
    tokenizer: Any,
    texts: Sequence[str],
    *,
    padding_side: str = "right",
    device: str | torch.device = "cpu",
    max_length: int | None = None,
    ids: Sequence[str] | None = None,
    add_special_tokens: bool = True,
) -> Batch:
    """Tokenise ``texts`` (with the tokenizer's special tokens) and pad to one width.

    Raises :class:`TaskError` naming the prompt if a text is empty or longer than ``max_length``.
    """
    _check_side(padding_side)
    enc, tokens = tokenize(
        tokenizer, texts, max_length=max_length, ids=ids, add_special_tokens=add_special_tokens
    )
    input_ids, mask = pad_rows(enc, pad_token_id(tokenizer), side=padding_side)
    return Batch(input_ids.to(device), mask.to(device), tuple(len(r) for r in enc), tokens, padding_side)


def check_rows(
    rows: Sequence[Sequence[int]],
    *,
    ids: Sequence[str] | None = None,
    max_length: int | None = None,
    what: str = "",
    fix: str = "Shorten or filter the prompt (Task.filter(ids=...)).",
) -> None:
    """Raise :class:`TaskError` naming the prompt (``ids[i]``, else its index) whose token row is
    empty or longer than ``max_length``; ``what`` qualifies the prompt in the message."""
    for i, row in enumerate(rows):
        name = ids[i] if ids is not None else i
        if not row:
            raise TaskError(f"Prompt {name!r}{what} tokenises to nothing; remove it or fix the text.")
        if max_length is not None and len(row) > max_length:
            raise TaskError(
                f"Prompt {name!r}{what} is {len(row)} tokens long, over the model's context of {max_length}. {fix}"
            )


def _check_side(side: str) -> None:
    if side not in ("left", "right"):
        raise TaskError(f"padding_side must be 'left' or 'right', got {side!r}.")


def pad_token_id(tokenizer: Any) -> int:
    """The id padding is filled with: the tokenizer's pad token, else its eos token, else 0."""
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    return int(tokenizer.eos_token_id) if tokenizer.eos_token_id is not None else 0


def pad_rows(
    rows: Sequence[Sequence[int]], pad_id: int, *, side: str = "right"
) -> tuple[Int[torch.Tensor, "batch pos"], Int[torch.Tensor, "batch pos"]]:
    """Token-id rows padded with ``pad_id`` to the longest: ``(input_ids, attention_mask)``.

    >>> ids, mask = pad_rows([[5, 6, 7], [8]], 0, side="left")
    >>> ids.tolist(), mask.tolist()
    ([[5, 6, 7], [0, 0, 8]], [[1, 1, 1], [0, 0, 1]])
    """
    _check_side(side)
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    width = int(lengths.max())
    cols = torch.arange(width)
    # one vectorised fill, no loop over rows: the real tokens sit in row-major order in both layouts
    mask = cols < lengths[:, None] if side == "right" else cols >= (width - lengths)[:, None]
    input_ids = torch.full((len(rows), width), int(pad_id), dtype=torch.long)
    input_ids[mask] = torch.tensor(list(chain.from_iterable(rows)), dtype=torch.long)
    return input_ids, mask.long()


def word_tokenizer(
    vocab: Sequence[str],
    *,
    bos: str = "<bos>",
    eos: str = "<eos>",
    pad: str = "<pad>",
    unk: str = "<unk>",
    model_max_length: int | None = None,
) -> Any:  # transformers.PreTrainedTokenizerFast (imported lazily)
    """A whitespace word-level ``PreTrainedTokenizerFast``: token ``vocab[i]`` has id ``i``,
    ``bos`` is prepended (once, before a pair of texts too), words outside ``vocab`` become
    ``unk``, and decoding joins tokens with single spaces (``##x`` joins without one).
    ``vocab`` must hold the four special tokens.

    The one builder of the kit's toy tokenizers (the organism's, the stand-in family's, the
    tests' tiny models').

    >>> tok = word_tokenizer(["<pad>", "<bos>", "<eos>", "<unk>", "1", "+", "="])
    >>> tok("1 + 1 = ?")["input_ids"]
    [1, 4, 5, 4, 6, 3]
    >>> tok.decode([4, 5, 4])
    '1 + 1'
    """
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    ids = {t: i for i, t in enumerate(vocab)}
    missing = [t for t in (bos, eos, pad, unk) if t not in ids]
    if missing or len(ids) != len(vocab):
        raise ElicitError(
            f"A word-level vocabulary needs distinct tokens including the special tokens {[bos, eos, pad, unk]}; "
            f"missing {missing}, {len(vocab) - len(ids)} duplicate(s). Add the specials to the vocabulary."
        )
    tk = Tokenizer(models.WordLevel(vocab=ids, unk_token=unk))
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, ids[bos])]
    )
    tk.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    extra = {} if model_max_length is None else {"model_max_length": model_max_length}
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tk, bos_token=bos, eos_token=eos, pad_token=pad, unk_token=unk, **extra
    )
