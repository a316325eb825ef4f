"""Battery settings: family-file table, unknown keys, prompt subsets, chance."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from probes.data.tasks import Example, Task
from probes.errors import ElicitError
from steering.battery.config import (
    BatteryConfig,
    balanced,
    chance_level,
    default_layers,
    steering_layers,
    subset,
)


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


def test_overrides_win_over_the_table_and_are_validated_alike() -> None:
    fam = SimpleNamespace(
        name="f", settings={"battery": {"layers": [1, 2], "alphas": [0.0, 2.0], "max_dev": 8}}
    )
    cfg = BatteryConfig.from_family(fam, layers=[4, 6, 8], max_new_tokens=64, batch_size=4)  # type: ignore[arg-type]
    assert cfg.layers == (4, 6, 8) and cfg.alphas == (0.0, 2.0) and cfg.max_dev == 8
    assert cfg.max_new_tokens == 64 and cfg.batch_size == 4
    assert BatteryConfig.from_family(fam).max_new_tokens is None  # type: ignore[arg-type]
    with pytest.raises(ElicitError, match=r"Unknown battery setting\(s\) \['max_devs'\].*'max_dev'"):
        BatteryConfig.from_family(fam, max_devs=3)  # type: ignore[arg-type]
    for bad, match in [
        ({"max_dev": 0}, "max_dev must be an integer >= 1, got 0"),
        ({"max_test": 2.5}, "max_test must be an integer >= 1, got 2.5"),
        ({"max_new_tokens": 0}, "max_new_tokens must be an integer >= 1"),
        ({"layers": [-1]}, r"layers must be non-negative layer indices .* got \(-1,\)"),
        ({"layers": []}, "layers must be non-negative"),
        ({"alphas": [0.0]}, "needs a nonzero strength"),
        ({"alphas": ["a"]}, "alphas must be numbers"),
    ]:
        with pytest.raises(ElicitError, match=match):
            BatteryConfig.from_family(fam, **bad)  # type: ignore[arg-type]


def test_default_layers_are_a_handful_from_a_quarter_to_three_quarters_depth() -> None:
    assert default_layers(3) == (0, 1, 2)  # the organism: every layer
    assert default_layers(5) == (0, 1, 2, 3, 4)
    for n in (16, 26, 30, 32, 80):
        got = default_layers(n)
        assert len(got) == 5 and list(got) == sorted(set(got))
        # from round(25%) to round(75%) of the last layer index, evenly spaced (within rounding)
        want = [(n - 1) * (0.25 + 0.125 * i) for i in range(5)]
        assert all(abs(g - w) <= 0.5 for g, w in zip(got, want, strict=True)), (n, got)
    assert default_layers(30) == (7, 11, 15, 18, 22)
    assert steering_layers(BatteryConfig(), 30) == default_layers(30)
    assert steering_layers(BatteryConfig(layers=(2, 29)), 30) == (2, 29)
    with pytest.raises(ElicitError, match=r"layers \[30\] are outside the model's layers 0-29"):
        steering_layers(BatteryConfig(layers=(2, 30)), 30)
