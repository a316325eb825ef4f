"""The verdict rule on hand-built typed rows: every branch, and the typed verdict's numbers."""

from __future__ import annotations

import dataclasses
import math

import pytest

from steering.battery.rows import BatteryRow, TestId
from steering.battery.verdict import THRESHOLDS, Verdict, judge, verdict


def _rows(
    steer_gr,
    lo,
    hi,
    forced_gr,
    flo,
    fhi,
    gap=0.4,
    gap_lo=0.3,
    rnd=0.0,
    forced=True,
    d_lo=0.1,
    fired=1.0,
    kl=0.5,
    n=64,
):
    """A steering row (and a forced-format row): ``rnd`` the best null's GR, ``d_lo`` the lower
    bound of the paired steered-minus-null difference, ``fired``/``kl`` the manipulation check."""
    steer = BatteryRow.make(
        TestId.STEERING,
        "v",
        "t",
        1,
        "match:=",
        steer_gr,
        rnd,
        lo,
        hi,
        n,
        "",
        tuned_gap=gap,
        gap_lo=gap_lo,
        acc_base=0.4,
        acc_tuned=0.8,
        chance=0.5,
        n_null=21,
        diff_vs_random=d_lo + 0.1,
        diff_vs_random_lo=d_lo,
        diff_vs_random_hi=d_lo + 0.2,
        fired_share=fired,
        kl_median=kl,
    )
    rows = [steer]
    if forced:
        rows.append(
            BatteryRow.make(
                TestId.FORCED_FORMAT, "v", "t", None, "prefill:#", forced_gr, math.nan, flo, fhi, 64, ""
            )
        )
    return rows


@pytest.mark.parametrize(
    ("args", "kw", "want"),
    [
        ((0.9, 0.8, 1.0, 1.0, 0.95, 1.0), {}, Verdict.SELECT),
        ((0.1, 0.0, 0.2, 1.0, 0.9, 1.0), {}, Verdict.SELECT),  # forcing alone shows the mode is there
        ((0.9, 0.8, 1.0, 0.1, 0.0, 0.2), {}, Verdict.SELECT),  # steering beats the best null (paired)
        ((0.9, 0.8, 1.0, 0.1, 0.0, 0.2), {"rnd": 0.85, "d_lo": -0.05}, Verdict.INCONCLUSIVE),  # null as good
        (
            (0.9, 0.8, 1.0, 0.1, 0.0, 0.2),
            {"rnd": 0.0, "d_lo": 0.0},
            Verdict.INCONCLUSIVE,
        ),  # interval touches 0
        ((0.05, 0.0, 0.1, 0.02, 0.0, 0.08), {}, Verdict.CREATE),
        ((0.05, 0.0, 0.1, 0.02, 0.0, 0.08), {"fired": 0.5}, Verdict.INCONCLUSIVE),  # hook fired on half
        ((0.05, 0.0, 0.1, 0.02, 0.0, 0.08), {"kl": 0.001}, Verdict.INCONCLUSIVE),  # push moved nothing
        ((0.4, 0.2, 0.6, 0.1, 0.0, 0.2), {}, Verdict.INCONCLUSIVE),  # partial recovery
        ((0.05, 0.0, 0.1, 0.45, 0.4, 0.5), {}, Verdict.INCONCLUSIVE),  # forcing shows partial presence
        ((0.9, 0.8, 1.0, 1.0, 0.9, 1.0), {"gap": 0.05, "gap_lo": -0.02}, Verdict.INCONCLUSIVE),  # no gap
        ((0.0, 0.0, 0.0, 0.0, 0.0, 0.0), {"gap": -0.5, "gap_lo": -0.6}, Verdict.INCONCLUSIVE),
        (
            (0.0, 0.0, 0.1, 0.0, 0.0, 0.0),
            {"gap": 0.2, "gap_lo": 0.0},
            Verdict.INCONCLUSIVE,
        ),  # gap CI touches 0
    ],
)
def test_each_branch_of_the_rule(args, kw, want) -> None:
    assert verdict(_rows(*args, **kw))[0] is want


def test_boundaries_are_the_thresholds() -> None:
    lo = THRESHOLDS["select_gr_lo"]
    assert (
        verdict(_rows(0.1, 0.0, 0.2, 0.9, lo, 1.0))[0] is Verdict.SELECT
    )  # CI lower bound exactly at the cut
    assert verdict(_rows(0.1, 0.0, 0.2, 0.9, lo - 1e-9, 1.0))[0] is Verdict.INCONCLUSIVE
    hi = THRESHOLDS["create_gr_hi"]
    assert verdict(_rows(0.0, 0.0, hi - 1e-9, 0.0, 0.0, hi - 1e-9))[0] is Verdict.CREATE
    assert (
        verdict(_rows(0.0, 0.0, hi, 0.0, 0.0, 0.0))[0] is Verdict.INCONCLUSIVE
    )  # CI reaching the cut is not absence
    assert (
        verdict(_rows(0.0, 0.0, 0.1, 0.0, 0.0, 0.0), {**THRESHOLDS, "create_gr_hi": 0.05})[0]
        is Verdict.INCONCLUSIVE
    )


def test_missing_rows() -> None:
    assert verdict([])[0] is Verdict.INCONCLUSIVE
    # without a forced-format row a failed steering run is one test, not evidence of absence
    label, reason = verdict(_rows(0.0, 0.0, 0.1, 0, 0, 0, forced=False))
    assert label is Verdict.INCONCLUSIVE and "forcing the format was not run" in reason and "two" in reason
    # steering alone can still show selection (it beats the best null direction)
    assert verdict(_rows(0.9, 0.8, 1.0, 0, 0, 0, forced=False))[0] is Verdict.SELECT
    # a missing random control never reads as 0: steering cannot show selection without it
    label, reason = verdict(_rows(0.9, 0.8, 1.0, 0.1, 0.0, 0.2, rnd=math.nan, d_lo=math.nan))
    assert label is Verdict.INCONCLUSIVE and "no random control" in reason


def test_a_hook_that_never_fires_is_no_evidence() -> None:
    """Forcing shows absence, but the steering hook never fired: one witness, inconclusive, and the
    reason says why (rows without the decision token are never scored as not recovered)."""
    label, reason = verdict(_rows(math.nan, math.nan, math.nan, 0.0, 0.0, 0.1, n=0, fired=0.0, kl=math.nan))
    assert label is Verdict.INCONCLUSIVE
    assert "never fired" in reason and "only 1 test shows absence" in reason
    # the same variant with a hook that fired is `create` (two witnesses)
    assert verdict(_rows(0.0, 0.0, 0.1, 0.0, 0.0, 0.1))[0] is Verdict.CREATE


def test_create_needs_two_witnesses_and_names_the_missing_one() -> None:
    label, reason = verdict(_rows(0.0, 0.0, 0.1, 0.0, 0.0, 0.1, kl=0.0))
    assert label is Verdict.INCONCLUSIVE and "KL" in reason and "two independent tests" in reason
    label, reason = verdict(_rows(0.0, 0.0, 0.1, 0, 0, 0, forced=False))
    assert label is Verdict.INCONCLUSIVE and "forcing the format was not run" in reason


def test_table_records_are_accepted() -> None:
    rows = _rows(0.9, 0.8, 1.0, 1.0, 0.95, 1.0)
    assert verdict([r.to_record() for r in rows]) == verdict(rows)


def test_judge_copies_the_numbers() -> None:
    rows = _rows(0.9, 0.8, 1.0, 1.0, 0.95, 1.0, rnd=0.25) + [
        BatteryRow.make(TestId.DIRECTION, "v", "t", 0, "match:=", 0.3, 0.1, 0.2, 0.4, 64, ""),
        BatteryRow.make(TestId.DIRECTION, "v", "t", 1, "match:=", 0.7, 0.1, 0.6, 0.8, 64, ""),
        BatteryRow.make(TestId.DIRECTION, "v", "t", 1, "span:scratchpad", 0.5, 0.1, 0.4, 0.6, 64, ""),
    ]
    j = judge("v", "t", rows, decision="match:=", computation="span:scratchpad")
    assert j.verdict is Verdict.SELECT and j.task == "t" and j.n_test == 64
    assert (j.acc_base, j.acc_variant, j.gap, j.chance) == (0.4, 0.8, 0.4, 0.5)
    assert (j.steer_gr, j.steer_gr_lo, j.steer_gr_hi, j.random_gr) == (0.9, 0.8, 1.0, 0.25)
    assert (j.forced_gr, j.forced_gr_lo, j.forced_gr_hi) == (1.0, 0.95, 1.0)
    assert j.max_cos_decision == 0.7 and j.max_cos_computation == 0.5
    assert math.isnan(j.steer_grc)  # the row carries no floored GR
    assert (j.diff_vs_random, j.diff_vs_random_lo, j.diff_vs_random_hi) == pytest.approx((0.2, 0.1, 0.3))
    assert (j.fired_share, j.kl_median, j.n_random) == (1.0, 0.5, 0)  # the row names no random draws
    rec = j.to_record()
    assert rec["verdict"] == "select" and list(rec)[:3] == ["variant", "task", "verdict"]


def test_the_rule_reads_the_interval_over_draws_and_prompts() -> None:
    """Steering beats the best null over prompts, but not once the draw of the null is resampled:
    no selection by steering (forcing not run)."""
    rows = _rows(0.9, 0.8, 1.0, 0, 0, 0, forced=False, d_lo=0.05)
    assert verdict(rows)[0] is Verdict.SELECT
    hier = [
        dataclasses.replace(
            rows[0], extra={**rows[0].extra, "diff_vs_random_hlo": -0.1, "diff_vs_random_hhi": 0.4}
        )
    ]
    label, reason = verdict(hier)
    assert label is Verdict.INCONCLUSIVE and "over draws and prompts" in reason


# ------------------------------------------------------------------ representation verdict
def _probe(layer: int, share: float, lo: float, hi: float, own: float, null: float = 0.0) -> BatteryRow:
    return BatteryRow.make(
        TestId.COMPUTATION_PROBE, "v", "t", layer, "span:scratchpad", share, null, lo, hi, 40, "", acc_own=own
    )


@pytest.mark.parametrize(
    ("probes", "want", "layer"),
    [
        # the tuned model's best layer (own 0.95 at layer 2) decides, not the best transfer (layer 0)
        ([_probe(0, 0.9, 0.8, 1.0, 0.6), _probe(2, 0.2, 0.1, 0.3, 0.95)], "absent", 2),
        ([_probe(0, 0.2, 0.1, 0.3, 0.6), _probe(1, 0.9, 0.7, 1.0, 0.9)], "present", 1),
        ([_probe(1, 0.5, 0.3, 0.7, 0.9)], "inconclusive", 1),  # neither cut
        ([_probe(1, 0.6, 0.5, 0.7, 0.9, null=0.55)], "inconclusive", 1),  # at the cut but not above its null
        ([_probe(1, 0.6, 0.5, 0.7, 0.9), _probe(2, 0.1, 0.0, 0.2, 0.9)], "present", 1),  # ties: lowest layer
        # within ACC_OWN_TIE (0.01) of the best is a tie: one held-out step must not move the layer
        ([_probe(0, 0.0, -0.1, 0.1, 0.9988), _probe(1, 0.6, 0.5, 0.7, 1.0)], "absent", 0),
        ([_probe(0, 0.0, -0.1, 0.1, 0.985), _probe(1, 0.6, 0.5, 0.7, 1.0)], "present", 1),  # beyond it
    ],
)
def test_representation_verdict_reads_the_tuned_models_best_layer(probes, want, layer) -> None:
    from steering.battery.verdict import REPRESENTATION_THRESHOLDS, representation_verdict

    assert REPRESENTATION_THRESHOLDS == {"present_lo": 0.5, "absent_hi": 0.35}
    label, reason, row = representation_verdict(probes)
    assert label.value == want and row is not None and row.layer == layer and f"layer {layer}" in reason


def test_representation_verdict_without_a_defined_share_is_inconclusive() -> None:
    from steering.battery.verdict import Representation, representation_verdict

    label, reason, row = representation_verdict([_probe(1, math.nan, math.nan, math.nan, 0.5)])
    assert label is Representation.INCONCLUSIVE and row is None and "no computation-probe row" in reason
    assert representation_verdict(_rows(0.9, 0.8, 1.0, 1.0, 0.95, 1.0))[0] is Representation.INCONCLUSIVE


def test_combine_rule_every_case() -> None:
    from steering.battery.verdict import Representation as R
    from steering.battery.verdict import combine

    V = Verdict
    table = {
        (V.SELECT, R.PRESENT): V.SELECT,
        (V.SELECT, R.INCONCLUSIVE): V.SELECT,
        (V.SELECT, R.ABSENT): V.INCONCLUSIVE,
        (V.CREATE, R.ABSENT): V.CREATE,
        (V.CREATE, R.INCONCLUSIVE): V.CREATE,
        (V.CREATE, R.PRESENT): V.INCONCLUSIVE,
        (V.INCONCLUSIVE, R.PRESENT): V.INCONCLUSIVE,
        (V.INCONCLUSIVE, R.ABSENT): V.INCONCLUSIVE,
    }
    for (b, r), want in table.items():
        got, why = combine(b, r)
        assert got is want, (b, r)
        assert why
    assert "use" in combine(V.CREATE, R.PRESENT)[1]


def test_judge_carries_the_representation_and_combined_verdicts() -> None:
    rows = _rows(0.9, 0.8, 1.0, 1.0, 0.95, 1.0) + [_probe(1, 0.2, 0.1, 0.3, 0.9)]
    j = judge("v", "t", rows, decision="match:=", computation="span:scratchpad")
    assert j.verdict is Verdict.SELECT and j.representation.value == "absent"
    assert j.combined is Verdict.INCONCLUSIVE and (
        j.rep_share,
        j.rep_share_lo,
        j.rep_share_hi,
        j.rep_layer,
    ) == (
        0.2,
        0.1,
        0.3,
        1,
    )
    rec = j.to_record()
    assert rec["representation"] == "absent" and rec["combined"] == "inconclusive"


def test_a_recovery_between_the_cut_points_is_named_partial() -> None:
    # forced 0.28 [0.12, 0.46] and steering 0.23 [0.07, 0.39]: neither lower bound reaches 0.35,
    # neither upper bound is below it (organism seed 0's partial_create)
    label, reason = verdict(_rows(0.23, 0.07, 0.39, 0.28, 0.12, 0.46))
    assert label is Verdict.INCONCLUSIVE and reason.startswith("partial recovery: no test shows presence")
