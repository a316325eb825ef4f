"""The shipped family files run: tiny random stand-ins of each architecture, in folders laid out
like the files' hub ids, a GSM8K-style JSONL without labels, the file itself unchanged
(``checkpoints=``), and the whole report with tiny budgets. Random models answer nothing, so
every verdict must be inconclusive (never ``create``, never ``select``)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from probes.data.activations import ActivationSet
from probes.models.family import load_family
from probes.models.standin import standin_checkpoints
from steering.battery.config import BatteryConfig
from steering.battery.quality import QualityConfig
from steering.report import run_report

FAMILIES = Path(__file__).resolve().parents[3] / "configs" / "families"
ARCH = {"olmo2-1b": "olmo2", "tulu3-llama31-8b": "llama", "qwen25-7b-orz": "qwen2"}
#: the budgets of the test (the file's own settings are read and validated; these few are shrunk)
# dictionaries of 100 steps (200 at most): random stand-ins have nothing to converge to, and the
# whole report is what this test checks (the plateau rule has its own tests)
TINY = dict(
    layers=(1,),
    alphas=(0.0, 1.0),
    max_fit=8,
    max_dev=4,
    max_test=6,
    n_shuffles=2,
    batch_size=64,
    dict_steps=100,
    dict_max_steps=200,
)


def test_every_shipped_family_is_covered_and_its_tables_are_valid() -> None:
    assert sorted(p.stem for p in FAMILIES.glob("*.toml")) == sorted(ARCH)
    for path in sorted(FAMILIES.glob("*.toml")):
        fam = load_family(path, check=False)  # every key of every table is checked, no weights read
        cfg = BatteryConfig.from_family(fam)
        assert cfg.reference_task == "gsm8k" and cfg.decision == "last" and cfg.units == "resid_norm"
        assert set(fam.tasks) == {"gsm8k"} and fam.tasks["gsm8k"]["contrast"] == "cot_vs_direct"
        assert all(fam.spec(v).prompt for v in fam.variants)  # every variant says how it is asked
        assert all(fam.spec(v).task == "gsm8k" for v in fam.variants if v != "base")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ARCH))
def test_shipped_family_runs_the_whole_report_on_stand_ins(name: str, tmp_path: Path) -> None:
    hub = standin_checkpoints(FAMILIES / f"{name}.toml", tmp_path / "hub", model_type=ARCH[name])
    # the shipped file, byte for byte, beside its task file; hub ids resolve to the stand-ins
    shutil.copy(FAMILIES / f"{name}.toml", tmp_path / "family.toml")
    shutil.copy(hub / "gsm8k_test.jsonl", tmp_path / "gsm8k_test.jsonl")
    fam = load_family(tmp_path / "family.toml", checkpoints=hub)
    assert all(str(fam.local_path(v)).startswith(str(hub.resolve())) for v in fam.variants)
    assert fam.config("base")["model_type"] == ARCH[name]
    protos = {v: fam.protocol(v) for v in fam.variants}
    assert all(p is not None for p in protos.values())  # every shipped variant states how it is asked
    chat = [v for v, p in protos.items() if p is not None and p.chat_template]
    assert ("base" not in chat) and (chat == [] if name == "qwen25-7b-orz" else chat == ["sft", "dpo", "rl"])
    task = fam.load_task("gsm8k")
    assert {e.label for e in task.examples} == {"careful", "direct", "neutral"}
    cfg = BatteryConfig.from_family(fam, **TINY)
    assert (cfg.contrast, cfg.eval_label, cfg.decision) == (("careful", "direct"), "neutral", "last")
    # the decoding stage as `elicit report` runs it, shrunk: 3 prompts, 2 samples, 2 branches, 4 tokens
    qcfg = QualityConfig.for_family(fam, max_prompts=3, n_samples=2, cot_k=2, max_new_tokens=4)
    assert (qcfg.task, qcfg.label, qcfg.split, qcfg.stages) == ("gsm8k", "neutral", "test", ("decoding",))
    rep = run_report(
        fam,
        out=tmp_path / "out",
        task=dataclasses.replace(task, max_new_tokens=4),
        config=cfg,
        quality=qcfg,
        progress=False,
    )
    payload = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (tmp_path / "out" / "report.md").exists() and any((tmp_path / "out" / "figures").glob("*.png"))
    judged = [v for v in fam.variants if v != "base"]
    assert sorted(payload["variants"]) == sorted(judged)
    verdicts = dict(zip(rep.verdicts.variant, rep.verdicts.verdict, strict=True))
    assert verdicts == dict.fromkeys(judged, "inconclusive"), verdicts
    # pass@k and CoT-decoding ran on every variant, each asked through its own protocol
    tables = tmp_path / "out" / "tables"
    passk = pd.read_parquet(tables / "passk.parquet")
    assert set(passk.variant) == set(fam.variants) and set(passk.k) == {1, 2}
    assert (passk.n_prompts == 3).all() and (passk.n_samples == 2).all()
    cot = pd.read_parquet(tables / "cot.parquet")
    assert set(cot.variant) == set(fam.variants) and (cot.n_paths == 6).all()
    assert (cot.n_no_span <= cot.n_paths).all()
    cross = pd.read_parquet(tables / "crossover.parquet")
    assert sorted(cross.variant) == sorted(judged) and (cross.n_answers >= 1).all()
    battery = pd.read_parquet(tables / "battery.parquet")
    for test in ("passk_crossover", "cot_decoding"):
        assert set(battery[battery.test == test].variant) >= set(judged)
    sweep = pd.read_parquet(tmp_path / "out" / "tables" / "sweep.parquet")
    assert set(sweep.variant) == set(fam.variants) and set(sweep.split) == {"dev", "test"}
    # the variants were read through their own protocols: the shift store says which
    store = next((tmp_path / "out" / "work" / "acts").glob("shift-*"))
    meta = ActivationSet.load(store).meta
    assert meta["protocols"] == {v: p.digest() for v, p in protos.items() if p is not None}


def test_a_plain_task_file_is_prepared_like_the_family_task() -> None:
    """``elicit report --task FILE.jsonl`` with bare question / answer records (no labels, no
    splits): the reference task's contrast recipe labels them and hashes their splits; a labelled,
    split task is used as given."""
    from probes.data.tasks import Task
    from steering.report.run import _like_reference

    fam = load_family(FAMILIES / "olmo2-1b.toml", check=False)
    cfg = BatteryConfig.from_family(fam)
    bare = Task.from_records(
        "mine", [{"id": f"q{i}", "prompt": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(40)]
    )
    got = _like_reference(fam, cfg, bare)
    assert {e.label for e in got.examples} == {"careful", "direct", "neutral"}
    assert {e.split for e in got.examples} == {"train", "dev", "test"}
    neutral = [e for e in got.examples if e.label == "neutral"]
    assert neutral and all(e.split != "train" for e in neutral)
    labelled = got.with_examples(list(got.examples))
    assert _like_reference(fam, cfg, labelled).examples == labelled.examples
    # a file with its own splits (no labels) is used as given: judged whole within each split
    split = bare.with_examples([dataclasses.replace(e, split="test") for e in bare.examples])
    assert _like_reference(fam, cfg, split).examples == split.examples
