"""Samples from elsewhere: read from JSONL, scored by the task's scorer, counted, and bad ids,
variants, keys and short prompts named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probes.data.tasks import Task
from probes.decoding.imported import check_samples, read_samples, sample_counts
from probes.decoding.passk import pass_at_k, passk_curve
from probes.decoding.sampling import SAMPLE_COLUMNS
from probes.errors import TaskError

TASK = Task.from_records(
    "gsm",
    [{"id": f"q{i}", "prompt": f"Q {i} + {i} = ?", "answer": f"#### {2 * i}"} for i in range(1, 4)],
    scorer="gsm8k",
)


def write(path: Path, recs: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


def lines(variant: str, pid: str, answers: list[str]) -> list[dict[str, object]]:
    return [{"prompt_id": pid, "variant": variant, "completion": f"The answer is {a}."} for a in answers]


def test_samples_are_scored_by_the_task_and_give_the_unbiased_passk(tmp_path: Path) -> None:
    recs = lines("base", "q1", ["2", "3", "1,0"]) + lines("base", "q2", ["4", "4", "5"])
    recs += lines("rl", "q1", ["2", "2", "2"]) + lines("rl", "q2", ["4", "0", "0"])
    table = read_samples(write(tmp_path / "s.jsonl", recs), TASK, variants=["base", "rl"])
    assert list(table.columns) == list(SAMPLE_COLUMNS) and len(table) == 12
    assert table["sample"].tolist() == [0, 1, 2] * 4  # the order of the lines
    assert table["correct"].tolist() == [
        True,
        False,
        False,
        True,
        True,
        False,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    assert sample_counts(table)["n"].tolist() == [3, 3, 3, 3]
    curve = passk_curve(table, [1, 2], n_resamples=50).set_index(["variant", "k"])["pass_at_k"]
    # base: q1 1 of 3, q2 2 of 3; rl: q1 3 of 3, q2 1 of 3
    assert curve[("base", 2)] == pytest.approx((pass_at_k(3, 1, 2) + pass_at_k(3, 2, 2)) / 2)
    assert curve[("rl", 1)] == pytest.approx((1 + 1 / 3) / 2)


def test_unknown_ids_variants_and_keys_are_named(tmp_path: Path) -> None:
    f = write(tmp_path / "a.jsonl", lines("base", "q9", ["2"]) + lines("base", "q1", ["2"]))
    with pytest.raises(TaskError, match=r"\['q9'\]\. The task has 3 ids \('q1', 'q2', 'q3'\)"):
        read_samples(f, TASK)
    f = write(tmp_path / "b.jsonl", lines("grpo", "q1", ["2"]))
    with pytest.raises(TaskError, match=r"\['grpo'\] .*\['base', 'rl'\]"):
        read_samples(f, TASK, variants=["base", "rl"])
    f = write(tmp_path / "c.jsonl", [{"id": "q1", "variant": "base", "text": "2"}])
    with pytest.raises(TaskError, match=r"missing \['prompt_id', 'completion'\], unknown \['id', 'text'\]"):
        read_samples(f, TASK)
    f = write(
        tmp_path / "d.jsonl", [{"prompt_id": "q1", "variant": "base", "completion": "2", "sample": 0}] * 2
    )
    with pytest.raises(TaskError, match="occurs twice"):
        read_samples(f, TASK)
    with pytest.raises(TaskError, match="No samples file"):
        read_samples(tmp_path / "none.jsonl", TASK)


def test_prompts_with_fewer_than_k_samples_are_named(tmp_path: Path) -> None:
    recs = lines("base", "q1", ["2"] * 4) + lines("base", "q2", ["4"] * 2) + lines("rl", "q3", ["6"] * 3)
    table = read_samples(write(tmp_path / "s.jsonl", recs), TASK)
    assert check_samples(table, [1, 2])["n"].tolist() == [4, 2, 3]
    with pytest.raises(TaskError, match=r"pass@4 .* 2 of 3 .*base/q2 \(n=2\), rl/q3 \(n=3\).*at most 2"):
        check_samples(table, [1, 4])
