"""Alignment of a weight update's output space with residual-stream directions.

docs/measures.md, "Weight geometry". For a residual-stream writer ``ΔW`` (``[d_model, in]``) and
a unit direction ``d`` (a steering vector, an SAE decoder row),
``a(d) = ‖dᵀ ΔW‖_2 / ‖ΔW‖_2`` in ``[0, 1]``: 1 when ``d`` is the update's top output direction.
The null is ``a(r)`` over seeded random unit directions ``r``; for a rank-``r`` update in
``d_model`` dimensions it is about ``sqrt(r / d_model)``.

    >>> d = torch.tensor([1.0, 0.0, 0.0])
    >>> out = output_alignment(torch.outer(d, torch.tensor([0.0, 2.0])), {"d": d}, n_null=10)
    >>> round(out["align:d"], 6)
    1.0
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np
import torch
from jaxtyping import Float

from probes.weights.measures import CHUNK_ELEMS, WeightDiffError

__all__ = ["Directions", "unit_directions", "output_alignment", "load_directions", "direction_columns"]

#: Residual-stream directions: ``{name: Tensor[d_model]}`` or ``Tensor[n, d_model]``.
Directions = Mapping[str, torch.Tensor] | torch.Tensor


def _stacked_mapping(directions: Mapping[str, torch.Tensor]) -> tuple[list[str], torch.Tensor]:
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
    return names, torch.stack(rows)


def _named_rows(directions: Directions) -> tuple[list[str], Float[torch.Tensor, "n d_model"]]:
    """Names (a tensor's rows are named ``0, 1, ...``) and the directions as rows of one matrix."""
    if isinstance(directions, Mapping):
        return _stacked_mapping(directions)
    if not isinstance(directions, torch.Tensor):
        raise WeightDiffError(
            f"directions must be a mapping {{name: Tensor[d_model]}} or a Tensor[n, d_model], "
            f"got {type(directions).__name__}."
        )
    mat = directions.unsqueeze(0) if directions.dim() == 1 else directions
    if mat.dim() != 2:
        raise WeightDiffError(
            f"directions must be Tensor[d_model] or Tensor[n, d_model], got shape {tuple(directions.shape)}."
        )
    return [str(i) for i in range(mat.shape[0])], mat


def unit_directions(
    directions: Directions, d_model: int | None = None
) -> tuple[list[str], Float[torch.Tensor, "n d_model"]]:
    """``(names, rows)``: the directions as unit-norm float32 rows (a new tensor), validated
    against ``d_model`` when given; zero vectors are an error."""
    names, mat = _named_rows(directions)
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
    step = max(1, CHUNK_ELEMS // max(1, delta.shape[1]))
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
    names, units = unit_directions(directions, delta.shape[0])
    units = units.to(delta.device)
    if sigma_max is None:
        sigma_max = float(torch.linalg.matrix_norm(delta, ord=2))
    if sigma_max == 0:
        return {
            **{f"align:{n}": math.nan for n in names},
            "align_null_mean": math.nan,
            "align_null_p95": math.nan,
        }
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


def direction_columns(directions: Directions | None) -> list[str]:
    """The alignment columns a table gets for ``directions`` (validating them; none for ``None``)."""
    if directions is None:
        return []
    names, _ = unit_directions(directions)
    return [f"align:{n}" for n in names] + ["align_null_mean", "align_null_p95"]
