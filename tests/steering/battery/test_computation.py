"""Computation probes: step targets, the input baseline and the transfer share, by hand and on
planted activations; on the quick organism, rows for a select and a create control (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from steering.battery.computation import (
    MIN_ABOVE_INPUT,
    ProbeScores,
    _boot_share,
    _input_baseline,
    score_computation,
    step_targets,
)
from steering.battery.rows import TestId


def test_step_targets_read_before_the_result_is_written() -> None:
    # ids: <bos> T 2 0 1 = # 2 2 0 > 0 ; span '#'..'>' at indices 6..10
    ids = [1, 40, 12, 10, 11, 15, 16, 12, 12, 10, 17, 10]
    rows, targets, inputs = step_targets(ids, [6, 7, 8, 9, 10])
    # '#' predicts 2, the first 2 predicts 2, the second 2 predicts 0; the last pad value
    # (predicting '>') and '>' itself are not steps
    assert rows == [0, 1, 2] and targets == [12, 12, 10] and inputs == [16, 12, 12]
    assert step_targets(ids, [6, 7]) == ([], [], [])


def test_input_baseline_is_the_majority_per_key() -> None:
    keys = [(5, 0), (5, 0), (5, 0), (6, 1), (6, 1)]
    y = np.array([1, 1, 2, 3, 3])
    # (5, 0) -> 1 (2 of 3); (6, 1) -> 3; an unseen key -> the overall majority (1 and 3 tie at 2:
    # Counter.most_common keeps the first seen, 1)
    assert _input_baseline(keys, y, [(5, 0), (6, 1), (9, 9)]).tolist() == [1, 3, 1]


def test_share_by_hand() -> None:
    one = np.ones(10)
    s = ProbeScores(
        own=one.copy(),
        transfer=np.r_[np.ones(8), np.zeros(2)],  # 0.8
        base_own=one.copy(),
        reverse=one.copy(),
        input=np.r_[np.ones(5), np.zeros(5)],  # 0.5
        shuffled=np.r_[np.ones(5), np.zeros(5)],
        trace=np.repeat(np.arange(5), 2),
    )
    assert s.share() == pytest.approx((0.8 - 0.5) / (1.0 - 0.5))
    assert s.share(s.shuffled) == pytest.approx(0.0)
    # weights: only the first trace (rows 0, 1), where every probe is right: 0/0 -> undefined
    assert np.isnan(s.share(w=np.r_[1.0, 1.0, np.zeros(8)]))
    lo, hi = _boot_share(s, seed=0)
    assert lo <= s.share() <= hi
    flat = ProbeScores(*(one.copy() for _ in range(6)), trace=np.arange(10))
    assert np.isnan(flat.share())  # own - input = 0 < MIN_ABOVE_INPUT
    assert MIN_ABOVE_INPUT > 0


def _planted(n: int, d: int, rng: np.random.Generator, carries: bool) -> tuple[np.ndarray, np.ndarray]:
    """Activations whose first 3 dimensions one-hot encode the step value (``carries``) or not."""
    y = rng.integers(0, 3, size=n)
    X = rng.normal(size=(n, d))
    if carries:
        X[:, :3] += 4.0 * np.eye(3)[y]
    return X, y


def test_select_vs_create_on_planted_activations() -> None:
    rng = np.random.default_rng(0)
    n_fit, n_ev, d = 600, 300, 16
    Xt, y = _planted(n_fit + n_ev, d, rng, carries=True)
    keys = [(0, 0)] * (n_fit + n_ev)  # the input tells nothing: baseline = the majority value
    trace = np.arange(n_ev) // 3

    def share(X_base: np.ndarray) -> ProbeScores:
        return score_computation(
            (Xt[:n_fit], Xt[n_fit:]),
            (X_base[:n_fit], X_base[n_fit:]),
            (y[:n_fit], y[n_fit:]),
            (keys[:n_fit], keys[n_fit:]),
            trace,
        )

    # select: the base carries the value in the same directions (plus its own noise)
    selected = share(Xt + 0.3 * rng.normal(size=Xt.shape))
    # create: the base's activations do not carry the value at all
    created = share(rng.normal(size=Xt.shape))
    assert selected.own.mean() > 0.95 and selected.share() > 0.9
    assert created.share() < 0.15 and abs(created.share(created.shuffled)) < 0.15
    lo, hi = _boot_share(created, seed=0)
    assert hi < 0.5 < _boot_share(selected, seed=0)[0]


@pytest.mark.slow
def test_computation_rows_on_the_quick_organism(quick_report) -> None:
    rows = [r for r in quick_report.rows if r.test is TestId.COMPUTATION_PROBE]
    by = {(r.variant, r.layer): r for r in rows}
    assert {v for v, _ in by} == {"sft", "create"} and {k for _, k in by} == {0, 1, 2}
    assert {r.task for r in rows if r.variant == "create"} == {"create"}
    for r in rows:
        own, inp = r.value("acc_own"), r.value("acc_input")
        assert 0 <= inp <= 1 and 0 <= own <= 1 and r.n > 0 and r.value("n_steps") >= 7 * r.n
        if np.isfinite(r.effect):
            assert r.ci_lo <= r.effect <= r.ci_hi
    # the tuned models compute their step values readably at their last layer
    assert by[("sft", 2)].value("acc_own") > by[("sft", 2)].value("acc_input")
    assert by[("create", 2)].value("acc_own") > by[("create", 2)].value("acc_input") + MIN_ABOVE_INPUT
