"""Weight geometry tables: how big, how low-rank, how sparse each update is, and where it points.

For every parameter ``W`` of a base checkpoint and its fine-tuned ``W + ΔW``
(docs/measures.md, "Weight geometry"), :func:`weight_diff` streams the pair (never two whole
models, see :mod:`probes.models.checkpoint`) and measures, one row per parameter:

``rel_norm``
    ``‖ΔW‖_F / ‖W‖_F``.
``stable_rank``
    ``‖ΔW‖_F² / ‖ΔW‖_2²``: about ``r`` for a rank-``r`` update with equal singular
    values, and close to ``min(out, in)`` for a full-rank one.
``delta_sv``
    the top singular values of ``ΔW`` (its spectrum, largest first).
``updated@tol`` / ``sparsity@tol``
    the share of entries with ``|Δ| > tol`` and its complement. Tolerances are
    **absolute**, on the float32 difference; ``tol=0`` counts entries that changed at all
    (exact for bf16 checkpoints). Mukherjee et al. 2025 ("RL fine-tunes small subnetworks")
    find RL updates only 5-30% of parameters: ``updated@tol`` of 0.05-0.3.
``updated@bf16`` / ``sparsity@bf16``
    the share of entries that differ once *both* checkpoints are cast to bfloat16, and its
    complement: Mukherjee et al.'s count, which a float32 tolerance only approximates (an update
    under half a bf16 step of its weight leaves the bf16 value unchanged).
``numerical_rank``, ``numerical_rank_share``
    the number of singular values of ``ΔW`` above ``max(out, in) · eps · σ_max``
    (:func:`~probes.weights.measures.numerical_rank`) and its share of ``min(out, in)``:
    Mukherjee et al.'s "nearly full rank" is a share above 0.99. NaN with a randomized SVD
    (only the top values are known).
``null_overlap@k``, ``null_angle_{out,in}_mean@k``, ``null_updated@bf16``
    the same measures for a random update with ``ΔW``'s own singular values (same Frobenius
    norm, rank and stable rank; Haar-random singular vectors seeded by the SVD seed and the
    parameter name, :func:`~probes.weights.measures.spectrum_matched_update`): what an update of
    this size reads when it points nowhere in particular. An overlap or angle is evidence about
    *where* the update points only beside its null; a bf16 sparsity near its null says only that
    the update is small.
``overlap@k``
    principal-subspace overlap ``‖U_kᵀ ΔW V_k‖_F / ‖ΔW‖_F`` with ``U_k, V_k`` the base's
    top-``k`` left/right singular vectors: 1 for an update inside the base's principal
    subspaces, 0 for one in their orthogonal complement.
``angle_out_mean@k``, ``angle_out_max@k`` (and ``angle_in_...``)
    principal angles, in degrees, between the top-``k`` left (output) / right (input)
    singular subspaces of ``W`` and ``W + ΔW``: ``arccos`` of the singular values of
    ``U_kᵀ U'_k``. Zhu et al. 2025 ("The Path Not Taken: RLVR Provably Learns Off the
    Principals") find RLVR keeps these angles small (it learns off the principal
    directions) while SFT rotates the principal subspaces. Angles are only meaningful
    where the spectrum has a gap at ``k``; a flat spectrum makes the top-``k`` subspace
    itself ill-defined.
``angle_out_floor``, ``angle_in_floor``, ``angle_out_at_floor@k`` (and ``angle_in_...``)
    the angles' float noise floor in degrees
    (:func:`~probes.weights.measures.angle_noise_floor` of the basis length and the compute
    dtype), and 1.0 where the mean angle at ``k`` is at or below it (0.0 above): such an angle is no measured
    rotation (an identical copy reads 0.01-0.06° in float32).
``align:<name>``, ``align_null_mean``, ``align_null_p95``
    for residual-stream writers only (``o``, ``down``, ``embed``, ``pos_embed``): with a
    unit direction ``d`` in the residual stream (a steering vector, an SAE decoder row),
    ``a(d) = ‖dᵀ ΔW‖_2 / ‖ΔW‖_2`` in ``[0, 1]``: 1 when ``d`` is the update's top output
    direction (a rank-1 update ``d vᵀ`` gives exactly 1). The null is ``a(r)`` over
    ``n_null`` random unit directions ``r`` from a seeded generator (mean and 95th
    percentile); for a rank-``r`` update in ``d_model`` dimensions it is about
    ``sqrt(r / d_model)``.

The per-matrix measures are in :mod:`probes.weights.measures`, the alignment in
:mod:`probes.weights.alignment`; this module streams checkpoints into tables.
Matrices are ``[out, in]`` (GPT-2 Conv1D weights and embeddings are transposed, see
:mod:`probes.models.checkpoint`). Singular vectors come from ``torch.linalg.svd`` when
``min(out, in) <= full_svd_max`` (and the matrix is small, see
:class:`~probes.weights.measures.SVDSettings`) and from a seeded ``torch.svd_lowrank``
otherwise; the
``svd_method`` column states which, with its rank and power iterations. With the
randomized method ``‖ΔW‖_2`` may be slightly underestimated (so ``stable_rank`` slightly
over), and ``delta_sv`` holds only the top ``q`` values.

:func:`update_cosine` compares the updates of two variants (e.g. SFT vs DPO):
``⟨ΔW_a, ΔW_b⟩_F / (‖ΔW_a‖_F ‖ΔW_b‖_F)`` per parameter.
"""

from __future__ import annotations

import math
import os
import zlib
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch

from probes.models.checkpoint import CheckpointPairing, ParamRole, pair_checkpoints
from probes.models.family import ModelFamily
from probes.weights.alignment import Directions, direction_columns, output_alignment
from probes.weights.measures import (
    DEFAULT_KS,
    DEFAULT_TOLS,
    Spectrum,
    SVDSettings,
    WeightDiffError,
    angle_noise_floor,
    bf16_update_share,
    numerical_rank,
    principal_angles,
    spectrum,
    spectrum_matched_factors,
    subspace_overlap,
    update_sparsity,
    use_full_svd,
)

__all__ = [
    "weight_diff",
    "weight_diff_paths",
    "update_cosine",
    "update_cosine_paths",
    "summarize_weight_diff",
]


# ------------------------------------------------------------------ one row
def _check_args(
    ks: Sequence[int], tols: Sequence[float], n_sv: int
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    ks_t = tuple(int(k) for k in ks)
    if not ks_t or any(k < 1 for k in ks_t):
        raise WeightDiffError(f"ks must be positive subspace sizes, e.g. (1, 4, 16); got {tuple(ks)}.")
    tols_t = tuple(float(t) for t in tols)
    if not tols_t or any(t < 0 for t in tols_t):
        raise WeightDiffError(
            f"tols must be non-negative absolute tolerances, e.g. (0, 1e-5, 1e-3); got {tuple(tols)}."
        )
    if n_sv < 1:
        raise WeightDiffError(f"n_sv must be >= 1, got {n_sv}.")
    return ks_t, tols_t


def _tol_label(t: float) -> str:
    return "0" if t == 0 else f"{t:g}"


def _norm_columns(role: ParamRole, base: torch.Tensor, delta: torch.Tensor) -> dict[str, Any]:
    """Which parameter, and its sizes: ``base_fro``, ``delta_fro``, ``rel_norm``, ``max_abs_delta``."""
    base_fro = float(torch.linalg.vector_norm(base))
    delta_fro = float(torch.linalg.vector_norm(delta))
    row: dict[str, Any] = {
        "name": role.name,
        "layer": role.layer,
        "component": role.component,
        "kind": role.kind,
        "shape": list(delta.shape),
        "numel": delta.numel(),
        "transposed": role.transposed,
        "writes_residual": role.writes_residual,
        "base_fro": base_fro,
        "delta_fro": delta_fro,
        "rel_norm": delta_fro / base_fro if base_fro > 0 else math.nan,
    }
    if delta.numel():
        lo, hi = torch.aminmax(delta)  # no |Δ| temporary
        row["max_abs_delta"] = max(-float(lo), float(hi))
    else:
        row["max_abs_delta"] = 0.0
    return row


def _sparsity_columns(
    base: torch.Tensor, tuned: torch.Tensor, delta: torch.Tensor, tols: tuple[float, ...]
) -> dict[str, float]:
    row = {}
    for t, frac in update_sparsity(delta, tols).items():
        row[f"updated@{_tol_label(t)}"] = frac
        row[f"sparsity@{_tol_label(t)}"] = 1.0 - frac
    share = bf16_update_share(base, tuned)
    row["updated@bf16"] = share
    row["sparsity@bf16"] = 1.0 - share
    return row


def _empty_matrix_columns(ks: tuple[int, ...]) -> dict[str, Any]:
    """The matrix columns of a parameter that is not a (non-empty) matrix: NaN."""
    row: dict[str, Any] = {
        "stable_rank": math.nan,
        "numerical_rank": math.nan,
        "numerical_rank_share": math.nan,
        "delta_sv": [],
        "sigma_max": math.nan,
        "null_updated@bf16": math.nan,
    }
    for k in ks:
        row[f"overlap@{k}"] = math.nan
        row[f"null_overlap@{k}"] = math.nan
        row[f"null_angle_out_mean@{k}"] = math.nan
        row[f"null_angle_in_mean@{k}"] = math.nan
        for side in ("out", "in"):
            row[f"angle_{side}_mean@{k}"] = math.nan
            row[f"angle_{side}_max@{k}"] = math.nan
            row[f"angle_{side}_at_floor@{k}"] = math.nan
    row["angle_out_floor"] = row["angle_in_floor"] = math.nan
    row["svd_method"] = "none (not a matrix)"
    return row


def _matrix_columns(
    base: torch.Tensor,
    tuned: torch.Tensor,
    delta: torch.Tensor,
    delta_fro: float,
    *,
    ks: tuple[int, ...],
    n_sv: int,
    settings: SVDSettings,
    base_spectra: dict[str, Spectrum] | None = None,
    name: str = "",
) -> dict[str, Any]:
    """Spectrum, stable rank, principal-subspace overlap and angles of a matrix update.

    ``base_spectra`` (the caller's dict, kept across the variants of one base) holds the base
    matrix's top-``q`` triplets by parameter name: every variant of a family shares its base, so
    its SVD is computed once. An unchanged matrix (``tuned`` equal to ``base``) reuses the base's
    spectrum for the tuned side (the same numbers, one SVD fewer)."""
    if delta_fro == 0:
        delta_sv = torch.zeros(min(delta.shape), dtype=delta.dtype)  # an unchanged matrix: no SVD needed
    elif use_full_svd(delta.shape, settings):
        delta_sv = torch.linalg.svdvals(delta)  # values only: the update's vectors are not needed
    else:
        delta_sv = spectrum(delta, n_sv, settings).S
    sigma = float(delta_sv[0]) if delta_sv.numel() else 0.0
    full = delta_sv.numel() == min(delta.shape)
    n_rank = numerical_rank(delta_sv, delta.shape, delta.dtype) if full else math.nan
    row: dict[str, Any] = {
        "sigma_max": sigma,
        "stable_rank": delta_fro**2 / sigma**2 if sigma > 0 else math.nan,
        "numerical_rank": n_rank,
        "numerical_rank_share": n_rank / min(delta.shape) if full else math.nan,
        "delta_sv": delta_sv[:n_sv].tolist(),
    }
    q = max(max(ks), n_sv)
    b_spec = base_spectra.get(name) if base_spectra is not None and name else None
    if b_spec is None:
        b_spec = _top(spectrum(base, q, settings), q)
        if base_spectra is not None and name:
            base_spectra[name] = b_spec
    t_spec = b_spec if torch.equal(base, tuned) else _top(spectrum(tuned, q, settings), q)
    for k, ov in subspace_overlap(delta, b_spec.U, b_spec.V, ks).items():
        row[f"overlap@{k}"] = ov
    floors = {
        "out": angle_noise_floor(b_spec.U.shape[0], b_spec.U.dtype),
        "in": angle_noise_floor(b_spec.V.shape[0], b_spec.V.dtype),
    }
    for side, floor in floors.items():
        row[f"angle_{side}_floor"] = floor
    for k in ks:
        if k > b_spec.U.shape[1] or k > t_spec.U.shape[1]:
            continue
        for side, A, B in (("out", b_spec.U, t_spec.U), ("in", b_spec.V, t_spec.V)):
            ang = principal_angles(A[:, :k], B[:, :k])
            row[f"angle_{side}_mean@{k}"] = float(ang.mean())
            row[f"angle_{side}_max@{k}"] = float(ang.max())
            row[f"angle_{side}_at_floor@{k}"] = float(float(ang.mean()) <= floors[side])  # 1.0 or 0.0
    row["svd_method"] = b_spec.method
    if delta_fro > 0:
        row.update(_null_columns(base, delta_sv, delta_fro, b_spec, ks=ks, q=q, settings=settings, name=name))
    return row


def _null_columns(
    base: torch.Tensor,
    delta_sv: torch.Tensor,
    delta_fro: float,
    b_spec: Spectrum,
    *,
    ks: tuple[int, ...],
    q: int,
    settings: SVDSettings,
    name: str,
) -> dict[str, Any]:
    """The direction measures of a random update with this update's singular values
    (:func:`~probes.weights.measures.spectrum_matched_update`: the same Frobenius norm, rank and
    stable rank, Haar-random singular vectors), seeded by ``settings.seed`` and the parameter's
    name: what ``overlap@k``, the angles and ``updated@bf16`` read for an update of this size that
    points nowhere in particular."""
    gen = torch.Generator().manual_seed(settings.seed * 1_000_003 + zlib.crc32(name.encode()))
    # R = U diag(s) Vᵀ is never formed on its own: the overlap reads its factors, and the tuned
    # matrix is base + R in one addmm (peak memory: one extra matrix and the two factors)
    Us, V = spectrum_matched_factors(delta_sv.cpu(), base.shape, gen, fro=delta_fro, dtype=base.dtype)
    Us, V = Us.to(base.device), V.to(base.device)
    row: dict[str, Any] = {}
    norm = delta_fro  # ‖R‖_F: the singular values were rescaled to the update's norm
    for kk in ks:
        if kk > b_spec.U.shape[1] or kk > b_spec.V.shape[1]:
            row[f"null_overlap@{kk}"] = math.nan
            continue
        core = (b_spec.U[:, :kk].mT @ Us) @ (V.mT @ b_spec.V[:, :kk])
        row[f"null_overlap@{kk}"] = float(torch.linalg.matrix_norm(core)) / norm
    tuned = torch.addmm(base, Us, V.mT)
    del Us, V
    row["null_updated@bf16"] = bf16_update_share(base, tuned)
    n_spec = _top(spectrum(tuned, q, settings), q)
    del tuned
    for kk in ks:
        if kk > b_spec.U.shape[1] or kk > n_spec.U.shape[1]:
            continue
        for side, A, B in (("out", b_spec.U, n_spec.U), ("in", b_spec.V, n_spec.V)):
            row[f"null_angle_{side}_mean@{kk}"] = float(principal_angles(A[:, :kk], B[:, :kk]).mean())
    return row


def _top(spec: Spectrum, q: int) -> Spectrum:
    """The top-``q`` triplets only (what the overlap and angle columns read; a full SVD's other
    columns are not kept)."""
    return Spectrum(spec.U[:, :q].contiguous(), spec.S[:q].clone(), spec.V[:, :q].contiguous(), spec.method)


def _row(
    role: ParamRole,
    base: torch.Tensor,
    tuned: torch.Tensor,
    *,
    ks: tuple[int, ...],
    tols: tuple[float, ...],
    n_sv: int,
    settings: SVDSettings,
    directions: Directions | None,
    n_null: int,
    base_spectra: dict[str, Spectrum] | None = None,
) -> dict[str, Any]:
    """One parameter's row of the :func:`weight_diff_paths` table (columns in the module docstring)."""
    delta = tuned - base
    row = {
        **_norm_columns(role, base, delta),
        **_sparsity_columns(base, tuned, delta, tols),
        **_empty_matrix_columns(ks),
    }
    if delta.dim() != 2 or min(delta.shape) == 0:
        return row
    # updating existing keys keeps the column order of the non-matrix rows
    row.update(
        _matrix_columns(
            base,
            tuned,
            delta,
            row["delta_fro"],
            ks=ks,
            n_sv=n_sv,
            settings=settings,
            base_spectra=base_spectra,
            name=role.name,
        )
    )
    if directions is not None and role.writes_residual:
        row.update(
            output_alignment(delta, directions, sigma_max=row["sigma_max"], n_null=n_null, seed=settings.seed)
        )
    return row


# ------------------------------------------------------------------ tables
def _diff_attrs(
    pairing: CheckpointPairing,
    ks: tuple[int, ...],
    tols: tuple[float, ...],
    *,
    svd: SVDSettings,
    directions: Directions | None,
    n_null: int,
    dtype: torch.dtype,
) -> dict[str, Any]:
    """The settings of a :func:`weight_diff_paths` table, stored in ``df.attrs``."""
    base_label, tuned_label = pairing.labels[:2]
    return {
        "base": str(pairing.checkpoints[base_label].path),
        "tuned": str(pairing.checkpoints[tuned_label].path),
        "ks": list(ks),
        "tols": list(tols),
        "tolerance": "absolute, on |W_tuned - W_base| in " + str(dtype).replace("torch.", ""),
        "svd": {
            "method": svd.method,
            "full_svd_max": svd.full_svd_max,
            "full_svd_max_numel": svd.full_svd_max_numel,
            "oversample": svd.oversample,
            "niter": svd.niter,
            "seed": svd.seed,
        },
        "alignment": (
            "||d^T dW||_2 / ||dW||_2 for unit d on residual writers; null over "
            f"{n_null} seeded random unit directions"
            if directions is not None
            else None
        ),
        "pairing": pairing.summary(),
    }


def weight_diff_paths(
    base_path: str | os.PathLike[str],
    tuned_path: str | os.PathLike[str],
    *,
    directions: Directions | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    tols: Sequence[float] = DEFAULT_TOLS,
    n_sv: int = 16,
    svd: SVDSettings = SVDSettings(),
    n_null: int = 1000,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
    labels: tuple[str, str] = ("base", "tuned"),
    base_spectra: dict[str, Spectrum] | None = None,
) -> pd.DataFrame:
    """Per-parameter geometry of ``ΔW = W(tuned_path) − W(base_path)``: one row per parameter.

    The two checkpoints (folders or hub ids, named ``labels`` in the pairing summary) are
    streamed one parameter at a time and ``ΔW`` is computed in ``dtype`` on ``device``.
    Columns: ``name, layer, component, kind, shape ([out, in]), numel, transposed,
    writes_residual, base_fro, delta_fro, rel_norm, max_abs_delta, updated@tol,
    sparsity@tol, stable_rank, delta_sv, sigma_max, overlap@k, angle_{out,in}_{mean,max}@k,
    svd_method`` and, with ``directions`` (``{name: Tensor[d_model]}`` or
    ``Tensor[n, d_model]`` of residual-stream directions), ``align:<name>,
    align_null_mean, align_null_p95`` on residual writers. Definitions are in this
    module's docstring (docs/measures.md, "Weight geometry"; Zhu et al. 2025; Mukherjee et al.
    2025). Settings and every unpaired or unknown name are in ``df.attrs``.

    ``base_spectra``: pass one dict to every call that shares ``base_path`` (and the same ``ks``,
    ``n_sv``, ``svd``, ``dtype``) and the base's SVDs are computed once (the values are the same).
    """
    pairing = pair_checkpoints({labels[0]: base_path, labels[1]: tuned_path})
    ks_t, tols_t = _check_args(ks, tols, n_sv)
    align_cols = direction_columns(directions)  # validates directions before any reading
    stream = pairing.stream(dtype=dtype, device=device)
    if progress:
        from tqdm.auto import tqdm

        stream = tqdm(stream, total=len(pairing.shared), desc="weight diff", unit="tensor")
    rows = []
    with torch.no_grad():
        for role, tensors in stream:
            rows.append(
                _row(
                    role,
                    tensors[labels[0]],
                    tensors[labels[1]],
                    ks=ks_t,
                    tols=tols_t,
                    n_sv=n_sv,
                    settings=svd,
                    directions=directions,
                    n_null=n_null,
                    base_spectra=base_spectra,
                )
            )
            del tensors
    df = pd.DataFrame(rows)
    for col in align_cols:
        if col not in df:
            df[col] = math.nan
    df["layer"] = df["layer"].astype("Int64")
    df.attrs.update(
        _diff_attrs(pairing, ks_t, tols_t, svd=svd, directions=directions, n_null=n_null, dtype=dtype)
    )
    return df


def weight_diff(family: ModelFamily, variant: str, *, base: str = "base", **options: Any) -> pd.DataFrame:
    """:func:`weight_diff_paths` of a family's ``base`` and ``variant`` checkpoints.

    Every keyword but ``base`` (``directions, ks, tols, n_sv, svd, n_null, device, dtype,
    progress``) is :func:`weight_diff_paths`'s, with its defaults; ``df.attrs`` also names the
    family, variant and base variant.

    >>> df = weight_diff(family, "dpo", directions={"careful": v})   # doctest: +SKIP
    >>> summarize_weight_diff(df, by="component")                    # doctest: +SKIP
    """
    df = weight_diff_paths(
        family.local_path(base), family.local_path(variant), labels=(base, variant), **options
    )
    df.attrs.update({"family": family.name, "variant": variant, "base_variant": base})
    return df


def update_cosine_paths(
    base_path: str | os.PathLike[str],
    a_path: str | os.PathLike[str],
    b_path: str | os.PathLike[str],
    *,
    labels: tuple[str, str] = ("a", "b"),
    base_label: str = "base",
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> pd.DataFrame:
    """Per-parameter cosine ``⟨ΔW_a, ΔW_b⟩_F / (‖ΔW_a‖_F ‖ΔW_b‖_F)`` of two updates of one base.

    ``ΔW_a = W(a_path) − W(base_path)`` and likewise for b; the three checkpoints (folders or
    hub ids, named ``base_label`` and ``labels``) are streamed one parameter at a time. Tidy
    table: ``name, layer, component, kind, numel, delta_fro_<a>, delta_fro_<b>, cosine``.
    Independent random updates give cosine ≈ 0 (about ``1/sqrt(numel)``).
    """
    if labels[0] == labels[1] or base_label in labels:
        raise WeightDiffError(f"labels must be two distinct names other than {base_label!r}, got {labels}.")
    a, b = labels
    pairing = pair_checkpoints({base_label: base_path, a: a_path, b: b_path})
    rows = []
    with torch.no_grad():
        for role, t in pairing.stream(dtype=dtype, device=device):
            da = (t[a] - t[base_label]).double().flatten()
            db = (t[b] - t[base_label]).double().flatten()
            na, nb = float(da.norm()), float(db.norm())
            rows.append(
                {
                    "name": role.name,
                    "layer": role.layer,
                    "component": role.component,
                    "kind": role.kind,
                    "numel": da.numel(),
                    f"delta_fro_{a}": na,
                    f"delta_fro_{b}": nb,
                    "cosine": float(da @ db) / (na * nb) if na > 0 and nb > 0 else math.nan,
                }
            )
            del t, da, db
    df = pd.DataFrame(rows)
    df["layer"] = df["layer"].astype("Int64")
    df.attrs.update({"a": a, "b": b, "base": base_label, "pairing": pairing.summary()})
    return df


def update_cosine(
    family: ModelFamily,
    a: str,
    b: str,
    *,
    base: str = "base",
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> pd.DataFrame:
    """:func:`update_cosine_paths` of a family's variants ``a`` and ``b`` against ``base``.

    Tidy table: ``name, layer, component, kind, numel, delta_fro_<a>, delta_fro_<b>,
    cosine``; ``df.attrs`` also names the family.
    """
    if len({a, b, base}) < 3:
        raise WeightDiffError(
            f"update_cosine needs three distinct variants; got base={base!r}, a={a!r}, b={b!r}."
        )
    df = update_cosine_paths(
        family.local_path(base),
        family.local_path(a),
        family.local_path(b),
        labels=(a, b),
        base_label=base,
        device=device,
        dtype=dtype,
    )
    df.attrs["family"] = family.name
    return df


def summarize_weight_diff(df: pd.DataFrame, by: str | Sequence[str] = "component") -> pd.DataFrame:
    """Aggregate a :func:`weight_diff` table by component (or ``layer``, or both).

    Norms aggregate exactly (``rel_norm = sqrt(Σ‖ΔW‖²) / sqrt(Σ‖W‖²)``), ``updated@tol``
    is weighted by ``numel``, ``delta_share`` is the group's share of the total update
    energy ``Σ‖ΔW‖_F²``; matrix measures (stable rank, overlap, angles, alignment) are
    means over the group's matrices.
    """
    keys = [by] if isinstance(by, str) else list(by)
    unknown = [k for k in keys if k not in df.columns]
    if unknown:
        raise WeightDiffError(
            f"cannot group by {unknown}: not columns of the table. Try 'component' or 'layer'."
        )
    work = df.assign(_d2=df["delta_fro"] ** 2, _b2=df["base_fro"] ** 2)
    total = float(work["_d2"].sum())
    mean_cols = [
        c
        for c in df.columns
        if c in ("stable_rank", "numerical_rank_share")
        or c.startswith(("overlap@", "angle_", "align", "null_overlap@", "null_angle_"))
    ]
    upd_cols = [c for c in df.columns if c.startswith(("updated@", "null_updated@"))]
    out = []
    for key, g in work.groupby(keys, dropna=False, sort=True):
        key_t = key if isinstance(key, tuple) else (key,)
        rec: dict[str, Any] = dict(zip(keys, key_t, strict=True))
        rec["n_params"] = len(g)
        rec["numel"] = int(g["numel"].sum())
        d2, b2 = float(g["_d2"].sum()), float(g["_b2"].sum())
        rec["rel_norm"] = math.sqrt(d2 / b2) if b2 > 0 else math.nan
        rec["delta_share"] = d2 / total if total > 0 else math.nan
        for c in upd_cols:
            rec[c] = float((g[c] * g["numel"]).sum() / g["numel"].sum())
        for c in mean_cols:
            vals = pd.to_numeric(g[c], errors="coerce").dropna()
            rec[c] = float(vals.mean()) if len(vals) else math.nan
        out.append(rec)
    return pd.DataFrame(out)
