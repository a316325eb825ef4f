"""The headline claim, end to end: on the quick organism, through run_report, the select variants
are `select`, the create controls `create`, and the no-gain controls never `create`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from steering.battery.config import BatteryConfig

HEADLINE = BatteryConfig(max_dev=16, max_test=48, max_fit=64, alphas=(0.0, 0.25, 0.5), n_shuffles=5)


@pytest.mark.slow
def test_the_headline_claim_on_the_quick_organism(organism_quick: Path, tmp_path: Path) -> None:
    from probes.models.family import load_family
    from steering.report import run_report

    fam = load_family(organism_quick)
    names = ["sft", "dpo", "rl", "sft_long", "create", "create_far", "unrelated", "copy"]
    # an identical copy of the base, under another name: nothing post-training to explain
    specs = {v: fam.spec(v) for v in fam.variants} | {"copy": dataclasses.replace(fam.spec("base"))}
    rep = run_report(
        fam.with_variants(specs),
        out=tmp_path / "out",
        config=HEADLINE,
        variants=names,
        figures=False,
        sae=False,
        progress=False,
    )
    v = rep.verdicts.set_index("variant")
    for name in ("sft", "dpo", "rl", "sft_long"):
        assert v.verdict[name] == "select", (name, v.reason[name])
    for name in ("create", "create_far"):
        assert v.verdict[name] == "create", (name, v.reason[name])
        assert "two tests show absence" in v.reason[name]
    for name in ("unrelated", "copy"):
        assert v.verdict[name] == "inconclusive" and "no gap to explain" in v.reason[name], (
            name,
            v.reason[name],
        )
    # the evidence a reader checks is in the report: n, the null's size and the manipulation check
    assert (v.n_random[["sft", "create"]] == 20).all() and (v.n_test[["sft", "create"]] > 0).all()
    assert (v.fired_share[["sft", "create", "create_far"]] == 1.0).all()
