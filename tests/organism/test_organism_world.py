"""The organism's world: texts, splits, tokenizer and tasks (no training)."""

from __future__ import annotations

import numpy as np

from probes.data.tasks import Task
from probes.models.positions import Match, Span
from probes.organism import SPANS, VOCAB, make_splits, make_tokenizer, organism_tasks, parity_task
from probes.organism.corpus import CorpusConfig, noisy_preferences, preference_records, pretraining_docs
from probes.organism.world import create_trace, encode, parity_trace


def test_splits_hold_out_a_quarter_split_in_dev_and_test():
    sp = make_splits(2, seed=0)
    assert len(sp.train) == 384 and len(sp.dev) == 64 and len(sp.test) == 64
    assert not set(sp.train) & set(sp.heldout) and not set(sp.dev) & set(sp.test)
    assert make_splits(2, seed=0) == sp and make_splits(2, seed=1) != sp
    tern = make_splits(3, seed=0)
    assert len(tern.train) + len(tern.heldout) == 3**9 and len(tern.heldout) == round(3**9 / 4)


def test_tokenizer_matches_fast_encoder_and_prepends_bos():
    tok = make_tokenizer()
    text = "C1 1 0 1 1 0 0 1 0 1 = " + parity_trace((1, 0, 1, 1, 0, 0, 1, 0, 1)) + " <eos>"
    assert tok(text).input_ids == encode(text)
    assert tok(text).input_ids[0] == tok.bos_token_id and len(tok) == len(VOCAB)
    # TRL concatenates prompt + completion + eos without a space: still one token each
    assert tok("N 1 =" + " 1" + tok.eos_token).input_ids == encode("N 1 = 1 <eos>")
    assert tok.unk_token_id not in tok(text).input_ids
    assert tok.unk_token_id not in tok("X 1 0 =").input_ids  # the unseen (OOD) tag is a real token


def test_traces_are_running_counts():
    assert parity_trace((1, 1, 0, 1, 0, 0, 0, 0, 1)) == "# 1 2 2 3 3 3 3 3 4 > 0"
    assert create_trace((2, 2, 2, 0, 0, 0, 1, 1, 1)) == "# 2 1 0 0 0 0 1 2 0 > 0"


def test_corpus_never_contains_heldout_strings_or_the_create_task():
    sp = make_splits(2, seed=0)
    docs = pretraining_docs(CorpusConfig(), sp, sp, 3000, np.random.default_rng(0))
    held = {" ".join(map(str, s)) for s in sp.heldout}
    for d in docs:
        words = d.split()
        assert "T" not in words
        if words[0] in {"C1", "C2", "D1", "D2", "D3", "D4", "D5", "D6", "N", "M"}:
            assert " ".join(words[1:10]) not in held
        if words[0] == "M":
            assert words[11] != "#"  # create_far is only ever answered directly
    neutral = [d for d in docs if d.startswith("N ")]
    rate = np.mean(["#" in d for d in neutral])
    assert 0.05 < rate < 0.15


def test_noisy_preferences_replace_the_stated_fraction():
    recs = preference_records(make_splits(2, seed=0))
    noisy, k = noisy_preferences(recs, 0.3, np.random.default_rng(0))
    assert k == round(0.3 * len(recs))
    flipped = sum(n["chosen"] != r["chosen"] for n, r in zip(noisy, recs, strict=True))
    assert 0 < flipped <= k


def test_tasks_roundtrip_and_spans_resolve(tmp_path):
    task = parity_task(seed=0)
    assert set(task.filter(split=["dev", "test"]).labels) == {"careful", "direct", "neutral"}
    path = task.to_jsonl(tmp_path / "parity.jsonl")
    again = Task.from_jsonl(path, name="parity", **task.settings())
    assert again.hash == task.hash
    ex = task.examples[0]
    toks = ["<bos>", *f"{ex.prompt} {ex.trace}".split()]
    assert Match("=").resolve(toks) == [11]
    assert Span("scratchpad").resolve(toks, SPANS) == list(range(12, 23))
    assert Span("decision").resolve(["<bos>", *ex.prompt.split()], SPANS) == [11]
    assert task.score(ex.trace, ex.answer).correct
    tasks = organism_tasks(seed=0, quick=True)
    assert {"parity", "create", "create_far"} <= set(tasks)
