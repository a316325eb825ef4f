"""The report's warnings: each check fires on the condition it names, and stays quiet otherwise."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import fisher_exact

from steering.battery.config import MIN_SPLIT
from steering.battery.sae import ce_note
from steering.report.caveats import (
    BUDGET_SHARE,
    budget_caveats,
    ce_caveats,
    embedding_caveats,
    forced_budget_caveats,
    report_caveats,
    split_caveats,
    weight_caveats,
)


def _rows(
    variant: str, split: str, correct: list[int], control: str = "none", finish: list[str] | None = None
):
    finish = finish or ["stop"] * len(correct)
    return [
        {
            "variant": variant,
            "control": control,
            "split": split,
            "prompt_id": f"{split}{i}",
            "correct": bool(c),
            "finish": f,
        }
        for i, (c, f) in enumerate(zip(correct, finish, strict=True))
    ]


def test_small_and_mismatched_splits_are_flagged() -> None:
    """The new user's case: 16 dev prompts far harder than 24 test ones."""
    dev, test = [1] * 2 + [0] * 14, [1] * 14 + [0] * 10
    sweep = pd.DataFrame(
        _rows("base", "dev", dev) + _rows("base", "test", test) + _rows("sft", "dev", [1] * 16)
    )
    got = {c.check: c for c in split_caveats(sweep, "gsm8k")}
    small = [c for c in split_caveats(sweep, "gsm8k") if c.check == "small_split"]
    assert sorted(c.value for c in small) == [16.0, 24.0]
    assert all(f"fewer than {MIN_SPLIT}" in c.message for c in small)
    want_p = fisher_exact([[2, 14], [14, 10]]).pvalue
    assert got["split_mismatch"].value == pytest.approx(want_p) and want_p < 0.05
    assert "0.12 on dev (16 prompts) but 0.58 on test (24)" in got["split_mismatch"].message


def test_large_matching_splits_pass() -> None:
    rng = np.random.default_rng(0)
    dev, test = [int(x) for x in rng.random(40) < 0.5], [int(x) for x in rng.random(60) < 0.5]
    sweep = pd.DataFrame(_rows("base", "dev", dev) + _rows("base", "test", test))
    assert fisher_exact([[sum(dev), 40 - sum(dev)], [sum(test), 60 - sum(test)]]).pvalue >= 0.05
    assert split_caveats(sweep, "t") == []
    # repeated unsteered rows of one prompt (one per grid unit) count once
    assert split_caveats(pd.concat([sweep, sweep]), "t") == []


def test_budget_cut_share_per_variant_names_the_flag() -> None:
    cut = ["budget"] * 3 + ["stop"] * 17  # 15%
    fine = ["budget"] * 2 + ["stop"] * 18  # 10%: not above
    sweep = pd.DataFrame(
        _rows("base", "test", [0] * 20, finish=fine)
        + _rows("sft", "test", [1] * 20, finish=cut)
        + _rows("base", "test", [0] * 20, control="steer", finish=["budget"] * 20)
    )
    got = budget_caveats(sweep, "t")
    assert [(c.variant, c.value) for c in got] == [("sft", 0.15), ("base (steered)", 1.0)]
    assert all("--max-new-tokens" in c.message for c in got) and BUDGET_SHARE == 0.10
    assert budget_caveats(sweep.drop(columns="finish"), "t") == []


def test_embedding_separability_threshold() -> None:
    assert embedding_caveats(0.9, 40, "t") == [] and embedding_caveats(float("nan"), 0, "t") == []
    (c,) = embedding_caveats(1.0, 40, "gsm8k")
    assert c.check == "embedding_separable" and c.value == 1.0 and "prompt wording" in c.message


def test_ce_recovered_above_one_gets_a_note() -> None:
    assert ce_note(1.0) == "" and ce_note(0.8, 0.7, 0.9) == "" and ce_note(float("nan")) == ""
    assert "within noise of lossless" in ce_note(1.02, 0.99, 1.05)
    assert "within noise" not in ce_note(1.2, 1.1, 1.3) and "L_spliced < L_clean" in ce_note(1.2, 1.1, 1.3)
    table = pd.DataFrame(
        {
            "variant": ["base", "dpo"],
            "layer": [15, 15],
            "ce_recovered": [0.97, 1.04],
            "ce_recovered_lo": [0.95, 1.01],
            "ce_recovered_hi": [0.99, 1.07],
        }
    )
    (c,) = ce_caveats(table)
    assert (c.check, c.variant, c.value) == ("ce_recovered_above_1", "dpo", 1.04)
    assert c.message.startswith("dpo (layer 15): CE recovered 1.040 > 1")


def test_weight_angles_at_the_noise_floor_are_flagged() -> None:
    floor = 0.137
    w = pd.DataFrame(
        {
            "variant": ["copy", "copy", "sft", "sft"],
            "angle_out_floor": [floor] * 4,
            "angle_in_floor": [floor] * 4,
            "angle_out_mean@4": [0.02, 0.07, 3.0, 0.05],
            "angle_in_mean@4": [0.015, 0.0, 2.0, 4.0],
            "angle_out_at_floor@4": [1.0, 1.0, 0.0, 1.0],
            "angle_in_at_floor@4": [1.0, 1.0, 0.0, 0.0],
        }
    )
    (c,) = weight_caveats(w)
    assert (c.check, c.variant, c.value) == ("weights_noise_floor", "copy", 1.0)
    assert "mean angles up to 0.07 deg" in c.message and "0.137" in c.message
    assert weight_caveats(w[w.variant == "sft"]) == []  # a quarter at the floor: not flagged
    assert weight_caveats(pd.DataFrame()) == []


def test_report_caveats_runs_every_check_per_task() -> None:
    sweep = pd.DataFrame(_rows("base", "dev", [1] * 8) + _rows("base", "test", [0] * 8)).assign(task="t")
    got = report_caveats([sweep], embedding=(0.99, 16, "ref"))
    assert [c.check for c in got] == ["small_split", "small_split", "split_mismatch", "embedding_separable"]
    assert {c.task for c in got} == {"t", "ref"}
    rec = got[0].to_record()
    assert rec["value"] == 8.0 and set(rec) == {"check", "message", "task", "variant", "value"}
    assert math.isnan(got[2].value) is False


def test_forced_format_budget_share_is_flagged() -> None:
    from steering.battery.rows import BatteryRow, TestId, rows_frame

    def forced(task: str, share: float) -> BatteryRow:
        return BatteryRow.make(
            TestId.FORCED_FORMAT,
            "sft",
            task,
            None,
            "prefill:#",
            0.5,
            0.0,
            0.1,
            0.9,
            10,
            "d",
            budget_share=share,
        )

    tests = rows_frame([forced("a", 0.4), forced("b", 0.1), forced("c", float("nan"))])
    (c,) = forced_budget_caveats(tests)
    assert (c.check, c.task, c.variant, c.value) == ("budget", "a", "base (forced format)", 0.4)
    assert "--max-new-tokens" in c.message
    assert [w.task for w in report_caveats([], tests=tests)] == ["a"]
