"""The cot_vs_direct recipe: train questions become careful / direct pairs, the rest neutral,
splits hashed where missing, and a family file's task table applies it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from probes.data.contrasts import (
    COT_INSTRUCTION,
    DIRECT_INSTRUCTION,
    apply_contrast,
    cot_vs_direct,
    hashed_split,
    with_splits,
)
from probes.data.tasks import Task
from probes.errors import TaskError
from probes.models.family import load_family

RECS = [{"id": f"q{i}", "question": f"{i} + {i} = ?", "answer": f"{i} + {i} #### {2 * i}"} for i in range(40)]


def _task(recs=RECS) -> Task:
    return Task.from_records("gsm", recs, scorer="gsm8k", prompt_field="question")


def test_questions_become_pairs_and_the_held_out_ones_stay_neutral_too() -> None:
    t = cot_vs_direct(_task())
    split_of = {r["id"]: hashed_split(r["id"]) for r in RECS}
    train = [i for i, s in split_of.items() if s == "train"]
    assert 10 < len(train) < 30  # about half
    ex = {e.id: e for e in t.examples}
    for qid, split in split_of.items():
        c, d = ex[f"{qid}/careful"], ex[f"{qid}/direct"]
        q = next(r["question"] for r in RECS if r["id"] == qid)
        assert c.prompt == f"{q}\n{COT_INSTRUCTION}" and d.prompt == f"{q}\n{DIRECT_INSTRUCTION}"
        assert (c.label, d.label, c.split, d.split) == ("careful", "direct", split, split)
        assert c.answer == d.answer == str(2 * int(qid[1:])) and dict(c.meta)["question_id"] == qid
        if split == "train":
            assert qid not in ex
        else:
            assert ex[qid].label == "neutral" and ex[qid].split == split and ex[qid].prompt == q
    assert len(t) == 3 * len(RECS) - len(train)
    # the questions the contrast is fit on (train) and the judged ones (neutral) are disjoint
    fit_q = {dict(e.meta)["question_id"] for e in t.examples if e.split == "train"}
    assert fit_q == set(train) and fit_q.isdisjoint({e.id for e in t.examples if e.label == "neutral"})


def test_splits_are_hashed_only_where_missing() -> None:
    recs = [dict(r, split="test") if i < 5 else r for i, r in enumerate(RECS)]
    t = with_splits(_task(recs))
    assert [e.split for e in t.examples[:5]] == ["test"] * 5
    assert [e.split for e in t.examples[5:]] == [hashed_split(r["id"]) for r in RECS[5:]]
    shares = Counter(hashed_split(str(i)) for i in range(4000))
    assert abs(shares["train"] / 4000 - 0.5) < 0.03 and abs(shares["dev"] / 4000 - 0.2) < 0.03


def test_errors_name_the_value_and_the_fix() -> None:
    labelled = [dict(r, label="x") for r in RECS[:3]]
    with pytest.raises(TaskError, match=r"already carries labels \['x'\].*Remove the contrast key"):
        cot_vs_direct(_task(labelled))
    with pytest.raises(TaskError, match=r"no 'train' questions.*splits: \['test'\]"):
        cot_vs_direct(_task([dict(r, split="test") for r in RECS[:3]]))
    with pytest.raises(TaskError, match=r"Unknown contrast 'cot'.*Valid: \['cot_vs_direct'\]"):
        apply_contrast(_task(), {"contrast": "cot"})
    with pytest.raises(TaskError, match=r"sets \['cot_instruction'\] but names no contrast"):
        apply_contrast(_task(), {"cot_instruction": "Think."})
    with pytest.raises(TaskError, match="direct_instruction of task 'gsm' must be non-empty"):
        cot_vs_direct(_task(), direct_instruction=" ")
    assert apply_contrast(_task(), {}) == _task()


def test_a_family_task_table_applies_the_recipe(tiny_dir, tmp_path: Path) -> None:
    (tmp_path / "gsm.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECS))
    (tmp_path / "family.toml").write_text(
        f'name = "x"\n[variants.base]\npath = "{tiny_dir("llama")}"\n[tasks.gsm]\npath = "gsm.jsonl"\n'
        'scorer = "gsm8k"\nprompt_field = "question"\ncontrast = "cot_vs_direct"\n'
        'cot_instruction = "Think."\nformat_prefix = "Think."\n'
    )
    fam = load_family(tmp_path)
    t = fam.load_task("gsm")
    assert {e.label for e in t.examples} == {"careful", "direct", "neutral"}
    assert next(e for e in t.examples if e.label == "careful").prompt.endswith("\nThink.")
    assert t.format_prefix == "Think."
    raw = fam.load_task("gsm", contrast=False)  # as written, with the recipe's splits (for exemplars)
    assert len(raw) == len(RECS) and [e.split for e in raw.examples] == [hashed_split(r["id"]) for r in RECS]
