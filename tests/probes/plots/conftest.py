"""A synthetic results folder with every table the figures read (no model runs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

THRESHOLDS = {"min_gap": 0.15, "select_gr_lo": 0.61, "create_gr_hi": 0.27, "over_random": 0.1}


def synthetic_tables() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    variants = ["base", "sft", "create"]
    sweep = pd.DataFrame(
        [
            {
                "task": "careful",
                "layer": layer,
                "alpha": a,
                "control": c,
                "position": "=",
                "correct": int(rng.random() < 0.5),
            }
            for layer in (1, 2)
            for a in (0.0, 1.0, 2.0)
            for c in ("steer", "random")
            for _ in range(4)
        ]
    )
    verdicts = pd.DataFrame(
        {
            "variant": ["sft", "create"],
            "task": ["careful", "careful"],
            "verdict": ["select", "create"],
            "acc_base": [0.2, 0.2],
            "acc_variant": [0.9, 0.8],
            "steer_grc": [0.8, 0.1],
            "steer_grc_lo": [0.7, 0.0],
            "steer_grc_hi": [0.9, 0.2],
            "forced_grc": [0.9, 0.05],
            "forced_grc_lo": [0.8, 0.0],
            "forced_grc_hi": [1.0, 0.1],
        }
    )
    battery = pd.DataFrame(
        [
            {
                "test": t,
                "variant": v,
                "layer": layer,
                "position": "=",
                "effect": 0.5,
                "ci_lo": 0.4,
                "ci_hi": 0.6,
                "null": 0.1,
            }
            for t in ("direction", "probe")
            for v in variants[1:]
            for layer in (1, 2)
        ]
    )
    sae = pd.DataFrame(
        {
            "variant": variants,
            "task": ["careful"] * 3,
            "fvu": [0.1, 0.2, 0.5],
            "fvu_lo": [0.05, 0.1, 0.4],
            "fvu_hi": [0.15, 0.3, 0.6],
            "ce_recovered": [0.9, 0.8, 0.3],
            "ce_recovered_lo": [0.85, 0.7, 0.2],
            "ce_recovered_hi": [0.95, 0.9, 0.4],
        }
    )
    cc = pd.DataFrame({"variant": ["sft"] * 20 + ["create"] * 20, "rel_norm": rng.random(40), "alive": True})
    weights = pd.DataFrame(
        [
            {
                "variant": v,
                "component": comp,
                "layer": layer,
                "rel_norm": 0.01 + rng.random() * 0.01,
                "stable_rank": 3.0,
                "overlap@4": 0.2,
            }
            for v in variants[1:]
            for comp in ("q", "down")
            for layer in (0, 1)
        ]
    )
    passk = pd.DataFrame(
        [
            {
                "task": "careful",
                "variant": v,
                "k": k,
                "pass_at_k": min(1.0, 0.2 * k),
                "ci_lo": 0.0,
                "ci_hi": 1.0,
            }
            for v in variants
            for k in (1, 2, 4)
        ]
    )
    ig = pd.DataFrame(
        [
            {"variant": v, "step": s, "ig": 0.1 * s, "ci_lo": 0.0, "ci_hi": 0.3 * s}
            for v in ("base", "sft")
            for s in (1, 2, 3)
        ]
    )
    return {
        "sweep": sweep,
        "verdicts": verdicts,
        "battery": battery,
        "sae_transfer": sae,
        "crosscoder": cc,
        "weights": weights,
        "passk": passk,
        "ig_profile": ig,
    }


def write_results(root: Path, *, thresholds: dict[str, float] | None = THRESHOLDS) -> Path:
    (root / "tables").mkdir(parents=True)
    for name, df in synthetic_tables().items():
        df.to_parquet(root / "tables" / f"{name}.parquet")
    if thresholds is not None:
        (root / "report.json").write_text(json.dumps({"thresholds": thresholds}))
    return root


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return write_results(tmp_path / "results")
