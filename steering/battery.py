"""The select-vs-create battery: one function per test, each returning tidy rows.

Every row carries ``test, variant, task, layer, position, effect, null, ci_lo, ci_hi, n,
verdict`` (``select`` / ``create`` / ``inconclusive`` / ``info``) and a ``detail`` string.
The tests (docs/design.md, docs/measures.md):

1. ``behavioural``: gap recovered by steering the *base* with its own careful-minus-direct
   direction at the decision token (layer / alpha chosen on dev, reported on test), with the
   norm-matched random direction at the same setting as the null; and gap recovered by
   forcing the reasoning format (prefilling ``task.format_prefix``).
2. ``direction``: cosine of the tuned-minus-base shift with the base-derived direction, at
   the decision token and inside the computation (the scratchpad span), against random and
   label-shuffled nulls.
3. ``probe``: AUROC of the base's logistic probe on the tuned activations over the tuned
   model's own probe.
4. ``weights``: update size and the alignment of residual-writing updates with the base
   direction against random directions (when :mod:`probes.weights.geometry` is available).

The verdict rule lives in :func:`verdict` and is documented there.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probes.data.activations import collect_activations
from probes.data.tasks import Task
from probes.errors import ElicitError
from probes.models.family import ModelFamily
from probes.models.generation import generate
from probes.representation.directions import contrast_direction
from probes.representation.transfer import direction_transfer, probe_transfer
from probes.stats import bootstrap_ci
from steering.sweep import SweepConfig, VectorSpec, gap_recovered, run_sweep
from steering.vector import SteeringVector, fit_vector

__all__ = [
    "BatteryConfig",
    "THRESHOLDS",
    "fit_reasoning_vector",
    "behavioural_rows",
    "forced_format_rows",
    "direction_rows",
    "probe_rows",
    "weight_rows",
    "verdict",
]

#: Thresholds of the verdict rule, fixed in code (see :func:`verdict` for the evidence).
THRESHOLDS: dict[str, float] = {
    # a variant must beat the base by this much accuracy on test for there to be a gap to explain
    "min_gap": 0.15,
    # gap recovered whose CI lower bound is at least this => the base already has the mode
    "select_gr_lo": 0.5,
    # gap recovered whose CI upper bound is below this (steering AND forcing) => created
    "create_gr_hi": 0.35,
    # steering must beat the norm-matched random direction by this much accuracy
    "over_random": 0.1,
}


@dataclass(frozen=True)
class BatteryConfig:
    """Settings of the battery; defaults fit the organism and read the family file's
    ``[battery]`` table (unknown keys are errors)."""

    reference_task: str | None = None
    contrast: tuple[str, str] = ("careful", "direct")
    eval_label: str | None = "neutral"
    decision: str = "match:="
    computation: str | None = "span:scratchpad"
    layers: tuple[int, ...] | None = None
    alphas: tuple[float, ...] = (0.0, 1.0, 2.0, 4.0, 8.0)
    units: str = "vector"
    dev_split: str = "dev"
    test_split: str = "test"
    fit_split: str = "train"
    max_dev: int = 48
    max_test: int = 96
    max_fit: int = 192
    n_shuffles: int = 20
    seed: int = 0
    batch_size: int = 512

    @classmethod
    def from_family(cls, family: ModelFamily, **overrides: Any) -> BatteryConfig:
        table = dict(getattr(family, "settings", {}).get("battery", {}))
        table.update(overrides)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(table) - names
        if unknown:
            raise ElicitError(f"Unknown battery setting(s) {sorted(unknown)}. Valid: {sorted(names)}.")
        for k in ("contrast", "layers", "alphas"):
            if isinstance(table.get(k), list):
                table[k] = tuple(table[k])
        return cls(**table)


def _n_layers(family: ModelFamily) -> int:
    cfg = family.config("base")
    return int(cfg.get("num_hidden_layers", cfg.get("n_layer", 0)))


def _subset(task: Task, split: str, label: str | None, n: int) -> Task:
    labels = {e.label for e in task.examples}
    use_label = label if label in labels else None
    return task.filter(split=split, label=use_label).head(n)


def fit_reasoning_vector(
    family: ModelFamily, ref: Task, cfg: BatteryConfig, workdir: Path, *, progress: bool = True
) -> tuple[SteeringVector, Any]:
    """The base's reasoning direction: careful-minus-direct difference of means at the decision
    token on the reference task's fit split, every layer. Returns the vector and its activations."""
    layers = f"resid_post:0-{_n_layers(family) - 1}"
    fit = ref.filter(split=cfg.fit_split, label=list(cfg.contrast))
    fit = fit.with_examples(_balanced(fit, cfg.contrast, cfg.max_fit))
    acts = collect_activations(family, fit, layers, cfg.decision, variants=["base"], out=workdir / "acts" / f"fit-{fit.hash}",
                               progress=progress)
    vec = fit_vector(acts, "base", layers, cfg.contrast, position=cfg.decision, name="base-reasoning", seed=cfg.seed)
    vec.save(workdir / "vectors" / "base-reasoning")
    return vec, acts


def _balanced(task: Task, contrast: Sequence[str], n: int) -> list[Any]:
    per = max(2, n // len(contrast))
    out = []
    for c in contrast:
        out += [e for e in task.examples if e.label == c][:per]
    return out


# ------------------------------------------------------------------ 1. behavioural
def behavioural_rows(
    family: ModelFamily,
    task: Task,
    variants: Sequence[str],
    vector_path: Path,
    cfg: BatteryConfig,
    workdir: Path,
    *,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Steer the base with the reasoning vector on ``task``; gap recovered for each variant."""
    layers = cfg.layers or tuple(range(_n_layers(family)))
    dev = _subset(task, cfg.dev_split, cfg.eval_label, cfg.max_dev)
    test = _subset(task, cfg.test_split, cfg.eval_label, cfg.max_test)
    sub = task.with_examples(list(dev.examples) + list(test.examples))
    scfg = SweepConfig(
        family=family.name, task=task.name, vectors=(VectorSpec(name="base-reasoning", path=str(vector_path)),),
        layers=layers, alphas=cfg.alphas, variants=("base",), baselines=tuple(v for v in variants if v != "base"),
        positions=(cfg.decision,), units=cfg.units, label=None, splits=(cfg.dev_split, cfg.test_split),
        chunk_size=len(sub), batch_size=cfg.batch_size, seed=cfg.seed, out=str(workdir / "sweeps" / f"{task.name}.jsonl"),
    )
    df = run_sweep(scfg, family=family, task=sub, progress=progress)
    rows = []
    test_df = df[df.split == cfg.test_split]
    chance = chance_level(task)
    base_acc = test_df[(test_df.control == "none") & (test_df.variant == "base")].set_index("prompt_id").correct
    steer = df[df.control == "steer"]
    dev_acc = steer[steer.split == cfg.dev_split].groupby(["layer", "alpha"]).correct.mean().reset_index()
    dev_acc["abs_alpha"] = dev_acc.alpha.abs()
    best = dev_acc.sort_values(["correct", "abs_alpha", "layer"], ascending=[False, True, True]).iloc[0]
    layer, alpha = int(best.layer), float(best.alpha)
    s = steer[(steer.split == cfg.test_split) & (steer.layer == layer) & (steer.alpha == alpha)].set_index("prompt_id").correct
    r_df = df[(df.control == "random") & (df.split == cfg.test_split) & (df.layer == layer) & (df.alpha == alpha)]
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
        lo, hi = _gr_ci(S, B, T, cfg.seed)
        rows.append(_row(
            "behavioural:steering", v, task.name, layer, cfg.decision, gr, gr_r, lo, hi, len(ids),
            f"base {B.mean():.2f} -> steered {S.mean():.2f} (random {R.mean():.2f}) vs {v} {T.mean():.2f}; "
            f"layer {layer}, alpha {alpha:g} chosen on {cfg.dev_split} ({best.correct:.2f}), reported on {cfg.test_split}",
            acc_base=B.mean(), acc_tuned=T.mean(), acc_intervention=S.mean(), acc_random=R.mean(), alpha=alpha,
            **_floored(S, B, T, chance, cfg.seed), gr_random_floor=_nan0(gap_recovered(R.mean(), max(B.mean(), chance), T.mean())),
        ))
    return rows, df


def chance_level(task: Task) -> float:
    """Accuracy of uniform guessing among the task's distinct answers (parity 1/2, mod 3 1/3)."""
    return 1.0 / max(1, len({e.answer for e in task.examples}))


def _nan0(x: float) -> float:
    return 0.0 if np.isnan(x) else x


def _gr_ci(S: np.ndarray, B: np.ndarray, T: np.ndarray, seed: int, floor: float = 0.0) -> tuple[float, float]:
    def stat(k: np.ndarray) -> float:
        return _nan0(gap_recovered(S[k].mean(), max(B[k].mean(), floor), T[k].mean()))

    if len(S) == 0:
        return float("nan"), float("nan")
    return bootstrap_ci(np.arange(len(S)), stat, n_resamples=1000, seed=seed)


def _floored(S: np.ndarray, B: np.ndarray, T: np.ndarray, chance: float, seed: int) -> dict[str, float]:
    """Gap and gap recovered measured from ``max(acc(base), chance)``: an intervention that only
    turns a below-chance base into a guesser recovers nothing (what the verdict reads)."""
    floor = max(float(B.mean()), chance) if len(B) else chance
    lo, hi = _gr_ci(S, B, T, seed, floor=chance)
    g_lo, g_hi = (bootstrap_ci(np.arange(len(T)), lambda k: float(T[k].mean() - max(B[k].mean(), chance)), n_resamples=1000,
                               seed=seed) if len(T) else (float("nan"), float("nan")))
    return {"chance": chance, "gr_floor": _nan0(gap_recovered(float(S.mean()), floor, float(T.mean()))) if len(S) else float("nan"),
            "gr_floor_lo": lo, "gr_floor_hi": hi, "tuned_gap": float(T.mean()) - floor if len(T) else float("nan"),
            "gap_lo": g_lo, "gap_hi": g_hi}


def _diff_ci(T: np.ndarray, B: np.ndarray, seed: int) -> tuple[float, float]:
    if len(T) == 0:
        return float("nan"), float("nan")
    return bootstrap_ci(np.arange(len(T)), lambda k: float(T[k].mean() - B[k].mean()), n_resamples=1000, seed=seed)


def _row(test: str, variant: str, task: str, layer: int | None, position: str | None, effect: float, null: float,
         lo: float, hi: float, n: int, detail: str, **extra: Any) -> dict[str, Any]:
    return {"test": test, "variant": variant, "task": task, "layer": -1 if layer is None else layer,
            "position": position or "", "effect": float(effect), "null": float(null), "ci_lo": float(lo),
            "ci_hi": float(hi), "n": int(n), "verdict": "info", "detail": detail, **{k: float(v) for k, v in extra.items()}}


def forced_format_rows(
    family: ModelFamily, task: Task, variants: Sequence[str], sweep_df: pd.DataFrame, cfg: BatteryConfig,
    workdir: Path,
) -> list[dict[str, Any]]:
    """Accuracy of the base when the reasoning format is prefilled; gap recovered per variant."""
    if not task.format_prefix:
        return []
    test = _subset(task, cfg.test_split, cfg.eval_label, cfg.max_test)
    cache = workdir / "forced" / f"{task.name}-{test.hash}.json"
    if cache.exists():
        correct = json.loads(cache.read_text())
    else:
        tok = family.tokenizer("base")
        prefix = task.format_prefix.strip()
        with family.open("base") as model:
            comps = generate(model, tok, [e.prompt + " " + prefix for e in test.examples],
                             max_new_tokens=task.max_new_tokens, batch_size=cfg.batch_size)
        correct = {e.id: bool(task.score(prefix + " " + c, e.answer).correct) for e, c in zip(test.examples, comps, strict=True)}
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(correct))
    F = pd.Series(correct, dtype=float)
    test_df = sweep_df[(sweep_df.split == cfg.test_split) & (sweep_df.control == "none")]
    base_acc = test_df[test_df.variant == "base"].set_index("prompt_id").correct
    rows = []
    for v in variants:
        if v == "base":
            continue
        t = test_df[test_df.variant == v].set_index("prompt_id").correct
        ids = F.index.intersection(base_acc.index).intersection(t.index)
        Fv, B, T = F.loc[ids].to_numpy(), base_acc.loc[ids].to_numpy().astype(float), t.loc[ids].to_numpy().astype(float)
        gr = gap_recovered(Fv.mean(), B.mean(), T.mean())
        lo, hi = _gr_ci(Fv, B, T, cfg.seed)
        rows.append(_row("behavioural:forced_format", v, task.name, None, "prefill:" + task.format_prefix, gr, float("nan"),
                         lo, hi, len(ids), f"base {B.mean():.2f} -> forced '{task.format_prefix}' {Fv.mean():.2f} vs {v} {T.mean():.2f}",
                         acc_base=B.mean(), acc_tuned=T.mean(), acc_intervention=Fv.mean(),
                         **_floored(Fv, B, T, chance_level(task), cfg.seed)))
    return rows


# ------------------------------------------------------------------ 2. direction transfer
def direction_rows(
    family: ModelFamily, task: Task, ref: Task, variants: Sequence[str], cfg: BatteryConfig, workdir: Path,
    *, progress: bool = True,
) -> list[dict[str, Any]]:
    """Shift of each variant vs the base reasoning direction, at the decision token and inside
    the computation (teacher-forced reference traces), against random and shuffled nulls."""
    layers = f"resid_post:0-{_n_layers(family) - 1}"
    positions = [cfg.decision] + ([cfg.computation] if cfg.computation else [])
    has_traces = all(e.trace for e in task.examples) and all(e.trace for e in ref.examples)
    text = "prompt+trace" if has_traces and cfg.computation else "prompt"
    if text == "prompt":
        positions = [cfg.decision]
    test = _subset(task, cfg.test_split, cfg.eval_label, cfg.max_test)
    fit = ref.filter(split=cfg.fit_split, label=list(cfg.contrast))
    fit = fit.with_examples(_balanced(fit, cfg.contrast, cfg.max_fit))
    ref_acts = collect_activations(family, fit, layers, positions, variants=["base"], text=text,
                                   out=workdir / "acts" / f"dir-ref-{fit.hash}-{text}", progress=progress)
    shift_acts = collect_activations(family, test, layers, positions, variants=["base", *[v for v in variants if v != "base"]],
                                     text=text, out=workdir / "acts" / f"shift-{test.hash}-{text}", progress=progress)
    rng = np.random.default_rng(cfg.seed)
    directions, shuffled = {}, {}
    labels = list(ref_acts.labels)
    for layer in range(_n_layers(family)):
        for pos in positions:
            X = ref_acts.get("base", f"resid_post.{layer}", pos)
            directions[(layer, pos)] = contrast_direction(X, labels, cfg.contrast)
            shuffled[(layer, pos)] = [contrast_direction(X, [str(x) for x in rng.permutation(np.asarray([str(x) for x in labels]))], cfg.contrast) for _ in range(cfg.n_shuffles)]
    rows = []
    for v in variants:
        if v == "base":
            continue
        df = direction_transfer(shift_acts, v, directions, shuffled=shuffled, seed=cfg.seed)
        for r in df.itertuples():
            null = max(r.null_random_p95, getattr(r, "null_shuffled_p95", 0.0))
            rows.append(_row("direction", v, task.name, r.layer, r.position, r.cos, null, r.cos_lo, r.cos_hi, r.n,
                             f"cos(shift, base direction) {r.cos:.2f} [{r.cos_lo:.2f}, {r.cos_hi:.2f}]; nulls: random p95 "
                             f"{r.null_random_p95:.2f}, shuffled p95 {getattr(r, 'null_shuffled_p95', float('nan')):.2f}; "
                             f"|shift| {r.shift_norm:.3g}", shift_norm=r.shift_norm))
    return rows


# ------------------------------------------------------------------ 3. probe transfer
def probe_rows(
    family: ModelFamily, ref: Task, variants: Sequence[str], cfg: BatteryConfig, workdir: Path, *, progress: bool = True
) -> list[dict[str, Any]]:
    """Base probe on tuned activations / tuned probe on tuned, per layer, at the decision token."""
    layers = f"resid_post:0-{_n_layers(family) - 1}"
    sub = ref.filter(label=list(cfg.contrast), split=[cfg.fit_split, cfg.dev_split, cfg.test_split])
    sub = sub.with_examples(_balanced(sub.filter(split=cfg.fit_split), cfg.contrast, cfg.max_fit)
                            + _balanced(sub.filter(split=[cfg.dev_split, cfg.test_split]), cfg.contrast, cfg.max_test))
    acts = collect_activations(family, sub, layers, cfg.decision, variants=["base", *[v for v in variants if v != "base"]],
                               out=workdir / "acts" / f"probe-{sub.hash}", progress=progress)
    rows = []
    for v in variants:
        if v == "base":
            continue
        for layer in range(_n_layers(family)):
            p = probe_transfer(acts, v, f"resid_post.{layer}", cfg.contrast, train_split=cfg.fit_split,
                               eval_split=(cfg.dev_split, cfg.test_split), seed=cfg.seed)
            rows.append(_row("probe", v, ref.name, layer, cfg.decision, p["ratio"], 0.5 / max(p["auroc_own_probe"], 1e-9),
                             p["ratio_lo"], p["ratio_hi"], int(p["n"]),
                             f"AUROC base probe on {v} {p['auroc_base_probe']:.2f} / own probe {p['auroc_own_probe']:.2f}",
                             auroc_base_probe=p["auroc_base_probe"], auroc_own_probe=p["auroc_own_probe"]))
    return rows


# ------------------------------------------------------------------ 4. weights
def weight_rows(
    family: ModelFamily, variants: Sequence[str], vector: SteeringVector
) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Update size, and alignment ``‖dᵀΔW‖₂/‖ΔW‖₂`` of each residual-writing update with the base
    reasoning direction of its own layer, against seeded random unit directions (info only)."""
    from probes.weights.geometry import weight_diff

    dirs = {f"L{k}": vector.directions[k] / vector.directions[k].norm() for k in vector.layers}
    rows, tables = [], []
    for v in variants:
        if v == "base":
            continue
        df = weight_diff(family, v, directions=dirs)
        tables.append(df.assign(variant=v, shape=df["shape"].astype(str)))
        rel = float(df.rel_norm.mean())
        writers = df[df.writes_residual & df.layer.isin(list(vector.layers))]
        own = np.array([r[f"align:L{int(r['layer'])}"] for r in writers.to_dict("records")], dtype=float)
        null_arr = writers.align_null_p95.to_numpy(dtype=float)
        # an unchanged matrix (ΔW = 0) has no output space: its alignment is NaN and is left out
        own = own[np.isfinite(own)]
        null = float(null_arr[np.isfinite(null_arr)].mean()) if np.isfinite(null_arr).any() else float("nan")
        effect = float(own.mean()) if len(own) else float("nan")
        lo, hi = bootstrap_ci(own, n_resamples=500) if len(own) > 1 else (float("nan"), float("nan"))
        rows.append(_row(
            "weights", v, "", None, "residual writers", effect, null, lo, hi,
            len(own), f"mean relative update norm {rel:.3g} over {len(df)} tensors; alignment of {len(own)} residual-writing "
            f"updates with their layer's base direction {effect:.3f} (random p95 {null:.3f})",
            rel_norm=rel, stable_rank_mean=float(df.stable_rank.mean()),
        ))
    return rows, pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


# ------------------------------------------------------------------ 5. SAE coverage and crosscoder
def sae_rows(
    family: ModelFamily, task: Task, variants: Sequence[str], cfg: BatteryConfig, workdir: Path, *,
    layer: int | None = None, steps: int = 400, cc_steps: int = 300, progress: bool = True,
) -> tuple[list[dict[str, Any]], pd.DataFrame, pd.DataFrame]:
    """Base SAE on every variant (FVU, CE recovered; Kissane et al. 2024) and a crosscoder per
    variant (share of variant-only latents; Lindsey et al. 2024, Minder et al. 2025), at one
    middle layer on teacher-forced reasoning texts. Returns rows, the transfer table and the
    crosscoder latent table."""
    from probes.dictionaries.crosscoder import crosscoder_latents, crosscoder_summary, train_crosscoder
    from probes.dictionaries.sae import load_sae, sae_transfer, train_sae

    n = _n_layers(family)
    layer = n // 2 if layer is None else layer
    hook = f"resid_post.{layer}"
    text = "prompt+trace" if all(e.trace for e in task.examples) else "prompt"
    fit = _subset(task, cfg.fit_split, None, cfg.max_fit)
    test = _subset(task, cfg.test_split, cfg.eval_label, cfg.max_test)
    others = [v for v in variants if v != "base"]
    acts = collect_activations(family, fit, hook, "all", variants=["base", *others], text=text,
                               out=workdir / "acts" / f"sae-{fit.hash}-{layer}", progress=progress)
    sae_dir = workdir / "sae" / f"base-{fit.hash}-{layer}"
    if (sae_dir / "cfg.json").exists():
        sae = load_sae(sae_dir)
    else:
        d_model = acts.d_model
        sae = train_sae(acts, "base", hook, "all", architecture="batchtopk", d_sae=4 * d_model, k=16, steps=steps,
                        lr=1e-3, seed=cfg.seed, out=sae_dir)
    transfer = sae_transfer(family, sae, test, hook, variants=["base", *others], text=text, n_resamples=500, seed=cfg.seed)
    rows = []
    base_row = transfer[transfer.variant == "base"].iloc[0]
    for r in transfer[transfer.variant != "base"].to_dict("records"):
        rows.append(_row("sae:fvu", r["variant"], task.name, layer, "all", r["fvu"], float(base_row["fvu"]), r["fvu_lo"],
                         r["fvu_hi"], int(r["n_prompts"]),
                         f"base-SAE FVU on {r['variant']} {r['fvu']:.3f} vs on base {base_row['fvu']:.3f}; "
                         f"CE recovered {r['ce_recovered']:.3f} (base {base_row['ce_recovered']:.3f})",
                         ce_recovered=r["ce_recovered"], ce_recovered_lo=r["ce_recovered_lo"], ce_recovered_hi=r["ce_recovered_hi"]))
    cc_tables = []
    for v in others:
        cc = train_crosscoder(acts, "base", v, hook, "all", d_sae=4 * acts.d_model, k=8, steps=cc_steps, lr=1e-3, seed=cfg.seed)
        lat = crosscoder_latents(cc, acts)
        summ = crosscoder_summary(lat).iloc[0]
        alive = max(int(summ["n_alive"]), 1)
        share = float(summ["n_variant_only"]) / alive
        cc_tables.append(lat.assign(variant=v, task=task.name))
        rows.append(_row("crosscoder:variant_only", v, task.name, layer, "all", share, float(summ["n_base_only"]) / alive,
                         float("nan"), float("nan"), alive,
                         f"{int(summ['n_variant_only'])} variant-only / {int(summ['n_shared'])} shared / "
                         f"{int(summ['n_base_only'])} base-only of {alive} live latents (null column: base-only share)",
                         n_variant_only=float(summ["n_variant_only"]), n_base_only=float(summ["n_base_only"])))
    return rows, transfer.assign(task=task.name), pd.concat(cc_tables, ignore_index=True) if cc_tables else pd.DataFrame()


# ------------------------------------------------------------------ the verdict
def verdict(rows: Sequence[Mapping[str, Any]], thresholds: Mapping[str, float] = THRESHOLDS) -> tuple[str, str]:
    """Combine one variant's battery rows into ``(verdict, reason)``.

    The rule (thresholds in :data:`THRESHOLDS`, fixed in code):

    Gap and gap recovered are read from ``max(acc(base), chance)`` (``chance`` = guessing among
    the task's answers): a below-chance base that an intervention merely turns into a guesser
    has recovered nothing. The plain Venhoff et al. ratio is reported beside it (``effect``).

    1. **Is there a gap?** The variant must beat max(base, chance) on the test split by at least
       ``min_gap`` accuracy with the bootstrap CI of the difference above 0. Otherwise the
       verdict is ``inconclusive`` (nothing post-training added to explain). This keeps an
       identical checkpoint and a broken/random variant from ever being called ``select``
       or ``create``.
    2. **Select** if the base recovers the gap by itself: forced-format gap recovered with CI
       lower bound >= ``select_gr_lo``, or steering gap recovered with CI lower bound >=
       ``select_gr_lo`` *and* beating the norm-matched random direction by ``over_random``.
    3. **Create** if neither forcing the format nor steering recovers it: both gap-recovered
       CI upper bounds < ``create_gr_hi``.
    4. Otherwise ``inconclusive``.

    Direction, probe and weight tests are reported beside the verdict but never decide it:
    on the prototype organism the decision-token cosine of a *create* control (0.70-0.75) was
    close to that of *select* variants (0.81-0.88), while behavioural elicitation separated
    them cleanly (0.98 vs 0.03). On this kit's organism (seed 0, ``elicit run``) the select
    variants' forced-format and steering gap recovered sit near 1 and the create controls'
    near 0, so the 0.5 / 0.35 cut points sit in a wide empty band between the controls; the
    ``min_gap`` of 0.15 is three times the bootstrap half-width of an accuracy on ~100 test
    prompts at chance.
    """
    steer = [r for r in rows if r["test"] == "behavioural:steering"]
    forced = [r for r in rows if r["test"] == "behavioural:forced_format"]
    if not steer:
        return "inconclusive", "no behavioural test could be run"
    s = steer[0]
    gap, gap_lo = s.get("tuned_gap", float("nan")), s.get("gap_lo", float("nan"))
    if not (gap >= thresholds["min_gap"] and gap_lo > 0):
        return "inconclusive", (f"no gap to explain: {s['variant']} beats max(base, chance) by {gap:+.2f} accuracy "
                                f"(CI lower {gap_lo:+.2f}; needs >= {thresholds['min_gap']:.2f} and > 0)")
    f = forced[0] if forced else None
    s_gr, s_lo, s_hi = s.get("gr_floor", s["effect"]), s.get("gr_floor_lo", s["ci_lo"]), s.get("gr_floor_hi", s["ci_hi"])
    rnd = s.get("gr_random_floor", 0.0 if np.isnan(s["null"]) else s["null"])
    f_gr, f_lo, f_hi = ((f.get("gr_floor", f["effect"]), f.get("gr_floor_lo", f["ci_lo"]), f.get("gr_floor_hi", f["ci_hi"]))
                        if f is not None else (float("nan"), float("nan"), 0.0))
    if f is not None and f_lo >= thresholds["select_gr_lo"]:
        return "select", (f"forcing the format recovers {f_gr:.2f} of the gap above chance (CI {f_lo:.2f}-{f_hi:.2f}); "
                          f"steering the base recovers {s_gr:.2f} (CI {s_lo:.2f}-{s_hi:.2f}, random direction {rnd:.2f})")
    if s_lo >= thresholds["select_gr_lo"] and s_gr - rnd >= thresholds["over_random"]:
        return "select", f"steering the base recovers {s_gr:.2f} of the gap above chance (CI {s_lo:.2f}-{s_hi:.2f}) vs random {rnd:.2f}"
    if s_hi < thresholds["create_gr_hi"] and f_hi < thresholds["create_gr_hi"]:
        return "create", (f"neither steering (GR above chance {s_gr:.2f}, CI up to {s_hi:.2f}) nor forcing the format "
                          f"(GR {f_gr:.2f}, CI up to {f_hi:.2f}) recovers the gap of {gap:.2f}")
    return "inconclusive", (f"partial recovery: steering GR above chance {s_gr:.2f} [{s_lo:.2f}, {s_hi:.2f}], forced "
                            f"GR {f_gr:.2f} [{f_lo:.2f}, {f_hi:.2f}]")
