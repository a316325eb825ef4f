"""Battery test 5: base-SAE coverage of every variant and a crosscoder per variant."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probes.data.activations import ActivationSet, collect_activations
from probes.data.tasks import Task
from probes.models.family import ModelFamily
from steering.battery.config import BatteryConfig, subset
from steering.battery.rows import BatteryRow, TestId

__all__ = ["ce_note", "sae_rows"]


def sae_rows(
    family: ModelFamily,
    task: Task,
    variants: Sequence[str],
    cfg: BatteryConfig,
    workdir: Path,
    *,
    layer: int | None = None,
    steps: int = 400,
    cc_steps: int = 300,
    progress: bool = True,
) -> tuple[list[BatteryRow], pd.DataFrame, pd.DataFrame]:
    """Base SAE on every variant (FVU, CE recovered; Kissane et al. 2024) and a crosscoder per
    variant (share of variant-only latents; Lindsey et al. 2024, Minder et al. 2025), at one
    middle layer on teacher-forced reasoning texts. Returns rows, the transfer table and the
    crosscoder latent table."""
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
    key = hashlib.sha256(f"{fit.hash}|{family.revision('base')}|{steps}|{cfg.seed}".encode()).hexdigest()[:16]
    sae = _base_sae(acts, hook, cfg, workdir / "sae" / f"base-{key}-{layer}", steps)
    transfer = sae_transfer(
        family, sae, test, hook, variants=["base", *others], text=text, n_resamples=500, seed=cfg.seed
    )
    rows = _fvu_rows(transfer, task.name, layer)
    cc_rows, cc_tables = _crosscoder_rows(acts, others, hook, cfg, task.name, layer, cc_steps)
    rows += cc_rows
    return (
        rows,
        transfer.assign(task=task.name),
        pd.concat(cc_tables, ignore_index=True) if cc_tables else pd.DataFrame(),
    )


def _base_sae(acts: ActivationSet, hook: str, cfg: BatteryConfig, sae_dir: Path, steps: int) -> Any:
    """The base's BatchTopK SAE at ``hook`` (4x expansion, k = 16), trained once into ``sae_dir``."""
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


def _fvu_rows(transfer: pd.DataFrame, task: str, layer: int) -> list[BatteryRow]:
    """One row per tuned variant: the base SAE's FVU on it, against its FVU on the base."""
    base_row = transfer[transfer.variant == "base"].iloc[0]
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
            ),
            ce_recovered=r["ce_recovered"],
            ce_recovered_lo=r["ce_recovered_lo"],
            ce_recovered_hi=r["ce_recovered_hi"],
        )
        for r in transfer[transfer.variant != "base"].to_dict("records")
    ]


def _crosscoder_rows(
    acts: ActivationSet,
    others: Sequence[str],
    hook: str,
    cfg: BatteryConfig,
    task: str,
    layer: int,
    steps: int,
) -> tuple[list[BatteryRow], list[pd.DataFrame]]:
    """A base-vs-variant crosscoder per tuned variant: its share of variant-only live latents
    (the null column holds the base-only share) and its latent table."""
    from probes.dictionaries.crosscoder import crosscoder_latents, crosscoder_summary, train_crosscoder

    rows, tables = [], []
    for v in others:
        cc = train_crosscoder(
            acts, "base", v, hook, "all", d_sae=4 * acts.d_model, k=8, steps=steps, lr=1e-3, seed=cfg.seed
        )
        lat = crosscoder_latents(cc, acts)
        summ = crosscoder_summary(lat).iloc[0]
        alive = max(int(summ["n_alive"]), 1)
        tables.append(lat.assign(variant=v, task=task))
        rows.append(
            BatteryRow.make(
                TestId.CROSSCODER,
                v,
                task,
                layer,
                "all",
                float(summ["n_variant_only"]) / alive,
                float(summ["n_base_only"]) / alive,
                float("nan"),
                float("nan"),
                alive,
                f"{int(summ['n_variant_only'])} variant-only / {int(summ['n_shared'])} shared / "
                f"{int(summ['n_base_only'])} base-only of {alive} live latents (null column: base-only share)",
                n_variant_only=float(summ["n_variant_only"]),
                n_base_only=float(summ["n_base_only"]),
            )
        )
    return rows, tables
