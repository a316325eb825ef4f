"""Battery test 1a: steer the base along its own reasoning direction (gap recovered).

The base's careful-minus-direct difference of means at the decision token is added to the
base on the task's neutral prompts; layer and alpha are chosen on the dev split and reported
on the test split, with the norm-matched random direction at the same setting as the null."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from probes.data.activations import ActivationSet, collect_activations
from probes.data.tasks import Task
from probes.models.family import ModelFamily
from steering.battery.config import BatteryConfig, chance_level, contrast_fit, subset
from steering.battery.gap import floored, gr_ci
from steering.battery.rows import BatteryRow, TestId
from steering.sweep import SweepConfig, VectorSpec, choose_setting, gap_recovered, run_sweep
from steering.vector import SteeringVector, fit_vector

__all__ = ["fit_reasoning_vector", "behavioural_rows"]


def fit_reasoning_vector(
    family: ModelFamily, ref: Task, cfg: BatteryConfig, workdir: Path, *, progress: bool = True
) -> tuple[SteeringVector, ActivationSet]:
    """The base's reasoning direction: careful-minus-direct difference of means at the decision
    token on the reference task's fit split, every layer. Returns the vector and its activations."""
    layers = f"resid_post:0-{family.layer_count() - 1}"
    fit = contrast_fit(ref, cfg)
    acts = collect_activations(
        family,
        fit,
        layers,
        cfg.decision,
        variants=["base"],
        out=workdir / "acts" / f"fit-{fit.hash}",
        progress=progress,
    )
    vec = fit_vector(
        acts, "base", layers, cfg.contrast, position=cfg.decision, name="base-reasoning", seed=cfg.seed
    )
    vec.save(workdir / "vectors" / "base-reasoning")
    return vec, acts


def behavioural_rows(
    family: ModelFamily,
    task: Task,
    variants: Sequence[str],
    vector_path: Path,
    cfg: BatteryConfig,
    workdir: Path,
    *,
    progress: bool = True,
) -> tuple[list[BatteryRow], pd.DataFrame]:
    """Steer the base with the reasoning vector on ``task``; gap recovered for each variant."""
    layers = cfg.layers or tuple(range(family.layer_count()))
    dev = subset(task, cfg.dev_split, cfg.eval_label, cfg.max_dev)
    test = subset(task, cfg.test_split, cfg.eval_label, cfg.max_test)
    sub = task.with_examples(list(dev.examples) + list(test.examples))
    scfg = SweepConfig(
        family=family.name,
        task=task.name,
        vectors=(VectorSpec(name="base-reasoning", path=str(vector_path)),),
        layers=layers,
        alphas=cfg.alphas,
        variants=("base",),
        baselines=tuple(v for v in variants if v != "base"),
        positions=(cfg.decision,),
        units=cfg.units,
        label=None,
        splits=(cfg.dev_split, cfg.test_split),
        chunk_size=len(sub),
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        out=str(workdir / "sweeps" / f"{task.name}.jsonl"),
    )
    df = run_sweep(scfg, family=family, task=sub, progress=progress)
    return _steering_rows(df, task, variants, cfg), df


def _steering_rows(
    df: pd.DataFrame, task: Task, variants: Sequence[str], cfg: BatteryConfig
) -> list[BatteryRow]:
    """Gap recovered toward each tuned variant at the dev-chosen (layer, alpha), on test prompts,
    with the norm-matched random direction at the same setting as the null."""
    rows = []
    test_df = df[df.split == cfg.test_split]
    chance = chance_level(task)
    base_acc = (
        test_df[(test_df.control == "none") & (test_df.variant == "base")].set_index("prompt_id").correct
    )
    steer = df[df.control == "steer"]
    best = choose_setting(steer, cfg.dev_split)
    layer, alpha = best.layer, best.alpha
    s = (
        steer[(steer.split == cfg.test_split) & (steer.layer == layer) & (steer.alpha == alpha)]
        .set_index("prompt_id")
        .correct
    )
    r_df = df[
        (df.control == "random") & (df.split == cfg.test_split) & (df.layer == layer) & (df.alpha == alpha)
    ]
    r = r_df.set_index("prompt_id").correct
    for v in variants:
        if v == "base":
            continue
        t = test_df[(test_df.control == "none") & (test_df.variant == v)].set_index("prompt_id").correct
        ids = base_acc.index.intersection(t.index).intersection(s.index)
        B, T, S = (x.loc[ids].to_numpy().astype(float) for x in (base_acc, t, s))
        R = r.loc[ids].to_numpy().astype(float) if len(r) else np.full(len(ids), np.nan)
        gr = gap_recovered(S.mean(), B.mean(), T.mean())
        gr_r = gap_recovered(R.mean(), B.mean(), T.mean())
        lo, hi = gr_ci(S, B, T, cfg.seed)
        rows.append(
            BatteryRow.make(
                TestId.STEERING,
                v,
                task.name,
                layer,
                cfg.decision,
                gr,
                gr_r,
                lo,
                hi,
                len(ids),
                f"base {B.mean():.2f} -> steered {S.mean():.2f} (random {R.mean():.2f}) vs {v} {T.mean():.2f}; "
                f"layer {layer}, alpha {alpha:g} chosen on {cfg.dev_split} ({best.dev_acc:.2f}), reported on {cfg.test_split}",
                acc_base=B.mean(),
                acc_tuned=T.mean(),
                acc_intervention=S.mean(),
                acc_random=R.mean(),
                alpha=alpha,
                **floored(S, B, T, chance, cfg.seed),
                # NaN when no random control ran (never read as 0: the verdict then cannot select on steering)
                gr_random_floor=gap_recovered(R.mean(), max(B.mean(), chance), T.mean()),
            )
        )
    return rows
