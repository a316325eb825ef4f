"""Steering vectors: per-layer directions with provenance, frozen, saved as safetensors + JSON.

    >>> import torch
    >>> v = SteeringVector.from_direction(torch.tensor([3.0, 4.0]), layer=1)
    >>> v.layers, float(v.norm(1))
    ((1,), 5.0)
    >>> [round(x, 4) for x in v.normalized().directions[1].tolist()]
    [0.6, 0.8]

Methods of :func:`fit_vector` (docs/measures.md, "Steering baselines"):

- ``diff_means``: CAA (Rimsky/Panickssery et al. 2024): mean(positive) - mean(negative).
- ``pca``: RepE (Zou et al. 2023): first principal component of the differences of matched
  pairs (same question where ids say so, else a seeded pairing), each pair's sign flipped at
  random, uncentred; sign aligned with the difference of means, scaled to its projection.
- ``probe``: the coefficient of a logistic probe (scikit-learn), scaled to the same
  projection as the difference of means.
- :meth:`SteeringVector.from_direction`: any given direction (e.g. an SAE decoder row).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float
from safetensors.torch import load_file, save_file

from probes.data.activations import ActivationSet
from probes.errors import ElicitError
from probes.models.hooks import HookSite, parse_hooks
from probes.representation.directions import contrast_masks, label_mask, mean_difference

__all__ = [
    "SteeringVector",
    "VectorError",
    "fit_vector",
    "fit_shuffled",
    "METHODS",
    "random_like",
    "norm_matched",
]

#: Provenance fields a saved vector's JSON must hold (``name`` is optional).
_SAVED_FIELDS = (
    "site",
    "method",
    "family",
    "variant",
    "task_hash",
    "positions",
    "contrast",
    "seed",
    "n",
    "resid_norms",
)


class VectorError(ElicitError):
    """A steering vector could not be fit, selected or loaded."""


def _stem(path: str | Path) -> Path:
    """``path`` without a ``.safetensors`` / ``.json`` suffix: a saved vector is ``stem.safetensors`` + ``stem.json``."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".safetensors", ".json") else path


@dataclass(frozen=True)
class SteeringVector:
    """Directions by layer at one hook site, with where they came from.

    Attributes:
        directions: layer -> Tensor[d_model].
        site: hook site the directions live at (``resid_post`` by default) and are added to.
        resid_norms: layer -> mean residual-stream norm where the vector was fit (for
            ``units="resid_norm"`` alphas).
        method, family, variant, task_hash, positions, contrast, seed, n: provenance.
    """

    directions: Mapping[int, Float[torch.Tensor, " d_model"]]
    site: str = "resid_post"
    method: str = "given"
    family: str = ""
    variant: str = ""
    task_hash: str = ""
    positions: str = ""
    contrast: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 0
    resid_norms: Mapping[int, float] = field(default_factory=dict)
    name: str = ""

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(sorted(self.directions))

    @property
    def d_model(self) -> int:
        return int(next(iter(self.directions.values())).shape[-1])

    def norm(self, layer: int) -> float:
        return float(self.directions[layer].norm())

    def to(
        self, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> SteeringVector:
        """A new vector on ``device`` / ``dtype`` (the original is unchanged)."""
        return replace(
            self, directions={k: v.to(device=device, dtype=dtype) for k, v in self.directions.items()}
        )

    def normalized(self) -> SteeringVector:
        """Unit-norm directions at every layer."""
        return replace(
            self, directions={k: v / v.norm().clamp_min(1e-12) for k, v in self.directions.items()}
        )

    def select(self, layers: Sequence[int]) -> SteeringVector:
        missing = [layer for layer in layers if layer not in self.directions]
        if missing:
            raise VectorError(
                f"Vector {self.name or self.method!r} has no layer(s) {missing}; layers: {self.layers}."
            )
        return replace(self, directions={k: self.directions[k] for k in layers})

    def hook_site(self, layer: int) -> HookSite:
        return HookSite(layer, self.site)

    @classmethod
    def from_direction(
        cls,
        direction: torch.Tensor,
        layer: int,
        *,
        site: str = "resid_post",
        name: str = "given",
        **provenance: Any,
    ) -> SteeringVector:
        """Wrap any direction (e.g. an SAE decoder row) as a one-layer vector."""
        if direction.dim() != 1:
            raise VectorError(f"A direction must be 1-D [d_model], got shape {tuple(direction.shape)}.")
        return cls(
            {layer: direction.detach().clone()},
            site=site,
            method=provenance.pop("method", "given"),
            name=name,
            **provenance,
        )

    # ---- persistence ---------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "site": self.site,
            "method": self.method,
            "family": self.family,
            "variant": self.variant,
            "task_hash": self.task_hash,
            "positions": self.positions,
            "contrast": list(self.contrast),
            "seed": self.seed,
            "n": self.n,
            "resid_norms": {str(k): v for k, v in self.resid_norms.items()},
            "layers": list(self.layers),
        }

    def save(self, path: str | Path) -> Path:
        """Write ``path.safetensors`` and ``path.json``; returns the safetensors path."""
        stem = _stem(path)
        stem.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"layer.{k}": v.detach().cpu().contiguous() for k, v in self.directions.items()}
        save_file(tensors, str(stem.with_suffix(".safetensors")))
        stem.with_suffix(".json").write_text(json.dumps(self.provenance(), indent=1))
        return stem.with_suffix(".safetensors")

    @classmethod
    def load(cls, path: str | Path) -> SteeringVector:
        """Read a vector written by :meth:`save` (``path`` with or without its suffix)."""
        stem = _stem(path)
        tensors_path, meta_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
        if not tensors_path.exists() or not meta_path.exists():
            raise VectorError(
                f"No steering vector at {str(stem)!r} (.safetensors and .json expected); "
                "write one with SteeringVector.save(path) or fit_vector(...).save(path)."
            )
        directions = _read_directions(tensors_path)
        meta = _read_provenance(meta_path)
        return cls(
            directions,
            site=meta["site"],
            method=meta["method"],
            family=meta["family"],
            variant=meta["variant"],
            task_hash=meta["task_hash"],
            positions=meta["positions"],
            contrast=tuple(meta["contrast"]),
            seed=meta["seed"],
            n=meta["n"],
            resid_norms={int(k): float(v) for k, v in meta["resid_norms"].items()},
            name=meta.get("name", ""),
        )

    def __repr__(self) -> str:
        norms = ", ".join(f"{k}: {self.norm(k):.3g}" for k in self.layers)
        return (
            f"SteeringVector({self.name or self.method!r}, site={self.site}, layers={{{norms}}}, "
            f"from {self.family}/{self.variant} contrast={list(self.contrast)} at {self.positions!r}, n={self.n})"
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{k}</td><td>{self.norm(k):.4g}</td><td>{self.resid_norms.get(k, float('nan')):.4g}</td></tr>"
            for k in self.layers
        )
        return (
            f"<b>SteeringVector</b> <code>{self.name or self.method}</code> ({self.method}) from "
            f"<code>{self.family}/{self.variant}</code>, contrast {list(self.contrast)} at <code>{self.positions}</code>, "
            f"n={self.n}<table><tr><th>layer</th><th>‖v‖</th><th>mean ‖resid‖</th></tr>{rows}</table>"
        )


def _read_directions(path: Path) -> dict[int, torch.Tensor]:
    """``{layer: direction}`` from a saved vector's safetensors file (tensors named ``layer.<int>``)."""
    from safetensors import SafetensorError

    try:
        tensors = load_file(str(path))
    except (OSError, SafetensorError) as err:
        raise VectorError(
            f"Cannot read steering vector tensors {str(path)!r}: {err}. Re-save the vector."
        ) from None
    directions = {}
    for key, value in tensors.items():
        head, _, layer = key.partition(".")
        if head != "layer" or not layer.lstrip("-").isdigit():
            raise VectorError(
                f"Tensor {key!r} in {str(path)!r} is not named 'layer.<int>'; a steering vector file holds one "
                "tensor per layer as written by SteeringVector.save."
            )
        directions[int(layer)] = value
    if not directions:
        raise VectorError(f"{str(path)!r} holds no tensors; a steering vector needs at least one layer.")
    return directions


def _read_provenance(path: Path) -> dict[str, Any]:
    """A saved vector's JSON provenance, checked for the fields :meth:`SteeringVector.load` reads."""
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise VectorError(
            f"{str(path)!r} is not valid JSON ({err}); re-save the vector with SteeringVector.save."
        ) from None
    if not isinstance(meta, dict):
        raise VectorError(
            f"{str(path)!r} holds a {type(meta).__name__}, not a provenance object; re-save the vector."
        )
    missing = [k for k in _SAVED_FIELDS if k not in meta]
    if missing:
        raise VectorError(
            f"{str(path)!r} lacks provenance field(s) {missing} (needs {list(_SAVED_FIELDS)}); "
            "re-save the vector with SteeringVector.save."
        )
    norms = meta["resid_norms"]
    bad = [k for k in norms if not str(k).lstrip("-").isdigit()] if isinstance(norms, dict) else [norms]
    if bad:
        raise VectorError(f"resid_norms in {str(path)!r} has non-layer key(s) {bad}; keys are layer numbers.")
    return meta


def random_like(vector: SteeringVector, seed: int = 0) -> SteeringVector:
    """A norm-matched random direction at every layer (the mandatory control, docs/design.md)."""
    g = torch.Generator().manual_seed(seed)
    dirs = {}
    for k, v in vector.directions.items():
        r = torch.randn(v.shape, generator=g, dtype=torch.float64).to(v.dtype)
        dirs[k] = (r / r.norm() * v.norm()).to(v.device)
    return replace(
        vector, directions=dirs, method="random", name=f"random:{vector.name or vector.method}", seed=seed
    )


def norm_matched(vector: SteeringVector, like: SteeringVector) -> SteeringVector:
    """``vector`` rescaled at every layer to the norm of ``like`` there (layers of ``like`` only)."""
    missing = [k for k in like.layers if k not in vector.directions]
    if missing:
        raise VectorError(f"Cannot norm-match: {vector.name!r} has no direction at layer(s) {missing}.")
    dirs = {
        k: vector.directions[k] / vector.directions[k].norm().clamp_min(1e-12) * like.directions[k].norm()
        for k in like.layers
    }
    return replace(vector, directions=dirs)


# ---- fit methods: (positive rows, negative rows, their mean difference, rng, seed) -> direction
def _fit_diff_means(
    P: torch.Tensor, N: torch.Tensor, dm: torch.Tensor, rng: np.random.Generator, seed: int
) -> torch.Tensor:
    """CAA: the difference of means itself."""
    return dm


def _fit_pca(
    P: torch.Tensor,
    N: torch.Tensor,
    dm: torch.Tensor,
    rng: np.random.Generator,
    seed: int,
    pairs: tuple[np.ndarray, np.ndarray] | None = None,
) -> torch.Tensor:
    """RepE (Zou et al. 2023): the first principal component of the differences of matched pairs,
    each pair's order flipped at random, *not* centred (the mean difference is the contrast, and
    with random signs it is the top-variance axis); sign and scale from ``dm``.

    ``pairs`` (positive rows, negative rows) match prompts of the same question; without them the
    two sides are paired by a seeded permutation (the shorter side sets the number of pairs)."""
    if pairs is None:
        m = min(len(P), len(N))
        pi, ni = rng.permutation(len(P))[:m], rng.permutation(len(N))[:m]
    else:
        pi, ni = pairs
    diffs = (P[torch.from_numpy(pi)] - N[torch.from_numpy(ni)]).double()
    signs = torch.from_numpy(rng.choice([-1.0, 1.0], size=len(pi)))
    # exact SVD of the uncentred, sign-flipped differences (d_model is small enough; avoids the
    # unseeded randomized-PCA pitfall of repeng)
    _, _, vh = torch.linalg.svd(diffs * signs[:, None], full_matrices=False)
    pc = vh[0].to(P.dtype)
    pc = pc if float(pc @ dm) >= 0 else -pc
    return pc * float(pc @ dm)


def _matched_pairs(
    ids: Sequence[str] | None, pos: np.ndarray, neg: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows of the positive and negative prompts asked of the same question: ids ``Q/label`` (the
    contrast recipes' ids) sharing ``Q``, one of each; ``None`` unless every prompt has its match."""
    if ids is None:
        return None
    stem = [str(i).rsplit("/", 1)[0] if "/" in str(i) else None for i in ids]
    p_rows, n_rows = np.flatnonzero(pos), np.flatnonzero(neg)
    n_of = {stem[j]: k for k, j in enumerate(n_rows)}
    p_stems = [stem[j] for j in p_rows]
    if None in n_of or len(n_of) != len(n_rows) or sorted(map(str, p_stems)) != sorted(map(str, n_of)):
        return None  # not exactly one positive and one negative per question
    return np.arange(len(p_rows)), np.array([n_of[q] for q in p_stems])


def _fit_probe(
    P: torch.Tensor, N: torch.Tensor, dm: torch.Tensor, rng: np.random.Generator, seed: int
) -> torch.Tensor:
    """A logistic probe's unit coefficient, scaled to the projection of ``dm`` on it."""
    from sklearn.linear_model import LogisticRegression

    Xy = torch.cat([P, N]).double().numpy()
    y = np.r_[np.ones(len(P)), np.zeros(len(N))]
    clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(Xy, y)
    w = torch.from_numpy(clf.coef_[0]).to(P.dtype)
    w = w / w.norm()
    return w * float(w @ dm)


_FITS = {"diff_means": _fit_diff_means, "pca": _fit_pca, "probe": _fit_probe}
#: The fit methods of :func:`fit_vector`.
METHODS = tuple(_FITS)


def _vector_sites(acts: ActivationSet, hook: str | HookSite | Sequence[str | HookSite]) -> list[HookSite]:
    sites = list(parse_hooks(hook, n_layers=max((h.layer for h in acts.hooks), default=0) + 1))
    if len({s.site for s in sites}) != 1:
        raise VectorError(f"All hooks of one vector must share a site; got {[s.key for s in sites]}.")
    return sites


def _contrast_prompts(
    acts: ActivationSet,
    contrast: tuple[str | Sequence[str], str | Sequence[str]],
    labels: Sequence[str | None] | None,
    split: str | Sequence[str] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(keep, positive, negative)`` prompt masks: the split's prompts and the contrast's two sides in it."""
    labs = list(labels) if labels is not None else list(acts.labels)
    if len(labs) != len(acts):
        raise VectorError(f"{len(labs)} labels for {len(acts)} prompts; give one label per prompt.")
    keep = np.ones(len(acts), dtype=bool)
    if split is not None:
        keep &= label_mask(acts.splits, split)
    pos, neg = contrast_masks(labs, contrast, keep=keep, where=f" (split={split!r})")
    return keep, pos, neg


def fit_vector(
    acts: ActivationSet,
    variant: str,
    hook: str | HookSite | Sequence[str | HookSite],
    contrast: tuple[str | Sequence[str], str | Sequence[str]],
    *,
    method: str = "diff_means",
    position: str | None = None,
    labels: Sequence[str | None] | None = None,
    split: str | Sequence[str] | None = None,
    seed: int = 0,
    name: str = "",
) -> SteeringVector:
    """Fit a steering vector on ``variant``'s activations from a (positive, negative) contrast.

    ``hook`` may be several sites of one kind (one direction per layer). ``labels`` default
    to the task labels stored with the activations; ``split`` restricts the prompts used
    (fit on a training split, never on the split you report). ``method`` is one of
    :data:`METHODS` (module docstring).
    """
    fit = _FITS.get(method)
    if fit is None:
        raise VectorError(
            f"Unknown method {method!r}. Valid methods: {list(METHODS)} (or SteeringVector.from_direction)."
        )
    sites = _vector_sites(acts, hook)
    keep, pos_m, neg_m = _contrast_prompts(acts, contrast, labels, split)
    dirs: dict[int, torch.Tensor] = {}
    norms: dict[int, float] = {}
    rng = np.random.default_rng(seed)  # one stream across layers (the PCA pairing draws from it)
    pairs = _matched_pairs(getattr(acts, "prompt_ids", None), pos_m, neg_m) if method == "pca" else None
    for site in sites:
        X = acts.get(variant, site, position)
        P, N = X[torch.from_numpy(pos_m)], X[torch.from_numpy(neg_m)]
        norms[site.layer] = float(X[torch.from_numpy(keep)].norm(dim=-1).mean())
        dm = mean_difference(P, N)
        d = _fit_pca(P, N, dm, rng, seed, pairs) if method == "pca" else fit(P, N, dm, rng, seed)
        dirs[site.layer] = d.detach().clone()
    return SteeringVector(
        dirs,
        site=sites[0].site,
        method=method,
        family=str(acts.meta.get("family", "")),
        variant=variant,
        task_hash=acts.task_hash,
        positions=position or acts.positions[0],
        contrast=tuple(str(c) if isinstance(c, str) else "+".join(c) for c in contrast),
        seed=seed,
        n=int(pos_m.sum() + neg_m.sum()),
        resid_norms=norms,
        name=name or f"{variant}:{method}",
    )


def fit_shuffled(
    acts: ActivationSet,
    variant: str,
    hook: str | HookSite | Sequence[str | HookSite],
    contrast: tuple[str | Sequence[str], str | Sequence[str]],
    *,
    like: SteeringVector,
    method: str = "diff_means",
    position: str | None = None,
    split: str | Sequence[str] | None = None,
    seed: int = 0,
) -> SteeringVector:
    """The label-shuffled null of a contrast vector: :func:`fit_vector` on the same prompts with
    the contrast labels permuted among the contrast's prompts (seeded), norm-matched at every
    layer to ``like`` (the real vector), so it differs from it only in which prompts sit on
    which side. Its steering effect is what any push along a data direction of that size does.
    """
    keep, pos_m, neg_m = _contrast_prompts(acts, contrast, None, split)
    labels: list[str | None] = list(acts.labels)
    idx = np.flatnonzero(pos_m | neg_m)
    perm = np.random.default_rng(seed).permutation(idx)
    for i, j in zip(idx, perm, strict=True):
        labels[i] = acts.labels[j]
    vec = fit_vector(
        acts,
        variant,
        hook,
        contrast,
        method=method,
        position=position,
        labels=labels,
        split=split,
        seed=seed,
        name=f"shuffled:{like.name or like.method}",
    )
    return replace(norm_matched(vec, like), method=f"shuffled-{method}")
