"""The organism family: determinism, the base gate, the quick family through load_family."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from probes.models.family import load_family
from probes.organism import VARIANTS, OrganismError, Recipe, make_splits, organism_family, train_family
from probes.organism.pretrain import PretrainConfig, pretrain


def _short(seed: int):
    sp = make_splits(2, seed)
    return pretrain(None, sp, sp, seed=seed, cfg=PretrainConfig(steps=8, batch_size=16), progress=False)


def test_same_seed_gives_bit_identical_weights():
    a, b, c = _short(0), _short(0), _short(1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_weak_base_fails_the_gate_and_names_the_knob(tmp_path):
    rec = Recipe(pretrain=PretrainConfig(steps=3, batch_size=8))
    with pytest.raises(OrganismError, match=r"Recipe\.pretrain\.steps, now 3"):
        train_family(tmp_path / "fam", seed=0, recipe_=rec, progress=False)


def test_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "x").write_text("old")
    with pytest.raises(OrganismError, match="not empty"):
        train_family(tmp_path, seed=0, quick=True, progress=False)


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


def test_quick_family_evaluation_table(organism_quick):
    t = pd.read_parquet(organism_quick / "eval.parquet")
    par = t[t.task == "parity"]
    assert set(par.variant) == set(VARIANTS)
    assert len(par) == len(VARIANTS) * 3 * 2 * 2  # sources x splits x forced
    cell = par.set_index(["variant", "source", "split", "forced"]).accuracy
    # the planted ground truth, at quick-recipe strength
    assert cell["base", "careful", "heldout", False] >= QUICK_CAREFUL
    assert cell["base", "neutral", "heldout", True] >= QUICK_CAREFUL
    assert cell["base", "neutral", "heldout", False] <= 0.70
    assert cell["dpo", "neutral", "heldout", False] > cell["base", "neutral", "heldout", False]
    ctl = t[(t.task == "create") & (t.split == "heldout") & ~t.forced].set_index("variant")
    # the base never saw the create task: at or below chance (1/3); the quick create SFT
    # teaches the format at once, the ability only partly (the full recipe reaches 1.00)
    assert ctl.accuracy["base"] < 0.40 and ctl.scratchpad_rate["base"] < 0.5
    assert ctl.scratchpad_rate["create"] == 1.0 and ctl.accuracy["create"] > ctl.accuracy["base"]


QUICK_CAREFUL = 0.80


def test_parallel_training_gives_the_same_bits_as_sequential(tmp_path):
    """Two-process pretraining (gloo) and parallel stage workers change nothing in the weights."""
    from safetensors.torch import load_file

    from probes.organism.stages import StageConfig

    tiny = Recipe(
        pretrain=PretrainConfig(steps=6, batch_size=16, shards=2),
        stages={v: StageConfig(steps=2, batch_size=8, lr=1e-3) for v in VARIANTS[1:]},
        gate=0.0, conf_samples=2, rl_prompts=8, create_examples=64,
    )
    seq = train_family(tmp_path / "seq", seed=3, recipe_=tiny, progress=False, evaluate=False, workers=1)
    par = train_family(tmp_path / "par", seed=3, recipe_=tiny, progress=False, evaluate=False, workers=2)
    for v in VARIANTS:
        a, b = load_file(seq / v / "model.safetensors"), load_file(par / v / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), v
    base = load_file(seq / "base" / "model.safetensors")
    assert not all(torch.equal(base[k], load_file(seq / "sft" / "model.safetensors")[k]) for k in base)
