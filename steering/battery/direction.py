"""Battery test 2: the tuned-minus-base shift against the base reasoning direction, with random and shuffled nulls."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from probes.data.activations import collect_activations
from probes.data.tasks import Task
from probes.models.family import ModelFamily
from probes.representation.directions import contrast_direction
from probes.representation.transfer import direction_transfer
from steering.battery.config import BatteryConfig, contrast_fit, subset
from steering.battery.rows import BatteryRow, TestId

__all__ = ["direction_rows"]


def direction_rows(
    family: ModelFamily,
    task: Task,
    ref: Task,
    variants: Sequence[str],
    cfg: BatteryConfig,
    workdir: Path,
    *,
    progress: bool = True,
) -> list[BatteryRow]:
    """Shift of each variant vs the base reasoning direction, at the decision token and inside
    the computation (teacher-forced reference traces), against random and shuffled nulls."""
    layers = f"resid_post:0-{family.layer_count() - 1}"
    positions = [cfg.decision] + ([cfg.computation] if cfg.computation else [])
    has_traces = all(e.trace for e in task.examples) and all(e.trace for e in ref.examples)
    text = "prompt+trace" if has_traces and cfg.computation else "prompt"
    if text == "prompt":
        positions = [cfg.decision]
    test = subset(task, cfg.test_split, cfg.eval_label, cfg.max_test)
    fit = contrast_fit(ref, cfg)
    ref_acts = collect_activations(
        family,
        fit,
        layers,
        positions,
        variants=["base"],
        text=text,
        out=workdir / "acts" / f"dir-ref-{fit.hash}-{text}",
        progress=progress,
    )
    shift_acts = collect_activations(
        family,
        test,
        layers,
        positions,
        variants=["base", *[v for v in variants if v != "base"]],
        text=text,
        out=workdir / "acts" / f"shift-{test.hash}-{text}",
        progress=progress,
    )
    rng = np.random.default_rng(cfg.seed)
    directions, shuffled = {}, {}
    labels = list(ref_acts.labels)
    for layer in range(family.layer_count()):
        for pos in positions:
            X = ref_acts.get("base", f"resid_post.{layer}", pos)
            directions[(layer, pos)] = contrast_direction(X, labels, cfg.contrast)
            shuffled[(layer, pos)] = [
                contrast_direction(
                    X, [str(x) for x in rng.permutation(np.asarray([str(x) for x in labels]))], cfg.contrast
                )
                for _ in range(cfg.n_shuffles)
            ]
    rows = []
    for v in variants:
        if v == "base":
            continue
        df = direction_transfer(shift_acts, v, directions, shuffled=shuffled, seed=cfg.seed)
        for r in df.itertuples():
            null = max(r.null_random_p95, getattr(r, "null_shuffled_p95", 0.0))
            rows.append(
                BatteryRow.make(
                    TestId.DIRECTION,
                    v,
                    task.name,
                    r.layer,
                    r.position,
                    r.cos,
                    null,
                    r.cos_lo,
                    r.cos_hi,
                    r.n,
                    f"cos(shift, base direction) {r.cos:.2f} [{r.cos_lo:.2f}, {r.cos_hi:.2f}]; nulls: random p95 "
                    f"{r.null_random_p95:.2f}, shuffled p95 {getattr(r, 'null_shuffled_p95', float('nan')):.2f}; "
                    f"|shift| {r.shift_norm:.3g}",
                    shift_norm=r.shift_norm,
                )
            )
    return rows
