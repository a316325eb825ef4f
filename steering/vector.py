"""Steering vectors: per-layer directions with provenance, frozen, saved as safetensors + JSON.

    >>> import torch
    >>> v = SteeringVector.from_direction(torch.tensor([3.0, 4.0]), layer=1)
    >>> v.layers, float(v.norm(1))
    ((1,), 5.0)
    >>> [round(x, 4) for x in v.normalized().directions[1].tolist()]
    [0.6, 0.8]

Methods of :func:`fit_vector` (docs/measures.md, "Steering baselines"):

- ``diff_means``: CAA (Rimsky/Panickssery et al. 2024): mean(positive) - mean(negative).
- ``pca``: RepE (Zou et al. 2023): first principal component of paired differences, seeded
  pairing, sign aligned with the difference of means, scaled to its projection.
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

__all__ = ["SteeringVector", "fit_vector", "METHODS", "random_like"]

METHODS = ("diff_means", "pca", "probe")


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

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> SteeringVector:
        """A new vector on ``device`` / ``dtype`` (the original is unchanged)."""
        return replace(self, directions={k: v.to(device=device, dtype=dtype) for k, v in self.directions.items()})

    def normalized(self) -> SteeringVector:
        """Unit-norm directions at every layer."""
        return replace(self, directions={k: v / v.norm().clamp_min(1e-12) for k, v in self.directions.items()})

    def select(self, layers: Sequence[int]) -> SteeringVector:
        missing = [layer for layer in layers if layer not in self.directions]
        if missing:
            raise ElicitError(f"Vector {self.name or self.method!r} has no layer(s) {missing}; layers: {self.layers}.")
        return replace(self, directions={k: self.directions[k] for k in layers})

    def hook_site(self, layer: int) -> HookSite:
        return HookSite(layer, self.site)

    @classmethod
    def from_direction(
        cls, direction: torch.Tensor, layer: int, *, site: str = "resid_post", name: str = "given", **provenance: Any
    ) -> SteeringVector:
        """Wrap any direction (e.g. an SAE decoder row) as a one-layer vector."""
        if direction.dim() != 1:
            raise ElicitError(f"A direction must be 1-D [d_model], got shape {tuple(direction.shape)}.")
        return cls({layer: direction.detach().clone()}, site=site, method=provenance.pop("method", "given"), name=name, **provenance)

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
        path = Path(path)
        stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
        stem.parent.mkdir(parents=True, exist_ok=True)
        tensors = {f"layer.{k}": v.detach().cpu().contiguous() for k, v in self.directions.items()}
        save_file(tensors, str(stem.with_suffix(".safetensors")))
        stem.with_suffix(".json").write_text(json.dumps(self.provenance(), indent=1))
        return stem.with_suffix(".safetensors")

    @classmethod
    def load(cls, path: str | Path) -> SteeringVector:
        path = Path(path)
        stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
        if not stem.with_suffix(".safetensors").exists() or not stem.with_suffix(".json").exists():
            raise ElicitError(f"No steering vector at {str(stem)!r} (.safetensors and .json expected).")
        tensors = load_file(str(stem.with_suffix(".safetensors")))
        meta = json.loads(stem.with_suffix(".json").read_text())
        return cls(
            {int(k.split(".")[1]): v for k, v in tensors.items()},
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


def random_like(vector: SteeringVector, seed: int = 0) -> SteeringVector:
    """A norm-matched random direction at every layer (the mandatory control, docs/design.md)."""
    g = torch.Generator().manual_seed(seed)
    dirs = {}
    for k, v in vector.directions.items():
        r = torch.randn(v.shape, generator=g, dtype=torch.float64).to(v.dtype)
        dirs[k] = (r / r.norm() * v.norm()).to(v.device)
    return replace(vector, directions=dirs, method="random", name=f"random:{vector.name or vector.method}", seed=seed)


def _labels_mask(labels: Sequence[str | None], want: str | Sequence[str]) -> np.ndarray:
    wanted = {want} if isinstance(want, str) else set(want)
    return np.array([lab in wanted for lab in labels])


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
    (fit on a training split, never on the split you report).
    """
    if method not in METHODS:
        raise ElicitError(f"Unknown method {method!r}. Valid methods: {list(METHODS)} (or SteeringVector.from_direction).")
    sites = list(parse_hooks(hook, n_layers=max((h.layer for h in acts.hooks), default=0) + 1))
    if len({s.site for s in sites}) != 1:
        raise ElicitError(f"All hooks of one vector must share a site; got {[s.key for s in sites]}.")
    labs = list(labels) if labels is not None else list(acts.labels)
    if len(labs) != len(acts):
        raise ElicitError(f"{len(labs)} labels for {len(acts)} prompts; give one label per prompt.")
    keep = np.ones(len(acts), dtype=bool)
    if split is not None:
        keep &= _labels_mask(acts.splits, split)
    pos_m = _labels_mask(labs, contrast[0]) & keep
    neg_m = _labels_mask(labs, contrast[1]) & keep
    if pos_m.sum() < 2 or neg_m.sum() < 2:
        raise ElicitError(
            f"Contrast {contrast} has {int(pos_m.sum())} positive and {int(neg_m.sum())} negative prompts "
            f"(split={split!r}); need at least 2 of each. Labels present: {sorted({str(x) for x in labs})}."
        )
    dirs: dict[int, torch.Tensor] = {}
    norms: dict[int, float] = {}
    rng = np.random.default_rng(seed)
    for site in sites:
        X = acts.get(variant, site, position)
        P, N = X[torch.from_numpy(pos_m)], X[torch.from_numpy(neg_m)]
        dm = P.mean(0) - N.mean(0)
        norms[site.layer] = float(X[torch.from_numpy(keep)].norm(dim=-1).mean())
        if method == "diff_means":
            d = dm
        elif method == "pca":
            m = min(len(P), len(N))
            pi, ni = rng.permutation(len(P))[:m], rng.permutation(len(N))[:m]
            diffs = (P[torch.from_numpy(pi)] - N[torch.from_numpy(ni)]).double()
            # exact SVD (d_model is small enough; avoids the unseeded randomized-PCA pitfall of repeng)
            _, _, vh = torch.linalg.svd(diffs - diffs.mean(0), full_matrices=False)
            pc = vh[0].to(X.dtype)
            pc = pc if float(pc @ dm) >= 0 else -pc
            d = pc * float(pc @ dm)
        else:
            from sklearn.linear_model import LogisticRegression

            Xy = torch.cat([P, N]).double().numpy()
            y = np.r_[np.ones(len(P)), np.zeros(len(N))]
            clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(Xy, y)
            w = torch.from_numpy(clf.coef_[0]).to(X.dtype)
            w = w / w.norm()
            d = w * float(w @ dm)
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
