"""Typed battery rows: construction, table records, round trips, bad ids."""

from __future__ import annotations

import json
import math

import pytest

from probes.errors import ElicitError
from steering.battery.rows import BatteryRow, TestId, rows_frame

#: the core columns of every battery record, in order (written out here, independent of rows.py)
CORE_COLUMNS = (
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


def test_make_casts_and_splits_numbers() -> None:
    r = BatteryRow.make(
        "direction", "sft", "parity", None, None, 1, 0, 0, 2, 7.0, "d", shift_norm=3, chance=0.5
    )
    assert r.test is TestId.DIRECTION and r.layer == -1 and r.position == "" and r.n == 7
    assert isinstance(r.effect, float) and r.chance == 0.5 and r.extra == {"shift_norm": 3.0}
    assert r.value("shift_norm") == 3.0 and r.value("chance") == 0.5 and math.isnan(r.value("gap_lo"))
    assert r.value("gap_lo", 1.5) == 1.5


def test_record_order_and_round_trip() -> None:
    r = BatteryRow.make(
        TestId.STEERING,
        "sft",
        "parity",
        1,
        "match:=",
        0.9,
        0.1,
        0.8,
        1.0,
        64,
        "x",
        alpha=2.0,
        acc_base=0.4,
        gr_random_floor=0.0,
        foo=1.25,
    )
    rec = r.to_record()
    assert list(rec) == [
        *CORE_COLUMNS,
        "acc_base",
        "alpha",
        "gr_random_floor",
        "foo",
    ]
    assert rec["test"] == "behavioural:steering" and json.loads(json.dumps(rec)) == rec
    assert BatteryRow.from_record(rec) == r


def test_frame_fills_missing_with_nan_and_reads_back() -> None:
    a = BatteryRow.make(TestId.PROBE, "sft", "parity", 0, "match:=", 0.9, 0.5, 0.8, 1.0, 64, "")
    b = BatteryRow.make(
        TestId.DIRECTION, "sft", "parity", 0, "match:=", 0.3, 0.2, 0.1, 0.5, 64, "", shift_norm=2.0
    )
    df = rows_frame([a, b])
    assert list(df.test) == ["probe", "direction"] and math.isnan(df.shift_norm.iloc[0])
    assert [BatteryRow.from_record(x) for x in df.to_dict("records")] == [a, b]


def test_bad_input_names_the_value() -> None:
    with pytest.raises(ElicitError, match="'nope'.*Valid ids"):
        TestId.parse("nope")
    with pytest.raises(ElicitError, match=r"lacks column\(s\) \['task'"):
        BatteryRow.from_record({"test": "probe", "variant": "v"})
