"""The discrimination table: the shipped file loads, roles follow its intervals, a corrupt file is an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probes.errors import ElicitError
from steering.battery.discrimination import DISCRIMINATION_FILE, load_discrimination, role
from steering.battery.rows import TestId


def test_the_shipped_table_covers_every_calibrated_test() -> None:
    table = load_discrimination()
    assert DISCRIMINATION_FILE.exists() and table
    known = {t.value for t in TestId}
    for d in table.values():
        assert d.test in known, d.test
        assert 0.0 <= d.auroc_lo <= d.auroc <= d.auroc_hi <= 1.0
        assert d.discriminates == (d.auroc_lo > 0.5)
        assert d.n_select > 0 and d.n_create > 0 and d.seeds
    # the behavioural statistics are in it and decide
    assert {"forced_grc", "steer_grc"} <= set(table)
    assert role(TestId.FORCED_FORMAT.value, table) == "decides"


def test_roles_follow_the_intervals(tmp_path: Path) -> None:
    doc = {
        "seeds": [0, 1],
        "statistics": {
            "a": {
                "test": "weights",
                "auroc": 0.7,
                "auroc_lo": 0.4,
                "auroc_hi": 0.9,
                "discriminates": False,
                "n_select": 10,
                "n_create": 4,
            },
            "b": {
                "test": "probe",
                "auroc": 0.9,
                "auroc_lo": 0.6,
                "auroc_hi": 1.0,
                "discriminates": True,
                "n_select": 10,
                "n_create": 4,
            },
        },
    }
    p = tmp_path / "d.json"
    p.write_text(json.dumps(doc))
    table = load_discrimination(p)
    assert role("weights", table) == "descriptive" and role("probe", table) == "discriminates"
    assert role("sae:fvu", table) == "not calibrated" and table["a"].seeds == (0, 1)
    assert table["b"].to_record()["seeds"] == [0, 1]
    assert load_discrimination(tmp_path / "missing.json") == {}
    p.write_text("{not json")
    with pytest.raises(ElicitError, match="scripts/seeds.py"):
        load_discrimination(p)
    p.write_text(json.dumps({"seeds": [0]}))
    with pytest.raises(ElicitError, match="not a discrimination table"):
        load_discrimination(p)
