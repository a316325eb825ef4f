"""Tokenising texts into padded batches, the one way every module does it.

Positions are resolved on each text's *unpadded* tokens and shifted by the padding, so
left- and right-padded batches read the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Int

from probes.errors import TaskError

__all__ = ["Batch", "encode", "context_length"]


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


def context_length(config: dict[str, Any]) -> int | None:
    """The model's context length from its HF config, if stated."""
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        if isinstance(config.get(key), int):
            return int(config[key])
    return None


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
    if padding_side not in ("left", "right"):
        raise TaskError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
    enc = tokenizer(list(texts), add_special_tokens=add_special_tokens)["input_ids"]
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    for i, row in enumerate(enc):
        name = ids[i] if ids is not None else i
        if not row:
            raise TaskError(f"Prompt {name!r} tokenises to nothing; remove it or fix the text.")
        if max_length is not None and len(row) > max_length:
            raise TaskError(
                f"Prompt {name!r} is {len(row)} tokens long, over the model's context of {max_length}. "
                "Shorten or filter the prompt (Task.filter(ids=...))."
            )
    width = max(len(r) for r in enc)
    input_ids = torch.full((len(enc), width), int(pad_id), dtype=torch.long)
    mask = torch.zeros((len(enc), width), dtype=torch.long)
    for i, row in enumerate(enc):
        n = len(row)
        if padding_side == "right":
            input_ids[i, :n] = torch.tensor(row)
            mask[i, :n] = 1
        else:
            input_ids[i, width - n :] = torch.tensor(row)
            mask[i, width - n :] = 1
    tokens = tuple(tuple(tokenizer.convert_ids_to_tokens(row)) for row in enc)
    return Batch(
        input_ids.to(device),
        mask.to(device),
        tuple(len(r) for r in enc),
        tokens,
        padding_side,
    )
