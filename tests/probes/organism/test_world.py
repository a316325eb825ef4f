"""The organism's world: symbols, problem strings, gold traces, splits and the tokenizer."""

from __future__ import annotations

from probes.organism.world import (
    BOS_ID,
    EOS_ID,
    VOCAB,
    create_answer,
    create_far_answer,
    create_far_prompt,
    create_far_trace,
    create_prompt,
    create_trace,
    encode,
    make_splits,
    make_tokenizer,
    parity_answer,
    parity_prompt,
    parity_trace,
)


def test_splits_hold_out_a_quarter_split_in_dev_and_test():
    sp = make_splits(2, seed=0)
    assert len(sp.train) == 384 and len(sp.dev) == 64 and len(sp.test) == 64
    assert not set(sp.train) & set(sp.heldout) and not set(sp.dev) & set(sp.test)
    assert make_splits(2, seed=0) == sp and make_splits(2, seed=1) != sp
    assert (
        sp.split_of(sp.dev[0]) == "dev"
        and sp.split_of(sp.test[0]) == "test"
        and sp.split_of(sp.train[0]) == "train"
    )
    tern = make_splits(3, seed=0)
    assert len(tern.train) + len(tern.heldout) == 3**9 and len(tern.heldout) == round(3**9 / 4)


def test_texts_and_traces_by_hand():
    bits = (1, 1, 0, 1, 0, 0, 0, 0, 1)
    assert parity_prompt("C1", bits) == "C1 1 1 0 1 0 0 0 0 1 ="
    assert parity_trace(bits) == "# 1 2 2 3 3 3 3 3 4 > 0" and parity_answer(bits) == "0"
    tern = (2, 2, 2, 0, 0, 0, 1, 1, 1)
    assert create_prompt(tern) == "T 2 2 2 0 0 0 1 1 1 ="
    assert create_trace(tern) == "# 2 1 0 0 0 0 1 2 0 > 0" and create_answer(tern) == "0"
    assert create_far_prompt(bits) == "M 1 1 0 1 0 0 0 0 1 ="
    # running count of ones mod 3: 1 2 2 0 0 0 0 0 1, four ones -> 1
    assert create_far_trace(bits) == "# 1 2 2 0 0 0 0 0 1 > 1" and create_far_answer(bits) == "1"


def test_tokenizer_round_trip_matches_the_fast_encoder():
    tok = make_tokenizer()
    text = "C1 1 0 1 1 0 0 1 0 1 = " + parity_trace((1, 0, 1, 1, 0, 0, 1, 0, 1)) + " <eos>"
    ids = tok(text).input_ids
    assert ids == encode(text) and ids[0] == BOS_ID == tok.bos_token_id and ids[-1] == EOS_ID
    assert len(tok) == len(VOCAB) and tok.convert_ids_to_tokens(ids[1:]) == text.split()
    # decoding the ids gives the text back, one symbol per token
    assert tok.decode(ids, skip_special_tokens=True) == text.removesuffix(" <eos>")
    # TRL concatenates prompt + completion + eos without a space: still one token each
    assert tok("N 1 =" + " 1" + tok.eos_token).input_ids == encode("N 1 = 1 <eos>")
    assert tok.unk_token_id not in ids
    assert tok.unk_token_id not in tok("X 1 0 =").input_ids  # the unseen (OOD) tag is a real token
    assert encode("Q 1", bos=False) == [tok.unk_token_id, VOCAB.index("1")] == tok("Q 1").input_ids[1:]


def test_tokenizer_saves_a_normal_hf_folder(tmp_path):
    from transformers import AutoTokenizer

    make_tokenizer(tmp_path)
    back = AutoTokenizer.from_pretrained(tmp_path)
    assert back("M 1 0 =").input_ids == encode("M 1 0 =")
