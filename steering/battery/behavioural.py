"""Battery test 1a: steer the base along its own reasoning direction (gap recovered).

The base's careful-minus-direct difference of means at the decision token is added to the
base on the task's neutral prompts; layer and alpha (nonzero) are chosen on the dev split and
reported on the test split (among settings whose median dev KL reaches ``min_kl``). The null is a set of directions given the *same* dev search:
``n_random`` norm-matched random directions and the label-shuffled contrast vector. Steering is
evidence for the direction only when the vector beats the best null (by dev accuracy) in a
paired test on the test prompts (docs/measures.md, "Nulls and the verdict"). Every steered row
carries its manipulation check (did the hook fire, the KL it caused); prompts where the hook
did not fire are counted and left out."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from probes.data.activations import ActivationSet, collect_activations
from probes.data.tasks import Task
from probes.models.family import ModelFamily
from probes.stats import bootstrap_ci
from steering.battery.config import BatteryConfig, chance_level, contrast_fit, steering_layers, subset
from steering.battery.gap import floored, gr_ci, nan0
from steering.battery.rows import BatteryRow, TestId
from steering.battery.verdict import THRESHOLDS
from steering.sweep import SweepConfig, VectorSpec, choose_setting, gap_recovered, run_sweep
from steering.sweep.summary import DevChoice
from steering.vector import SteeringVector, fit_shuffled, fit_vector

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
    # the label-shuffled null: the same prompts, the contrast labels permuted, norm-matched per layer
    fit_shuffled(acts, "base", layers, cfg.contrast, like=vec, position=cfg.decision, seed=cfg.seed).save(
        workdir / "vectors" / "base-reasoning-shuffled"
    )
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
    """Steer the base with the reasoning vector on ``task``; gap recovered for each variant.

    Three sweeps, each cached and resumable: the vector over the grid on dev and test (with
    every variant's unsteered rows); the nulls over the same grid on dev; each null on test at
    its own dev-chosen setting. Returns the rows and the sweeps' rows (one table)."""
    layers = steering_layers(cfg, family.layer_count())
    dev = subset(task, cfg.dev_split, cfg.eval_label, cfg.max_dev)
    test = subset(task, cfg.test_split, cfg.eval_label, cfg.max_test)
    sub = task.with_examples(list(dev.examples) + list(test.examples))
    out = workdir / "sweeps" / f"{task.name}.jsonl"
    scfg = SweepConfig(
        family=family.name,
        task=task.name,
        vectors=(
            VectorSpec(
                name="base-reasoning",
                path=str(vector_path),
                shuffled_path=str(vector_path.with_name(vector_path.name + "-shuffled")),
            ),
        ),
        layers=layers,
        alphas=cfg.alphas,
        variants=("base",),
        baselines=tuple(v for v in variants if v != "base"),
        positions=(cfg.decision,),
        units=cfg.units,
        random_control=False,
        label=None,
        splits=(cfg.dev_split, cfg.test_split),
        chunk_size=len(sub),
        batch_size=cfg.batch_size,
        max_new_tokens=cfg.max_new_tokens,
        seed=cfg.seed,
        out=str(out),
    )
    frames = [run_sweep(scfg, family=family, task=sub, progress=progress)]
    nulls = dataclasses.replace(
        scfg,
        baselines=(),
        steer_control=False,
        unsteered=False,
        random_control=cfg.n_random > 0,
        n_random=cfg.n_random,
        shuffled_control=True,
        splits=(cfg.dev_split,),
        chunk_size=len(dev),
        out=str(out.with_name(f"{task.name}-nulls-dev.jsonl")),
    )
    null_dev = run_sweep(nulls, family=family, task=dev, progress=progress)
    frames.append(null_dev)
    # each null on test at its own dev-chosen setting, one sweep per (layer, alpha) they share
    chosen: dict[tuple[int, float], list[tuple[str, int]]] = {}
    for (control, draw), grp in null_dev.groupby(["control", "draw"]):
        best = choose_setting(grp[grp.alpha != 0], cfg.dev_split)
        chosen.setdefault((best.layer, best.alpha), []).append((str(control), int(draw)))
    for (layer, alpha), which in sorted(chosen.items()):
        draws = tuple(sorted(k for c, k in which if c == "random"))
        at = dataclasses.replace(
            nulls,
            layers=(layer,),
            alphas=(alpha,),
            draws=draws,
            random_control=bool(draws),
            shuffled_control=any(c == "shuffled" for c, _ in which),
            splits=(cfg.test_split,),
            chunk_size=len(test),
            out=str(out.with_name(f"{task.name}-nulls-test-L{layer}-a{alpha:g}.jsonl")),
        )
        frames.append(run_sweep(at, family=family, task=test, progress=False))
    df = pd.concat(frames, ignore_index=True)
    return _steering_rows(df, task, variants, cfg), df


@dataclass(frozen=True)
class _Setting:
    """One steered direction's dev-chosen setting and its per-prompt test results there."""

    control: str
    draw: int
    choice: DevChoice
    correct: pd.Series  # test prompt id -> correct (0/1)
    fired: pd.Series  # test prompt id -> positions the hook steered
    kl: pd.Series  # test prompt id -> KL (nats) of the next token after the prompt
    budget: int = 0  # test rows that used every new token without stopping (truncated)


def _chosen(grp: pd.DataFrame, control: str, draw: int, cfg: BatteryConfig, min_kl: float = 0.0) -> _Setting:
    """The dev-chosen nonzero-alpha setting of one direction (alpha 0 is no manipulation), reported
    on test. With ``min_kl``, only settings whose median dev KL reaches it compete (a push that
    moves nothing is no test; when none reaches it, every nonzero setting competes and the
    verdict's manipulation check then fails)."""
    steered = grp[grp.alpha != 0]
    if min_kl > 0 and "kl" in steered:
        dev = steered[steered.split == cfg.dev_split]
        kl = dev.groupby(["layer", "alpha"]).kl.median()
        ok = kl[kl >= min_kl].index
        keep = steered.set_index(["layer", "alpha"]).index.isin(ok)
        if keep.any():
            steered = steered[keep]
    best = choose_setting(steered, cfg.dev_split)
    at = grp[(grp.split == cfg.test_split) & (grp.layer == best.layer) & (grp.alpha == best.alpha)]
    at = at.set_index("prompt_id")
    fired = at["fired"] if "fired" in at else pd.Series(1, index=at.index)
    kl = at["kl"] if "kl" in at else pd.Series(np.nan, index=at.index)
    budget = int((at["finish"] == "budget").sum()) if "finish" in at else 0
    return _Setting(control, draw, best, at.correct.astype(float), fired, kl, budget)


def null_settings(df: pd.DataFrame, cfg: BatteryConfig) -> list[_Setting]:
    """Every null direction of a battery sweep (random draws, the label-shuffled vector), each
    with its own dev search over the same grid as the reasoning vector."""
    nulls = df[df.control.isin(["random", "shuffled"])]
    return [_chosen(grp, str(c), int(k), cfg) for (c, k), grp in nulls.groupby(["control", "draw"])]


def _paired(S: np.ndarray, R: np.ndarray, seed: int) -> tuple[float, float, float, float]:
    """Mean per-prompt difference S - R (accuracy), its paired bootstrap interval, and the
    one-sided paired permutation p-value of S > R (``scipy.stats.permutation_test``)."""
    from scipy import stats

    d = S - R
    lo, hi = bootstrap_ci(d, seed=seed)
    if len(d) < 2 or np.all(d == 0):
        return float(d.mean()) if len(d) else float("nan"), lo, hi, 1.0
    res = stats.permutation_test(
        (S, R),
        lambda x, y: np.mean(x - y),
        permutation_type="samples",
        alternative="greater",
        n_resamples=9999,
        rng=np.random.default_rng(seed),
    )
    return float(d.mean()), lo, hi, float(res.pvalue)


def _hierarchical(
    S: np.ndarray, nulls: Sequence[_Setting], ids: pd.Index, seed: int, n_boot: int = 2000
) -> tuple[float, float]:
    """95% interval of steered minus best null, resampling the random draws *and* the prompts.

    Each resample draws the random directions with replacement (the label-shuffled vector stays),
    takes the best of them by dev accuracy as the battery does, then resamples the test prompts:
    the interval covers which null happened to be drawn as well as which prompts were asked."""
    if len(ids) == 0 or not nulls:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    R = np.stack([n.correct.reindex(ids).to_numpy(dtype=float) for n in nulls])
    keys = [(n.choice.dev_acc, n.control == "random", -n.draw) for n in nulls]
    order = sorted(range(len(nulls)), key=lambda i: keys[i])
    rank = np.empty(len(nulls), dtype=int)
    rank[order] = np.arange(len(nulls))
    random_idx = np.array([i for i, n in enumerate(nulls) if n.control == "random"])
    fixed = np.array([i for i, n in enumerate(nulls) if n.control != "random"])
    diffs = np.empty(n_boot)
    for b in range(n_boot):
        pool = np.r_[rng.choice(random_idx, len(random_idx)) if len(random_idx) else [], fixed].astype(int)
        best = pool[np.argmax(rank[pool])]
        k = rng.integers(0, len(ids), len(ids))
        diffs[b] = np.nanmean(S[k] - R[best, k])
    lo, hi = np.nanpercentile(diffs, [2.5, 97.5])
    return float(lo), float(hi)


def _steering_rows(
    df: pd.DataFrame, task: Task, variants: Sequence[str], cfg: BatteryConfig
) -> list[BatteryRow]:
    """Gap recovered toward each tuned variant at the dev-chosen (layer, alpha), on test prompts,
    against the null: every random draw and the label-shuffled vector, each given the same dev
    search; the reasoning vector must beat the best of them (by dev accuracy) in a paired test.
    Prompts where the hook did not fire are counted and left out, never scored as not recovered."""
    test_df = df[df.split == cfg.test_split]
    chance = chance_level(task)
    plain = test_df[test_df.control == "none"]
    base_acc = plain[plain.variant == "base"].set_index("prompt_id").correct
    # the vector competes over settings that passed the manipulation check; the nulls over all
    steer = _chosen(df[df.control == "steer"], "steer", -1, cfg, min_kl=THRESHOLDS["min_kl"])
    fired_ids = steer.fired.index[steer.fired.to_numpy() > 0]
    nulls = null_settings(df, cfg)
    best_null = max(nulls, key=lambda n: (n.choice.dev_acc, n.control == "random", -n.draw), default=None)
    rows = []
    for v in variants:
        if v == "base":
            continue
        t = plain[plain.variant == v].set_index("prompt_id").correct
        all_ids = base_acc.index.intersection(t.index).intersection(steer.correct.index)
        ids = all_ids.intersection(fired_ids)
        B, T, S = (x.loc[ids].to_numpy().astype(float) for x in (base_acc, t, steer.correct))
        floor = max(float(B.mean()), chance) if len(B) else chance
        gap = float(T.mean()) - floor if len(T) else float("nan")
        null_gr = {(n.control, n.draw): _grc(n.correct, ids, floor, T) for n in nulls}
        R = best_null.correct.reindex(ids).to_numpy() if best_null is not None else np.full(len(ids), np.nan)
        diff, d_lo, d_hi, d_p = _paired(S, R, cfg.seed) if best_null is not None else (np.nan,) * 4
        h_lo, h_hi = _hierarchical(S, nulls, ids, cfg.seed)
        randoms = [g for (c, _), g in null_gr.items() if c == "random"]
        gr = gap_recovered(S.mean(), B.mean(), T.mean()) if len(ids) else float("nan")
        lo, hi = gr_ci(S, B, T, cfg.seed)
        kl = steer.kl.loc[ids].to_numpy(dtype=float) if len(ids) else np.array([np.nan])
        rows.append(
            BatteryRow.make(
                TestId.STEERING,
                v,
                task.name,
                steer.choice.layer,
                cfg.decision,
                gr,
                gap_recovered(float(np.nanmean(R)), B.mean(), T.mean()) if len(ids) else float("nan"),
                lo,
                hi,
                len(ids),
                _detail(v, steer, best_null, B, T, S, R, diff, d_lo, d_hi, len(all_ids) - len(ids), cfg),
                acc_base=B.mean() if len(ids) else float("nan"),
                acc_tuned=T.mean() if len(ids) else float("nan"),
                acc_intervention=S.mean() if len(ids) else float("nan"),
                acc_random=float(np.nanmean(R)) if len(ids) else float("nan"),
                alpha=steer.choice.alpha,
                **floored(S, B, T, chance, cfg.seed),
                # NaN when no null ran (never read as 0: the verdict then cannot select on steering)
                gr_random_floor=null_gr.get((best_null.control, best_null.draw), np.nan)
                if best_null
                else np.nan,
                n_random=len(randoms),
                n_null=len(nulls),
                random_best_draw=best_null.draw if best_null else np.nan,
                random_best_shuffled=float(best_null.control == "shuffled") if best_null else np.nan,
                random_grc_max=max(randoms, default=np.nan),
                random_grc_median=float(np.median(randoms)) if randoms else np.nan,
                random_recover_share=float(np.mean([g >= 0.5 for g in randoms])) if randoms else np.nan,
                shuffled_grc=null_gr.get(("shuffled", -1), np.nan),
                diff_vs_random=diff,
                diff_vs_random_lo=d_lo,
                diff_vs_random_hi=d_hi,
                diff_vs_random_p=d_p,
                # over random draws and prompts (what the verdict reads)
                diff_vs_random_hlo=h_lo,
                diff_vs_random_hhi=h_hi,
                diff_vs_random_gr=diff / gap if gap > 0 else np.nan,
                flip_to_correct=float(np.mean(S > B)) if len(ids) else np.nan,
                flip_to_wrong=float(np.mean(S < B)) if len(ids) else np.nan,
                n_not_fired=len(all_ids) - len(ids),
                n_budget=steer.budget,
                fired_share=len(ids) / len(all_ids) if len(all_ids) else np.nan,
                kl_median=float(np.nanmedian(kl)) if len(kl) else np.nan,
            )
        )
    return rows


def _grc(correct: pd.Series, ids: pd.Index, floor: float, T: np.ndarray) -> float:
    """Gap recovered above max(base, chance) by one null direction on the test prompts ``ids``."""
    R = correct.reindex(ids).to_numpy(dtype=float)
    if len(R) == 0 or np.isnan(R).all():
        return float("nan")
    return nan0(gap_recovered(float(np.nanmean(R)), floor, float(T.mean())))


def _detail(
    v: str,
    steer: _Setting,
    best: _Setting | None,
    B: np.ndarray,
    T: np.ndarray,
    S: np.ndarray,
    R: np.ndarray,
    diff: float,
    lo: float,
    hi: float,
    not_fired: int,
    cfg: BatteryConfig,
) -> str:
    if len(S) == 0:
        return f"the steering hook never fired on the {cfg.test_split} prompts (no {cfg.decision!r} token): nothing was steered"
    null = (
        f"best of the nulls ({best.control}{'' if best.control == 'shuffled' else f' draw {best.draw}'}, layer "
        f"{best.choice.layer}, alpha {best.choice.alpha:g}) {np.nanmean(R):.2f}; steered - null {diff:+.2f} "
        f"[{lo:+.2f}, {hi:+.2f}]"
        if best is not None
        else "no null direction ran"
    )
    skipped = f"; {not_fired} prompts without the decision token left out" if not_fired else ""
    return (
        f"base {B.mean():.2f} -> steered {S.mean():.2f} vs {v} {T.mean():.2f}; layer {steer.choice.layer}, "
        f"alpha {steer.choice.alpha:g} chosen on {cfg.dev_split} ({steer.choice.dev_acc:.2f}), reported on "
        f"{cfg.test_split}; {null}{skipped}"
    )
