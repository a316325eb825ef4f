"""Alignment of an update's output space with residual directions (probes.weights.alignment)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from probes.weights.alignment import direction_columns, load_directions, output_alignment, unit_directions
from probes.weights.measures import WeightDiffError

D, F = 48, 96


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_unit_directions_by_hand() -> None:
    names, units = unit_directions({"a": torch.tensor([3.0, 4.0]), "b": torch.tensor([0.0, -2.0])}, d_model=2)
    assert names == ["a", "b"]
    assert units.flatten().tolist() == pytest.approx([0.6, 0.8, 0.0, -1.0])
    names, units = unit_directions(torch.tensor([[2.0, 0.0], [1.0, 1.0]]))
    assert names == ["0", "1"] and units[1].tolist() == pytest.approx([2**-0.5, 2**-0.5])
    assert unit_directions(torch.tensor([0.0, 5.0]))[1].tolist() == [[0.0, 1.0]]  # one 1-D direction
    assert direction_columns({"a": torch.ones(2)}) == ["align:a", "align_null_mean", "align_null_p95"]
    assert direction_columns(None) == []


@pytest.mark.parametrize(
    ("directions", "match"),
    [
        ({}, "empty mapping"),
        ({"a": torch.ones(2, 2)}, "1-D Tensor"),
        ({"a": torch.ones(2), "b": torch.ones(3)}, "different lengths"),
        (torch.ones(2, 2, 2), "Tensor\\[n, d_model\\]"),
        ([1.0, 2.0], "got list"),
        ({"z": torch.zeros(2)}, "zero vectors"),
        (torch.ones(3), "d_model=2"),
    ],
)
def test_unit_directions_errors_name_the_bad_value(directions, match: str) -> None:
    with pytest.raises(WeightDiffError, match=match):
        unit_directions(directions, d_model=2)


def test_rank_one_update_along_a_direction_has_alignment_one() -> None:
    d = torch.tensor([1.0, 0.0, 0.0])
    delta = torch.outer(d, torch.tensor([0.0, 2.0]))  # ΔW = d vᵀ
    got = output_alignment(delta, {"d": d, "e": torch.tensor([0.0, 1.0, 0.0])}, n_null=5, seed=0)
    assert got["align:d"] == pytest.approx(1.0) and got["align:e"] == pytest.approx(0.0)
    # the null by hand: |r_1| / ‖r‖ for the seeded random r (a rank-1 update sees only r's first entry)
    r = torch.randn(5, 3, generator=_gen(0))
    null = (r[:, 0].abs() / r.norm(dim=1)).numpy()
    assert got["align_null_mean"] == pytest.approx(float(null.mean()), rel=1e-6)
    zero = output_alignment(torch.zeros(3, 2), {"d": d}, n_null=5)
    assert all(math.isnan(v) for v in zero.values())


def test_alignment_reference_and_tensor_directions() -> None:
    delta = torch.randn(D, F, generator=_gen(13))
    dirs = torch.randn(3, D, generator=_gen(14))
    got = output_alignment(delta, dirs, n_null=200, seed=3)
    unit = dirs / dirs.norm(dim=1, keepdim=True)
    ref = (unit @ delta).norm(dim=1) / torch.linalg.matrix_norm(delta, ord=2)
    assert [got[f"align:{i}"] for i in range(3)] == pytest.approx(ref.tolist(), rel=1e-5)
    assert got == output_alignment(delta, dirs, n_null=200, seed=3)  # seeded null


def test_load_directions_names_rows(tmp_path: Path) -> None:
    path = tmp_path / "dirs.safetensors"
    save_file({"careful": torch.tensor([1.0, 2.0]), "sae": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}, str(path))
    got = load_directions(path)
    assert sorted(got) == ["careful", "sae/0", "sae/1"]
    assert got["sae/1"].tolist() == [0.0, 1.0] and got["careful"].tolist() == [1.0, 2.0]
    with pytest.raises(WeightDiffError, match="Could not read"):
        load_directions(tmp_path / "missing.safetensors")
