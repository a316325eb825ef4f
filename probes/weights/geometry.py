"""Weight geometry: how big, how low-rank, how sparse each update is, and where it points.

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
``align:<name>``, ``align_null_mean``, ``align_null_p95``
    for residual-stream writers only (``o``, ``down``, ``embed``, ``pos_embed``): with a
    unit direction ``d`` in the residual stream (a steering vector, an SAE decoder row),
    ``a(d) = ‖dᵀ ΔW‖_2 / ‖ΔW‖_2`` in ``[0, 1]``: 1 when ``d`` is the update's top output
    direction (a rank-1 update ``d vᵀ`` gives exactly 1). The null is ``a(r)`` over
    ``n_null`` random unit directions ``r`` from a seeded generator (mean and 95th
    percentile); for a rank-``r`` update in ``d_model`` dimensions it is about
    ``sqrt(r / d_model)``.

Matrices are ``[out, in]`` (GPT-2 Conv1D weights and embeddings are transposed, see
:mod:`probes.models.checkpoint`). Singular vectors come from ``torch.linalg.svd`` when
``min(out, in) <= full_svd_max`` (and the matrix is small, see :class:`SVDSettings`) and
from a seeded ``torch.svd_lowrank`` otherwise; the
``svd_method`` column states which, with its rank and power iterations. With the
randomized method ``‖ΔW‖_2`` may be slightly underestimated (so ``stable_rank`` slightly
over), and ``delta_sv`` holds only the top ``q`` values.

:func:`update_cosine` compares the updates of two variants (e.g. SFT vs DPO):
``⟨ΔW_a, ΔW_b⟩_F / (‖ΔW_a‖_F ‖ΔW_b‖_F)`` per parameter.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float

from probes.errors import ElicitError
from probes.models.checkpoint import CheckpointPairing, ParamRole, pair_checkpoints
from probes.models.family import ModelFamily

__all__ = [
    "WeightDiffError",
    "SVDSettings",
    "Spectrum",
    "stable_rank",
    "update_sparsity",
    "spectrum",
    "subspace_overlap",
    "principal_angles",
    "output_alignment",
    "load_directions",
    "weight_diff",
    "weight_diff_paths",
    "update_cosine",
    "update_cosine_paths",
    "summarize_weight_diff",
]

DEFAULT_KS = (1, 4, 16)
#: Absolute tolerances on ``|ΔW|``: any change at all, bf16-level noise, a clear change.
DEFAULT_TOLS = (0.0, 1e-5, 1e-3)
#: Elements per temporary block in chunked reductions (16 MB in float32).
_CHUNK_ELEMS = 1 << 22

Directions = Mapping[str, torch.Tensor] | torch.Tensor


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


def _use_full(shape: Sequence[int], settings: SVDSettings) -> bool:
    if settings.method != "auto":
        return settings.method == "full"
    numel = math.prod(shape)
    return min(shape) <= settings.full_svd_max and numel <= settings.full_svd_max_numel


def spectrum(matrix: Float[torch.Tensor, "out in"], q: int, settings: SVDSettings = SVDSettings()) -> Spectrum:
    """The top-``q`` singular triplets of ``matrix`` (all of them with a full SVD)."""
    if matrix.dim() != 2:
        raise WeightDiffError(f"spectrum needs a 2-D matrix, got shape {tuple(matrix.shape)}.")
    m, n = matrix.shape
    if _use_full(matrix.shape, settings):
        U, S, Vh = torch.linalg.svd(matrix, full_matrices=False)
        return Spectrum(U, S, Vh.mT, "full")
    rank = min(q + settings.oversample, m, n)
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
    rows = delta.reshape(-1, delta.shape[-1]) if delta.dim() > 1 else delta.reshape(1, -1)
    step = max(1, _CHUNK_ELEMS // max(1, rows.shape[1]))
    for chunk in rows.split(step):
        mag = chunk.abs()
        for t in counts:
            counts[t] += int(torch.count_nonzero(mag > t))
    return {t: c / n for t, c in counts.items()} if n else dict.fromkeys(counts, 0.0)


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


def _unit_directions(directions: Directions, d_model: int | None = None) -> tuple[list[str], torch.Tensor]:
    if isinstance(directions, torch.Tensor):
        mat = directions.unsqueeze(0) if directions.dim() == 1 else directions
        if mat.dim() != 2:
            raise WeightDiffError(
                f"directions must be Tensor[d_model] or Tensor[n, d_model], got shape "
                f"{tuple(directions.shape)}."
            )
        names = [str(i) for i in range(mat.shape[0])]
    elif isinstance(directions, Mapping):
        if not directions:
            raise WeightDiffError("directions is an empty mapping; give {name: Tensor[d_model]}.")
        rows, names = [], []
        for key, vec in directions.items():
            if not isinstance(vec, torch.Tensor) or vec.dim() != 1:
                shape = tuple(vec.shape) if isinstance(vec, torch.Tensor) else type(vec).__name__
                raise WeightDiffError(
                    f"direction {key!r} must be a 1-D Tensor[d_model], got {shape}. "
                    "Pass several directions of one name as a Tensor[n, d_model] instead."
                )
            rows.append(vec)
            names.append(str(key))
        sizes = {r.shape[0] for r in rows}
        if len(sizes) > 1:
            raise WeightDiffError(f"directions have different lengths {sorted(sizes)}; all must be d_model.")
        mat = torch.stack(rows)
    else:
        raise WeightDiffError(
            f"directions must be a mapping {{name: Tensor[d_model]}} or a Tensor[n, d_model], "
            f"got {type(directions).__name__}."
        )
    if d_model is not None and mat.shape[1] != d_model:
        raise WeightDiffError(
            f"directions have length {mat.shape[1]} but the residual stream has d_model={d_model}. "
            "Pass residual-stream directions of this model (steering vectors, SAE decoder rows)."
        )
    mat = mat.detach().to(torch.float32)  # a new tensor: the caller's is never modified
    norms = mat.norm(dim=1, keepdim=True)
    if bool((norms == 0).any()):
        zero = [names[i] for i in torch.nonzero(norms[:, 0] == 0).flatten().tolist()]
        raise WeightDiffError(f"direction(s) {zero} are zero vectors; alignment needs a direction.")
    return names, mat / norms


def _row_norms(
    dirs: Float[torch.Tensor, "n d_model"], delta: Float[torch.Tensor, "d_model in"]
) -> Float[torch.Tensor, " n"]:
    # ‖dirs @ ΔW‖ per row, a few rows at a time: an [n, in] product for thousands of SAE
    # rows against a 128k-token embedding would otherwise be gigabytes.
    step = max(1, _CHUNK_ELEMS // max(1, delta.shape[1]))
    return torch.cat([(chunk @ delta).norm(dim=1) for chunk in dirs.split(step)])


def output_alignment(
    delta: Float[torch.Tensor, "d_model in"],
    directions: Directions,
    *,
    sigma_max: float | None = None,
    n_null: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    """Alignment of the update's output space with residual directions, against random ones.

    ``a(d) = ‖dᵀ ΔW‖_2 / ‖ΔW‖_2`` for each unit ``d`` (directions are normalized here);
    the null is ``a(r)`` for ``n_null`` random unit ``r`` drawn with ``torch.Generator``
    seeded by ``seed``. Returns ``{"align:<name>": ..., "align_null_mean": ...,
    "align_null_p95": ...}`` (NaN for a zero update).
    """
    names, units = _unit_directions(directions, delta.shape[0])
    units = units.to(delta.device)
    if sigma_max is None:
        sigma_max = float(torch.linalg.matrix_norm(delta, ord=2))
    if sigma_max == 0:
        return {**{f"align:{n}": math.nan for n in names}, "align_null_mean": math.nan, "align_null_p95": math.nan}
    effect = _row_norms(units, delta) / sigma_max
    gen = torch.Generator().manual_seed(seed)
    rand = torch.randn(n_null, delta.shape[0], generator=gen)
    rand = (rand / rand.norm(dim=1, keepdim=True)).to(delta.device)
    null = (_row_norms(rand, delta) / sigma_max).cpu().numpy()
    out = {f"align:{n}": float(e) for n, e in zip(names, effect.tolist(), strict=True)}
    out["align_null_mean"] = float(null.mean())
    out["align_null_p95"] = float(np.quantile(null, 0.95))
    return out


def load_directions(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Residual-stream directions from a safetensors file, as ``{name: Tensor[d_model]}``.

    A stored ``Tensor[d_model]`` keeps its name; a ``Tensor[n, d_model]`` (e.g. SAE decoder
    rows, or one steering vector per layer) becomes ``name/0 ... name/{n-1}``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        stored = load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise WeightDiffError(
            f"Could not read directions from {str(path)!r}: {err}. Save them with "
            "`safetensors.torch.save_file({name: Tensor[d_model]}, path)`."
        ) from err
    out: dict[str, torch.Tensor] = {}
    for name, t in stored.items():
        if t.dim() == 1:
            out[name] = t
        elif t.dim() == 2:
            out.update({f"{name}/{i}": row for i, row in enumerate(t)})
        else:
            raise WeightDiffError(
                f"Direction tensor {name!r} in {str(path)!r} has shape {tuple(t.shape)}; "
                "store Tensor[d_model] or Tensor[n, d_model]."
            )
    if not out:
        raise WeightDiffError(f"{str(path)!r} holds no tensors; save at least one direction.")
    return out


# ------------------------------------------------------------------ one row
def _check_args(ks: Sequence[int], tols: Sequence[float], n_sv: int) -> tuple[tuple[int, ...], tuple[float, ...]]:
    ks_t = tuple(int(k) for k in ks)
    if not ks_t or any(k < 1 for k in ks_t):
        raise WeightDiffError(f"ks must be positive subspace sizes, e.g. (1, 4, 16); got {tuple(ks)}.")
    tols_t = tuple(float(t) for t in tols)
    if not tols_t or any(t < 0 for t in tols_t):
        raise WeightDiffError(f"tols must be non-negative absolute tolerances, e.g. (0, 1e-5, 1e-3); got {tuple(tols)}.")
    if n_sv < 1:
        raise WeightDiffError(f"n_sv must be >= 1, got {n_sv}.")
    return ks_t, tols_t


def _tol_label(t: float) -> str:
    return "0" if t == 0 else f"{t:g}"


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
) -> dict[str, Any]:
    delta = tuned - base
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
    for t, frac in update_sparsity(delta, tols).items():
        row[f"updated@{_tol_label(t)}"] = frac
        row[f"sparsity@{_tol_label(t)}"] = 1.0 - frac
    matrix_cols: dict[str, Any] = {"stable_rank": math.nan, "delta_sv": [], "sigma_max": math.nan}
    for k in ks:
        matrix_cols[f"overlap@{k}"] = math.nan
        for side in ("out", "in"):
            matrix_cols[f"angle_{side}_mean@{k}"] = math.nan
            matrix_cols[f"angle_{side}_max@{k}"] = math.nan
    matrix_cols["svd_method"] = "none (not a matrix)"
    row.update(matrix_cols)
    if delta.dim() != 2 or min(delta.shape) == 0:
        return row

    q = max(max(ks), n_sv)
    if _use_full(delta.shape, settings):
        delta_sv = torch.linalg.svdvals(delta)  # values only: the update's vectors are not needed
    else:
        delta_sv = spectrum(delta, n_sv, settings).S
    sigma = float(delta_sv[0]) if delta_sv.numel() else 0.0
    row["sigma_max"] = sigma
    row["stable_rank"] = delta_fro**2 / sigma**2 if sigma > 0 else math.nan
    row["delta_sv"] = delta_sv[:n_sv].tolist()
    b_spec = spectrum(base, q, settings)
    t_spec = spectrum(tuned, q, settings)
    for k, ov in subspace_overlap(delta, b_spec.U, b_spec.V, ks).items():
        row[f"overlap@{k}"] = ov
    for k in ks:
        if k > b_spec.U.shape[1] or k > t_spec.U.shape[1]:
            continue
        for side, A, B in (("out", b_spec.U, t_spec.U), ("in", b_spec.V, t_spec.V)):
            ang = principal_angles(A[:, :k], B[:, :k])
            row[f"angle_{side}_mean@{k}"] = float(ang.mean())
            row[f"angle_{side}_max@{k}"] = float(ang.max())
    row["svd_method"] = b_spec.method
    del b_spec, t_spec
    if directions is not None and role.writes_residual:
        row.update(output_alignment(delta, directions, sigma_max=sigma, n_null=n_null, seed=settings.seed))
    return row


def _direction_columns(directions: Directions | None) -> list[str]:
    if directions is None:
        return []
    names, _ = _unit_directions(directions)
    return [f"align:{n}" for n in names] + ["align_null_mean", "align_null_p95"]


# ------------------------------------------------------------------ tables
def _diff_table(
    pairing: CheckpointPairing,
    *,
    ks: Sequence[int],
    tols: Sequence[float],
    n_sv: int,
    svd: SVDSettings,
    directions: Directions | None,
    n_null: int,
    device: str,
    dtype: torch.dtype,
    progress: bool,
) -> pd.DataFrame:
    ks_t, tols_t = _check_args(ks, tols, n_sv)
    align_cols = _direction_columns(directions)  # validates directions before any reading
    base_label, tuned_label = pairing.labels[:2]
    rows = []
    stream = pairing.stream(dtype=dtype, device=device)
    if progress:
        from tqdm.auto import tqdm

        stream = tqdm(stream, total=len(pairing.shared), desc="weight diff", unit="tensor")
    with torch.no_grad():
        for role, tensors in stream:
            rows.append(
                _row(
                    role, tensors[base_label], tensors[tuned_label],
                    ks=ks_t, tols=tols_t, n_sv=n_sv, settings=svd,
                    directions=directions, n_null=n_null,
                )
            )
            del tensors
    df = pd.DataFrame(rows)
    for col in align_cols:
        if col not in df:
            df[col] = math.nan
    df["layer"] = df["layer"].astype("Int64")
    df.attrs.update(
        {
            "base": str(pairing.checkpoints[base_label].path),
            "tuned": str(pairing.checkpoints[tuned_label].path),
            "ks": list(ks_t),
            "tols": list(tols_t),
            "tolerance": "absolute, on |W_tuned - W_base| in " + str(dtype).replace("torch.", ""),
            "svd": {
                "method": svd.method, "full_svd_max": svd.full_svd_max,
                "full_svd_max_numel": svd.full_svd_max_numel, "oversample": svd.oversample,
                "niter": svd.niter, "seed": svd.seed,
            },
            "alignment": (
                "||d^T dW||_2 / ||dW||_2 for unit d on residual writers; null over "
                f"{n_null} seeded random unit directions" if directions is not None else None
            ),
            "pairing": pairing.summary(),
        }
    )
    return df


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
) -> pd.DataFrame:
    """:func:`weight_diff` for two checkpoints given as folders or hub ids.

    The base is ``base_path``; ``ΔW = W(tuned_path) − W(base_path)``, computed in
    ``dtype`` on ``device``. Settings and every unpaired or unknown name are in ``df.attrs``.
    """
    pairing = pair_checkpoints({"base": base_path, "tuned": tuned_path})
    return _diff_table(
        pairing, ks=ks, tols=tols, n_sv=n_sv, svd=svd, directions=directions,
        n_null=n_null, device=device, dtype=dtype, progress=progress,
    )


def weight_diff(
    family: ModelFamily,
    variant: str,
    *,
    base: str = "base",
    directions: Directions | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    tols: Sequence[float] = DEFAULT_TOLS,
    n_sv: int = 16,
    svd: SVDSettings = SVDSettings(),
    n_null: int = 1000,
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    progress: bool = False,
) -> pd.DataFrame:
    """Per-parameter geometry of ``ΔW = W(variant) − W(base)``: one row per parameter.

    Columns: ``name, layer, component, kind, shape ([out, in]), numel, transposed,
    writes_residual, base_fro, delta_fro, rel_norm, max_abs_delta, updated@tol,
    sparsity@tol, stable_rank, delta_sv, sigma_max, overlap@k, angle_{out,in}_{mean,max}@k,
    svd_method`` and, with ``directions`` (``{name: Tensor[d_model]}`` or
    ``Tensor[n, d_model]`` of residual-stream directions), ``align:<name>,
    align_null_mean, align_null_p95`` on residual writers. Definitions are in this
    module's docstring (docs/measures.md, "Weight geometry"; Zhu et al. 2025; Mukherjee et al.
    2025). The two checkpoints are streamed one parameter at a time.

    >>> df = weight_diff(family, "dpo", directions={"careful": v})   # doctest: +SKIP
    >>> summarize_weight_diff(df, by="component")                    # doctest: +SKIP
    """
    pairing = pair_checkpoints(
        {base: family.local_path(base), variant: family.local_path(variant)}
    )
    df = _diff_table(
        pairing, ks=ks, tols=tols, n_sv=n_sv, svd=svd, directions=directions,
        n_null=n_null, device=device, dtype=dtype, progress=progress,
    )
    df.attrs.update({"family": family.name, "variant": variant, "base_variant": base})
    return df


def _cosine_table(pairing: CheckpointPairing, device: str, dtype: torch.dtype) -> pd.DataFrame:
    ref, a, b = pairing.labels[:3]
    rows = []
    with torch.no_grad():
        for role, t in pairing.stream(dtype=dtype, device=device):
            da = (t[a] - t[ref]).double().flatten()
            db = (t[b] - t[ref]).double().flatten()
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
    df.attrs.update({"a": a, "b": b, "base": ref, "pairing": pairing.summary()})
    return df


def update_cosine_paths(
    base_path: str | os.PathLike[str],
    a_path: str | os.PathLike[str],
    b_path: str | os.PathLike[str],
    *,
    labels: tuple[str, str] = ("a", "b"),
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> pd.DataFrame:
    """:func:`update_cosine` for three checkpoint folders or hub ids."""
    if labels[0] == labels[1] or "base" in labels:
        raise WeightDiffError(f"labels must be two distinct names other than 'base', got {labels}.")
    pairing = pair_checkpoints({"base": base_path, labels[0]: a_path, labels[1]: b_path})
    return _cosine_table(pairing, device, dtype)


def update_cosine(
    family: ModelFamily,
    a: str,
    b: str,
    *,
    base: str = "base",
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> pd.DataFrame:
    """Per-parameter cosine ``⟨ΔW_a, ΔW_b⟩_F / (‖ΔW_a‖_F ‖ΔW_b‖_F)`` of two variants' updates.

    Tidy table: ``name, layer, component, kind, numel, delta_fro_<a>, delta_fro_<b>,
    cosine``. Three checkpoints are streamed one parameter at a time. Independent random
    updates give cosine ≈ 0 (about ``1/sqrt(numel)``).
    """
    if len({a, b, base}) < 3:
        raise WeightDiffError(f"update_cosine needs three distinct variants; got base={base!r}, a={a!r}, b={b!r}.")
    pairing = pair_checkpoints(
        {base: family.local_path(base), a: family.local_path(a), b: family.local_path(b)}
    )
    df = _cosine_table(pairing, device, dtype)
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
        raise WeightDiffError(f"cannot group by {unknown}: not columns of the table. Try 'component' or 'layer'.")
    work = df.assign(_d2=df["delta_fro"] ** 2, _b2=df["base_fro"] ** 2)
    total = float(work["_d2"].sum())
    mean_cols = [
        c for c in df.columns
        if c == "stable_rank" or c.startswith(("overlap@", "angle_", "align"))
    ]
    upd_cols = [c for c in df.columns if c.startswith("updated@")]
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
