"""Crosscoder model diffing: one sparse dictionary over ``[h_base; h_variant]``, decoder split per model.

docs/measures.md, "SAEs and crosscoders" (Lindsey et al. 2024, "Sparse crosscoders for
cross-layer features and model diffing"; Minder et al. 2025, "Robustly identifying concepts
introduced during chat fine-tuning using crosscoders")::

    cc = train_crosscoder(acts, "base", "dpo", "resid_post.1", "all", d_sae=512, k=8, out="cc/")
    lat = crosscoder_latents(cc, acts)          # rel_norm, class, ν for variant-only latents
    crosscoder_summary(lat)                     # counts of base-only / shared / variant-only
    top_latent_prompts(cc, acts, lat)           # the most activating prompts of the top ones

Definitions. The decoder row ``d_j`` of latent ``j`` splits into ``d_j^base`` and
``d_j^variant``; the relative decoder-norm difference is Minder et al.'s (2025)
``Δ_j = ½ ((‖d_j^variant‖ − ‖d_j^base‖) / max(‖d_j^variant‖, ‖d_j^base‖) + 1)``; a latent is
variant-only when ``Δ > 0.9``, base-only when ``Δ < 0.1``, shared otherwise. (Lindsey et al.'s
ratio ``‖d^variant‖ / (‖d^base‖ + ‖d^variant‖)``, which the kit used before, is another scale:
Minder's 0.9 is 0.833 on it, so its 0.9 cut was stricter than theirs.) Latent scaling: for a variant-only latent, fit ``β_m`` minimising
``Σ_x ‖β_m f_j(x) d_j^variant − y_m(x)‖²`` where ``y_m`` is model m's activation minus the
crosscoder reconstruction without latent j; ``ν = β_base / β_variant`` near 0 means the
latent is truly variant-only (near 1: the base has it too, the crosscoder only split it).
The second ratio ``ν^r`` fits the same ``β`` against each model's whole reconstruction (near 1:
other latents carry the direction in the base); :func:`latent_scaling` has both.

What sae_lens provides and what is added here. sae_lens has no crosscoder; an SAE over the
concatenation ``[h_base; h_variant]`` (``d_in = 2·d_model``) *is* an acausal two-model
crosscoder: its encoder ``W_enc`` is the sum of per-model encoders and its decoder rows split
into per-model halves. So training is sae_lens's ``BatchTopKTrainingSAE`` + ``SAETrainer``
(BatchTopK as in Minder et al., who found L1 invents model-specific latents) and the saved
dictionary is an ordinary sae_lens folder. Added here: (1) each model's activations are
scaled separately to expected norm ``sqrt(d_model)`` before concatenation (one scale for the
concatenation would let a model with larger norms own more decoder norm); (2) the per-model
split, relative norms, classes and latent scaling; (3) a JSON sidecar naming the two models,
hook, position and scales. One difference from Minder et al. is kept, not hidden: their
BatchTopK ranks activations by ``f_j · (‖d_j^base‖ + ‖d_j^variant‖)``, sae_lens by
``f_j · ‖[d_j^base; d_j^variant]‖₂``; the L2 form makes a shared latent relatively cheaper,
which if anything *under*-counts model-specific latents.

Glossary of dimensions: ``row`` (token rows), ``d_model``, ``d_sae``, ``model`` (2: base, variant).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from einops import rearrange
from jaxtyping import Float, Int

from probes.data.activations import ActivationSet
from probes.dictionaries.training import (
    PLATEAU_TOL,
    position_key,
    store_keep_mask,
    train_dictionary,
    until_converged,
)
from probes.errors import ElicitError
from probes.models.hooks import HookSite
from probes.models.positions import Position

__all__ = [
    "Crosscoder",
    "CrosscoderError",
    "fit_crosscoder",
    "train_crosscoder",
    "paired_rows",
    "crosscoder_latents",
    "latent_scaling",
    "relative_norm_difference",
    "crosscoder_summary",
    "top_latent_prompts",
    "BASE_ONLY",
    "VARIANT_ONLY",
]

#: Relative-norm thresholds of the classes (Minder et al. 2025).
BASE_ONLY = 0.1
VARIANT_ONLY = 0.9
SIDECAR = "crosscoder.json"


class CrosscoderError(ElicitError):
    """A crosscoder could not be trained or loaded, or does not fit the activations given."""


def _stack(
    h_base: Float[torch.Tensor, "row d_model"],
    h_variant: Float[torch.Tensor, "row d_model"],
    scales: tuple[float, float],
) -> Float[torch.Tensor, "row two_d_model"]:
    """``[s_b·h_base; s_v·h_variant]``: the crosscoder's input, the models side by side."""
    return rearrange(
        [h_base.float() * scales[0], h_variant.float() * scales[1]], "model ... d -> ... (model d)"
    )


def _split(x: Float[torch.Tensor, "... two_d_model"]) -> Float[torch.Tensor, "model ... d_model"]:
    """The per-model halves of a crosscoder-space tensor: ``[0]`` the base's, ``[1]`` the variant's (views)."""
    return rearrange(x, "... (model d) -> model ... d", model=2)


@dataclass(frozen=True)
class Crosscoder:
    """A two-model crosscoder: a sae_lens SAE over ``[s_b·h_base; s_v·h_variant]``.

    ``sae`` works in scaled units (``scales`` = ``(s_b, s_v)``); :meth:`encode` and
    :meth:`decode` take and return the models' own units.
    """

    sae: Any
    scales: tuple[float, float]
    models: tuple[str, str] = ("base", "variant")
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def d_model(self) -> int:
        return int(self.sae.cfg.d_in) // 2

    @property
    def d_sae(self) -> int:
        return int(self.sae.cfg.d_sae)

    @property
    def decoders(self) -> Float[torch.Tensor, "d_sae model d_model"]:
        """Decoder rows split per model (scaled units)."""
        return rearrange(self.sae.W_dec.detach(), "d_sae (model d_model) -> d_sae model d_model", model=2)

    def _cat(self, h_base: torch.Tensor, h_variant: torch.Tensor) -> torch.Tensor:
        if h_base.shape != h_variant.shape or h_base.shape[-1] != self.d_model:
            raise CrosscoderError(
                f"h_base and h_variant must both be [..., {self.d_model}], got {tuple(h_base.shape)} and "
                f"{tuple(h_variant.shape)}."
            )
        return _stack(h_base, h_variant, self.scales)

    @torch.no_grad()
    def encode(
        self, h_base: Float[torch.Tensor, "row d_model"], h_variant: Float[torch.Tensor, "row d_model"]
    ) -> Float[torch.Tensor, "row d_sae"]:
        """Latent activations of paired rows."""
        return self.sae.encode(self._cat(h_base, h_variant))

    @torch.no_grad()
    def decode(self, f: Float[torch.Tensor, "row d_sae"]) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstructions ``(ĥ_base, ĥ_variant)`` in the models' own units."""
        out_base, out_variant = _split(self.sae.decode(f))
        return out_base / self.scales[0], out_variant / self.scales[1]

    def save(self, path: str | Path) -> Path:
        """A sae_lens folder (``cfg.json``, ``sae_weights.safetensors``) plus ``crosscoder.json``."""
        path = Path(path)
        self.sae.save_model(str(path))
        sidecar = {
            "format": 1,
            "models": list(self.models),
            "scales": list(self.scales),
            "meta": dict(self.meta),
        }
        (path / SIDECAR).write_text(json.dumps(sidecar, indent=1, default=str))
        return path

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> Crosscoder:
        import sae_lens

        path = Path(path)
        if not (path / SIDECAR).exists() or not (path / "cfg.json").exists():
            raise CrosscoderError(
                f"No crosscoder at {str(path)!r} (needs cfg.json and {SIDECAR}); train one with train_crosscoder(out=...)."
            )
        try:
            side = json.loads((path / SIDECAR).read_text())
            scales, models = tuple(side["scales"]), tuple(side["models"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise CrosscoderError(
                f"{str(path / SIDECAR)!r} is not a crosscoder sidecar ({type(err).__name__}: {err}); it needs "
                "'models' and 'scales'. Re-save the crosscoder with Crosscoder.save(path) or retrain it."
            ) from None
        if len(scales) != 2 or len(models) != 2:
            raise CrosscoderError(
                f"{str(path / SIDECAR)!r} names {len(models)} models and {len(scales)} scales; a crosscoder has "
                "two of each (base, variant). Re-save it with Crosscoder.save(path)."
            )
        sae = sae_lens.SAE.load_from_disk(str(path), device=device)
        return cls(sae, scales, models, side.get("meta", {}))  # type: ignore[arg-type]


def _scale(h: torch.Tensor) -> float:
    """Factor giving the rows expected norm ``sqrt(d_model)``."""
    return float(h.shape[1] ** 0.5 / h.norm(dim=-1).mean().clamp(min=1e-12))


def fit_crosscoder(
    h_base: Float[torch.Tensor, "row d_model"],
    h_variant: Float[torch.Tensor, "row d_model"],
    *,
    d_sae: int | None = None,
    k: float = 8,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 3e-4,
    seed: int = 0,
    device: str = "cpu",
    models: tuple[str, str] = ("base", "variant"),
    meta: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    max_steps: int | None = None,
    tol: float = PLATEAU_TOL,
) -> Crosscoder:
    """Train a BatchTopK crosscoder on paired rows (row i of both models is the same token).

    Convergence as :func:`probes.dictionaries.sae.fit_sae`: the training FVU is checked for a
    plateau and, while ``max_steps`` allows, training restarts with twice the steps; the outcome
    is ``meta["convergence"]`` (:class:`~probes.dictionaries.training.Convergence` as a dict)."""
    import sae_lens

    if h_base.ndim != 2 or h_base.shape != h_variant.shape or len(h_base) == 0:
        raise CrosscoderError(
            f"fit_crosscoder needs paired non-empty [row, d_model] tensors of one shape, got "
            f"{tuple(h_base.shape)} and {tuple(h_variant.shape)}."
        )
    d_model = int(h_base.shape[1])
    d_sae = int(d_sae or 8 * d_model)
    if not 0 < k <= d_sae:
        raise CrosscoderError(f"k must be in (0, d_sae={d_sae}], got {k}.")
    scales = (_scale(h_base.float()), _scale(h_variant.float()))
    x = _stack(h_base, h_variant, scales)
    cfg = sae_lens.BatchTopKTrainingSAEConfig(
        d_in=2 * d_model, d_sae=d_sae, k=float(k), normalize_activations="none"
    )
    cfg.metadata = sae_lens.saes.sae.SAEMetadata(
        model_name=f"crosscoder:{models[0]}+{models[1]}", hook_name=(meta or {}).get("hook_name")
    )

    def run(n: int) -> tuple[Any, list[float]]:
        curve: list[float] = []
        sae = train_dictionary(
            sae_lens.BatchTopKTrainingSAE,
            cfg,
            x,
            steps=n,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            device=device,
            dead_feature_window=max(100, n // 4),
            prefix="elicit-cc-",
            error=CrosscoderError,
            curve=curve,
        )
        return sae, curve

    sae, conv = until_converged(run, steps, max_steps, tol)
    full_meta = {
        "d_model": d_model,
        "k": k,
        "steps": conv.steps,
        "seed": seed,
        "n_rows": len(x),
        "convergence": conv.to_dict(),
        **dict(meta or {}),
    }
    cc = Crosscoder(sae, scales, models, full_meta)
    if out is not None:
        cc.save(out)
    return cc


# the signature of probes.dictionaries.sae.token_rows on purpose: paired_rows is token_rows for two
# variants at once, with one mask (a row is dropped when either model's row is) so the pairs stay aligned
def paired_rows(
    acts: ActivationSet,
    base: str,
    variant: str,
    hook: HookSite | str,
    position: str | Position | None = None,
    *,
    drop_first: bool | None = None,
    outlier_factor: float | None = 10.0,
) -> tuple[torch.Tensor, torch.Tensor, Int[torch.Tensor, " row"]]:
    """Aligned token rows of two variants (BOS and outlier rows of either model removed), with prompt index."""
    hb, ob = acts.get_tokens(base, hook, position)
    hv, ov = acts.get_tokens(variant, hook, position)
    if not torch.equal(ob, ov):
        raise CrosscoderError(
            f"Variants {base!r} and {variant!r} have different token rows at {hook}; recollect both."
        )
    keep = store_keep_mask(acts, position, hb, ob, drop_first=drop_first, outlier_factor=outlier_factor)
    keep &= store_keep_mask(acts, position, hv, ov, drop_first=drop_first, outlier_factor=outlier_factor)
    return hb[keep].float(), hv[keep].float(), ob[keep]


def train_crosscoder(
    acts: ActivationSet,
    base: str,
    variant: str,
    hook: HookSite | str,
    position: str | Position | None = "all",
    *,
    outlier_factor: float | None = 10.0,
    **fit_options: Any,
) -> Crosscoder:
    """Train a crosscoder on the stored activations of ``base`` and ``variant`` (same prompts, same tokens).

    :func:`fit_crosscoder` on :func:`paired_rows`; every other keyword (``d_sae, k, steps,
    batch_size, lr, seed, device, out``) is :func:`fit_crosscoder`'s, with its defaults. The
    metadata records the hook, position, task hash, family and ``outlier_factor``, which
    :func:`crosscoder_latents` uses to read the same rows again.
    """
    site = HookSite.parse(hook)
    hb, hv, _ = paired_rows(acts, base, variant, site, position, outlier_factor=outlier_factor)
    meta = {
        "hook_name": site.name,
        "site": site.key,
        "position": position_key(acts, position),
        "task_hash": acts.task_hash,
        "family": acts.meta.get("family"),
        "outlier_factor": outlier_factor,
    }
    return fit_crosscoder(hb, hv, models=(base, variant), meta=meta, **fit_options)


@torch.no_grad()
def latent_scaling(
    cc: Crosscoder, h_base: torch.Tensor, h_variant: torch.Tensor, latents: Any
) -> pd.DataFrame:
    """Latent scaling of the given latents (Minder et al. 2025, "Overcoming sparsity artifacts in
    crosscoders"): for each, ``β`` fitted in closed form, on the scaled activations, for the
    variant decoder direction ``d = d_j^variant`` against two targets per model ``m``:

    - error target ``y^ε_m = h_m − ĥ_m + f_j d_j^m`` (what is left for latent ``j`` to explain:
      the reconstruction error plus its own contribution), giving ``ν = ν^ε = β^ε_base / β^ε_variant``
      (near 1: complete shrinkage, the base has the direction but the crosscoder shrank its
      decoder half to 0);
    - reconstruction target ``y^r_m = ĥ_m`` (the model's whole reconstruction, other latents
      included), giving ``ν^r = β^r_base / β^r_variant`` (near 1: latent decoupling, other latents
      carry the direction in the base);

    with ``β_m = Σ_x f_j(x) ⟨d, y_m(x)⟩ / (‖d‖² Σ_x f_j(x)²)``. Both near 0: truly variant-only.
    Columns ``latent, beta_base, beta_variant, nu, beta_base_r, beta_variant_r, nu_r, n_active``.
    """
    lat = torch.tensor(np.array(latents, dtype=np.int64))
    x = cc._cat(h_base, h_variant)
    f = cc.sae.encode(x)
    err = x - cc.sae.decode(f)
    d = cc.decoders
    dv = d[lat, 1]  # [L, d_model]
    fl = f[:, lat]  # [row, L]
    ff = (fl**2).sum(0)
    dd = (dv**2).sum(-1)
    recon = x - err
    betas, betas_r = [], []
    for m, (e, r) in enumerate(zip(_split(err), _split(recon), strict=True)):  # model m's halves
        own = (dv * d[lat, m]).sum(-1)  # <d, d_j^m>
        betas.append(((fl * (e @ dv.T)).sum(0) + ff * own) / (dd * ff).clamp(min=1e-12))
        betas_r.append((fl * (r @ dv.T)).sum(0) / (dd * ff).clamp(min=1e-12))
    nan = torch.full_like(ff, float("nan"))
    (bb, bv), (bbr, bvr) = betas, betas_r
    return pd.DataFrame(
        {
            "latent": lat.numpy(),
            "beta_base": bb.numpy(),
            "beta_variant": bv.numpy(),
            "nu": torch.where(ff > 0, bb / bv, nan).numpy(),
            "beta_base_r": bbr.numpy(),
            "beta_variant_r": bvr.numpy(),
            "nu_r": torch.where(ff > 0, bbr / bvr, nan).numpy(),
            "n_active": (fl > 0).sum(0).numpy(),
        }
    )


def relative_norm_difference(norm_base: torch.Tensor, norm_variant: torch.Tensor) -> torch.Tensor:
    """Minder et al.'s Δ = ½ ((‖d^variant‖ − ‖d^base‖) / max(‖d^variant‖, ‖d^base‖) + 1), in [0, 1]:
    1 variant-only, 0 base-only, 0.5 equal norms (0.5 too for a latent with both norms 0).

    >>> relative_norm_difference(torch.tensor([1.0, 0.0, 1.0, 0.0]), torch.tensor([1.0, 1.0, 0.0, 0.0])).tolist()
    [0.5, 1.0, 0.0, 0.5]
    >>> round(float(relative_norm_difference(torch.tensor(1.0), torch.tensor(5.0))), 3)  # Lindsey's ratio 0.833
    0.9
    """
    big = torch.maximum(norm_base, norm_variant)
    return 0.5 * (torch.where(big > 0, (norm_variant - norm_base) / big.clamp(min=1e-12), 0.0) + 1.0)


def crosscoder_latents(
    cc: Crosscoder,
    acts: ActivationSet | None = None,
    *,
    rows: tuple[torch.Tensor, torch.Tensor] | None = None,
    base_only: float = BASE_ONLY,
    variant_only: float = VARIANT_ONLY,
) -> pd.DataFrame:
    """One row per latent: decoder norms per model, ``rel_norm`` Δ, ``cls``, cosine of the two halves.

    With activations (``acts``, read at the crosscoder's own models / hook / position, or paired
    ``rows=(h_base, h_variant)``) also ``freq`` (firing rate), ``alive`` and, for variant-only
    latents, ``beta_base``, ``beta_variant`` and ``nu``.
    """
    d = cc.decoders
    nb, nv = d[:, 0].norm(dim=-1), d[:, 1].norm(dim=-1)
    rel = relative_norm_difference(nb, nv)
    cos = torch.nn.functional.cosine_similarity(d[:, 0], d[:, 1], dim=-1)
    cls = np.where(
        rel.numpy() > variant_only, "variant_only", np.where(rel.numpy() < base_only, "base_only", "shared")
    )
    df = pd.DataFrame(
        {
            "latent": np.arange(cc.d_sae),
            "norm_base": nb.numpy(),
            "norm_variant": nv.numpy(),
            "rel_norm": rel.numpy(),
            "cls": cls,
            "cos_base_variant": cos.numpy(),
        }
    )
    if acts is not None and rows is None:
        rows = _rows_for(cc, acts)[:2]
    if rows is not None:
        hb, hv = rows
        f = torch.cat([cc.encode(hb[i : i + 4096], hv[i : i + 4096]) for i in range(0, len(hb), 4096)])
        df["freq"] = (f > 0).float().mean(0).numpy()
        df["alive"] = df["freq"] > 0
        # latent scaling for every live latent (the candidates are the variant-only ones, but ν of
        # the shared latents is the reference a reader compares them against)
        alive = df.index[df["alive"]].to_numpy()
        cols = ["beta_base", "beta_variant", "nu", "beta_base_r", "beta_variant_r", "nu_r"]
        for c in cols:
            df[c] = np.nan
        if len(alive):
            sc = latent_scaling(cc, hb, hv, alive)
            df.loc[alive, cols] = sc[cols].to_numpy()
    df.attrs.update(
        {
            "models": list(cc.models),
            **{k: v for k, v in cc.meta.items() if k in ("site", "position", "task_hash")},
        }
    )
    return df


def _rows_for(cc: Crosscoder, acts: ActivationSet) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    site = cc.meta.get("site")
    if site is None:
        raise CrosscoderError("This crosscoder's metadata names no hook site; pass rows=(h_base, h_variant).")
    return paired_rows(
        acts,
        cc.models[0],
        cc.models[1],
        site,
        cc.meta.get("position"),
        outlier_factor=cc.meta.get("outlier_factor", 10.0),
    )


def crosscoder_summary(latents: pd.DataFrame, *, nu_max: float = 0.5) -> pd.DataFrame:
    """Counts per class (alive latents only when firing rates are known) and ν of variant-only latents.

    One row: ``n_latents, n_alive, n_base_only, n_shared, n_variant_only, nu_median`` and
    ``n_variant_only_low_nu`` (variant-only with ``ν < nu_max`` and, where computed,
    ``ν^r < nu_max``: absent from the base by both of Minder et al.'s checks), ``nu_r_median``.
    """
    alive = latents[latents["alive"]] if "alive" in latents else latents
    counts = alive["cls"].value_counts()
    row: dict[str, Any] = {
        "base": latents.attrs.get("models", ["base", "variant"])[0],
        "variant": latents.attrs.get("models", ["base", "variant"])[1],
        "n_latents": len(latents),
        "n_alive": len(alive),
        **{f"n_{c}": int(counts.get(c, 0)) for c in ("base_only", "shared", "variant_only")},
    }
    if "nu" in latents:
        vo = alive[alive["cls"] == "variant_only"]
        nu = vo["nu"].dropna()
        row["nu_median"] = float(nu.median()) if len(nu) else float("nan")
        low = vo["nu"] < nu_max
        if "nu_r" in vo:
            nu_r = vo["nu_r"].dropna()
            row["nu_r_median"] = float(nu_r.median()) if len(nu_r) else float("nan")
            low &= vo["nu_r"] < nu_max
        row["n_variant_only_low_nu"] = int(low.sum())
    return pd.DataFrame([row])


def top_latent_prompts(
    cc: Crosscoder,
    acts: ActivationSet,
    latents: pd.DataFrame,
    *,
    cls: str = "variant_only",
    n_latents: int = 10,
    n_prompts: int = 5,
    by: str = "freq",
) -> pd.DataFrame:
    """The ``n_latents`` latents of class ``cls`` (ranked by ``by``, descending) and each one's most activating prompts.

    Rows: ``latent, rank, prompt_id, label, max_act`` (the latent's largest activation over the prompt's tokens).
    """
    sel = latents[latents["cls"] == cls]
    if "alive" in sel:
        sel = sel[sel["alive"]]
    sel = sel.sort_values(by if by in sel else "rel_norm", ascending=False).head(n_latents)
    hb, hv, owner = _rows_for(cc, acts)
    lat = torch.tensor(sel["latent"].to_numpy(dtype=np.int64))
    f = cc.encode(hb, hv)[:, lat]
    per = torch.zeros(len(acts), len(lat)).scatter_reduce_(
        0, owner[:, None].expand_as(f), f, reduce="amax", include_self=True
    )
    ids, labels = acts.prompt_ids, acts.labels
    recs = []
    for j, latent in enumerate(lat.tolist()):
        vals, idx = per[:, j].topk(min(n_prompts, len(acts)))
        for r, (v, i) in enumerate(zip(vals.tolist(), idx.tolist(), strict=True)):
            recs.append(
                {"latent": latent, "rank": r + 1, "prompt_id": ids[i], "label": labels[i], "max_act": v}
            )
    return pd.DataFrame.from_records(recs, columns=["latent", "rank", "prompt_id", "label", "max_act"])
