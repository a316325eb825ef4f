"""Tokenising into padded batches, the padding helpers and the word-level tokenizer builder."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from probes.errors import ElicitError, TaskError
from probes.models.tokens import context_length, encode, pad_rows, pad_token_id, word_tokenizer

VOCAB = ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b", "c", "##d"]


def test_word_tokenizer_ids_decoding_and_saving(tmp_path) -> None:
    tok = word_tokenizer(VOCAB, model_max_length=8)
    assert tok("a b  c zz")["input_ids"] == [1, 4, 5, 6, 3]  # <bos> prepended, unknown -> <unk>
    assert tok("a", "b")["input_ids"] == [1, 4, 5]  # a pair: one <bos> before both texts
    assert tok.decode([4, 5, 6]) == "a b c" and tok.decode([4, 7]) == "ad"
    assert tok.decode([1, 4, 2], skip_special_tokens=True) == "a"
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.model_max_length == 8
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again("b a")["input_ids"] == [1, 5, 4] and again.pad_token_id == 0
    with pytest.raises(ElicitError, match=r"missing \['<unk>'\]"):
        word_tokenizer(["<pad>", "<bos>", "<eos>", "a"])
    with pytest.raises(ElicitError, match="1 duplicate"):
        word_tokenizer(VOCAB + ["a"])


def test_pad_rows_both_sides() -> None:
    ids, mask = pad_rows([[5, 6, 7], [8]], 9)
    assert ids.tolist() == [[5, 6, 7], [8, 9, 9]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    ids, mask = pad_rows([[5, 6, 7], [8]], 9, side="left")
    assert ids.tolist() == [[5, 6, 7], [9, 9, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert ids.dtype == mask.dtype == torch.long
    with pytest.raises(TaskError, match="padding_side must be 'left' or 'right', got 'top'"):
        pad_rows([[1]], 0, side="top")


def test_pad_token_id_falls_back_to_eos_then_zero() -> None:
    assert pad_token_id(SimpleNamespace(pad_token_id=4, eos_token_id=2)) == 4
    assert pad_token_id(SimpleNamespace(pad_token_id=None, eos_token_id=2)) == 2
    assert pad_token_id(SimpleNamespace(pad_token_id=None, eos_token_id=None)) == 0


@pytest.mark.parametrize("side", ["left", "right"])
def test_encode_offsets_and_last_index(side: str) -> None:
    tok = word_tokenizer(VOCAB)
    b = encode(tok, ["a b c", "a"], padding_side=side)
    assert b.lengths == (4, 2) and b.tokens[1] == ("<bos>", "a")
    assert b.offsets == ((0, 2) if side == "left" else (0, 0))
    assert b.last_index().tolist() == [3, 3 if side == "left" else 1]
    row = 1
    real = b.input_ids[row, b.offsets[row] : b.offsets[row] + b.lengths[row]]
    assert real.tolist() == [1, 4] and int(b.attention_mask[row].sum()) == 2
    assert set(b.input_ids[row][b.attention_mask[row] == 0].tolist()) == {0}


def test_encode_errors_name_the_prompt() -> None:
    tok = word_tokenizer(VOCAB)
    with pytest.raises(TaskError, match="Prompt 'long' is 4 tokens long, over the model's context of 3"):
        encode(tok, ["a", "a b c"], max_length=3, ids=["short", "long"])
    with pytest.raises(TaskError, match="Prompt 0 tokenises to nothing"):
        encode(tok, [""], add_special_tokens=False)


def test_context_length_from_either_spelling() -> None:
    assert context_length({"max_position_embeddings": 2048}) == 2048
    assert context_length({"n_positions": 1024}) == 1024
    assert context_length({"seq_length": "x"}) is None and context_length({}) is None


@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_rows_matches_a_row_by_row_fill(side: str) -> None:
    """The vectorised fill against the definition: row i's ids at its first (right) or last
    (left) len(row) columns, pad elsewhere, written one row at a time."""
    g = torch.Generator().manual_seed(0)
    rows = [
        torch.randint(1, 50, (int(n),), generator=g).tolist() for n in torch.randint(1, 9, (17,), generator=g)
    ]
    ids, mask = pad_rows(rows, 0, side=side)
    width = max(len(r) for r in rows)
    want_ids = torch.zeros(len(rows), width, dtype=torch.long)
    want_mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        cols = slice(0, len(r)) if side == "right" else slice(width - len(r), width)
        want_ids[i, cols] = torch.tensor(r)
        want_mask[i, cols] = 1
    assert torch.equal(ids, want_ids) and torch.equal(mask, want_mask)


def test_tokenize_once_then_pad_equals_encode() -> None:
    from probes.models.tokens import tokenize

    tok = word_tokenizer(["<pad>", "<bos>", "<eos>", "<unk>", "a", "b", "c"])
    texts = ["a b c", "b", "c a", "a a a a"]
    rows, tokens = tokenize(tok, texts)
    for side in ("right", "left"):
        ids, mask = pad_rows(rows[1:3], pad_token_id(tok), side=side)
        enc = encode(tok, texts[1:3], padding_side=side)
        assert torch.equal(ids, enc.input_ids) and torch.equal(mask, enc.attention_mask)
        assert tokens[1:3] == enc.tokens
