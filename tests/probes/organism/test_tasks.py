"""The organism's tasks: contents, splits, spans and the scorer on hand-written completions."""

from __future__ import annotations

import pytest

from probes.data.tasks import Task
from probes.errors import TaskError
from probes.models.positions import Match, Span
from probes.organism.tasks import (
    CREATE,
    CREATE_FAR,
    NEW_FORMAT,
    PARITY,
    PARITY_OOD,
    PARTIAL,
    create_far_task,
    create_task,
    new_format_task,
    organism_tasks,
    parity_ood_task,
    parity_task,
    partial_task,
)
from probes.organism.world import SPANS, make_splits, new_format_trace, parity_trace


def test_parity_task_sources_splits_and_sizes():
    task = parity_task(seed=0, n_train=10, n_heldout=8)
    by = {(e.split, e.label) for e in task.examples}
    assert by == {(s, lab) for s in ("train", "dev", "test") for lab in ("careful", "direct", "neutral")}
    assert len(task.filter(split="train")) == 30 and len(task.filter(split=["dev", "test"])) == 24
    sp = make_splits(2, 0)
    held = {" ".join(map(str, s)) for s in sp.heldout}
    for e in task.filter(split=["dev", "test"]).examples:
        assert " ".join(e.prompt.split()[1:-1]) in held
    ex = task.filter(label="neutral").examples[0]
    assert ex.prompt.startswith("N ") and ex.prompt.endswith(" =") and ex.trace is not None
    assert ex.answer == str(sum(int(b) for b in ex.prompt.split()[1:-1]) % 2)


def test_scratchpad_scorer_on_hand_written_completions():
    task = parity_task(seed=0, n_train=4, n_heldout=4)
    score = task.score
    assert score("# 1 1 2 3 3 3 4 4 5 > 1", "1") == score("# 1 > 1", "1")
    good = score("# 1 1 2 3 3 3 4 4 5 > 1", "1")
    assert good.correct and good.used_format and good.parsed == "1"
    wrong = score("# 1 1 2 > 0", "1")
    assert not wrong.correct and wrong.used_format and wrong.parsed == "0"
    direct = score("1", "1")
    assert direct.correct and not direct.used_format
    assert not score("0", "1").correct
    unfinished = score("# 1 1 2 3", "1")  # no '>': format used, no answer read
    assert not unfinished.correct and unfinished.used_format and unfinished.parsed is None
    assert not score("", "1").correct


def test_tasks_roundtrip_and_spans_resolve(tmp_path):
    task = parity_task(seed=0)
    path = task.to_jsonl(tmp_path / "parity.jsonl")
    again = Task.from_jsonl(path, name="parity", **task.settings())
    assert again.hash == task.hash
    ex = task.examples[0]
    toks = ["<bos>", *f"{ex.prompt} {ex.trace}".split()]
    assert Match("=").resolve(toks) == [11]
    assert Span("scratchpad").resolve(toks, SPANS) == list(range(12, 23))
    assert Span("decision").resolve(["<bos>", *ex.prompt.split()], SPANS) == [11]
    assert task.score(ex.trace, ex.answer).correct


def test_control_tasks_and_their_traces_score_correct():
    for task, tag in (
        (create_task(seed=0, n_train=6, n_heldout=6), "T"),
        (create_far_task(seed=0, n_train=6, n_heldout=6), "M"),
    ):
        assert {e.label for e in task.examples} == {"neutral"}
        assert all(e.prompt.startswith(tag + " ") for e in task.examples)
        assert all(task.score(str(e.trace), e.answer).correct for e in task.examples)
        assert len(task.filter(split="train")) == 6 and len(task.filter(split="dev")) == 3


def test_parity_ood_task_and_its_length_check():
    task = parity_ood_task(seed=0, lengths=(11,), n_long=4)
    long = task.filter(split="ood_long")
    assert len(long) == 4 * 3 and all(len(e.prompt.split()) == 13 for e in long.examples)
    assert all(sum(int(b) for b in e.prompt.split()[1:-1]) <= 9 for e in long.examples)
    tag = task.filter(split="ood_tag")
    assert (
        all(e.prompt.startswith("X ") for e in tag.examples)
        and len(tag) == len(task.filter(split="test")) // 3
    )
    assert task.max_new_tokens == 17
    with pytest.raises(TaskError, match="lengths=\\(11, 12\\)"):
        parity_ood_task(seed=0, lengths=(9,))


def test_organism_tasks_quick_is_smaller():
    quick, full = organism_tasks(seed=0, quick=True), organism_tasks(seed=0)
    assert set(quick) == set(full) == {PARITY, CREATE, CREATE_FAR, NEW_FORMAT, PARTIAL, PARITY_OOD}
    assert len(quick[PARITY].filter(split="train")) == 48 * 3 < len(full[PARITY].filter(split="train"))


def test_new_format_task_is_parity_in_a_new_notation():
    task = new_format_task(seed=0, n_train=8, n_heldout=8)
    par = parity_task(seed=0, n_train=8, n_heldout=8)
    assert task.name == NEW_FORMAT and task.format_prefix == "#" and task.max_new_tokens == 14
    for e in task.examples:
        bits = tuple(int(b) for b in e.prompt.split()[1:-1])
        assert e.prompt.startswith("N ") and e.label == "neutral" and e.answer == str(sum(bits) % 2)
        assert e.trace == new_format_trace(bits) and e.trace != parity_trace(bits)
        # the old notation scores right on this task: forcing the base's own format can recover the gain
        assert task.score(parity_trace(bits), e.answer).correct and task.score(e.trace, e.answer).correct
    assert {e.split for e in task.examples} == {e.split for e in par.examples}
    assert new_format_trace((1, 0, 1)) == "# b b c > 0"
    assert new_format_trace((1,) * 9) == "# b c d e f g h 8 9 > 1"  # 8 and 9 stay digits


def test_partial_task_is_half_parity_half_create():
    task = partial_task(seed=0, n_train=16, n_heldout=16)
    parity = [e for e in task.examples if e.prompt.startswith("N ")]
    create = [e for e in task.examples if e.prompt.startswith("T ")]
    assert len(parity) == len(create) == len(task.examples) // 2 and task.name == PARTIAL
    for split in ("train", "dev", "test"):
        assert sum(e.split == split for e in parity) == sum(e.split == split for e in create) > 0
    assert len({e.id for e in task.examples}) == len(task.examples)
    assert all(e.trace == parity_trace(tuple(int(b) for b in e.prompt.split()[1:-1])) for e in parity)
