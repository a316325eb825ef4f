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
from steering.battery import THRESHOLDS, BatteryConfig, verdict
from steering.report import SCHEMA, run_report

SMALL = BatteryConfig(max_dev=16, max_test=40, max_fit=64, alphas=(0.0, 2.0, 8.0), n_shuffles=5)


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
    parity = src[src.index("[tasks.parity]"):].split("\n\n")[0]
    (tmp / "family.toml").write_text(
        'name = "degenerate"\n\n[variants.base]\npath = "base"\ntask = "parity"\n\n'
        '[variants.same]\npath = "same"\ntask = "parity"\n\n[variants.random]\npath = "random"\ntask = "parity"\n\n'
        + parity + "\n"
    )
    return tmp


@pytest.mark.slow
def test_identical_and_random_variants(organism_quick: Path, tmp_path: Path) -> None:
    fam = load_family(_degenerate_family(organism_quick, tmp_path / "fam"))
    rep = run_report(fam, out=tmp_path / "out", config=SMALL, progress=False)
    v = rep.verdicts.set_index("variant")
    # identical checkpoint: never create; the steering effect is what steering the base does, gap is zero
    assert v.loc["same", "verdict"] in ("select", "inconclusive")
    assert v.loc["same", "acc_variant"] == v.loc["same", "acc_base"]
    assert v.loc["same", "gap"] <= 0  # measured from max(base, chance): nothing to explain
    same_dir = rep.tests[(rep.tests.variant == "same") & (rep.tests.test == "direction")]
    assert (same_dir.effect.abs() < 1e-6).all() or (same_dir.shift_norm < 1e-6).all()
    # random weights: never select
    assert v.loc["random", "verdict"] != "select"
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


def _rows(steer_gr, lo, hi, forced_gr, flo, fhi, gap=0.4, gap_lo=0.3, rnd=0.0):
    return [
        {"test": "behavioural:steering", "variant": "v", "effect": steer_gr, "ci_lo": lo, "ci_hi": hi, "null": rnd,
         "tuned_gap": gap, "gap_lo": gap_lo},
        {"test": "behavioural:forced_format", "variant": "v", "effect": forced_gr, "ci_lo": flo, "ci_hi": fhi, "null": float("nan")},
    ]


def test_verdict_rule() -> None:
    assert verdict(_rows(0.9, 0.8, 1.0, 1.0, 0.95, 1.0))[0] == "select"
    assert verdict(_rows(0.1, 0.0, 0.2, 1.0, 0.9, 1.0))[0] == "select"  # forcing alone shows the mode is there
    assert verdict(_rows(0.9, 0.8, 1.0, 0.1, 0.0, 0.2))[0] == "select"  # steering beats random
    assert verdict(_rows(0.9, 0.8, 1.0, 0.1, 0.0, 0.2, rnd=0.85))[0] != "select"  # ...but not if random does as well
    assert verdict(_rows(0.05, 0.0, 0.1, 0.02, 0.0, 0.08))[0] == "create"
    assert verdict(_rows(0.4, 0.2, 0.6, 0.1, 0.0, 0.2))[0] == "inconclusive"
    # no gap: never select or create
    assert verdict(_rows(0.9, 0.8, 1.0, 1.0, 0.9, 1.0, gap=0.05, gap_lo=-0.02))[0] == "inconclusive"
    assert verdict(_rows(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, gap=-0.5, gap_lo=-0.6))[0] == "inconclusive"
