"""Training the family: recipes and their checks, the base gate, the folder it writes, the same
bits in one process or several, and the caller's process state left as it was."""

from __future__ import annotations

import json
import os
import shutil
import tomllib
from dataclasses import replace

import pandas as pd
import pytest
import torch

from probes.errors import ElicitError, OrganismError
from probes.models.family import load_family
from probes.organism.pretrain import PretrainConfig
from probes.organism.stages import StageConfig
from probes.organism.train import (
    VARIANTS,
    Recipe,
    _family_toml,
    _records,
    _stage_timings,
    _StageResult,
    organism_family,
    recipe,
    train_family,
)

QUICK_CAREFUL = 0.80


def _tiny(**kw) -> Recipe:
    base = Recipe(
        pretrain=PretrainConfig(steps=6, batch_size=16, shards=2),
        stages={v: StageConfig(steps=2, batch_size=8, lr=1e-3) for v in VARIANTS[1:]},
        gate=0.0,
        conf_samples=2,
        rl_prompts=8,
        create_examples=64,
    )
    return replace(base, **kw)


def test_recipes_by_hand():
    quick, full = recipe(quick=True), recipe()
    assert list(quick.stages) == list(full.stages) == list(VARIANTS[1:])
    assert quick.stages["create"] == StageConfig(steps=160, batch_size=32, lr=3e-3, beta=0.1)
    # sft_long is trained exactly as hard as create (the update-size control), in both recipes
    for rec in (quick, full):
        assert (rec.stages["sft_long"].steps, rec.stages["sft_long"].lr) == (
            rec.stages["create"].steps,
            rec.stages["create"].lr,
        )
    assert full.stages["rl"] == StageConfig(steps=40, batch_size=32, lr=5e-4, beta=0.0)
    assert full.stages["sft_answers"].steps == 120 and quick.gate == 0.90 and full.gate == 0.95
    quick.check()
    full.check()


@pytest.mark.parametrize(
    ("rec", "match"),
    [
        (Recipe(), r"missing \['sft', 'dpo'"),
        (
            replace(recipe(quick=True), stages={**recipe(quick=True).stages, "sfft": StageConfig(1)}),
            r"unknown \['sfft'\]",
        ),
        (replace(recipe(quick=True), threads=0), "Recipe.threads must be >= 1, got 0"),
        (replace(recipe(quick=True), gate=95.0), r"Recipe.gate is an accuracy in \[0, 1\], got 95.0"),
        (replace(recipe(quick=True), noise_frac=-0.1), "Recipe.noise_frac"),
    ],
)
def test_a_bad_recipe_is_refused_before_training(tmp_path, rec, match):
    with pytest.raises(OrganismError, match=match):
        train_family(tmp_path / "fam", recipe_=rec, progress=False)
    assert not (tmp_path / "fam").exists()  # refused before anything was written


def test_refuses_a_non_empty_folder_and_bad_workers(tmp_path):
    (tmp_path / "x").write_text("old")
    with pytest.raises(OrganismError, match="not empty"):
        train_family(tmp_path, seed=0, quick=True, progress=False)
    with pytest.raises(OrganismError, match="workers must be >= 1, got 0") as err:
        train_family(tmp_path / "new", seed=0, quick=True, progress=False, workers=0)
    assert isinstance(err.value, ElicitError)


def test_stage_records_are_seeded_per_variant():
    rec = recipe(quick=True)
    assert _records("dpo_noisy", 0, rec) == _records("dpo_noisy", 0, rec) != _records("dpo_noisy", 1, rec)
    rl = _records("rl", 0, rec)
    assert rl is not None and len(rl) == rec.rl_prompts and set(rl[0]) == {"prompt", "answer"}
    create = _records("create", 0, rec)
    assert create is not None and len(create) == rec.create_examples
    assert _records("base", 0, rec) is None and _records("dpo_conf", 0, rec) is None  # dpo_conf draws its own


def test_stage_timings_in_variant_order_with_evaluation_summed():
    results = {
        "sft": _StageResult("sft", {"sft": 2.0, "evaluate_sft": 0.5}, None),
        "base": _StageResult("base", {"evaluate_base": 1.25}, None),
        "dpo_conf": _StageResult(
            "dpo_conf", {"dpo_conf_pairs": 30.0, "dpo_conf": 3.0, "evaluate_dpo_conf": 0.25}, None
        ),
    }
    got = _stage_timings(results)
    assert got == {"evaluate": 2.0, "sft": 2.0, "dpo_conf_pairs": 30.0, "dpo_conf": 3.0}
    assert list(got) == ["evaluate", "sft", "dpo_conf_pairs", "dpo_conf"]


def test_family_toml_reads_back():
    meta = {"seed": 3, "quick": True, "seconds": {"pretrain": 1.5}, "recipe": json.dumps({"a": [1, 2]})}
    text = _family_toml(
        "organism-seed3", meta, {"base": "parity", "create": "create"}, {"parity": {"scorer": "scratchpad"}}
    )
    data = tomllib.loads(text)
    assert data["name"] == "organism-seed3" and data["organism"] == meta
    assert data["variants"]["create"] == {"path": "create", "task": "create"}
    assert data["tasks"]["parity"] == {"path": "tasks/parity.jsonl", "scorer": "scratchpad"}


def test_weak_base_fails_the_gate_and_names_the_knob(tmp_path):
    rec = replace(recipe(quick=True), pretrain=PretrainConfig(steps=3, batch_size=8))
    with pytest.raises(OrganismError, match=r"Recipe\.pretrain\.steps, now 3"):
        train_family(tmp_path / "fam", seed=0, recipe_=rec, progress=False, workers=1)


@pytest.mark.slow
def test_inline_training_leaves_the_callers_process_state_unchanged(tmp_path):
    """workers=1: the whole family trains in this process; its env, threads and RNGs come back."""
    import random

    import numpy as np
    import torch._dynamo  # noqa: F401  # torch sets TORCHINDUCTOR_CACHE_DIR when this first loads (once per process)

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # not the recipe's 1: a leak would show
    try:
        env, py, npy = dict(os.environ), random.getstate(), np.random.get_state()
        rng, det = torch.random.get_rng_state(), torch.are_deterministic_algorithms_enabled()
        train_family(
            tmp_path / "fam", seed=3, quick=True, recipe_=_tiny(), progress=False, evaluate=False, workers=1
        )
        assert dict(os.environ) == env
        assert torch.get_num_threads() == 2 and torch.are_deterministic_algorithms_enabled() == det
        assert torch.equal(torch.random.get_rng_state(), rng) and random.getstate() == py
        assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), npy, strict=True))
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_parallel_training_gives_the_same_bits_as_sequential(tmp_path):
    """Two-process pretraining (gloo) and parallel stage workers change nothing in the weights."""
    from safetensors.torch import load_file

    seq = train_family(tmp_path / "seq", seed=3, recipe_=_tiny(), progress=False, evaluate=False, workers=1)
    par = train_family(tmp_path / "par", seed=3, recipe_=_tiny(), progress=False, evaluate=False, workers=2)
    for v in VARIANTS:
        a, b = load_file(seq / v / "model.safetensors"), load_file(par / v / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), v
    base = load_file(seq / "base" / "model.safetensors")
    assert not all(torch.equal(base[k], load_file(seq / "sft" / "model.safetensors")[k]) for k in base)
    meta = tomllib.loads((par / "family.toml").read_text())["organism"]
    assert meta["workers"] == 2 and json.loads(meta["recipe"])["pretrain"]["steps"] == 6


@pytest.mark.slow
def test_quick_family_loads_like_a_real_family(organism_quick):
    fam = load_family(organism_quick)  # checks architecture and vocabulary of every variant
    assert fam.variants == list(VARIANTS)
    assert fam.task_name("create") == "create" and fam.task_name("create_far") == "create_far"
    assert fam.task_name("dpo") == "parity"
    parity = fam.load_task("parity")
    assert set(parity.labels) == {"careful", "direct", "neutral"}
    assert {e.split for e in parity.examples} == {"train", "dev", "test"}
    assert parity.format_prefix == "#" and set(parity.spans) == {"decision", "scratchpad"}
    # a cached folder is returned as is
    assert organism_family(organism_quick, seed=0, quick=True) == organism_quick
    with pytest.raises(OrganismError, match="seed=0"):
        organism_family(organism_quick, seed=1, quick=True)


@pytest.mark.slow
def test_a_family_of_another_recipe_is_stale_and_retrained(organism_quick, tmp_path, monkeypatch, capsys):
    """A cached family whose recorded recipe is not this version's (say, trained before a variant
    was added) is retrained and replaced, never silently reused."""
    import probes.organism.train as train_mod

    stale = tmp_path / "organism"
    shutil.copytree(organism_quick, stale)
    toml = stale / "family.toml"
    meta = tomllib.loads(toml.read_text())["organism"]
    old = json.loads(meta["recipe"])
    del old["stages"]["unrelated"]
    lines = [
        "recipe = " + json.dumps(json.dumps(old, sort_keys=True)) if line.startswith("recipe = ") else line
        for line in toml.read_text().splitlines()
    ]
    toml.write_text("\n".join(lines) + "\n")
    assert tomllib.loads(toml.read_text())["organism"]["recipe"] != meta["recipe"]
    calls = []

    def fake_train(out, seed, quick):
        calls.append((seed, quick))
        shutil.copytree(organism_quick, out)

    monkeypatch.setattr(train_mod, "train_family", fake_train)
    assert organism_family(stale, seed=0, quick=True) == stale
    assert calls == [(0, True)] and "another recipe" in capsys.readouterr().err
    # the replacement carries this version's recipe: reused as is from now on
    assert organism_family(stale, seed=0, quick=True) == stale and calls == [(0, True)]


@pytest.mark.slow
def test_quick_family_evaluation_table(organism_quick):
    t = pd.read_parquet(organism_quick / "eval.parquet")
    par = t[t.task == "parity"]
    assert set(par.variant) == set(VARIANTS)
    assert len(par) == len(VARIANTS) * 3 * 2 * 2  # sources x splits x forced
    cell = par.set_index(["variant", "source", "split", "forced"]).accuracy
    # the planted ground truth, at quick-recipe strength
    assert cell["base", "careful", "heldout", False] >= QUICK_CAREFUL
    # forcing `#` on neutral prompts turns the latent mode on: well above the free neutral rate
    # (the quick base, bit-identical since 0.1.0 on torch 2.13 / transformers 5.23, measures
    # 0.625 forced vs 0.427 free; careful prompts reach 0.83)
    assert cell["base", "neutral", "heldout", True] >= cell["base", "neutral", "heldout", False] + 0.15
    assert cell["base", "neutral", "heldout", False] <= 0.70
    assert cell["dpo", "neutral", "heldout", False] > cell["base", "neutral", "heldout", False]
    ctl = t[(t.task == "create") & (t.split == "heldout") & ~t.forced].set_index("variant")
    # the base never saw the create task: at or below chance (1/3); the quick create SFT (160
    # steps) teaches the format and the ability (measured 1.00 held-out; 80 steps gave 0.38)
    assert ctl.accuracy["base"] < 0.40 and ctl.scratchpad_rate["base"] < 0.5
    assert ctl.scratchpad_rate["create"] == 1.0 and ctl.accuracy["create"] >= ctl.accuracy["base"] + 0.4
    # the confound controls: sft_long selects (neutral parity well above the base), unrelated does not
    assert cell["sft_long", "neutral", "heldout", False] >= cell["base", "neutral", "heldout", False] + 0.3
    assert (
        abs(cell["unrelated", "neutral", "heldout", False] - cell["base", "neutral", "heldout", False]) < 0.15
    )
