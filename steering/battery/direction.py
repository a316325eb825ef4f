"""Battery test 2: the tuned-minus-base shift against the base reasoning direction (cosine) and
the base's principal subspace (span share), each against its random-direction null."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from probes.data.activations import collect_activations
from probes.data.tasks import Task
from probes.models.family import ModelFamily
from probes.representation.directions import contrast_direction
from probes.representation.transfer import base_subspace, direction_transfer
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
    the computation (teacher-forced reference traces): its cosine against random unit directions
    of the same dimension (``direction`` rows) and its span share in the base's top-``span_k``
    principal directions against the exact random-direction null (``direction:span_share`` rows).
    A label-shuffled contrast is no null for a cosine (its band reaches 0.9 on the organism: the
    shuffled direction keeps the prompts' shared mean structure), so none is used."""
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
    directions, bases = {}, {}
    labels = list(ref_acts.labels)
    for layer in range(family.layer_count()):
        for pos in positions:
            X = ref_acts.get("base", f"resid_post.{layer}", pos)
            directions[(layer, pos)] = contrast_direction(X, labels, cfg.contrast)
            bases[(layer, pos)] = base_subspace(X, min(cfg.span_k, min(X.shape) - 1))
    rows = []
    for v in variants:
        if v == "base":
            continue
        df = direction_transfer(shift_acts, v, directions, bases=bases, seed=cfg.seed)
        for r in df.itertuples():
            rows.append(
                BatteryRow.make(
                    TestId.DIRECTION_SPAN,
                    v,
                    task.name,
                    r.layer,
                    r.position,
                    r.span_share,
                    r.span_null_p95,
                    r.span_lo,
                    r.span_hi,
                    r.n,
                    f"share of |shift|^2 in the base's top-{r.span_k} principal directions {r.span_share:.2f} "
                    f"[{r.span_lo:.2f}, {r.span_hi:.2f}]; random direction: mean {r.span_null_mean:.2f}, "
                    f"p95 {r.span_null_p95:.2f}",
                    span_k=float(r.span_k),
                    span_d=float(directions[(r.layer, r.position)].shape[0]),
                )
            )
            rows.append(
                BatteryRow.make(
                    TestId.DIRECTION,
                    v,
                    task.name,
                    r.layer,
                    r.position,
                    r.cos,
                    r.null_random_p95,
                    r.cos_lo,
                    r.cos_hi,
                    r.n,
                    f"cos(shift, base direction) {r.cos:.2f} [{r.cos_lo:.2f}, {r.cos_hi:.2f}]; null: |cos| of random "
                    f"unit directions in {directions[(r.layer, r.position)].shape[0]} dims, p95 {r.null_random_p95:.2f}; "
                    f"|shift| {r.shift_norm:.3g}",
                    shift_norm=r.shift_norm,
                )
            )
    return rows
