"""Typed battery results: the test ids and the one row type every battery test returns.

A :class:`BatteryRow` is frozen; :meth:`BatteryRow.to_record` gives the flat dict the result
tables (``tables/battery.parquet``) and ``report.json`` hold, with the same keys in the same
order for every writer, and :meth:`BatteryRow.from_record` reads one back.

    >>> r = BatteryRow(TestId.PROBE, "sft", "parity", 1, "match:=", 0.9, 0.5, 0.8, 1.0, 64)
    >>> r.to_record()["test"], BatteryRow.from_record(r.to_record()) == r
    ('probe', True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any

import pandas as pd

from probes.errors import ElicitError

__all__ = ["TestId", "BatteryRow", "rows_frame", "OPTIONAL_FIELDS"]


class TestId(StrEnum):
    """Every battery test, by the id its rows carry in the ``test`` column."""

    STEERING = "behavioural:steering"
    FORCED_FORMAT = "behavioural:forced_format"
    DIRECTION = "direction"
    DIRECTION_SPAN = "direction:span_share"
    COMPUTATION_PROBE = "computation_probe"
    PROBE = "probe"
    WEIGHTS = "weights"
    SAE_FVU = "sae:fvu"
    CROSSCODER = "crosscoder:variant_only"
    PASSK_CROSSOVER = "passk_crossover"
    COT_DECODING = "cot_decoding"
    INFORMATION_GAIN = "information_gain"
    INFORMATION_GAIN_WU = "information_gain:wu"
    EARLY_ANSWER = "early_answer"
    EARLY_ANSWER_PROBE = "early_answer_probe"
    OOD_DROP = "ood_drop"

    @classmethod
    def parse(cls, value: str | TestId) -> TestId:
        try:
            return cls(value)
        except ValueError:
            raise ElicitError(
                f"Unknown battery test id {value!r}. Valid ids: {[t.value for t in cls]}. "
                "Add the id to steering.battery.rows.TestId when you add a battery test."
            ) from None


TestId.__test__ = False  # type: ignore[attr-defined]  # not a pytest test class, despite the name


#: The optional fields the verdict and the report read, in the order the tables hold them.
OPTIONAL_FIELDS = (
    "acc_base",
    "acc_tuned",
    "acc_intervention",
    "acc_random",
    "alpha",
    "chance",
    "gr_floor",
    "gr_floor_lo",
    "gr_floor_hi",
    "tuned_gap",
    "gap_lo",
    "gap_hi",
    "gr_random_floor",
)
_CORE = (
    "test",
    "variant",
    "task",
    "layer",
    "position",
    "effect",
    "null",
    "ci_lo",
    "ci_hi",
    "n",
    "verdict",
    "detail",
)


@dataclass(frozen=True)
class BatteryRow:
    """One result of one battery test for one variant (and layer / position where it has them).

    ``effect`` is the test's statistic, ``null`` its null value, ``ci_lo``/``ci_hi`` the 95%
    interval of ``effect``, ``n`` the prompts (or latents, matrices) it rests on. ``layer`` is
    -1 and ``position`` empty where the test has none. ``verdict`` is ``info`` until the report
    writes the variant's verdict onto its behavioural rows. The optional accuracy / gap fields
    are set by the behavioural tests, which the verdict reads; ``extra`` holds further
    test-specific numbers (e.g. ``shift_norm``).
    """

    test: TestId
    variant: str
    task: str
    layer: int
    position: str
    effect: float
    null: float
    ci_lo: float
    ci_hi: float
    n: int
    verdict: str = "info"
    detail: str = ""
    acc_base: float | None = None
    acc_tuned: float | None = None
    acc_intervention: float | None = None
    acc_random: float | None = None
    alpha: float | None = None
    chance: float | None = None
    gr_floor: float | None = None
    gr_floor_lo: float | None = None
    gr_floor_hi: float | None = None
    tuned_gap: float | None = None
    gap_lo: float | None = None
    gap_hi: float | None = None
    gr_random_floor: float | None = None
    extra: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def make(
        cls,
        test: TestId,
        variant: str,
        task: str,
        layer: int | None,
        position: str | None,
        effect: float,
        null: float,
        lo: float,
        hi: float,
        n: int,
        detail: str,
        **numbers: Any,
    ) -> BatteryRow:
        """A row with the numbers cast to float; keywords not in :data:`OPTIONAL_FIELDS` go to ``extra``."""
        opt: dict[str, Any] = {k: float(v) for k, v in numbers.items() if k in OPTIONAL_FIELDS}
        extra = {k: float(v) for k, v in numbers.items() if k not in OPTIONAL_FIELDS}
        return cls(
            TestId.parse(test),
            str(variant),
            task,
            -1 if layer is None else int(layer),
            position or "",
            float(effect),
            float(null),
            float(lo),
            float(hi),
            int(n),
            "info",
            detail,
            extra=extra,
            **opt,
        )

    def value(self, name: str, default: float = math.nan) -> float:
        """An optional or extra number by name; ``default`` when the row does not carry it."""
        got = getattr(self, name, None) if name in OPTIONAL_FIELDS else self.extra.get(name)
        return default if got is None else float(got)

    def to_record(self) -> dict[str, Any]:
        """The flat table row: core columns, then the optional fields that are set, then ``extra``."""
        rec: dict[str, Any] = {k: getattr(self, k) for k in _CORE}
        rec["test"] = self.test.value
        rec.update({k: getattr(self, k) for k in OPTIONAL_FIELDS if getattr(self, k) is not None})
        rec.update(self.extra)
        return rec

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> BatteryRow:
        """Read a table row back; NaN optional fields (a union table's fill) count as unset."""
        missing = [k for k in _CORE if k not in rec]
        if missing:
            raise ElicitError(
                f"Battery record lacks column(s) {missing}; it has {sorted(rec)}. Pass rows of "
                "tables/battery.parquet or BatteryRow.to_record() output."
            )
        known = {f.name for f in fields(cls)}
        core = {k: rec[k] for k in _CORE}
        core["test"] = TestId.parse(core["test"])
        opt: dict[str, Any] = {k: float(rec[k]) for k in OPTIONAL_FIELDS if k in rec and not _missing(rec[k])}
        extra = {k: float(v) for k, v in rec.items() if k not in known and not _missing(v)}
        return cls(**core, **opt, extra=extra)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def rows_frame(rows: Iterable[BatteryRow]) -> pd.DataFrame:
    """The battery table: one record per row, columns in first-appearance order (NaN where a row lacks one)."""
    return pd.DataFrame([r.to_record() for r in rows])


def as_rows(rows: Sequence[BatteryRow | Mapping[str, Any]]) -> list[BatteryRow]:
    """Typed rows from rows or table records (what :func:`steering.battery.verdict.verdict` accepts)."""
    return [r if isinstance(r, BatteryRow) else BatteryRow.from_record(r) for r in rows]
