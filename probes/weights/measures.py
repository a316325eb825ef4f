"""Per-matrix measures of a weight update ``ΔW`` and the SVD settings behind them.

docs/measures.md, "Weight geometry"; the definitions of the table columns are in
:mod:`probes.weights.geometry`. Matrices are ``[out, in]``. Singular vectors come from
``torch.linalg.svd`` or, for large matrices, a seeded ``torch.svd_lowrank``
(:class:`SVDSettings`).

    >>> principal_angles(torch.eye(3)[:, :2], torch.eye(3)[:, [0, 2]]).round().tolist()
    [0.0, 90.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from einops import rearrange
from jaxtyping import Float

from probes.errors import ElicitError

__all__ = [
    "WeightDiffError",
    "DEFAULT_KS",
    "DEFAULT_TOLS",
    "CHUNK_ELEMS",
    "SVDSettings",
    "Spectrum",
    "use_full_svd",
    "spectrum",
    "stable_rank",
    "update_sparsity",
    "bf16_update_share",
    "numerical_rank",
    "haar_orthonormal",
    "spectrum_matched_factors",
    "spectrum_matched_update",
    "subspace_overlap",
    "principal_angles",
    "angle_noise_floor",
]

#: Subspace sizes ``k`` of ``overlap@k`` and the principal angles.
DEFAULT_KS = (1, 4, 16)
#: Absolute tolerances on ``|ΔW|``: any change at all, bf16-level noise, a clear change.
DEFAULT_TOLS = (0.0, 1e-5, 1e-3)
#: Elements per temporary block in chunked reductions (16 MB in float32).
CHUNK_ELEMS = 1 << 22


class WeightDiffError(ElicitError):
    """Bad arguments to a weight-geometry measure (shapes, ks, tolerances, directions)."""


# ------------------------------------------------------------------ SVD
@dataclass(frozen=True)
class SVDSettings:
    """How singular vectors are computed.

    ``method``: ``"auto"`` (full SVD when ``min(out, in) <= full_svd_max`` and the matrix
    has at most ``full_svd_max_numel`` entries, else randomized), ``"full"`` or
    ``"lowrank"``. The size cap keeps LAPACK's copies and workspace (several times the
    matrix) small: a 1024 x 128k embedding goes to the randomized method. ``oversample`` extra columns and ``niter``
    power iterations make the randomized top-``q`` accurate; ``seed`` makes it repeatable.
    """

    method: str = "auto"
    full_svd_max: int = 1024
    full_svd_max_numel: int = 1 << 22
    oversample: int = 10
    niter: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ("auto", "full", "lowrank"):
            raise WeightDiffError(
                f"SVDSettings.method must be 'auto', 'full' or 'lowrank', got {self.method!r}."
            )


@dataclass(frozen=True)
class Spectrum:
    """Top singular triplets of a matrix ``M ≈ U diag(S) Vᵀ`` and how they were computed."""

    U: Float[torch.Tensor, "out q"]
    S: Float[torch.Tensor, " q"]
    V: Float[torch.Tensor, "in q"]
    method: str


def use_full_svd(shape: Sequence[int], settings: SVDSettings) -> bool:
    if settings.method != "auto":
        return settings.method == "full"
    numel = math.prod(shape)
    return min(shape) <= settings.full_svd_max and numel <= settings.full_svd_max_numel


def spectrum(
    matrix: Float[torch.Tensor, "out in"], q: int, settings: SVDSettings = SVDSettings()
) -> Spectrum:
    """The top-``q`` singular triplets of ``matrix`` (all of them with a full SVD)."""
    if matrix.dim() != 2:
        raise WeightDiffError(f"spectrum needs a 2-D matrix, got shape {tuple(matrix.shape)}.")
    m, n = matrix.shape
    if use_full_svd(matrix.shape, settings):
        U, S, Vh = torch.linalg.svd(matrix, full_matrices=False)
        return Spectrum(U, S, Vh.mT, "full")
    rank = min(q + settings.oversample, m, n)
    # torch.svd_lowrank draws its random test matrix from the *global* RNG (torch.randn, no
    # generator argument), so the seed is set inside fork_rng, which hands the caller's RNG state
    # back on exit (CPU, and the matrix's CUDA device): repeatable, and no process state leaks.
    devices = [matrix.device] if matrix.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(settings.seed)
        U, S, V = torch.svd_lowrank(matrix, q=rank, niter=settings.niter)
    return Spectrum(U, S, V, f"lowrank(q={rank},niter={settings.niter})")


# ------------------------------------------------------------------ per-matrix measures
def stable_rank(delta: Float[torch.Tensor, "out in"], sigma_max: float | None = None) -> float:
    """``‖ΔW‖_F² / ‖ΔW‖_2²`` (NaN for a zero update).

    >>> u, v = torch.randn(8, 2), torch.randn(6, 2)
    >>> q_u, q_v = torch.linalg.qr(u)[0], torch.linalg.qr(v)[0]
    >>> round(stable_rank(q_u @ q_v.T), 4)   # rank 2, equal singular values
    2.0
    """
    fro2 = float(delta.double().pow(2).sum())
    if sigma_max is None:
        sigma_max = float(torch.linalg.matrix_norm(delta, ord=2))
    return fro2 / sigma_max**2 if sigma_max > 0 else math.nan


def update_sparsity(delta: torch.Tensor, tols: Sequence[float] = DEFAULT_TOLS) -> dict[float, float]:
    """``tol -> share of entries with |Δ| > tol`` (absolute tolerances).

    >>> update_sparsity(torch.tensor([0.0, 0.0, 1e-4, 1.0]), tols=(0.0, 1e-3))
    {0.0: 0.5, 0.001: 0.25}
    """
    counts = dict.fromkeys((float(t) for t in tols), 0)
    n = delta.numel()
    # a few rows at a time, so no full-size |Δ| or mask is ever allocated
    rows = rearrange(delta, "... d -> (...) d") if delta.dim() > 1 else rearrange(delta, "d -> 1 d")
    step = max(1, CHUNK_ELEMS // max(1, rows.shape[1]))
    for chunk in rows.split(step):
        mag = chunk.abs()
        for t in counts:
            counts[t] += int(torch.count_nonzero(mag > t))
    return {t: c / n for t, c in counts.items()} if n else dict.fromkeys(counts, 0.0)


def bf16_update_share(base: torch.Tensor, tuned: torch.Tensor) -> float:
    """The share of entries that differ once *both* checkpoints are cast to bfloat16.

    Mukherjee et al. 2025 ("Reinforcement Learning Finetunes Small Subnetworks in Large Language
    Models") count the parameters of bf16 checkpoints that changed at all; an update smaller than
    half a bf16 step of its weight (``2^-8`` relative, 0.0039 at 1.0) leaves the bf16 value
    unchanged, so this is not the float32 ``|Δ| > tol`` count. NaN for an empty tensor.

    >>> b = torch.tensor([1.0, 1.0, 1.0, 0.01])
    >>> t = torch.tensor([1.0 + 2**-9, 1.0 + 2**-6, 1.0, 0.01 + 2**-9])  # 2^-9 < half a step at 1
    >>> bf16_update_share(b, t)                                        # changed: 1+2^-6 and 0.01+2^-9
    0.5
    """
    if base.shape != tuned.shape:
        raise WeightDiffError(
            f"bf16_update_share needs equal shapes, got {tuple(base.shape)} and {tuple(tuned.shape)}."
        )
    n = base.numel()
    if n == 0:
        return math.nan
    a = rearrange(base, "... d -> (...) d") if base.dim() > 1 else rearrange(base, "d -> 1 d")
    b = rearrange(tuned, "... d -> (...) d") if tuned.dim() > 1 else rearrange(tuned, "d -> 1 d")
    step = max(1, CHUNK_ELEMS // max(1, a.shape[1]))
    changed = 0
    for ca, cb in zip(a.split(step), b.split(step), strict=True):
        changed += int(torch.count_nonzero(ca.to(torch.bfloat16) != cb.to(torch.bfloat16)))
    return changed / n


def numerical_rank(
    singular_values: torch.Tensor,
    shape: Sequence[int],
    dtype: torch.dtype = torch.float32,
    rtol: float | None = None,
) -> int:
    """The number of singular values above ``tol = rtol · σ_max``, with ``rtol`` defaulting to
    ``max(out, in) · eps(dtype)`` (the LAPACK / ``numpy.linalg.matrix_rank`` convention: what
    rounding in ``dtype`` cannot tell from zero). ``singular_values`` must be the *whole* spectrum.

    This is the rank of Mukherjee et al. 2025's "sparse but nearly full rank" (their updates have
    numerical rank above 99% of ``min(out, in)``); the stable rank ``‖ΔW‖_F² / ‖ΔW‖_2²`` is a
    different, smaller quantity (1-5 for most updates of either kind).

    >>> numerical_rank(torch.tensor([3.0, 1.0, 1e-9]), (4, 3))   # tol = 4 * 1.2e-7 * 3
    2
    >>> numerical_rank(torch.tensor([3.0, 1.0, 1e-9]), (4, 3), rtol=0.5)
    1
    """
    if singular_values.numel() != min(shape):
        raise WeightDiffError(
            f"numerical_rank needs all min{tuple(shape)} = {min(shape)} singular values, got "
            f"{singular_values.numel()} (a randomized SVD's top values cannot bound the rank)."
        )
    if singular_values.numel() == 0:
        return 0
    smax = float(singular_values.max())
    if smax <= 0:
        return 0
    tol = (rtol if rtol is not None else max(shape) * torch.finfo(dtype).eps) * smax
    return int(torch.count_nonzero(singular_values > tol))


def haar_orthonormal(
    n: int, k: int, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """``k`` orthonormal columns in ``R^n`` drawn uniformly (Haar): QR of a Gaussian matrix with
    the signs of ``R``'s diagonal moved into ``Q`` (Mezzadri 2007, "How to generate random matrices
    from the classical compact groups"), from ``generator`` only."""
    g = torch.randn(n, k, generator=generator, dtype=dtype)
    q, r = torch.linalg.qr(g)
    del g
    d = torch.sign(torch.diagonal(r))
    d[d == 0] = 1.0
    return q.mul_(d)


def spectrum_matched_factors(
    singular_values: torch.Tensor,
    shape: Sequence[int],
    generator: torch.Generator,
    fro: float | None = None,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The factors ``(U diag(s), V)`` of :func:`spectrum_matched_update`'s ``R = U diag(s) Vᵀ``
    (``[out, k]`` and ``[in, k]`` in ``dtype``; ``k = 0`` for an all-zero spectrum), for callers
    that never form ``R`` itself. ``U`` is drawn from ``generator`` before ``V``."""
    out_dim, in_dim = int(shape[0]), int(shape[1])
    s = singular_values.double()
    s = s[s > 0]
    if fro is not None and fro > 0 and s.numel():
        s = s * (fro / float(s.norm()))
    k = s.numel()
    U = haar_orthonormal(out_dim, k, generator, dtype)
    Us = U.mul_(s.to(dtype))
    return Us, haar_orthonormal(in_dim, k, generator, dtype)


def spectrum_matched_update(
    singular_values: torch.Tensor, shape: Sequence[int], generator: torch.Generator, fro: float | None = None
) -> torch.Tensor:
    """A random update ``R = U diag(s) Vᵀ`` with Haar-random singular vectors and the singular
    values ``s`` of a real update: the same Frobenius norm, spectral norm, stable rank and rank,
    pointing nowhere in particular. The null of every direction measure (overlap, angles, bf16
    sparsity) at the update's own size. With only the top values of a randomized SVD, they are
    rescaled so that ``‖R‖_F = fro`` (the update's norm) and ``R`` has that many.

    >>> g = torch.Generator().manual_seed(0)
    >>> r = spectrum_matched_update(torch.tensor([2.0, 1.0]), (5, 4), g)
    >>> [round(float(x), 4) for x in torch.linalg.svdvals(r)[:3]]
    [2.0, 1.0, 0.0]
    """
    if not bool((singular_values > 0).any()):
        return torch.zeros(int(shape[0]), int(shape[1]), dtype=singular_values.dtype)
    Us, V = spectrum_matched_factors(singular_values, shape, generator, fro)
    return (Us @ V.mT).to(singular_values.dtype)


def subspace_overlap(
    delta: Float[torch.Tensor, "out in"],
    U: Float[torch.Tensor, "out q"],
    V: Float[torch.Tensor, "in q"],
    ks: Iterable[int] = DEFAULT_KS,
) -> dict[int, float]:
    """``k -> ‖U_kᵀ ΔW V_k‖_F / ‖ΔW‖_F`` for the base's top-``k`` singular vectors ``U, V``.

    NaN where ``k`` exceeds the available singular vectors or ``ΔW = 0``.
    """
    fro = float(torch.linalg.matrix_norm(delta))
    out: dict[int, float] = {}
    for k in ks:
        if k > U.shape[1] or k > V.shape[1] or fro == 0:
            out[k] = math.nan
            continue
        out[k] = float(torch.linalg.matrix_norm(U[:, :k].mT @ delta @ V[:, :k])) / fro
    return out


def angle_noise_floor(dim: int, dtype: torch.dtype = torch.float32) -> float:
    """The float noise floor, in degrees, of :func:`principal_angles` between ``dim``-row bases
    computed in ``dtype``: ``degrees(sqrt(2 delta))`` with ``delta = 2 sqrt(dim) eps``.

    Derivation: two bases of one subspace, each orthonormal to working precision, give
    ``cos = 1 - delta`` instead of 1, where ``delta`` adds two terms of about ``sqrt(dim) eps``
    each: the rounding of the length-``dim`` inner products of ``AᵀB`` and the bases' own loss of
    orthonormality (the probabilistic rounding bound of an inner product, Higham & Mary 2019); and
    ``arccos(1 - delta) ≈ sqrt(2 delta)``. It grows as a square root because ``arccos`` is flat at
    1: float32 cannot even express an angle between 0 and ``degrees(sqrt(eps)) ≈ 0.02°``. An angle
    at or below the floor is no measured rotation. Measured: an identical copy reads 0.01-0.06° for
    ``dim`` 128-1536 and 0.079° for ``dim`` 48 on a 2026-12-04 AVX-512 CPU, under floors of
    0.10-0.25° (with one ``sqrt(dim) eps`` term only, the floor at ``dim`` 48 was 0.074°, below
    that measurement).

    >>> round(angle_noise_floor(576), 3), round(angle_noise_floor(576, torch.float64), 7)
    (0.194, 8.4e-06)
    """
    if dim < 1:
        raise WeightDiffError(f"angle_noise_floor needs dim >= 1, got {dim}.")
    eps = torch.finfo(dtype).eps
    return math.degrees(math.sqrt(2.0 * 2.0 * math.sqrt(dim) * eps))


def principal_angles(
    A: Float[torch.Tensor, "dim k"], B: Float[torch.Tensor, "dim k"]
) -> Float[torch.Tensor, " k"]:
    """Principal angles (degrees, ascending) between the spans of orthonormal ``A`` and ``B``.

    >>> e = torch.eye(3)
    >>> principal_angles(e[:, :2], e[:, [0, 2]]).round().tolist()
    [0.0, 90.0]
    """
    cos = torch.linalg.svdvals(A.mT @ B).clamp(0.0, 1.0)
    return torch.rad2deg(torch.arccos(cos))  # svdvals descend, so angles ascend
