"""The report: schema, and never a wrong-direction verdict on degenerate families."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
import transformers

from probes import load_family
from steering.battery import THRESHOLDS, BatteryConfig
from steering.report import SCHEMA, run_report

SMALL = BatteryConfig(max_dev=16, max_test=40, max_fit=64, alphas=(0.0, 0.25, 0.5), n_shuffles=5)


def _degenerate_family(organism: Path, tmp: Path) -> Path:
    """base, an identical copy of base, and a variant with re-initialised random weights."""
    shutil.copytree(organism / "base", tmp / "base")
    shutil.copytree(organism / "base", tmp / "same")
    model = transformers.AutoModelForCausalLM.from_pretrained(organism / "base")
    torch.manual_seed(123)
    rand = transformers.AutoModelForCausalLM.from_config(model.config)
    rand.save_pretrained(tmp / "random")
    transformers.AutoTokenizer.from_pretrained(organism / "base").save_pretrained(tmp / "random")
    shutil.copytree(organism / "tasks", tmp / "tasks")
    src = (organism / "family.toml").read_text()
    parity = src[src.index("[tasks.parity]") :].split("\n\n")[0]
    (tmp / "family.toml").write_text(
        'name = "degenerate"\n\n[variants.base]\npath = "base"\ntask = "parity"\n\n'
        '[variants.same]\npath = "same"\ntask = "parity"\n\n[variants.random]\npath = "random"\ntask = "parity"\n\n'
        + parity
        + "\n"
    )
    return tmp


@pytest.mark.slow
def test_identical_and_random_variants(organism_quick: Path, tmp_path: Path) -> None:
    fam = load_family(_degenerate_family(organism_quick, tmp_path / "fam"))
    rep = run_report(fam, out=tmp_path / "out", config=SMALL, progress=False)
    v = rep.verdicts.set_index("variant")
    # identical checkpoint: never create; the steering effect is what steering the base does, gap is zero
    # the rule: a gap of at least min_gap with CI above 0, else inconclusive (an identical checkpoint has none)
    assert v.loc["same", "verdict"] == "inconclusive" and v.loc["same", "reason"].startswith(
        "no gap to explain"
    )
    assert v.loc["same", "acc_variant"] == v.loc["same", "acc_base"]
    assert v.loc["same", "gap"] <= 0  # measured from max(base, chance): nothing to explain
    same_dir = rep.tests[(rep.tests.variant == "same") & (rep.tests.test == "direction")]
    assert (same_dir.effect.abs() < 1e-6).all() or (same_dir.shift_norm < 1e-6).all()
    # random weights: never select
    assert v.loc["random", "verdict"] != "select"
    # the typed values the report returns agree with its tables
    assert {j.variant: j.verdict.value for j in rep.judged} == dict(zip(v.index, v.verdict, strict=True))
    assert len(rep.rows) == len(rep.tests)
    # outputs and schema
    payload = json.loads((tmp_path / "out" / "report.json").read_text())
    assert payload["schema"] == SCHEMA and set(payload["variants"]) == {"same", "random"}
    assert payload["thresholds"] == THRESHOLDS
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| same | parity |" in md and "What would change it" in md
    for t in ("battery", "verdicts", "sweep"):
        assert not pd.read_parquet(tmp_path / "out" / "tables" / f"{t}.parquet").empty
    # every test row carries effect, null, CI and n
    assert {"test", "variant", "effect", "null", "ci_lo", "ci_hi", "n", "verdict"} <= set(rep.tests.columns)
