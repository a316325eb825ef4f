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

__all__ = ["THRESHOLDS", "Verdict", "VariantVerdict", "verdict", "judge"]

#: Thresholds of the verdict rule, fixed in code (see :func:`verdict` for the evidence).
THRESHOLDS: dict[str, float] = {
    # a variant must beat the base by this much accuracy on test for there to be a gap to explain
    "min_gap": 0.15,
    # gap recovered whose CI lower bound is at least this => the base already has the mode
    "select_gr_lo": 0.5,
    # gap recovered whose CI upper bound is below this (steering AND forcing) => created
    "create_gr_hi": 0.35,
    # steering must beat the norm-matched random direction by this much accuracy
    "over_random": 0.1,
}


class Verdict(StrEnum):
    SELECT = "select"
    CREATE = "create"
    INCONCLUSIVE = "inconclusive"


_NAN = math.nan


@dataclass(frozen=True)
class VariantVerdict:
    """A variant's verdict with the numbers it rests on (one row of ``tables/verdicts.parquet``).

    ``*_gr`` are Venhoff et al.'s plain gap recovered, ``*_grc`` the same measured from
    max(base, chance) (what the rule reads); ``random_*`` the norm-matched random direction at
    the steering setting; ``max_cos_*`` the largest decision-token / computation cosine of the
    shift with the base direction; ``n_test`` the test prompts.
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
    reason: str = ""

    def to_record(self) -> dict[str, Any]:
        rec = asdict(self)
        rec["verdict"] = self.verdict.value
        return rec


def _first(rows: Sequence[BatteryRow], test: TestId) -> BatteryRow | None:
    return next((r for r in rows if r.test == test), None)


_ONE_TEST = (
    "only one test shows absence: steering recovers {s_gr:.2f} of the gap above chance (CI up to {s_hi:.2f}), "
    "but forcing the format was not run (the task names no format_prefix); `create` needs two independent "
    "tests showing absence"
)


def _no_gap(s: BatteryRow, thresholds: Mapping[str, float]) -> str:
    """Why there is no gap to explain (empty when there is one): rule step 1."""
    gap, gap_lo = s.value("tuned_gap"), s.value("gap_lo")
    if gap >= thresholds["min_gap"] and gap_lo > 0:
        return ""
    return (
        f"no gap to explain: {s.variant} beats max(base, chance) by {gap:+.2f} accuracy "
        f"(CI lower {gap_lo:+.2f}; needs >= {thresholds['min_gap']:.2f} and > 0)"
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
       lower bound >= ``select_gr_lo``, or steering gap recovered with CI lower bound >=
       ``select_gr_lo`` *and* beating the norm-matched random direction by ``over_random``.
    3. **Create** if neither forcing the format nor steering recovers it: both tests were run
       and both gap-recovered CI upper bounds are < ``create_gr_hi``. A failed steering run alone
       is not evidence of absence (a base-derived direction can fail to steer the base while the
       mode is there), so a variant without a forced-format row (a task with no format prefix)
       is never ``create``: it is ``inconclusive`` and the reason names the missing test.
    4. Otherwise ``inconclusive``. A missing random control never reads as 0: steering without
       it cannot count as evidence of selection.

    Direction, probe and weight tests are reported beside the verdict but never decide it:
    on the prototype organism the decision-token cosine of a *create* control (0.70-0.75) was
    close to that of *select* variants (0.81-0.88), while behavioural elicitation separated
    them cleanly (0.98 vs 0.03). On this kit's organism (seed 0, ``elicit run``) the select
    variants' forced-format and steering gap recovered sit near 1 and the create controls'
    near 0, so the 0.5 / 0.35 cut points sit in a wide empty band between the controls; the
    ``min_gap`` of 0.15 is three times the bootstrap half-width of an accuracy on ~100 test
    prompts at chance.
    """
    typed = as_rows(rows)
    s, f = _first(typed, TestId.STEERING), _first(typed, TestId.FORCED_FORMAT)
    if s is None:
        return Verdict.INCONCLUSIVE, "no behavioural test could be run"
    gap = s.value("tuned_gap")
    no_gap = _no_gap(s, thresholds)
    if no_gap:
        return Verdict.INCONCLUSIVE, no_gap
    s_gr, s_lo, s_hi = (
        s.value("gr_floor", s.effect),
        s.value("gr_floor_lo", s.ci_lo),
        s.value("gr_floor_hi", s.ci_hi),
    )
    rnd = s.value("gr_random_floor", s.null)
    f_gr, f_lo, f_hi = (
        (f.value("gr_floor", f.effect), f.value("gr_floor_lo", f.ci_lo), f.value("gr_floor_hi", f.ci_hi))
        if f is not None
        else (_NAN, _NAN, _NAN)
    )
    if f is not None and f_lo >= thresholds["select_gr_lo"]:
        return Verdict.SELECT, (
            f"forcing the format recovers {f_gr:.2f} of the gap above chance (CI {f_lo:.2f}-{f_hi:.2f}); "
            f"steering the base recovers {s_gr:.2f} (CI {s_lo:.2f}-{s_hi:.2f}, random direction {rnd:.2f})"
        )
    if s_lo >= thresholds["select_gr_lo"] and not math.isnan(rnd) and s_gr - rnd >= thresholds["over_random"]:
        return Verdict.SELECT, (
            f"steering the base recovers {s_gr:.2f} of the gap above chance "
            f"(CI {s_lo:.2f}-{s_hi:.2f}) vs random {rnd:.2f}"
        )
    if f is None and s_hi < thresholds["create_gr_hi"]:
        return Verdict.INCONCLUSIVE, _ONE_TEST.format(s_gr=s_gr, s_hi=s_hi)
    if f is not None and s_hi < thresholds["create_gr_hi"] and f_hi < thresholds["create_gr_hi"]:
        return Verdict.CREATE, (
            f"neither steering (GR above chance {s_gr:.2f}, CI up to {s_hi:.2f}) nor forcing the format "
            f"(GR {f_gr:.2f}, CI up to {f_hi:.2f}) recovers the gap of {gap:.2f}"
        )
    no_random = "; no random control, so steering cannot show selection" if math.isnan(rnd) else ""
    return Verdict.INCONCLUSIVE, (
        f"partial recovery: steering GR above chance {s_gr:.2f} [{s_lo:.2f}, {s_hi:.2f}], forced "
        f"GR {f_gr:.2f} [{f_lo:.2f}, {f_hi:.2f}]{no_random}"
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
        reason=reason,
    )
