"""Battery settings: family-file table, unknown keys, prompt subsets, chance."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from probes.data.tasks import Example, Task
from probes.errors import ElicitError
from steering.battery.config import BatteryConfig, balanced, chance_level, subset


def _task() -> Task:
    ex = [
        Example(id=f"{s}{i}", prompt=f"p{i}", answer=str(i % 3), label=lab, split=s)
        for s in ("train", "test")
        for i, lab in enumerate(["careful", "direct", "neutral"] * 4)
    ]
    return Task("t", tuple(ex))


def test_from_family_reads_the_table_and_rejects_typos() -> None:
    fam = SimpleNamespace(name="f", settings={"battery": {"alphas": [0.0, 2.0], "max_test": 10}})
    cfg = BatteryConfig.from_family(fam, seed=3)  # type: ignore[arg-type]
    assert cfg.alphas == (0.0, 2.0) and cfg.max_test == 10 and cfg.seed == 3
    bad = SimpleNamespace(name="f", settings={"battery": {"alpha": [1.0]}})
    with pytest.raises(ElicitError, match="alpha"):
        BatteryConfig.from_family(bad)  # type: ignore[arg-type]


def test_subsets_and_chance() -> None:
    t = _task()
    assert chance_level(t) == 1 / 3
    neutral = subset(t, "test", "neutral", 3)
    assert [e.label for e in neutral.examples] == ["neutral"] * 3 and {e.split for e in neutral.examples} == {
        "test"
    }
    # a label the task does not have is an error naming the labels it has
    with pytest.raises(
        ElicitError, match=r"no prompts labelled 'missing' \(labels: \['careful', 'direct', 'neutral'\]\)"
    ):
        subset(t, "test", "missing", 100)
    # a task without labels is used whole
    unlabelled = Task("u", tuple(Example(id=f"u{i}", prompt="p", answer="1", split="test") for i in range(5)))
    assert len(subset(unlabelled, "test", "neutral", 100)) == 5
    picked = balanced(t.filter(split="train"), ("careful", "direct"), 4)
    assert [e.label for e in picked] == ["careful", "careful", "direct", "direct"]
