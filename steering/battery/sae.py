"""Battery test 5: base-SAE coverage of every variant and a crosscoder per variant."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from probes.data.activations import ActivationSet, collect_activations
from probes.data.tasks import Task
from probes.models.family import ModelFamily
from steering.battery.config import BatteryConfig, subset
from steering.battery.rows import BatteryRow, TestId

__all__ = ["ce_note", "sae_rows", "crosscoder_controls", "planted_variant"]

#: The crosscoder's width (latents per model dimension) and mean active latents per token.
CC_EXPANSION, CC_K = 2, 8


def sae_rows(
    family: ModelFamily,
    task: Task,
    variants: Sequence[str],
    cfg: BatteryConfig,
    workdir: Path,
    *,
    layer: int | None = None,
    controls: dict[str, float] | None = None,
    progress: bool = True,
) -> tuple[list[BatteryRow], pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Base SAE on every variant (FVU, CE recovered; Kissane et al. 2024) and a crosscoder per
    variant (share of variant-only latents; Lindsey et al. 2024, Minder et al. 2025), at one
    middle layer on teacher-forced reasoning texts (every token: the prompt's decision token and
    the trace's computation positions). Both dictionaries train until the training FVU plateaus
    (:func:`probes.dictionaries.training.plateau`; ``cfg.dict_steps`` doubled up to
    ``cfg.dict_max_steps``) and report whether they did. Beside the variants, two crosscoder controls with the same settings
    (:func:`crosscoder_controls`): the base against an identical copy (must find no
    variant-only latents) and against a copy with planted directions (must find them), trained
    once per family: pass the ``controls`` a first call returned to the calls for the family's
    other tasks. Returns rows, the transfer table, the crosscoder latent table (with the controls'
    latents, ``variant`` ``control:identical`` / ``control:planted``, when they were trained here)
    and the controls."""
    from probes.dictionaries.sae import sae_transfer

    n = family.layer_count()
    layer = n // 2 if layer is None else layer
    hook = f"resid_post.{layer}"
    text = "prompt+trace" if all(e.trace for e in task.examples) else "prompt"
    fit = subset(task, cfg.fit_split, None, cfg.max_fit)
    test = subset(task, cfg.test_split, cfg.eval_label, cfg.max_test)
    others = [v for v in variants if v != "base"]
    acts = collect_activations(
        family,
        fit,
        hook,
        "all",
        variants=["base", *others],
        text=text,
        out=workdir / "acts" / f"sae-{fit.hash}-{layer}",
        progress=progress,
        prompts="base",  # every variant on the base's tokens: the crosscoder pairs rows token by token
    )
    # the SAE is keyed on its training data, the base's weights (content digest) and its settings
    steps, max_steps = cfg.dict_steps, cfg.dict_max_steps
    key = hashlib.sha256(
        f"{fit.hash}|{family.revision('base')}|{steps}|{max_steps}|{cfg.seed}|plateau".encode()
    ).hexdigest()[:16]
    sae = _base_sae(acts, hook, cfg, workdir / "sae" / f"base-{key}-{layer}", steps, max_steps)
    transfer = sae_transfer(
        family, sae, test, hook, variants=["base", *others], text=text, n_resamples=500, seed=cfg.seed
    )
    rows = _fvu_rows(transfer, task.name, layer, _sae_quality(sae, acts, hook))
    control_tables: list[pd.DataFrame] = []
    if controls is None:
        controls, control_tables = crosscoder_controls(acts, hook, cfg, steps, max_steps)
    cc_rows, cc_tables = _crosscoder_rows(
        acts, others, hook, cfg, task.name, layer, steps, max_steps, controls
    )
    rows += cc_rows
    cc_tables += [t.assign(task=task.name) for t in control_tables]
    return (
        rows,
        transfer.assign(task=task.name),
        pd.concat(cc_tables, ignore_index=True) if cc_tables else pd.DataFrame(),
        controls,
    )


def _sae_quality(sae: Any, acts: ActivationSet, hook: str) -> dict[str, float]:
    """Convergence, dead-latent share, FVU and L0 of the base SAE on its training rows."""
    from probes.dictionaries.sae import fit_quality, token_rows

    rows, _ = token_rows(acts, "base", hook, "all")
    q = fit_quality(sae, rows)
    return {
        "converged": float(bool(q.converged)),
        "steps": float(q.steps or 0),
        "dead_share": q.dead_share,
        "fit_fvu": q.fvu,
        "l0": q.l0,
    }


def _base_sae(
    acts: ActivationSet, hook: str, cfg: BatteryConfig, sae_dir: Path, steps: int, max_steps: int
) -> Any:
    """The base's BatchTopK SAE at ``hook`` (4x expansion, k = 16), trained once (to a plateau)
    into ``sae_dir``."""
    from probes.dictionaries.sae import load_sae, train_sae

    if (sae_dir / "cfg.json").exists():
        return load_sae(sae_dir)
    return train_sae(
        acts,
        "base",
        hook,
        "all",
        architecture="batchtopk",
        d_sae=4 * acts.d_model,
        k=16,
        steps=steps,
        max_steps=max_steps,
        lr=1e-3,
        seed=cfg.seed,
        out=sae_dir,
    )


def ce_note(value: float, lo: float | None = None, hi: float | None = None) -> str:
    """A note for a CE recovered above 1 ("" otherwise): what it means, and whether its interval
    reaches 1.

    >>> ce_note(0.97)
    ''
    >>> ce_note(1.04, 0.98, 1.09)[:52]
    'CE recovered 1.040 > 1: the spliced model predicts t'
    """
    if value is None or not np.isfinite(value) or value <= 1.0:
        return ""
    within = (
        f"; its interval [{lo:.3f}, {hi:.3f}] reaches 1, so it is within noise of lossless"
        if lo is not None and hi is not None and np.isfinite(lo) and lo <= 1.0
        else ""
    )
    return (
        f"CE recovered {value:.3f} > 1: the spliced model predicts the next token better than the clean one "
        "(recovered = (L_ablated - L_spliced) / (L_ablated - L_clean) exceeds 1 exactly when L_spliced < "
        f"L_clean: the SAE's reconstruction error happened to lower the loss, by denoising or by chance on few "
        f"tokens{within}). Read it as a lossless splice, not as an SAE that improves the model"
    )


def _fvu_rows(transfer: pd.DataFrame, task: str, layer: int, quality: dict[str, float]) -> list[BatteryRow]:
    """One row per tuned variant: the base SAE's FVU on it, against its FVU on the base (with
    the SAE's convergence, dead share and L0 in ``extra``)."""
    base_row = transfer[transfer.variant == "base"].iloc[0]
    conv = (
        f"; base SAE {'converged' if quality['converged'] else 'NOT converged'} after {int(quality['steps'])} "
        f"steps (dead {quality['dead_share']:.0%}, L0 {quality['l0']:.1f}, training FVU {quality['fit_fvu']:.3f})"
    )
    return [
        BatteryRow.make(
            TestId.SAE_FVU,
            r["variant"],
            task,
            layer,
            "all",
            r["fvu"],
            float(base_row["fvu"]),
            r["fvu_lo"],
            r["fvu_hi"],
            int(r["n_prompts"]),
            f"base-SAE FVU on {r['variant']} {r['fvu']:.3f} vs on base {base_row['fvu']:.3f}; "
            f"CE recovered {r['ce_recovered']:.3f} (base {base_row['ce_recovered']:.3f})"
            + "".join(
                f" [note: {note}]"
                for note in (
                    ce_note(r["ce_recovered"], r["ce_recovered_lo"], r["ce_recovered_hi"]),
                    ce_note(
                        base_row["ce_recovered"], base_row["ce_recovered_lo"], base_row["ce_recovered_hi"]
                    ),
                )
                if note
            )
            + conv,
            **quality,
            ce_recovered=r["ce_recovered"],
            ce_recovered_lo=r["ce_recovered_lo"],
            ce_recovered_hi=r["ce_recovered_hi"],
        )
        for r in transfer[transfer.variant != "base"].to_dict("records")
    ]


def planted_variant(
    h: torch.Tensor, n_planted: int = 8, p: float = 0.05, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """A copy of rows ``h`` with ``n_planted`` directions added (``[n_planted, d]``, Haar-random unit
    vectors): each fires on a share ``p`` of rows with size half the mean row norm times
    ``U(0.5, 1.5)``. Returns ``(h_variant, directions)``: the crosscoder's planted control."""
    from probes.weights.measures import haar_orthonormal

    g = torch.Generator().manual_seed(seed)
    dirs = haar_orthonormal(h.shape[1], n_planted, g).T.contiguous()  # [n_planted, d]
    fire = (torch.rand(len(h), n_planted, generator=g) < p).float()
    size = 0.5 * float(h.norm(dim=-1).mean()) * (0.5 + torch.rand(len(h), n_planted, generator=g))
    return h + (fire * size) @ dirs, dirs


def crosscoder_controls(
    acts: ActivationSet, hook: str, cfg: BatteryConfig, steps: int, max_steps: int
) -> tuple[dict[str, float], list[pd.DataFrame]]:
    """The crosscoder's two controls on the base's own rows, at the variants' settings: an
    identical copy (``identical_variant_only``: variant-only share of live latents, must be 0)
    and a copy with 8 planted directions (``planted_recall``: share of planted directions that
    a live variant-only latent's decoder matches at cosine > 0.9, should be 1;
    ``planted_false``: variant-only latents matching none)."""
    from probes.dictionaries.crosscoder import (
        crosscoder_latents,
        crosscoder_summary,
        fit_crosscoder,
        paired_rows,
    )

    hb, _, _ = paired_rows(acts, "base", "base", hook, "all")
    opts: dict[str, Any] = {
        "d_sae": CC_EXPANSION * acts.d_model,
        "k": CC_K,
        "steps": steps,
        "max_steps": max_steps,
        "lr": 1e-3,
        "seed": cfg.seed,
    }
    out: dict[str, float] = {}
    tables = []
    same = fit_crosscoder(hb, hb.clone(), models=("base", "base copy"), **opts)
    lat = crosscoder_latents(same, rows=(hb, hb))
    summ = crosscoder_summary(lat).iloc[0]
    out["identical_variant_only"] = float(summ["n_variant_only"]) / max(int(summ["n_alive"]), 1)
    out["identical_converged"] = float(same.meta["convergence"]["converged"])
    tables.append(lat.assign(variant="control:identical"))
    hv, dirs = planted_variant(hb, seed=cfg.seed)
    planted = fit_crosscoder(hb, hv, models=("base", "base + planted"), **opts)
    lat = crosscoder_latents(planted, rows=(hb, hv))
    vo = lat[(lat.cls == "variant_only") & lat.alive].latent.to_numpy()
    dec = planted.decoders[:, 1] / planted.scales[1]  # variant halves, the variant's own units
    if len(vo):
        w = dec[torch.tensor(vo, dtype=torch.long)]
        cos = torch.nn.functional.normalize(w, dim=-1) @ dirs.T  # [vo, planted]
        out["planted_recall"] = float((cos.max(0).values > 0.9).float().mean())
        out["planted_false"] = float((cos.max(1).values <= 0.9).sum())
    else:
        out["planted_recall"], out["planted_false"] = 0.0, 0.0
    out["planted_converged"] = float(planted.meta["convergence"]["converged"])
    tables.append(lat.assign(variant="control:planted"))
    return out, tables


def _crosscoder_rows(
    acts: ActivationSet,
    others: Sequence[str],
    hook: str,
    cfg: BatteryConfig,
    task: str,
    layer: int,
    steps: int,
    max_steps: int,
    controls: dict[str, float],
) -> tuple[list[BatteryRow], list[pd.DataFrame]]:
    """A base-vs-variant crosscoder per tuned variant: its share of variant-only live latents
    (the null column holds the identical-copy control's share), latent scaling of every live
    latent (ν, ν^r), convergence, dead share, and the controls; and its latent table."""
    from probes.dictionaries.crosscoder import crosscoder_latents, crosscoder_summary, train_crosscoder

    rows, tables = [], []
    ctrl = (
        f"controls: identical copy {controls['identical_variant_only']:.2f} variant-only, planted recall "
        f"{controls['planted_recall']:.2f}"
    )
    for v in others:
        cc = train_crosscoder(
            acts,
            "base",
            v,
            hook,
            "all",
            d_sae=CC_EXPANSION * acts.d_model,
            k=CC_K,
            steps=steps,
            max_steps=max_steps,
            lr=1e-3,
            seed=cfg.seed,
        )
        lat = crosscoder_latents(cc, acts)
        summ = crosscoder_summary(lat).iloc[0]
        alive = max(int(summ["n_alive"]), 1)
        conv = cc.meta["convergence"]
        tables.append(lat.assign(variant=v, task=task))
        rows.append(
            BatteryRow.make(
                TestId.CROSSCODER,
                v,
                task,
                layer,
                "all",
                float(summ["n_variant_only"]) / alive,
                controls["identical_variant_only"],
                float("nan"),
                float("nan"),
                alive,
                f"{int(summ['n_variant_only'])} variant-only ({int(summ['n_variant_only_low_nu'])} with ν, ν^r < 0.5) / "
                f"{int(summ['n_shared'])} shared / {int(summ['n_base_only'])} base-only of {alive} live latents "
                f"({1 - alive / cc.d_sae:.0%} dead); {'converged' if conv['converged'] else 'NOT converged'} after "
                f"{conv['steps']} steps; {ctrl} (null column: the identical copy's share)",
                n_variant_only=float(summ["n_variant_only"]),
                n_variant_only_low_nu=float(summ["n_variant_only_low_nu"]),
                n_base_only=float(summ["n_base_only"]),
                nu_median=float(summ.get("nu_median", float("nan"))),
                nu_r_median=float(summ.get("nu_r_median", float("nan"))),
                dead_share=1 - alive / cc.d_sae,
                converged=float(conv["converged"]),
                steps=float(conv["steps"]),
                **{f"control_{k}": val for k, val in controls.items()},
            )
        )
    return rows, tables
