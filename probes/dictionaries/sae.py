"""Sparse autoencoders on stored activations, with sae_lens: train, load, transfer, latent shifts.

docs/measures.md, "SAEs and crosscoders". Training, the SAE format and the architectures are
sae_lens's (``SAETrainer`` fed from the activation store, ``LoggingConfig(log_to_wandb=False)``);
a saved SAE is an ordinary sae_lens folder (``cfg.json`` + ``sae_weights.safetensors``) that
``sae_lens.SAE.load_from_disk`` opens::

    sae = train_sae(acts, "base", "resid_post.1", "all", architecture="batchtopk", k=8, out="sae/")
    table = sae_transfer(family, sae, task, variants=["base", "dpo", "create"])   # FVU, L0, CE/KL recovered
    shifts = latent_shifts(acts, sae, variants=["dpo"], contrast=("careful", "direct"))
    vec = decoder_direction(sae, int(shifts.iloc[0].latent))                       # -> steering

Measures (each with a bootstrap interval over prompts, :mod:`probes.stats`):

- **FVU** ``= Σ‖x − x̂‖² / Σ‖x − mean(x)‖²`` over kept tokens;
- **L0** = mean number of active latents per kept token;
- **CE / KL recovered** ``= (L_ablate − L_spliced) / (L_ablate − L_clean)`` with the SAE
  reconstruction spliced into the variant's forward pass at the SAE's hook, against zero
  ablation of the same tokens (Kissane et al. 2024, "SAEs (usually) transfer between base
  and chat models"). For KL, ``L`` is ``KL(p_clean ‖ p_run)`` per predicted token, so
  ``L_clean = 0``.

Kept tokens exclude the first token of every text (BOS; Kissane et al. found its norm is an
outlier and exclude it) and any token whose residual norm exceeds ``outlier_factor`` times
the median norm (of the batch in a forward pass; of the rows in a store). Excluded tokens
are left untouched by both splice and ablation.

Glossary of dimensions: ``batch pos d_model d_sae layer prompt``; ``row`` is a token row of
the activation store (all prompts concatenated).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float, Int

from probes.data.activations import ActivationSet, PromptRows, prompt_rows
from probes.data.tasks import Task, as_task
from probes.dictionaries.training import (
    PLATEAU_TOL,
    position_key,
    store_keep_mask,
    train_dictionary,
    until_converged,
)
from probes.errors import ElicitError
from probes.models.family import ModelFamily
from probes.models.hooks import HookSite, validate_hooks
from probes.models.positions import Position
from probes.models.tokens import Batch
from probes.stats import bootstrap_ci

__all__ = [
    "ARCHITECTURES",
    "SAEError",
    "train_sae",
    "fit_sae",
    "load_sae",
    "save_sae",
    "token_rows",
    "fvu",
    "l0",
    "loss_recovered",
    "SAEFitQuality",
    "fit_quality",
    "convergence_of",
    "sae_transfer",
    "latent_shifts",
    "decoder_direction",
]

#: Architectures trainable with :func:`train_sae` (sae_lens's names).
ARCHITECTURES = ("standard", "topk", "batchtopk", "jumprelu")


class SAEError(ElicitError):
    """An SAE could not be trained, loaded, or does not fit the activations it is given."""


# ------------------------------------------------------------------------------ pure measures
def fvu(x: Float[torch.Tensor, "row d_model"], x_hat: Float[torch.Tensor, "row d_model"]) -> float:
    """Fraction of variance unexplained ``Σ‖x − x̂‖² / Σ‖x − mean(x)‖²`` (docs/measures.md)."""
    if x.shape != x_hat.shape:
        raise SAEError(f"fvu needs x and x_hat of one shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}.")
    num = (x - x_hat).pow(2).sum()
    den = (x - x.mean(0, keepdim=True)).pow(2).sum()
    return float(num / den)


def l0(feature_acts: Float[torch.Tensor, "row d_sae"]) -> float:
    """Mean number of active (non-zero) latents per row."""
    return float((feature_acts != 0).sum(-1).float().mean())


def loss_recovered(clean: float, spliced: float, ablated: float) -> float:
    """``(L_ablate − L_spliced) / (L_ablate − L_clean)`` (Kissane et al. 2024): 1 = lossless splice."""
    return (ablated - spliced) / (ablated - clean)


# ------------------------------------------------------------------------------ store rows
def token_rows(
    acts: ActivationSet,
    variant: str,
    hook: HookSite | str,
    position: str | Position | None = None,
    *,
    drop_first: bool | None = None,
    outlier_factor: float | None = 10.0,
) -> tuple[Float[torch.Tensor, "row d_model"], Int[torch.Tensor, " row"]]:
    """Token rows of the store with BOS and outlier-norm rows removed, and each row's prompt index.

    ``drop_first`` (default: when the position is ``all``) drops each prompt's first row, the
    BOS token; ``outlier_factor`` drops rows whose norm exceeds that multiple of the median.
    """
    rows, owner = acts.get_tokens(variant, hook, position)
    keep = store_keep_mask(acts, position, rows, owner, drop_first=drop_first, outlier_factor=outlier_factor)
    return rows[keep].float(), owner[keep]


# ------------------------------------------------------------------------------ training
def _training_config(
    architecture: str,
    d_in: int,
    d_sae: int,
    *,
    k: float,
    sparsity_coefficient: float | None,
    steps: int,
    meta: dict[str, Any],
):
    import sae_lens

    common = dict(d_in=d_in, d_sae=d_sae, normalize_activations="expected_average_only_in")
    if architecture == "standard":
        cfg = sae_lens.StandardTrainingSAEConfig(
            **common,
            l1_coefficient=5.0 if sparsity_coefficient is None else sparsity_coefficient,
            l1_warm_up_steps=steps // 20,
        )
        cls = sae_lens.StandardTrainingSAE
    elif architecture == "topk":
        cfg = sae_lens.TopKTrainingSAEConfig(**common, k=int(k))
        cls = sae_lens.TopKTrainingSAE
    elif architecture == "batchtopk":
        cfg = sae_lens.BatchTopKTrainingSAEConfig(**common, k=float(k))
        cls = sae_lens.BatchTopKTrainingSAE
    elif architecture == "jumprelu":
        cfg = sae_lens.JumpReLUTrainingSAEConfig(
            **common,
            l0_coefficient=1.0 if sparsity_coefficient is None else sparsity_coefficient,
            l0_warm_up_steps=steps // 10,
        )
        cls = sae_lens.JumpReLUTrainingSAE
    else:
        raise SAEError(f"Unknown SAE architecture {architecture!r}. Choose one of {ARCHITECTURES}.")
    cfg.metadata = sae_lens.saes.sae.SAEMetadata(**meta)
    return cls, cfg


def fit_sae(
    rows: Float[torch.Tensor, "row d_model"],
    *,
    architecture: str = "batchtopk",
    d_sae: int | None = None,
    k: float = 16,
    sparsity_coefficient: float | None = None,
    steps: int = 2000,
    batch_size: int = 256,
    lr: float = 3e-4,
    seed: int = 0,
    device: str = "cpu",
    hook_name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    max_steps: int | None = None,
    tol: float = PLATEAU_TOL,
):
    """Train an SAE with sae_lens on in-memory activation rows and return the inference SAE.

    Convergence: the per-step training FVU is checked for a plateau
    (:func:`probes.dictionaries.training.plateau`, relative improvement ``< tol`` from 60% to 80%
    of the steps); while it has not converged and ``max_steps`` allows, training restarts with
    twice the steps. The outcome (:class:`~probes.dictionaries.training.Convergence`) is saved
    in the metadata as ``elicit_convergence`` (read it with :func:`convergence_of`); with
    ``max_steps=None`` the run is ``steps`` long and only checked.

    ``k`` is the sparsity of ``topk`` (per row) and ``batchtopk`` (mean per row over a batch;
    Bussmann et al. 2024, saved by sae_lens as JumpReLU); ``sparsity_coefficient`` is the L1
    coefficient of ``standard`` or the L0 coefficient of ``jumprelu``. The result is saved in
    sae_lens's format to ``out`` (a temporary folder if ``None``) and loaded back with
    ``sae_lens.SAE.load_from_disk``, so what you get is exactly what a reader of the folder gets.
    """
    if rows.ndim != 2 or len(rows) == 0:
        raise SAEError(f"fit_sae needs a non-empty [row, d_model] tensor, got shape {tuple(rows.shape)}.")
    d_in = int(rows.shape[1])
    d_sae = int(d_sae or 8 * d_in)
    if architecture in ("topk", "batchtopk") and not 0 < k <= d_sae:
        raise SAEError(f"k must be in (0, d_sae={d_sae}] for {architecture!r}, got {k}.")
    meta = {"hook_name": hook_name, "elicit_architecture": architecture, **dict(metadata or {})}

    def run(n: int) -> tuple[Any, list[float]]:
        cls, cfg = _training_config(
            architecture, d_in, d_sae, k=k, sparsity_coefficient=sparsity_coefficient, steps=n, meta=meta
        )
        curve: list[float] = []
        sae = train_dictionary(
            cls,
            cfg,
            rows.float(),
            steps=n,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            device=device,
            error=SAEError,
            curve=curve,
        )
        return sae, curve

    sae, conv = until_converged(run, steps, max_steps, tol)
    sae.cfg.metadata.elicit_convergence = conv.to_dict()
    if out is not None:
        save_sae(sae, out)
    return sae


def convergence_of(sae: Any) -> dict[str, Any] | None:
    """The ``elicit_convergence`` record :func:`fit_sae` saved (``None`` for an SAE trained elsewhere)."""
    conv = getattr(sae.cfg.metadata, "elicit_convergence", None)
    return dict(conv) if conv is not None else None


def train_sae(
    acts: ActivationSet,
    variant: str,
    hook: HookSite | str,
    position: str | Position | None = "all",
    *,
    outlier_factor: float | None = 10.0,
    **fit_options: Any,
):
    """Train an SAE on one variant's stored activations at ``hook`` / ``position`` (sae_lens).

    :func:`fit_sae` on the store's token rows: BOS and outlier-norm rows are excluded
    (:func:`token_rows`); every other keyword (``architecture, d_sae, k, sparsity_coefficient,
    steps, batch_size, lr, seed, device, out``) is :func:`fit_sae`'s, with its defaults. The
    saved config's metadata records ``hook_name`` (the TransformerLens hook, used by
    :func:`sae_transfer`), the family, variant, task hash and position. Returns the sae_lens
    inference ``SAE``.
    """
    site = HookSite.parse(hook)
    rows, _ = token_rows(acts, variant, site, position, outlier_factor=outlier_factor)
    meta = {
        "model_name": f"{acts.meta.get('family', '')}/{variant}",
        "elicit_variant": variant,
        "elicit_site": site.key,
        "elicit_position": position_key(acts, position),
        "elicit_task_hash": acts.task_hash,
        "elicit_outlier_factor": outlier_factor,
        "elicit_n_rows": len(rows),
    }
    return fit_sae(rows, hook_name=site.name, metadata=meta, **fit_options)


@dataclass(frozen=True)
class SAEFitQuality:
    """How well a trained SAE fits the rows it was trained on.

    ``architecture`` is what was trained (sae_lens's training name, from the saved metadata
    ``elicit_architecture``); ``saved_as`` the inference class sae_lens saved it as (a
    ``batchtopk`` SAE is saved as ``jumprelu`` with the learned threshold). ``fvu`` is
    :func:`fvu`, ``l0`` :func:`l0`, ``dead_share`` the share of latents that fire on none of the
    ``n_rows`` rows; ``converged`` / ``steps`` the training's plateau check (``None`` when the
    SAE carries no record).
    """

    architecture: str
    saved_as: str
    fvu: float
    l0: float
    dead_share: float
    n_rows: int
    d_sae: int
    converged: bool | None = None
    steps: int | None = None

    def __str__(self) -> str:
        saved = "" if self.saved_as == self.architecture else f" (saved by sae_lens as {self.saved_as})"
        conv = (
            ""
            if self.converged is None
            else f"; {'converged' if self.converged else 'NOT converged'} after {self.steps} steps"
        )
        return (
            f"{self.architecture} SAE{saved}, d_sae={self.d_sae}: FVU {self.fvu:.3f}, L0 {self.l0:.1f}, "
            f"dead latents {self.dead_share:.1%} (on its {self.n_rows} training rows){conv}"
        )


@torch.no_grad()
def fit_quality(sae: Any, rows: Float[torch.Tensor, "row d_model"]) -> SAEFitQuality:
    """FVU, L0 and dead-latent share of ``sae`` on ``rows`` (e.g. its training rows, from
    :func:`token_rows`), with the architecture it was trained as."""
    if rows.ndim != 2 or len(rows) == 0 or rows.shape[1] != sae.cfg.d_in:
        raise SAEError(
            f"fit_quality needs a non-empty [row, d_in={sae.cfg.d_in}] tensor, got shape {tuple(rows.shape)}."
        )
    f = _encode_rows(sae, rows)
    x_hat = torch.cat([sae.decode(f[i : i + 4096]) for i in range(0, len(f), 4096)])
    saved_as = str(sae.cfg.architecture())
    trained = getattr(sae.cfg.metadata, "elicit_architecture", None)
    return SAEFitQuality(
        architecture=str(trained or saved_as),
        saved_as=saved_as,
        fvu=fvu(rows.float(), x_hat.float()),
        l0=l0(f),
        dead_share=float((f != 0).sum(0).eq(0).float().mean()),
        n_rows=len(rows),
        d_sae=int(sae.cfg.d_sae),
        converged=None if (conv := convergence_of(sae)) is None else bool(conv["converged"]),
        steps=None if conv is None else int(conv["steps"]),
    )


def save_sae(sae: Any, out: str | Path) -> Path:
    """Save an inference SAE in sae_lens's format (``sae.save_model``)."""
    out = Path(out)
    sae.save_model(str(out))
    return out


def load_sae(path_or_release: str | Path, sae_id: str | None = None, *, device: str = "cpu"):
    """Load an SAE from a local sae_lens folder, or a pretrained one by ``(release, sae_id)``.

    A local folder needs no network. A release is resolved through sae_lens's registry
    (``SAE.from_pretrained``) and needs the hub; offline, this fails with a message saying so.
    """
    import sae_lens

    path = Path(path_or_release)
    if sae_id is None:
        if not (path / "cfg.json").exists():
            raise SAEError(
                f"No sae_lens SAE at {str(path)!r} (cfg.json missing). Pass a folder written by train_sae / "
                "SAE.save_model, or a pretrained release with sae_id=..."
            )
        return sae_lens.SAE.load_from_disk(str(path), device=device)
    try:
        return sae_lens.SAE.from_pretrained(str(path_or_release), sae_id, device=device)
    except ValueError as err:  # sae_lens's own message lists the valid releases / ids
        raise SAEError(f"Cannot load pretrained SAE ({path_or_release!r}, {sae_id!r}): {err}") from None
    except OSError as err:
        raise SAEError(
            f"Cannot download pretrained SAE ({path_or_release!r}, {sae_id!r}); the hub is unreachable "
            f"or offline ({type(err).__name__}: {err}). Load a local copy with load_sae(folder) instead."
        ) from None


def _hook_of(sae: Any, hook: HookSite | str | None) -> HookSite:
    if hook is not None:
        return HookSite.parse(hook)
    name = getattr(sae.cfg.metadata, "hook_name", None)
    if not name:
        raise SAEError("This SAE's metadata names no hook; pass hook= (e.g. 'resid_post.1').")
    return HookSite.parse(name)


# ------------------------------------------------------------------------------ transfer
def _per_prompt_ce(logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy per text (over real target tokens)."""
    lp = logits[:, :-1].float().log_softmax(-1)
    nll = -lp.gather(-1, input_ids[:, 1:, None])[..., 0]
    valid = (mask[:, 1:] * mask[:, :-1]).to(nll.dtype)
    return (nll * valid).sum(-1)


def _per_prompt_kl(clean: torch.Tensor, other: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Summed ``KL(p_clean ‖ p_other)`` per text over the positions that predict a real token."""
    lp, lq = clean[:, :-1].float().log_softmax(-1), other[:, :-1].float().log_softmax(-1)
    kl = (lp.exp() * (lp - lq)).sum(-1)
    valid = (mask[:, 1:] * mask[:, :-1]).to(kl.dtype)
    return (kl * valid).sum(-1)


#: Per-prompt sums :func:`sae_transfer` accumulates over batches (read by :func:`_transfer_stats`).
_SUMS = ("err", "sq", "xsum", "ntok", "l0", "excl", "ce_c", "ce_s", "ce_a", "kl_s", "kl_a", "npred")


def _saes_by_site(sae: Any | Mapping[str, Any], hook: HookSite | str | None) -> dict[HookSite, Any]:
    if not isinstance(sae, Mapping):
        return {_hook_of(sae, hook): sae}
    if not sae:
        raise SAEError("sae is an empty mapping; give one SAE, or {hook: SAE} such as {'resid_post.1': sae}.")
    return {HookSite.parse(h): s for h, s in sae.items()}


def _check_widths(saes: Mapping[HookSite, Any], model: Any, variant: str) -> None:
    for s, sa in saes.items():
        if int(sa.cfg.d_in) != int(model.cfg.d_model):
            raise SAEError(
                f"SAE for {s.key} has d_in={sa.cfg.d_in} but variant {variant!r} has d_model={model.cfg.d_model}."
            )


def _clean_run(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, names: Sequence[str]
) -> tuple[Float[torch.Tensor, "batch pos vocab"], dict[str, Float[torch.Tensor, "batch pos d_model"]]]:
    """The variant's own logits, and the activation at each hook ``names[i]`` (a copy)."""
    captured: dict[str, torch.Tensor] = {}

    def capture(name: str):
        # keyed by our name: the Bridge may report an alias as hook.name
        def fn(act: torch.Tensor, hook: Any) -> torch.Tensor:
            captured[name] = act.detach().clone()
            return act

        return fn

    with torch.inference_mode(), model.hooks(fwd_hooks=[(nm, capture(nm)) for nm in names]):
        clean = model(ids, attention_mask=mask, return_type="logits")
    return clean, captured


def _spliced_run(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, name: str, x_hat: torch.Tensor, keep: torch.Tensor
) -> Float[torch.Tensor, "batch pos vocab"]:
    """Logits with the SAE reconstruction ``x_hat`` in place of the activation at the kept tokens."""

    def splice(act: torch.Tensor, hook: Any) -> torch.Tensor:
        return torch.where(keep[..., None], x_hat.to(act.dtype), act)

    with torch.inference_mode(), model.hooks(fwd_hooks=[(name, splice)]):
        return model(ids, attention_mask=mask, return_type="logits")


def _ablated_run(
    model: Any, ids: torch.Tensor, mask: torch.Tensor, name: str, keep: torch.Tensor
) -> Float[torch.Tensor, "batch pos vocab"]:
    """Logits with the activation at the kept tokens set to zero."""

    def ablate(act: torch.Tensor, hook: Any) -> torch.Tensor:
        return torch.where(keep[..., None], torch.zeros_like(act), act)

    with torch.inference_mode(), model.hooks(fwd_hooks=[(name, ablate)]):
        return model(ids, attention_mask=mask, return_type="logits")


def _kept_tokens(x: torch.Tensor, real: torch.Tensor, outlier_factor: float | None) -> torch.Tensor:
    """``real`` tokens whose norm is at most ``outlier_factor`` times the batch's median kept norm."""
    keep = real.clone()
    if outlier_factor is not None and keep.any():
        norms = x.norm(dim=-1)
        keep &= norms <= outlier_factor * norms[keep].median()
    return keep


def _reconstruction_sums(
    x: torch.Tensor, x_hat: torch.Tensor, f: torch.Tensor, keep: torch.Tensor, mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Per-prompt sums over kept tokens behind FVU and L0, and the count of excluded tokens."""
    km = keep[..., None].to(x.dtype)
    return {
        "err": ((x - x_hat).pow(2).sum(-1) * km[..., 0]).sum(-1),
        "sq": (x.pow(2).sum(-1) * km[..., 0]).sum(-1),
        "xsum": (x * km).sum(1),
        "ntok": keep.sum(-1).float(),
        "l0": ((f != 0).sum(-1).float() * km[..., 0]).sum(-1),
        "excl": (mask.bool() & ~keep).sum(-1).float() - 1,  # - 1: the BOS, never a candidate
    }


def _batch_sums(
    model: Any, saes: Mapping[HookSite, Any], names: Sequence[str], batch: Batch, outlier_factor: float | None
) -> dict[HookSite, dict[str, torch.Tensor]]:
    """One batch: the clean run, then per SAE its splice and ablation runs; per-prompt sums of each."""
    ids, mask = batch.input_ids, batch.attention_mask
    real = mask.bool().clone()
    real[:, 0] = False  # right padding: the first token of every text (BOS) is never touched
    clean, captured = _clean_run(model, ids, mask, names)
    ce_c = _per_prompt_ce(clean, ids, mask)
    npred = ((mask[:, 1:] * mask[:, :-1]).sum(-1)).float()
    out = {}
    for (s, sa), nm in zip(saes.items(), names, strict=True):
        x = captured[nm].float()
        keep = _kept_tokens(x, real, outlier_factor)
        with torch.inference_mode():
            f = sa.encode(x)
            x_hat = sa.decode(f)
        spliced = _spliced_run(model, ids, mask, nm, x_hat, keep)
        ablated = _ablated_run(model, ids, mask, nm, keep)
        out[s] = {
            **_reconstruction_sums(x, x_hat, f, keep, mask),
            "ce_c": ce_c,
            "ce_s": _per_prompt_ce(spliced, ids, mask),
            "ce_a": _per_prompt_ce(ablated, ids, mask),
            "kl_s": _per_prompt_kl(clean, spliced, mask),
            "kl_a": _per_prompt_kl(clean, ablated, mask),
            "npred": npred,
        }
    return out


def _variant_sums(
    family: ModelFamily,
    variant: str,
    saes: Mapping[HookSite, Any],
    rows: PromptRows,
    *,
    batch_size: int,
    outlier_factor: float | None,
) -> dict[HookSite, dict[str, np.ndarray]]:
    """Per-prompt sums (:data:`_SUMS`) of every SAE spliced into ``variant``, over all texts."""
    acc: dict[HookSite, dict[str, list[torch.Tensor]]] = {s: {k: [] for k in _SUMS} for s in saes}
    with family.open(variant) as model:
        names = validate_hooks(model, list(saes))
        _check_widths(saes, model, variant)
        n = len(rows.texts)
        for b0 in range(0, n, batch_size):
            batch = rows.batch(b0, min(n, b0 + batch_size), padding_side="right", device=family.device)
            for s, sums in _batch_sums(model, saes, names, batch, outlier_factor).items():
                for key in _SUMS:
                    acc[s][key].append(sums[key])
    return {s: {k: torch.cat(v).double().numpy() for k, v in a.items()} for s, a in acc.items()}


def sae_transfer(
    family: ModelFamily,
    sae: Any | Mapping[str, Any],
    task: Task | str | Sequence[str],
    hook: HookSite | str | None = None,
    *,
    variants: Sequence[str] | None = None,
    text: str = "prompt",
    batch_size: int = 16,
    outlier_factor: float | None = 10.0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """FVU, L0 and CE / KL recovered of an SAE spliced into each variant, with bootstrap CIs.

    ``sae`` is one sae_lens SAE (hook from ``hook=`` or its metadata) or a mapping
    ``{hook: SAE}`` for several layers (one row per variant and layer). For each batch of the
    task's texts the variant runs clean (capturing the hook), with the SAE reconstruction
    spliced in, and with the kept tokens zero-ablated. Intervals resample prompts.

    Returns a tidy table: ``variant, hook, layer, fvu, fvu_lo, fvu_hi, l0, l0_lo, l0_hi,
    ce_recovered(_lo/_hi), kl_recovered(_lo/_hi), ce_clean, ce_spliced, ce_ablated, n_prompts,
    n_tokens, n_excluded``.
    """
    task = as_task(task)
    saes = _saes_by_site(sae, hook)
    variants = list(variants) if variants is not None else family.variants
    if not variants:
        raise SAEError(f"variants is empty; name at least one of the family's variants {family.variants}.")
    if batch_size < 1:
        raise SAEError(f"batch_size must be >= 1, got {batch_size}.")
    if outlier_factor is not None and outlier_factor <= 0:
        raise SAEError(
            f"outlier_factor must be > 0 (a multiple of the median norm, e.g. 10) or None, got {outlier_factor}."
        )
    # every variant reads the base's rendering of the prompts (its prompt protocol, if any): the
    # SAE was trained on the base's tokens, and the variants' rows stay aligned with them
    rows = prompt_rows(family, task, text=text, variant="base", first=variants[0])
    records = []
    for variant in variants:
        sums = _variant_sums(
            family, variant, saes, rows, batch_size=batch_size, outlier_factor=outlier_factor
        )
        for s in saes:
            stats = _transfer_stats(sums[s], n_resamples, confidence, seed)
            records.append({"variant": variant, "hook": s.key, "layer": s.layer, **stats})
    return pd.DataFrame.from_records(records)


def _transfer_stats(
    a: dict[str, np.ndarray], n_resamples: int, confidence: float, seed: int
) -> dict[str, Any]:
    """Point estimates and prompt-bootstrap intervals of the transfer measures."""

    def fvu_stat(idx: np.ndarray) -> float:
        nt = a["ntok"][idx].sum()
        den = a["sq"][idx].sum() - float(np.sum(a["xsum"][idx].sum(0) ** 2)) / nt
        return float(a["err"][idx].sum() / den)

    def l0_stat(idx: np.ndarray) -> float:
        return float(a["l0"][idx].sum() / a["ntok"][idx].sum())

    def ce_stat(idx: np.ndarray) -> float:
        return loss_recovered(a["ce_c"][idx].sum(), a["ce_s"][idx].sum(), a["ce_a"][idx].sum())

    def kl_stat(idx: np.ndarray) -> float:
        return loss_recovered(0.0, a["kl_s"][idx].sum(), a["kl_a"][idx].sum())

    idx = np.arange(len(a["ntok"]))
    out: dict[str, Any] = {}
    for name, stat in (
        ("fvu", fvu_stat),
        ("l0", l0_stat),
        ("ce_recovered", ce_stat),
        ("kl_recovered", kl_stat),
    ):
        out[name] = stat(idx)
        out[f"{name}_lo"], out[f"{name}_hi"] = bootstrap_ci(
            idx, stat, n_resamples=n_resamples, confidence=confidence, seed=seed
        )
    npred = a["npred"].sum()
    out["ce_clean"] = float(a["ce_c"].sum() / npred)
    out["ce_spliced"] = float(a["ce_s"].sum() / npred)
    out["ce_ablated"] = float(a["ce_a"].sum() / npred)
    out["n_prompts"] = len(idx)
    out["n_tokens"] = int(a["ntok"].sum())
    out["n_excluded"] = int(a["excl"].sum())
    return out


# ------------------------------------------------------------------------------ latent shifts
@torch.no_grad()
def _encode_rows(sae: Any, rows: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    return (
        torch.cat([sae.encode(rows[i : i + chunk].float()) for i in range(0, len(rows), chunk)])
        if len(rows)
        else torch.zeros(0, sae.cfg.d_sae)
    )


def _shift_frame(variant: str, f: torch.Tensor, base_freq: np.ndarray, base_mean: np.ndarray) -> pd.DataFrame:
    """Firing rate and mean activation per latent of ``variant``, and their shifts from the base."""
    freq = (f > 0).float().mean(0).numpy()
    mean = f.mean(0).numpy()
    df = pd.DataFrame(
        {
            "variant": variant,
            "latent": np.arange(f.shape[1]),
            "freq": freq,
            "mean_act": mean,
            "freq_base": base_freq,
            "mean_base": base_mean,
        }
    )
    df["freq_shift"] = df["freq"] - df["freq_base"]
    df["mean_shift"] = df["mean_act"] - df["mean_base"]
    df["shift_rank"] = df["freq_shift"].abs().rank(ascending=False, method="first").astype(int)
    return df


def _contrast_columns(
    df: pd.DataFrame, f: torch.Tensor, owner: torch.Tensor, labels: np.ndarray, contrast: tuple[str, str]
) -> None:
    """Add ``contrast_diff``, ``contrast_auroc`` and ``contrast_rank`` to ``df``: latent activations
    averaged over each prompt's tokens (``owner[i]`` is row i's prompt, ``labels`` one per prompt)."""
    from scipy.stats import mannwhitneyu

    n_prompts = len(labels)  # the store's prompts: labels are stored one per prompt
    per_prompt = torch.zeros(n_prompts, f.shape[1]).index_add_(0, owner, f)
    counts = torch.bincount(owner, minlength=n_prompts).float()
    has = counts > 0
    per_prompt_np = (per_prompt[has] / counts[has, None]).numpy()
    lab = labels[has.numpy()]
    xa, xb = per_prompt_np[lab == contrast[0]], per_prompt_np[lab == contrast[1]]
    df["contrast_diff"] = xa.mean(0) - xb.mean(0)
    u = mannwhitneyu(xa, xb, axis=0).statistic
    df["contrast_auroc"] = u / (len(xa) * len(xb))
    df["contrast_rank"] = (df["contrast_auroc"] - 0.5).abs().rank(ascending=False, method="first").astype(int)


def latent_shifts(
    acts: ActivationSet,
    sae: Any,
    hook: HookSite | str | None = None,
    position: str | Position | None = None,
    *,
    variants: Sequence[str] | None = None,
    base: str = "base",
    contrast: tuple[str, str] | None = None,
    outlier_factor: float | None = 10.0,
) -> pd.DataFrame:
    """Per-latent firing rate and mean activation of a (base) SAE on base vs each variant.

    docs/measures.md "Latent frequency shift". One row per (variant, latent), base included:
    ``freq``, ``mean_act`` (over kept token rows), ``freq_base``, ``mean_base``,
    ``freq_shift = freq − freq_base``, ``mean_shift``, ``shift_rank`` (1 = largest
    ``|freq_shift|`` within the variant). With ``contrast=(a, b)`` (task labels, e.g.
    ``("careful", "direct")``) also, on that variant's prompts (tokens averaged per prompt):
    ``contrast_diff`` (mean activation on a minus on b), ``contrast_auroc`` (Mann-Whitney
    AUROC of a vs b) and ``contrast_rank`` (1 = largest ``|auroc − 0.5|``).
    """
    site = _hook_of(sae, hook)
    others = [v for v in (variants if variants is not None else acts.variants) if v != base]
    labels = np.asarray([str(x) for x in acts.labels])
    if contrast is not None:
        for lab in contrast:
            if not (labels == lab).any():
                raise SAEError(
                    f"Contrast label {lab!r} is on no prompt. Labels present: {sorted(set(labels))}."
                )
    frames = []
    base_freq = base_mean = None
    for v in [base, *others]:
        rows, owner = token_rows(acts, v, site, position, outlier_factor=outlier_factor)
        f = _encode_rows(sae, rows)
        if base_freq is None or base_mean is None:
            base_freq, base_mean = (f > 0).float().mean(0).numpy(), f.mean(0).numpy()
        df = _shift_frame(v, f, base_freq, base_mean)
        if contrast is not None:
            _contrast_columns(df, f, owner, labels, contrast)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out.attrs.update({"hook": site.key, "base": base, "contrast": list(contrast) if contrast else None})
    return out


def decoder_direction(sae: Any, latent: int, *, normalize: bool = False) -> Float[torch.Tensor, " d_model"]:
    """Latent ``latent``'s decoder row (a residual-stream direction), e.g. for steering.

    Returned as a new float32 CPU tensor in the model's activation units (sae_lens folds the
    activation scaling into the decoder); ``normalize=True`` makes it unit norm.
    """
    d_sae = int(sae.cfg.d_sae)
    if not 0 <= int(latent) < d_sae:
        raise SAEError(f"latent must be in [0, {d_sae}), got {latent}.")
    vec = sae.W_dec[int(latent)].detach().to("cpu", torch.float32).clone()
    return vec / vec.norm() if normalize else vec
