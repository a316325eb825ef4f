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
    names = [
        *("sft", "dpo", "rl", "sft_long", "new_format", "create", "create_far", "partial_create"),
        *("unrelated", "copy"),
    ]
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
    premise = _premises(organism_quick)
    for name in ("sft", "dpo", "rl", "sft_long", "new_format"):
        if premise[name] == "select":
            assert v.verdict[name] == "select", (name, v.reason[name])
        else:  # the variant did not come out a clean selection: never called create for it
            assert v.verdict[name] != "create", (name, premise[name], v.reason[name])
    for name in ("create", "create_far"):
        if premise[name] == "create":
            assert v.verdict[name] == "create", (name, v.reason[name])
            assert "two tests show absence" in v.reason[name]
        else:
            assert v.verdict[name] != "select", (name, premise[name], v.reason[name])
    # half of partial_create's gain is in the base: neither clean select nor create
    assert v.verdict["partial_create"] == "inconclusive", v.reason["partial_create"]
    for name in ("unrelated", "copy"):
        assert v.verdict[name] == "inconclusive" and "no gap to explain" in v.reason[name], (
            name,
            v.reason[name],
        )
    # the evidence a reader checks is in the report: n, the null's size and the manipulation check
    assert (v.n_random[["sft", "create"]] == 20).all() and (v.n_test[["sft", "create"]] > 0).all()
    assert (v.fired_share[["sft", "create", "create_far"]] == 1.0).all()

    off = {k: p for k, p in premise.items() if p != DESIGNED[k]}
    if off:
        # visible in every run's summary: the organism trained here missed its design for these
        # variants (its own evaluation says so), so the full headline claim was not testable on it
        pytest.xfail(f"organism premise not met on this machine: {off}")


#: what each control is built to be
DESIGNED = {
    "sft": "select",
    "dpo": "select",
    "rl": "select",
    "sft_long": "select",
    "new_format": "select",
    "create": "create",
    "create_far": "create",
}


def _premises(folder: Path) -> dict[str, str]:
    """What the organism's own evaluation (``eval.parquet``) says each control *is*, before the
    battery looks, on the prompts the battery judges (the ``eval_label`` source, train and held-out
    strings, n = 144 per cell): ``select`` when it gained at least the battery's min_gap over the
    base on its task and forcing the base into the reasoning format recovers >= 0.8 of that gain;
    ``create`` when it gained and forcing recovers <= 0.2; ``unclear`` otherwise (no gain, or in
    between). Other sources are not what the verdict is about: on the ``direct`` source (prompts
    that ask for no scratchpad) sft_long loses accuracy, which averaged in once hid its gain on the
    judged prompts (quick seed 0, 2026-12-04: 0.10 over all sources, 0.57 on ``neutral``). The
    organism is a trained model: on another CPU its few post-training steps can come out
    otherwise (measured on one machine: ``rl`` gained nothing, and forcing recovered 0.48 of
    ``sft``'s gain)."""
    import pandas as pd

    from steering.battery.verdict import THRESHOLDS

    ev = pd.read_parquet(folder / "eval.parquet")
    ev = ev[ev.source == HEADLINE.eval_label]
    assert len(ev), f"eval.parquet has no {HEADLINE.eval_label!r} rows"
    acc = ev.groupby(["variant", "task", "forced"]).accuracy.mean()
    tasks = {"create": "create", "create_far": "create_far", "new_format": "parity_newfmt"}
    out = {}
    for name in DESIGNED:
        task = tasks.get(name, "parity")
        base, forced, tuned = acc[("base", task, False)], acc[("base", task, True)], acc[(name, task, False)]
        gain = tuned - base
        if gain < THRESHOLDS["min_gap"]:
            out[name] = "unclear"
            continue
        gr = (forced - base) / gain
        out[name] = "select" if gr >= 0.8 else "create" if gr <= 0.2 else "unclear"
    return out
