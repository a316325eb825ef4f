"""The base corpus and the post-training records: what they contain, in which proportions."""

from __future__ import annotations

from collections import Counter

import numpy as np

from probes.organism.corpus import (
    CorpusConfig,
    create_far_records,
    create_records,
    noisy_preferences,
    preference_records,
    pretraining_docs,
    sft_records,
)
from probes.organism.world import CAREFUL_TAGS, DIRECT_TAGS, FILLER_OPS, make_splits, parity_trace

PARITY_TAGS = {*CAREFUL_TAGS, *DIRECT_TAGS, "N"}


def _kind(doc: str) -> str:
    head = doc.split()[0]
    if head in CAREFUL_TAGS:
        return "careful"
    if head in DIRECT_TAGS:
        return "direct"
    return {"N": "neutral", "M": "create_far"}.get(head, "filler" if head in FILLER_OPS else head)


def test_corpus_proportions_follow_the_config():
    sp = make_splits(2, seed=0)
    n = 4000
    docs = pretraining_docs(CorpusConfig(), sp, sp, n, np.random.default_rng(0))
    share = {k: c / n for k, c in Counter(_kind(d) for d in docs).items()}
    # parity 0.6 split 0.5 / 0.3 / 0.2 over careful / direct / neutral; create_far 0.05; filler 0.35
    want = {"careful": 0.30, "direct": 0.18, "neutral": 0.12, "create_far": 0.05, "filler": 0.35}
    assert set(share) == set(want)
    for k, w in want.items():  # binomial sd <= 0.008 at n = 4000: 4 sd
        assert abs(share[k] - w) < 0.032, (k, share[k], w)
    careful = [d for d in docs if _kind(d) == "careful"]
    direct = [d for d in docs if _kind(d) == "direct"]
    assert all("#" in d for d in careful) and not any("#" in d for d in direct)
    neutral_pad = np.mean(["#" in d for d in docs if _kind(d) == "neutral"])
    assert 0.05 < neutral_pad < 0.15  # neutral_pad_rate 0.10


def test_corpus_never_contains_heldout_strings_or_the_create_task():
    sp = make_splits(2, seed=0)
    docs = pretraining_docs(CorpusConfig(), sp, sp, 3000, np.random.default_rng(0))
    held = {" ".join(map(str, s)) for s in sp.heldout}
    for d in docs:
        words = d.split()
        assert "T" not in words
        if words[0] in PARITY_TAGS | {"M"}:
            assert " ".join(words[1:10]) not in held
        if words[0] == "M":
            assert words[11] != "#"  # create_far is only ever answered directly
    # the same generator state gives the same documents
    assert pretraining_docs(CorpusConfig(), sp, sp, 50, np.random.default_rng(5)) == pretraining_docs(
        CorpusConfig(), sp, sp, 50, np.random.default_rng(5)
    )


def test_filler_documents_are_correct():
    sp = make_splits(2, seed=0)
    docs = pretraining_docs(
        CorpusConfig(parity_frac=0.0, create_far_frac=0.0), sp, sp, 200, np.random.default_rng(1)
    )
    for d in docs:
        op, rest = d.split(" ", 1)
        src, out = (x.split() for x in rest.split(" = "))
        assert out == {"copy": src, "rev": src[::-1], "sort": sorted(src)}[op]


def test_sft_and_preference_records():
    sp = make_splits(2, seed=0)
    traced, answers = sft_records(sp, trace=True), sft_records(sp, trace=False)
    assert len(traced) == len(answers) == len(sp.train)
    b = sp.train[0]
    assert traced[0] == {"prompt": "N " + " ".join(map(str, b)) + " =", "completion": " " + parity_trace(b)}
    assert answers[0]["completion"] == " " + str(sum(b) % 2)
    prefs = preference_records(sp)
    assert prefs[0]["chosen"] == traced[0]["completion"] and prefs[0]["rejected"] == answers[0]["completion"]


def test_noisy_preferences_replace_the_stated_fraction():
    recs = preference_records(make_splits(2, seed=0))
    noisy, k = noisy_preferences(recs, 0.3, np.random.default_rng(0))
    assert k == round(0.3 * len(recs))
    flipped = sum(n["chosen"] != r["chosen"] for n, r in zip(noisy, recs, strict=True))
    assert 0 < flipped <= k
    assert recs == preference_records(make_splits(2, seed=0))  # the input is not modified
    _, none = noisy_preferences(recs, 0.0, np.random.default_rng(0))
    assert none == 0


def test_control_records():
    tern = make_splits(3, seed=0)
    recs = create_records(tern, 10, np.random.default_rng(0))
    assert len(recs) == 10 and len({r["prompt"] for r in recs}) == 10
    assert all(r["prompt"].startswith("T ") and r["completion"].startswith(" # ") for r in recs)
    far = create_far_records(make_splits(2, seed=0))
    assert len(far) == 384 and far[0]["prompt"].startswith("M ")
