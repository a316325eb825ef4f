"""Per-matrix measures (probes.weights.measures) against hand computations and plain-torch / scipy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from probes.weights.measures import (
    SVDSettings,
    WeightDiffError,
    principal_angles,
    spectrum,
    stable_rank,
    subspace_overlap,
    update_sparsity,
    use_full_svd,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def orthonormal(n: int, r: int, seed: int) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(n, r, generator=_gen(seed)))[0]


def test_stable_rank_by_hand() -> None:
    # diag(3, 4): ‖ΔW‖_F² = 25, ‖ΔW‖_2 = 4  ->  25 / 16
    assert stable_rank(torch.diag(torch.tensor([3.0, 4.0]))) == pytest.approx(25 / 16)
    # a given sigma_max is used as is: 25 / 5²
    assert stable_rank(torch.diag(torch.tensor([3.0, 4.0])), sigma_max=5.0) == pytest.approx(1.0)
    assert math.isnan(stable_rank(torch.zeros(3, 2)))


def test_update_sparsity_by_hand() -> None:
    delta = torch.tensor([[0.0, 2e-5, -3e-3], [0.0, 0.0, 1.0]])
    # |Δ| > 0: 3 of 6; > 1e-5: 3 of 6 (2e-5 counts); > 1e-3: 2 of 6
    assert update_sparsity(delta, (0.0, 1e-5, 1e-3)) == {0.0: 0.5, 1e-5: 0.5, 1e-3: pytest.approx(2 / 6)}
    assert update_sparsity(torch.zeros(0), (0.0,)) == {0.0: 0.0}


def test_use_full_svd_by_hand() -> None:
    auto = SVDSettings(full_svd_max=8, full_svd_max_numel=100)
    assert use_full_svd((8, 12), auto)  # min 8 <= 8, 96 entries <= 100
    assert not use_full_svd((9, 9), auto)  # min 9 > 8
    assert not use_full_svd((8, 13), auto)  # 104 entries > 100
    assert use_full_svd((500, 500), SVDSettings(method="full"))
    assert not use_full_svd((2, 2), SVDSettings(method="lowrank"))
    with pytest.raises(WeightDiffError, match="'auto', 'full' or 'lowrank'"):
        SVDSettings(method="fast")


def test_overlap_by_hand_and_against_plain_torch() -> None:
    # base singular vectors e1 (out) and e1 (in); ΔW = [[1, 1], [1, 1]] has ‖U_1ᵀ ΔW V_1‖ = 1, ‖ΔW‖_F = 2
    eye = torch.eye(2)
    assert subspace_overlap(torch.ones(2, 2), eye, eye, ks=(1, 2)) == {
        1: pytest.approx(0.5),
        2: pytest.approx(1.0),
    }
    W = torch.randn(30, 20, generator=_gen(0))
    delta = torch.randn(30, 20, generator=_gen(1))
    U, _, Vh = torch.linalg.svd(W, full_matrices=False)
    got = subspace_overlap(delta, U, Vh.T, ks=(2, 5))
    for k in (2, 5):
        ref = torch.linalg.norm(U[:, :k].T @ delta @ Vh[:k].T) / torch.linalg.norm(delta)
        assert got[k] == pytest.approx(float(ref), rel=1e-5)
    assert math.isnan(subspace_overlap(delta, U[:, :3], Vh[:3].T, ks=(4,))[4])


def test_principal_angles_by_hand_and_against_scipy() -> None:
    from scipy.linalg import subspace_angles

    # span(e1) vs span(cos θ e1 + sin θ e2) at θ = 30°
    theta = math.radians(30)
    a = torch.tensor([[1.0], [0.0]])
    b = torch.tensor([[math.cos(theta)], [math.sin(theta)]])
    assert principal_angles(a, b).tolist() == pytest.approx([30.0], abs=1e-4)
    A = orthonormal(20, 4, 15)
    B = orthonormal(20, 4, 16)
    ref = np.sort(np.rad2deg(subspace_angles(A.double().numpy(), B.double().numpy())))
    assert principal_angles(A, B).tolist() == pytest.approx(ref.tolist(), abs=1e-3)


def test_lowrank_svd_is_seeded_stated_and_close_to_full() -> None:
    g = _gen(17)
    M = orthonormal(200, 40, 18) @ torch.diag(0.7 ** torch.arange(40.0)) @ orthonormal(150, 40, 19).T
    M = M + 1e-6 * torch.randn(200, 150, generator=g)
    full = spectrum(M, 8, SVDSettings(method="full"))
    low = spectrum(M, 8, SVDSettings(method="lowrank", niter=4))
    again = spectrum(M, 8, SVDSettings(method="lowrank", niter=4))
    assert full.method == "full" and low.method == "lowrank(q=18,niter=4)"
    assert torch.equal(low.S, again.S)
    assert low.S[:8].tolist() == pytest.approx(full.S[:8].tolist(), rel=1e-4)
    assert float(principal_angles(full.U[:, :8], low.U[:, :8]).max()) < 0.5
    auto = spectrum(M, 8, SVDSettings(full_svd_max=100))
    assert auto.method.startswith("lowrank")


def test_lowrank_svd_equals_a_globally_seeded_call_and_leaves_the_global_rng_alone() -> None:
    M = torch.randn(60, 40, generator=_gen(3))
    settings = SVDSettings(method="lowrank", seed=7, niter=2)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    got = spectrum(M, 4, settings)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG state is handed back
    torch.manual_seed(7)  # the reference: torch's own randomized SVD seeded globally
    U, S, V = torch.svd_lowrank(M, q=4 + settings.oversample, niter=2)
    assert torch.equal(got.S, S) and torch.equal(got.U, U) and torch.equal(got.V, V)


def test_spectrum_rejects_a_non_matrix() -> None:
    with pytest.raises(WeightDiffError, match="2-D matrix"):
        spectrum(torch.zeros(3), 1)
