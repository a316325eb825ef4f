"""Per-matrix measures (probes.weights.measures) against hand computations and plain-torch / scipy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from probes.weights.measures import (
    SVDSettings,
    WeightDiffError,
    bf16_update_share,
    haar_orthonormal,
    numerical_rank,
    principal_angles,
    spectrum,
    spectrum_matched_update,
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


# ------------------------------------------------------------------ bf16 sparsity, numerical rank, nulls
def test_bf16_update_share_by_hand() -> None:
    # bf16 keeps 8 significand bits: the step at 1.0 is 2^-7, so 1 + 2^-9 rounds back to 1
    # (unchanged) while 1 + 2^-6 is representable (changed); at 0.01 the step is 2^-14, so a
    # 2^-9 change survives. A float32 tolerance of 1e-3 would count 1+2^-9 (Δ = 0.00195) as changed.
    base = torch.tensor([[1.0, 1.0], [0.01, -2.0]])
    tuned = torch.tensor([[1.0 + 2**-9, 1.0 + 2**-6], [0.01 + 2**-9, -2.0]])
    assert bf16_update_share(base, tuned) == pytest.approx(2 / 4)
    assert update_sparsity(tuned - base, tols=(1e-3,))[1e-3] == pytest.approx(3 / 4)
    # reference: numpy on the bf16 casts, written as their float32 values
    a = base.to(torch.bfloat16).float().numpy()
    b = tuned.to(torch.bfloat16).float().numpy()
    assert bf16_update_share(base, tuned) == pytest.approx(float(np.mean(a != b)))
    assert bf16_update_share(base, base.clone()) == 0.0
    with pytest.raises(WeightDiffError, match="equal shapes"):
        bf16_update_share(base, tuned[:1])


def test_numerical_rank_by_hand_and_against_numpy() -> None:
    # tol = max(4, 3) * eps32 * 3 = 1.43e-6: 1e-9 is below it, 1.0 above
    sv = torch.tensor([3.0, 1.0, 1e-9])
    assert numerical_rank(sv, (4, 3)) == 2
    assert numerical_rank(sv, (4, 3), rtol=0.5) == 1  # tol 1.5: only 3.0 above
    assert numerical_rank(torch.zeros(3), (3, 5)) == 0
    # a rank-5 product in float64 against numpy.linalg.matrix_rank (same default tolerance)
    m = torch.randn(30, 5, generator=_gen(1), dtype=torch.float64) @ torch.randn(
        5, 20, generator=_gen(2), dtype=torch.float64
    )
    sv64 = torch.linalg.svdvals(m)
    assert numerical_rank(sv64, m.shape, torch.float64) == int(np.linalg.matrix_rank(m.numpy())) == 5
    with pytest.raises(WeightDiffError, match="all min"):
        numerical_rank(sv[:2], (4, 3))


def test_haar_orthonormal_is_orthonormal_and_seeded() -> None:
    q = haar_orthonormal(12, 4, _gen(3))
    assert torch.allclose(q.T @ q, torch.eye(4), atol=1e-6)
    assert torch.equal(q, haar_orthonormal(12, 4, _gen(3)))
    # Haar: the mean of a fixed coordinate's square over draws is k / n (here 1/12 per column)
    draws = torch.stack([haar_orthonormal(12, 1, _gen(s))[0, 0] ** 2 for s in range(2000)])
    assert float(draws.mean()) == pytest.approx(1 / 12, abs=0.01)


def test_spectrum_matched_update_keeps_size_and_randomises_direction() -> None:
    sv = torch.tensor([4.0, 2.0, 1.0])
    r = spectrum_matched_update(sv, (40, 30), _gen(0))
    assert torch.allclose(torch.linalg.svdvals(r)[:4], torch.tensor([4.0, 2.0, 1.0, 0.0]), atol=1e-5)
    # top values only (a randomized SVD): rescaled to the given Frobenius norm
    r2 = spectrum_matched_update(torch.tensor([3.0, 4.0]), (10, 10), _gen(1), fro=10.0)
    assert float(torch.linalg.matrix_norm(r2)) == pytest.approx(10.0, rel=1e-5)
    # overlap with a fixed top-k subspace is at its random expectation sqrt(k_u k_v / (m n))
    # (for k = 4 in 40 x 30: ~0.115), far from 1
    U, V = orthonormal(40, 4, 5), orthonormal(30, 4, 6)
    ovs = [
        subspace_overlap(spectrum_matched_update(sv, (40, 30), _gen(s)), U, V, ks=(4,))[4] for s in range(200)
    ]
    assert float(np.sqrt(np.mean(np.square(ovs)))) == pytest.approx(math.sqrt(16 / 1200), rel=0.15)
