"""Sampling: seeded, reproducible, scored by the task, and the same as plain generation when greedy."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

from probes import Task, load_family
from probes.decoding.sampling import SAMPLE_COLUMNS, sample_task
from probes.errors import TaskError
from probes.models.generation import generate

RECORDS = [
    {"id": f"p{i}", "prompt": p, "answer": "1"} for i, p in enumerate(["N 1 0 =", "C 0 1 1 =", "D a b c ="])
]


@pytest.fixture(scope="module")
def opened(tiny_dir):
    fam = load_family({"base": str(tiny_dir("llama"))})
    with fam.open("base") as model:
        yield model, fam.tokenizer()


def test_same_seed_same_samples_and_nested(opened) -> None:
    model, tok = opened
    task = Task.from_records("t", RECORDS, scorer="scratchpad", format_prefix="#", max_new_tokens=4)
    a = sample_task(model, tok, task, variant="base", n=3, temperature=1.5, seed=7)
    c = sample_task(model, tok, task, variant="base", n=2, temperature=1.5, seed=7)
    d = sample_task(model, tok, task, variant="base", n=1, temperature=1.5, seed=8, do_sample=True)
    assert list(a.columns) == list(SAMPLE_COLUMNS) and len(a) == 9
    # same seed -> same samples; sample j is seeded with seed + j, so runs nest and shift
    assert c["completion"].tolist() == a[a["sample"] < 2]["completion"].tolist()
    assert d["completion"].tolist() == a[a["sample"] == 1]["completion"].tolist()
    assert a[a["sample"] == 0]["completion"].tolist() != a[a["sample"] == 1]["completion"].tolist()
    for r in a.itertuples():
        assert r.correct == task.score(r.completion, "1").correct


def test_greedy_equals_generate_and_prefill(opened) -> None:
    model, tok = opened
    task = Task.from_records("t", RECORDS, scorer="scratchpad", format_prefix="#", max_new_tokens=5)
    g = sample_task(model, tok, task, variant="base")
    assert g["completion"].tolist() == generate(model, tok, list(task.prompts), max_new_tokens=5)
    f = sample_task(model, tok, task, variant="base", prefill="#")
    ref = generate(model, tok, [p + " #" for p in task.prompts], max_new_tokens=5)
    assert f["completion"].tolist() == [("# " + r).strip() for r in ref]
    assert f["used_format"].all()


def test_intervention_wraps_every_call(opened) -> None:
    model, tok = opened
    calls = []

    @contextmanager
    def spy(m, batch):
        calls.append(batch.input_ids.shape[0])
        yield

    task = Task.from_records("t", RECORDS, max_new_tokens=2)
    # one intervention per prompt batch: 4 rows hold 2 prompts of 2 samples, drawn from one prefill
    sample_task(model, tok, task, variant="base", n=2, intervention=spy, batch_size=4)
    assert calls == [2, 1]


def test_bad_settings_name_the_value(opened) -> None:
    model, tok = opened
    task = Task.from_records("t", RECORDS)
    with pytest.raises(TaskError, match="n .* got 0"):
        sample_task(model, tok, task, variant="base", n=0)
    with pytest.raises(TaskError, match="top_p"):
        sample_task(model, tok, task, variant="base", n=2, top_p=1.5)
