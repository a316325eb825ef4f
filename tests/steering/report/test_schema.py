"""report.json: written from the typed values, NaN as null, thresholds the verdict rule's."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from probes.data.tasks import Example, Task
from probes.version import __version__
from steering.battery.config import BatteryConfig
from steering.battery.rows import BatteryRow, TestId, rows_frame
from steering.battery.verdict import THRESHOLDS, VariantVerdict, Verdict
from steering.report.schema import SCHEMA, json_value, report_payload, to_parquet, write_json


def test_json_value_cases() -> None:
    assert json_value(float("nan")) is None and json_value(np.float32("nan")) is None
    assert json_value(np.float64(0.25)) == 0.25 and type(json_value(np.float64(0.25))) is float
    assert json_value(np.int64(3)) == 3 and type(json_value(np.int64(3))) is int
    assert json_value((1, 2)) == [1, 2] and json_value("x") == "x"


def _payload() -> dict:
    ref = Task("ref", (Example(id="a", prompt="p", answer="1", split="test"),))
    row = BatteryRow.make(TestId.STEERING, "sft", "ref", 2, "match:=", 0.8, 0.1, 0.7, float("nan"), 40, "d")
    verdicts = [
        VariantVerdict("sft", "ref", Verdict.SELECT, acc_base=0.2, acc_variant=0.9, n_test=40, reason="r")
    ]
    return report_payload(
        "fam",
        verdicts,
        rows_frame([row]),
        BatteryConfig(seed=4),
        ref,
        seconds=1.5,
        stage_seconds={"steer": 1.0},
    )


def test_payload_keys_and_values(tmp_path: Path) -> None:
    p = _payload()
    assert p["schema"] == SCHEMA and p["kit_version"] == __version__ and p["family"] == "fam"
    assert p["thresholds"] == THRESHOLDS
    assert p["variants"]["sft"]["verdict"] == "select" and p["variants"]["sft"]["acc_variant"] == 0.9
    assert p["variants"]["sft"]["steer_gr"] is None  # NaN -> null
    [t] = p["tests"]
    assert (t["test"], t["variant"], t["layer"], t["effect"], t["ci_hi"], t["n"]) == (
        TestId.STEERING.value,
        "sft",
        2,
        0.8,
        None,
        40,
    )
    assert p["config"]["seed"] == 4 and p["config"]["contrast"] == ["careful", "direct"]
    assert p["reference_task"] == "ref" and len(p["reference_task_hash"]) > 0
    back = json.loads(write_json(p, tmp_path / "report.json").read_text())
    assert back == json.loads(json.dumps(p)) and "NaN" not in (tmp_path / "report.json").read_text()
    assert p["warnings"] == [] and p["embedding_probe"] is None


def test_payload_carries_the_warnings_and_the_embedding_probe() -> None:
    from steering.report.caveats import Caveat

    ref = Task("ref", (Example(id="a", prompt="p", answer="1", split="test"),))
    warn = Caveat("budget", "15% cut", task="t", variant="sft", value=0.15)
    p = report_payload(
        "fam",
        [],
        rows_frame([]),
        BatteryConfig(),
        ref,
        seconds=1.0,
        stage_seconds={},
        warnings=[warn, Caveat("small_split", "few")],
        embedding=(float("nan"), 0, "ref"),
    )
    assert p["warnings"][0] == {
        "check": "budget",
        "message": "15% cut",
        "task": "t",
        "variant": "sft",
        "value": 0.15,
    }
    assert p["warnings"][1]["value"] is None  # NaN -> null
    assert p["embedding_probe"] == {"auroc": None, "n": 0, "task": "ref"}
    json.dumps(p, allow_nan=False)


def test_to_parquet_stringifies_list_columns(tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [[1, 2], [3]], "b": [1.0, math.nan]})
    to_parquet(df, tmp_path / "t.parquet")
    back = pd.read_parquet(tmp_path / "t.parquet")
    assert list(back.a) == ["[1, 2]", "[3]"] and back.b.isna().tolist() == [False, True]
    assert isinstance(df.a.iloc[0], list)  # the caller's frame is untouched
