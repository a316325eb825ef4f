"""OOD drop: exact ratios on a table, the organism's OOD task, and a tiny-model end-to-end run."""

from __future__ import annotations

import pandas as pd
import pytest

from probes import Task, load_family
from probes.decoding.sampling import sample_task
from probes.errors import TaskError
from probes.quality.ood import ood_table, ratio_ci


def test_ratio_table_exact() -> None:
    rows = [("v", "test", "a", c) for c in (1, 1, 1, 0)] + [("v", "test", "b", c) for c in (1, 1)]
    rows += [("v", "ood_long", "a", c) for c in (1, 0, 0, 0)] + [("v", "ood_long", "b", c) for c in (1, 0)]
    rows += [("v", "ood_tag", "b", c) for c in (1, 1)]
    t = pd.DataFrame(rows, columns=["variant", "split", "label", "correct"])
    out = ood_table(t, n_resamples=200).set_index(["ood_split", "label"])
    assert out.loc[("ood_long", "all"), "ratio"] == pytest.approx((2 / 6) / (5 / 6))
    assert out.loc[("ood_long", "a"), "ratio"] == pytest.approx(0.25 / 0.75)
    assert out.loc[("ood_tag", "all"), "id_acc"] == 1.0  # compared with label b only
    assert out.loc[("ood_tag", "all"), "n_id"] == 2
    lo, hi = out.loc[("ood_long", "all"), ["ci_lo", "ci_hi"]]
    assert lo <= out.loc[("ood_long", "all"), "ratio"] <= hi
    with pytest.raises(TaskError, match="splits present"):
        ood_table(t, ood_splits=["ood_format"])


def test_ratio_ci_degenerate() -> None:
    assert ratio_ci([1.0, 1.0], [1.0, 1.0]) == (1.0, 1.0)


def test_organism_ood_task_is_well_formed() -> None:
    from probes.organism.tasks import UNSEEN_TAG, parity_ood_task, parity_task
    from probes.organism.world import VOCAB, make_tokenizer

    t = parity_ood_task(0, n_long=8)
    assert {e.split for e in t.examples} == {"test", "ood_long", "ood_tag"}
    ref = parity_task(0, n_train=0).filter(split="test")
    assert {e.id for e in t.examples if e.split == "test"} == set(ref.ids)
    tok = make_tokenizer()
    unk = tok.unk_token_id
    for e in t.examples:
        bits = [int(b) for b in e.prompt.split()[1:-1]]
        assert e.answer == str(sum(bits) % 2) and t.score(e.trace or "", e.answer).correct
        ids = tok(e.prompt + " " + (e.trace or ""))["input_ids"]
        assert len(ids) + 1 <= 64 and len((e.trace or "").split()) + 1 <= t.max_new_tokens
        if e.split == "ood_long":
            assert len(bits) in (11, 12) and sum(bits) <= 9 and unk not in ids
        if e.split == "ood_tag":
            # the unseen tag has a vocabulary slot (last) that no training document ever uses
            from probes.organism.world import CAREFUL_TAGS, DIRECT_TAGS, NEUTRAL_TAG

            assert VOCAB[-1] == UNSEEN_TAG and UNSEEN_TAG not in (*CAREFUL_TAGS, *DIRECT_TAGS, NEUTRAL_TAG)
            assert ids.count(tok.convert_tokens_to_ids(UNSEEN_TAG)) == 1 and unk not in ids


def test_tiny_model_end_to_end(tiny_dir) -> None:
    fam = load_family({"base": str(tiny_dir("llama"))})
    recs = [
        {"id": f"i{i}", "prompt": f"N {b} =", "answer": "1", "split": "test", "label": "n"}
        for i, b in enumerate(["1 0", "0 1", "1 1", "0 0"])
    ]
    recs += [
        {"id": f"o{i}", "prompt": f"N {b} =", "answer": "1", "split": "ood_long", "label": "n"}
        for i, b in enumerate(["1 0 1 1", "0 1 0 0", "1 1 1 1"])
    ]
    task = Task.from_records("t", recs, scorer="scratchpad", format_prefix="#", max_new_tokens=3)
    with fam.open("base") as model:
        s = sample_task(model, fam.tokenizer(), task, variant="base")
    out = ood_table(s, n_resamples=100).iloc[0]
    id_acc = s[s["split"] == "test"]["correct"].mean()
    assert out["id_acc"] == pytest.approx(id_acc) and out["n_ood"] == 3
