"""Battery test 3: the base's linear probe of the contrast, evaluated on each tuned variant (AUROC ratio)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from probes.data.activations import collect_activations
from probes.data.tasks import Task
from probes.models.family import ModelFamily
from probes.representation.transfer import probe_transfer
from steering.battery.config import BatteryConfig, balanced
from steering.battery.rows import BatteryRow, TestId

__all__ = ["probe_rows"]


def probe_rows(
    family: ModelFamily,
    ref: Task,
    variants: Sequence[str],
    cfg: BatteryConfig,
    workdir: Path,
    *,
    progress: bool = True,
) -> list[BatteryRow]:
    """Base probe on tuned activations / tuned probe on tuned, per layer, at the decision token."""
    layers = f"resid_post:0-{family.layer_count() - 1}"
    sub = ref.filter(label=list(cfg.contrast), split=[cfg.fit_split, cfg.dev_split, cfg.test_split])
    sub = sub.with_examples(
        balanced(sub.filter(split=cfg.fit_split), cfg.contrast, cfg.max_fit)
        + balanced(sub.filter(split=[cfg.dev_split, cfg.test_split]), cfg.contrast, cfg.max_test)
    )
    acts = collect_activations(
        family,
        sub,
        layers,
        cfg.decision,
        variants=["base", *[v for v in variants if v != "base"]],
        out=workdir / "acts" / f"probe-{sub.hash}",
        progress=progress,
    )
    rows = []
    for v in variants:
        if v == "base":
            continue
        for layer in range(family.layer_count()):
            p = probe_transfer(
                acts,
                v,
                f"resid_post.{layer}",
                cfg.contrast,
                train_split=cfg.fit_split,
                eval_split=(cfg.dev_split, cfg.test_split),
                seed=cfg.seed,
            )
            rows.append(
                BatteryRow.make(
                    TestId.PROBE,
                    v,
                    ref.name,
                    layer,
                    cfg.decision,
                    p["ratio"],
                    0.5 / max(p["auroc_own_probe"], 1e-9),
                    p["ratio_lo"],
                    p["ratio_hi"],
                    int(p["n"]),
                    f"AUROC base probe on {v} {p['auroc_base_probe']:.2f} / own probe {p['auroc_own_probe']:.2f}",
                    auroc_base_probe=p["auroc_base_probe"],
                    auroc_own_probe=p["auroc_own_probe"],
                )
            )
    return rows
