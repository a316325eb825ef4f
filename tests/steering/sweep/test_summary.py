"""Sweep summaries: gap recovered from its definition, the dev chooser, dev-select/test-report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from probes import ElicitError
from steering.sweep import choose_setting, gap_recovered, summarize_sweep


def test_gap_recovered_definition() -> None:
    assert gap_recovered(0.9, 0.5, 1.0) == pytest.approx(0.8)
    assert gap_recovered(0.4, 0.5, 1.0) == 0.0  # clipped at 0
    assert gap_recovered(1.2, 0.2, 0.7) == pytest.approx(2.0)  # not clipped above
    assert np.isnan(gap_recovered(0.9, 0.5, 0.5))
    assert np.isnan(gap_recovered(0.9, 0.5, 0.4))


def _rows(
    split: str, layer: int, alpha: float, correct: list[bool], control: str = "steer", variant: str = "base"
) -> list[dict]:
    return [
        {
            "variant": variant,
            "vector": "v",
            "position": "=",
            "control": control,
            "split": split,
            "layer": layer,
            "alpha": alpha,
            "prompt_id": f"{split}{i}",
            "correct": c,
        }
        for i, c in enumerate(correct)
    ]


def test_choose_setting_prefers_accuracy_then_small_alpha_then_early_layer() -> None:
    df = pd.DataFrame(
        _rows("dev", 1, 4.0, [True, True])
        + _rows("dev", 1, -2.0, [True, True])
        + _rows("dev", 0, 2.0, [True, True])
        + _rows("dev", 0, 1.0, [True, False])
        + _rows("test", 0, 1.0, [True, True])
    )
    best = choose_setting(df, "dev")
    assert (best.layer, best.alpha, best.dev_acc) == (0, 2.0, 1.0)
    with pytest.raises(ElicitError, match="No steered rows on split 'val'"):
        choose_setting(df, "val")


def test_summary_reports_on_test_what_dev_chose() -> None:
    # dev prefers layer 0, alpha 2 (3/3); on test that setting gets 2/4 while another gets 4/4
    rows = (
        _rows("dev", 0, 2.0, [True] * 3)
        + _rows("dev", 1, 2.0, [False] * 3)
        + _rows("test", 0, 2.0, [True, True, False, False])
        + _rows("test", 1, 2.0, [True] * 4)
        + _rows("test", 0, 2.0, [False, True, False, False], control="random")
        + _rows("test", -1, 0.0, [False] * 4, control="none")
        + _rows("test", -1, 0.0, [True, True, True, True], control="none", variant="tuned")
    )
    s = summarize_sweep(pd.DataFrame(rows), tuned=["tuned"]).iloc[0]
    assert (s.layer, s.alpha, s.dev_acc, s.n_dev, s.n_test) == (0, 2.0, 1.0, 3, 4)
    assert s.test_acc == 0.5 and s.random_acc == 0.25 and s.unsteered_acc == 0.0
    assert s.flipped_to_correct == 0.5 and s.flipped_to_wrong == 0.0
    assert s["gap_recovered[tuned]"] == pytest.approx(0.5)  # (0.5 - 0) / (1 - 0)
    assert s["gap_recovered_lo[tuned]"] <= 0.5 <= s["gap_recovered_hi[tuned]"]
    assert s.protocol == "dev-select/test-report"
