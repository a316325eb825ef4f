"""A family's weight updates stacked: planted updates read back per variant."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from probes.models.family import load_family
from probes.weights.family_updates import family_weight_diff
from probes.weights.geometry import WeightDiffError, weight_diff

D = 16
DOWN = "model.layers.0.mlp.down_proj.weight"
Q = "model.layers.0.self_attn.q_proj.weight"


def _write(folder: Path, tensors: dict[str, torch.Tensor]) -> str:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": D}))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"))
    return str(folder)


@pytest.fixture
def family(tmp_path: Path):
    g = torch.Generator().manual_seed(0)
    base = {Q: torch.randn(D, D, generator=g), DOWN: torch.randn(D, 2 * D, generator=g)}
    u, v = torch.zeros(D), torch.zeros(2 * D)
    u[0], v[1] = 1.0, 1.0  # a rank-1 update of Frobenius norm 1 at one entry
    specs = {"base": _write(tmp_path / "base", base)}
    for name, scale in (("small", 0.1), ("large", 0.5)):
        tuned = {Q: base[Q].clone(), DOWN: base[DOWN] + scale * torch.outer(u, v)}
        specs[name] = _write(tmp_path / name, tuned)
    return load_family(specs, check=False), base


def test_planted_updates_per_variant(family) -> None:
    fam, base = family
    table = family_weight_diff(fam, ks=(1,), n_null=10)
    assert list(table["variant"].unique()) == ["small", "large"]
    assert list(table.columns[:2]) == ["variant", "name"]
    got = table.set_index(["variant", "name"])
    w = float(base[DOWN].norm())
    assert got.loc[("small", DOWN), "rel_norm"] == pytest.approx(0.1 / w, rel=1e-5)
    assert got.loc[("large", DOWN), "rel_norm"] == pytest.approx(0.5 / w, rel=1e-5)
    assert got.loc[("large", DOWN), "stable_rank"] == pytest.approx(1.0, rel=1e-5)
    assert got.loc[("small", Q), "rel_norm"] == 0.0  # unchanged matrix
    for v in ("small", "large"):
        mine = table[table["variant"] == v].drop(columns="variant").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, weight_diff(fam, v, ks=(1,), n_null=10), check_like=False)


def test_variants_choose_and_validate(family) -> None:
    fam, _ = family
    assert list(family_weight_diff(fam, ["large"], ks=(1,))["variant"].unique()) == ["large"]
    with pytest.raises(
        WeightDiffError, match=r"Unknown variant\(s\) \['rl'\].*variants: \['base', 'small', 'large'\]"
    ):
        family_weight_diff(fam, ["rl"])
    with pytest.raises(WeightDiffError, match="needs variants other than the base"):
        family_weight_diff(fam, ["base"])
