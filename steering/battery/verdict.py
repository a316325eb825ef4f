"""The verdict rule: one variant's battery rows -> ``select`` / ``create`` / ``inconclusive``.

:data:`THRESHOLDS` are fixed here, in one place; the report writes them into ``report.json``
and the figures read them from there. :func:`judge` returns the typed :class:`VariantVerdict`
the report, its tables and the CLI print.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from steering.battery.rows import BatteryRow, TestId, as_rows

__all__ = [
    "THRESHOLDS",
    "REPRESENTATION_THRESHOLDS",
    "Verdict",
    "Representation",
    "VariantVerdict",
    "verdict",
    "representation_verdict",
    "combine",
    "judge",
]

#: Thresholds of the verdict rule, fixed in code (see :func:`verdict` for the evidence).
#:
#: Calibration (docs/calibration.md, ``scripts/seeds.py`` on organism seeds 0-3, 2026-12-04; select
#: controls sft, dpo, rl, dpo_conf, sft_long, new_format: 24 items; create controls create,
#: create_far: 8 items): forced-format GR above chance, select 1.00 (1.00-1.19) vs create 0.00
#: (0.00-0.11), AUROC 1.00, the cut the controls of seeds 0-1 choose 0.50, held-out (seeds 2-3)
#: error 0.00; steering GR, select 1.00 (0.91-1.19) vs create 0.00 (0.00-0.09), AUROC 1.00, cut
#: 0.50, held-out error 0.00. ``partial_create`` (half of its gain in the base) sits between the
#: cut points on every seed: forced 0.26-0.41, steering 0.23-0.28.
#: Both cut points (0.5 select, 0.35 create) lie in the empty band between the controls.
THRESHOLDS: dict[str, float] = {
    # a variant must beat the base by this much accuracy on test for there to be a gap to explain
    "min_gap": 0.15,
    # gap recovered whose CI lower bound is at least this => the base already has the mode
    "select_gr_lo": 0.5,
    # gap recovered whose CI upper bound is below this => that test shows absence; a CI lower
    # bound at or above it => that test shows (partial) presence
    "create_gr_hi": 0.35,
    # the manipulation check of a steering run: the hook fired on at least this share of the
    # test prompts, and moved the next-token distribution by at least this KL (nats, median)
    "min_fired_share": 0.95,
    "min_kl": 0.01,
}


#: Cut points of the representation verdict (:func:`representation_verdict`) on the computation
#: probe's transfer share. Calibration (docs/calibration.md, organism seeds 0-3, 2026-12-04): the
#: share at the tuned model's best layer is 0.99 (-0.81-1.00) on the 24 select controls and 0.12
#: (-0.25-0.74) on the 8 create controls, AUROC 0.81 [0.64, 0.95], the training seeds' cut 0.33.
#: Without ``new_format`` the select controls read 0.13-1.00 (``sft_long`` 0.13 and 0.48 on seeds 3
#: and 0, every other one 0.78 or more); ``new_format`` reads -0.44 to -0.81 on every seed, because
#: the probe reads each model on the variant's own traces and the base never saw that notation (a
#: known failure of this test, reported, not hidden). The create control that
#: reads above 0.5 is ``create_far`` on seed 3, whose base carries the count mod 3 (the quantity is
#: present, its use is not). The same 0.5 / 0.35 cuts as the behavioural rule, read on the
#: interval of one pre-chosen layer.
REPRESENTATION_THRESHOLDS: dict[str, float] = {"present_lo": 0.5, "absent_hi": 0.35}


class Verdict(StrEnum):
    SELECT = "select"
    CREATE = "create"
    INCONCLUSIVE = "inconclusive"


class Representation(StrEnum):
    """The representation verdict: does the base already represent the tuned model's reasoning?"""

    PRESENT = "present"
    ABSENT = "absent"
    INCONCLUSIVE = "inconclusive"


_NAN = math.nan


@dataclass(frozen=True)
class VariantVerdict:
    """A variant's verdict with the numbers it rests on (one row of ``tables/verdicts.parquet``).

    ``*_gr`` are Venhoff et al.'s plain gap recovered, ``*_grc`` the same measured from
    max(base, chance) (what the rule reads); ``random_*`` the norm-matched random direction at
    the steering setting; ``max_cos_*`` the largest decision-token / computation cosine of the
    shift with the base direction; ``n_test`` the test prompts.

    The steering null: ``random_grc`` is the best null direction (by dev accuracy, each null
    given the vector's dev search) on test, ``n_random`` the random draws beside the shuffled
    vector, ``random_grc_max`` the largest test GR of any draw, ``random_recover_share`` the share
    of draws recovering at least half the gap, ``shuffled_grc`` the label-shuffled vector's;
    ``diff_vs_random*`` the paired steered-minus-best-null accuracy difference with its 95%
    interval (over prompts) and one-sided permutation p-value; ``diff_vs_random_h*`` its interval
    over random draws *and* prompts (a hierarchical bootstrap: what the rule reads). ``fired_share`` / ``kl_median``: the steering
    run's manipulation check.
    """

    variant: str
    task: str
    verdict: Verdict
    acc_base: float = _NAN
    acc_variant: float = _NAN
    gap: float = _NAN
    steer_gr: float = _NAN
    steer_gr_lo: float = _NAN
    steer_gr_hi: float = _NAN
    random_gr: float = _NAN
    forced_gr: float = _NAN
    forced_gr_lo: float = _NAN
    forced_gr_hi: float = _NAN
    chance: float = _NAN
    steer_grc: float = _NAN
    steer_grc_lo: float = _NAN
    steer_grc_hi: float = _NAN
    random_grc: float = _NAN
    forced_grc: float = _NAN
    forced_grc_lo: float = _NAN
    forced_grc_hi: float = _NAN
    max_cos_decision: float = _NAN
    max_cos_computation: float = _NAN
    n_test: int = 0
    n_random: int = 0
    random_grc_max: float = _NAN
    random_recover_share: float = _NAN
    shuffled_grc: float = _NAN
    diff_vs_random: float = _NAN
    diff_vs_random_lo: float = _NAN
    diff_vs_random_hi: float = _NAN
    diff_vs_random_p: float = _NAN
    diff_vs_random_hlo: float = _NAN
    diff_vs_random_hhi: float = _NAN
    fired_share: float = _NAN
    kl_median: float = _NAN
    reason: str = ""
    representation: Representation = Representation.INCONCLUSIVE
    representation_reason: str = ""
    rep_share: float = _NAN
    rep_share_lo: float = _NAN
    rep_share_hi: float = _NAN
    rep_layer: int = -1
    combined: Verdict = Verdict.INCONCLUSIVE
    combined_reason: str = ""

    def to_record(self) -> dict[str, Any]:
        rec = asdict(self)
        rec["verdict"] = self.verdict.value
        rec["representation"] = self.representation.value
        rec["combined"] = self.combined.value
        return rec


def _first(rows: Sequence[BatteryRow], test: TestId) -> BatteryRow | None:
    return next((r for r in rows if r.test == test), None)


def _no_gap(s: BatteryRow, thresholds: Mapping[str, float]) -> str:
    """Why there is no gap to explain (empty when there is one): rule step 1."""
    gap, gap_lo = s.value("tuned_gap"), s.value("gap_lo")
    if gap >= thresholds["min_gap"] and gap_lo > 0:
        return ""
    return (
        f"no gap to explain: {s.variant} beats max(base, chance) by {gap:+.2f} accuracy "
        f"(CI lower {gap_lo:+.2f}; needs >= {thresholds['min_gap']:.2f} and > 0)"
    )


@dataclass(frozen=True)
class _Evidence:
    """What one behavioural test says: presence (full or partial), absence, or neither, and why."""

    name: str
    select: bool
    present: bool
    absent: bool
    text: str
    missing: str = ""  # why the test cannot witness absence (empty when it can)


def _gr(r: BatteryRow) -> tuple[float, float, float]:
    return r.value("gr_floor", r.effect), r.value("gr_floor_lo", r.ci_lo), r.value("gr_floor_hi", r.ci_hi)


def _at_least(r: BatteryRow, lo: float, cut: float) -> bool:
    """GR >= cut with confidence: the difference test's lower bound when the row has it (stable
    for a small gap), else the ratio interval's lower bound."""
    m = r.value("margin_select_lo") if cut == THRESHOLDS["select_gr_lo"] else math.nan
    return m >= 0 if not math.isnan(m) else lo >= cut


def _below(r: BatteryRow, hi: float, cut: float) -> bool:
    """GR < cut with confidence: the difference test's upper bound when the row has it, else the ratio's."""
    m = r.value("margin_create_hi") if cut == THRESHOLDS["create_gr_hi"] else math.nan
    return m < 0 if not math.isnan(m) else hi < cut


def _forced(f: BatteryRow | None, th: Mapping[str, float]) -> _Evidence:
    if f is None:
        return _Evidence(
            "forced format",
            False,
            False,
            False,
            "",
            "forcing the format was not run (the task names no format_prefix)",
        )
    gr, lo, hi = _gr(f)
    return _Evidence(
        "forced format",
        _at_least(f, lo, th["select_gr_lo"]),
        lo >= th["create_gr_hi"],
        _below(f, hi, th["create_gr_hi"]),
        f"forcing the format recovers {gr:.2f} of the gap above chance (CI {lo:.2f}-{hi:.2f})",
    )


def _manipulation(s: BatteryRow, th: Mapping[str, float]) -> str:
    """Why the steering run is no valid manipulation (empty when its check passed)."""
    fired, kl = s.value("fired_share", 1.0), s.value("kl_median")
    if s.n == 0 or fired == 0:
        return "the steering hook never fired (no prompt has the decision token), so nothing was steered"
    if fired < th["min_fired_share"]:
        return f"the steering hook fired on only {fired:.0%} of the test prompts (needs {th['min_fired_share']:.0%})"
    if not math.isnan(kl) and kl < th["min_kl"]:
        return f"steering moved the next-token distribution by a median KL of {kl:.3g} nats (needs {th['min_kl']:g})"
    return ""


def _steering(s: BatteryRow, th: Mapping[str, float]) -> _Evidence:
    check = _manipulation(s, th)
    if s.n == 0:
        return _Evidence("steering", False, False, False, check, check)
    gr, lo, hi = _gr(s)
    rnd = s.value("gr_random_floor", s.null)
    # the interval over random draws and prompts when the row has it, else over prompts
    hier = not math.isnan(s.value("diff_vs_random_hlo"))
    d_lo = s.value("diff_vs_random_hlo") if hier else s.value("diff_vs_random_lo")
    d_hi = s.value("diff_vs_random_hhi") if hier else s.value("diff_vs_random_hi")
    n_null = s.value("n_null", 0.0 if math.isnan(rnd) else 1.0)
    beats = not math.isnan(d_lo) and d_lo > 0
    if math.isnan(rnd):
        vs = "no random control ran, so steering cannot show selection"
    else:
        vs = (
            f"best of {n_null:.0f} null directions {rnd:.2f}; steered - null "
            f"{s.value('diff_vs_random'):+.2f} accuracy [{d_lo:+.2f}, {d_hi:+.2f}]"
            + (" over draws and prompts" if hier else "")
        )
    return _Evidence(
        "steering",
        _at_least(s, lo, th["select_gr_lo"]) and beats,
        lo >= th["create_gr_hi"] and beats,
        _below(s, hi, th["create_gr_hi"]) and not check,
        f"steering the base recovers {gr:.2f} of the gap above chance (CI {lo:.2f}-{hi:.2f}; {vs})",
        check,
    )


def verdict(
    rows: Sequence[BatteryRow | Mapping[str, Any]], thresholds: Mapping[str, float] = THRESHOLDS
) -> tuple[Verdict, str]:
    """Combine one variant's battery rows into ``(verdict, reason)``.

    The rule (thresholds in :data:`THRESHOLDS`, fixed in code):

    Gap and gap recovered are read from ``max(acc(base), chance)`` (``chance`` = guessing among
    the task's answers): a below-chance base that an intervention merely turns into a guesser
    has recovered nothing. The plain Venhoff et al. ratio is reported beside it (``effect``).

    1. **Is there a gap?** The variant must beat max(base, chance) on the test split by at least
       ``min_gap`` accuracy with the bootstrap CI of the difference above 0. Otherwise the
       verdict is ``inconclusive`` (nothing post-training added to explain). This keeps an
       identical checkpoint and a broken/random variant from ever being called ``select``
       or ``create``.
    2. **Select** if the base recovers the gap by itself: forced-format gap recovered with CI
       lower bound >= ``select_gr_lo``; or steering gap recovered with CI lower bound >=
       ``select_gr_lo`` *and* the reasoning vector beating the best null direction (random
       draws and the label-shuffled vector, each given the same dev search) in a paired test
       whose interval lies above 0. A random direction that recovers the gap shows that any push
       elicits the mode, not that the direction is the one post-training used.
    3. **Create** needs two witnesses of absence (Ward et al. 2025: a base-derived direction can
       fail to steer the base while the mode is there, so one failed run is not evidence): both
       forcing the format and steering show a gap-recovered CI upper bound below
       ``create_gr_hi``, the steering run passed its manipulation check (the hook fired on at
       least ``min_fired_share`` of the prompts and moved the next-token distribution by a
       median KL of at least ``min_kl``), and no test shows presence (a CI lower bound at or
       above ``create_gr_hi`` with, for steering, the paired win over the null).
    4. Otherwise ``inconclusive``, and the reason names what is missing (the test not run, the
       manipulation check that failed, the partial recovery). A missing null never reads as 0.

    Direction, probe and weight tests are reported beside the verdict but never decide it:
    on the prototype organism the decision-token cosine of a *create* control (0.70-0.75) was
    close to that of *select* variants (0.81-0.88), while behavioural elicitation separated
    them cleanly (0.98 vs 0.03). On this kit's organism (seed 0, ``elicit run``) the select
    variants' forced-format gap recovered sits near 1 and the create controls' near 0, so the
    0.5 / 0.35 cut points sit in a wide empty band between the controls; the ``min_gap`` of
    0.15 is three times the bootstrap half-width of an accuracy on ~100 test prompts at chance.
    The manipulation cut points are conventions, not fits: a hook that fired on fewer than 95%
    of prompts did not run the test asked for, and a median KL under 0.01 nats is a push that
    moved no next-token probability by more than a few percent.
    """
    typed = as_rows(rows)
    s, f = _first(typed, TestId.STEERING), _first(typed, TestId.FORCED_FORMAT)
    if s is None:
        return Verdict.INCONCLUSIVE, "no behavioural test could be run"
    no_gap = _no_gap(s, thresholds)
    if no_gap:
        return Verdict.INCONCLUSIVE, no_gap
    tests = [_forced(f, thresholds), _steering(s, thresholds)]
    said = "; ".join(t.text for t in tests if t.text)
    chosen = next((t for t in tests if t.select), None)
    if chosen is not None:
        return Verdict.SELECT, f"{chosen.name} shows the mode is there: {said}"
    absent = [t for t in tests if t.absent]
    present = [t for t in tests if t.present]
    if len(absent) >= 2 and not present:
        return Verdict.CREATE, (f"two tests show absence of the gap of {s.value('tuned_gap'):.2f}: {said}")
    if present:
        why = f"partial recovery ({', '.join(t.name for t in present)}): {said}"
    elif not absent and not any(t.missing for t in tests):
        # both tests ran and passed their checks, but each interval straddles the cut points
        why = (
            f"partial recovery: no test shows presence (a CI lower bound >= {thresholds['create_gr_hi']}) "
            f"or absence (a CI upper bound < {thresholds['create_gr_hi']})" + (f": {said}" if said else "")
        )
    else:
        missing = [t.missing for t in tests if not t.absent and t.missing]
        why = (
            f"only {len(absent)} test{'s' if len(absent) != 1 else ''} show{'' if len(absent) != 1 else 's'} "
            f"absence and `create` needs two independent tests showing it"
            + (f" ({'; '.join(missing)})" if missing else "")
            + (f": {said}" if said else "")
        )
    return Verdict.INCONCLUSIVE, why


#: own-probe accuracies this close to the best layer's are a tie (about 9 held-out steps of 864)
ACC_OWN_TIE = 0.01


def representation_verdict(
    rows: Sequence[BatteryRow | Mapping[str, Any]],
    thresholds: Mapping[str, float] = REPRESENTATION_THRESHOLDS,
) -> tuple[Representation, str, BatteryRow | None]:
    """Does the base already represent what the tuned variant computes? ``(label, reason, row)``.

    Read on the computation probe (``computation_probe`` rows: the share of the tuned model's
    step-value decodability above the input baseline that the base carries, with its interval
    over held-out traces) at **one layer chosen without looking at the base**: the layer where
    the tuned model's own probe decodes best (``acc_own``; layers within :data:`ACC_OWN_TIE` of
    the best are tied, and ties go to the lowest layer), so taking the best of several layers
    cannot inflate the transfer. The tolerance keeps the choice stable where the own probe
    saturates: on organism seed 0 one held-out step in 864 (0.9988 against 1.0) otherwise moved
    ``partial_create``'s layer from 0 to 1 and its share from -0.05 to 0.57.

    - ``present``: the share's interval lower bound is at least ``present_lo`` and above the
      shuffled-target null;
    - ``absent``: its upper bound is below ``absent_hi``;
    - ``inconclusive`` otherwise, or when no row has a defined share (no reference traces, or the
      tuned model's own probe no better than the input).

    The crosscoder and SAE measures are reported beside it but do not enter: on the organism they
    do not separate select from create controls (docs/calibration.md), so they are descriptive.
    """
    typed = [r for r in as_rows(rows) if r.test == TestId.COMPUTATION_PROBE and math.isfinite(r.effect)]
    if not typed:
        return (
            Representation.INCONCLUSIVE,
            "no computation-probe row with a defined share (the task has no reference traces or "
            "computation span, or the tuned model's own probe decodes no better than the input)",
            None,
        )
    best = max(x.value("acc_own", -1.0) for x in typed)
    r = min((x for x in typed if x.value("acc_own", -1.0) >= best - ACC_OWN_TIE), key=lambda x: x.layer)
    where = (
        f"computation probe at layer {r.layer} (the tuned model's best-decoded layer, own accuracy "
        f"{r.value('acc_own'):.2f}): the base carries {r.effect:.2f} [{r.ci_lo:.2f}, {r.ci_hi:.2f}] of it "
        f"above the input baseline (shuffled null {r.null:.2f}, {r.n} traces)"
    )
    if r.ci_lo >= thresholds["present_lo"] and r.ci_lo > r.null:
        return (
            Representation.PRESENT,
            f"the base already represents the tuned model's computation: {where}",
            r,
        )
    if r.ci_hi < thresholds["absent_hi"]:
        return Representation.ABSENT, f"the base does not represent the tuned model's computation: {where}", r
    return Representation.INCONCLUSIVE, f"neither clearly present nor absent: {where}", r


def combine(behavioural: Verdict, representation: Representation) -> tuple[Verdict, str]:
    """The combined verdict of the behavioural and the representation verdicts.

    The rule: agreement, or a representation verdict that is ``inconclusive``, keeps the
    behavioural verdict (it is the calibrated one and rests on two tests); a behavioural
    ``inconclusive`` stays inconclusive (a representation alone never decides select vs create);
    a conflict (``select`` with the computation absent from the base, or ``create`` with it
    present) is ``inconclusive`` and says which way each points. ``create`` with the computation
    present is the case of a quantity the base computes but does not use: post-training may have
    created its *use*, which the behavioural tests see and the probe cannot.

    >>> combine(Verdict.SELECT, Representation.PRESENT)[0].value
    'select'
    >>> combine(Verdict.CREATE, Representation.PRESENT)[0].value
    'inconclusive'
    """
    if behavioural == Verdict.INCONCLUSIVE:
        return (
            Verdict.INCONCLUSIVE,
            "behavioural verdict inconclusive; a representation alone does not decide",
        )
    if representation == Representation.INCONCLUSIVE:
        return behavioural, f"behavioural {behavioural.value}; the representation test is inconclusive"
    agree = (behavioural == Verdict.SELECT) == (representation == Representation.PRESENT)
    if agree:
        return behavioural, f"behavioural {behavioural.value} and representation {representation.value} agree"
    return Verdict.INCONCLUSIVE, (
        f"behavioural {behavioural.value} but representation {representation.value}: the tests disagree"
        + (
            " (the base computes the quantity but cannot be made to use it: post-training may have created its use)"
            if behavioural == Verdict.CREATE
            else ""
        )
    )


def _max_cos(rows: Sequence[BatteryRow], position: str | None) -> float:
    return max(
        (r.effect for r in rows if r.test == TestId.DIRECTION and r.position == position), default=_NAN
    )


def judge(
    variant: str,
    task: str,
    rows: Sequence[BatteryRow],
    *,
    decision: str,
    computation: str | None,
    thresholds: Mapping[str, float] = THRESHOLDS,
) -> VariantVerdict:
    """The :class:`VariantVerdict` of ``variant`` from its rows (behavioural numbers copied beside the verdict)."""
    label, reason = verdict(rows, thresholds)
    rep, rep_reason, rep_row = representation_verdict(rows)
    combined, combined_reason = combine(label, rep)
    s, f = _first(rows, TestId.STEERING), _first(rows, TestId.FORCED_FORMAT)

    def sv(name: str) -> float:
        return (
            _NAN
            if s is None
            else float(getattr(s, name))
            if name in ("effect", "null", "ci_lo", "ci_hi")
            else s.value(name)
        )

    def fv(name: str) -> float:
        return (
            _NAN
            if f is None
            else float(getattr(f, name))
            if name in ("effect", "ci_lo", "ci_hi")
            else f.value(name)
        )

    return VariantVerdict(
        variant=variant,
        task=task,
        verdict=label,
        acc_base=sv("acc_base"),
        acc_variant=sv("acc_tuned"),
        gap=sv("tuned_gap"),
        steer_gr=sv("effect"),
        steer_gr_lo=sv("ci_lo"),
        steer_gr_hi=sv("ci_hi"),
        random_gr=sv("null"),
        forced_gr=fv("effect"),
        forced_gr_lo=fv("ci_lo"),
        forced_gr_hi=fv("ci_hi"),
        chance=sv("chance"),
        steer_grc=sv("gr_floor"),
        steer_grc_lo=sv("gr_floor_lo"),
        steer_grc_hi=sv("gr_floor_hi"),
        random_grc=sv("gr_random_floor"),
        forced_grc=fv("gr_floor"),
        forced_grc_lo=fv("gr_floor_lo"),
        forced_grc_hi=fv("gr_floor_hi"),
        max_cos_decision=_max_cos(rows, decision),
        max_cos_computation=_max_cos(rows, computation),
        n_test=0 if s is None else s.n,
        n_random=0 if s is None else int(s.value("n_random", 0.0)),
        random_grc_max=sv("random_grc_max"),
        random_recover_share=sv("random_recover_share"),
        shuffled_grc=sv("shuffled_grc"),
        diff_vs_random=sv("diff_vs_random"),
        diff_vs_random_lo=sv("diff_vs_random_lo"),
        diff_vs_random_hi=sv("diff_vs_random_hi"),
        diff_vs_random_p=sv("diff_vs_random_p"),
        diff_vs_random_hlo=sv("diff_vs_random_hlo"),
        diff_vs_random_hhi=sv("diff_vs_random_hhi"),
        fired_share=sv("fired_share"),
        kl_median=sv("kl_median"),
        reason=reason,
        representation=rep,
        representation_reason=rep_reason,
        rep_share=_NAN if rep_row is None else rep_row.effect,
        rep_share_lo=_NAN if rep_row is None else rep_row.ci_lo,
        rep_share_hi=_NAN if rep_row is None else rep_row.ci_hi,
        rep_layer=-1 if rep_row is None else rep_row.layer,
        combined=combined,
        combined_reason=combined_reason,
    )
