"""``report.json`` and the result tables, written from the typed battery values.

``report.json`` (schema :data:`SCHEMA`) holds: ``schema``, ``kit_version``, ``family``,
``variants`` (one :class:`~steering.battery.verdict.VariantVerdict` record per judged variant),
``tests`` (every :class:`~steering.battery.rows.BatteryRow` record), ``thresholds`` (the verdict
rule's, which the figures read), ``config`` (the :class:`~steering.battery.config.BatteryConfig`),
``reference_task``, ``reference_task_hash``, ``seconds``, ``stage_seconds``, ``warnings`` (one
:class:`~steering.report.caveats.Caveat` record each: ``check``, ``message``, ``task``,
``variant``, ``value``) and ``embedding_probe`` (``auroc``, ``n``, ``task`` of the contrast probe on
the base's token embeddings, or null), ``representation_thresholds`` (the representation
verdict's cut points) and ``discrimination`` (statistic -> ``test``, ``auroc``, ``auroc_lo``,
``auroc_hi``, ``discriminates``, ``n_select``, ``n_create``, ``seeds``: each battery statistic's
separation of the organism's select and create controls, from
:mod:`steering.battery.discrimination`). NaN is written as null.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probes.data.tasks import Task
from probes.version import __version__
from steering.battery.config import BatteryConfig
from steering.battery.discrimination import Discrimination
from steering.battery.verdict import REPRESENTATION_THRESHOLDS, THRESHOLDS, VariantVerdict
from steering.report.caveats import Caveat

__all__ = ["SCHEMA", "report_payload", "write_json", "to_parquet", "json_value"]

SCHEMA = "elicitkit.report/1"


def json_value(v: Any) -> Any:
    """A JSON-safe scalar: NaN -> None, numpy scalars -> Python, tuples -> lists."""
    if isinstance(v, float | np.floating):
        return None if np.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, tuple):
        return list(v)
    return v


def report_payload(
    family_name: str,
    verdicts: Sequence[VariantVerdict],
    tests: pd.DataFrame,
    cfg: BatteryConfig,
    ref: Task,
    *,
    seconds: float,
    stage_seconds: Mapping[str, float],
    warnings: Sequence[Caveat] = (),
    embedding: tuple[float, int, str] | None = None,
    discrimination: Mapping[str, Discrimination] | None = None,
) -> dict[str, Any]:
    """The ``report.json`` document (see the module docstring for its keys)."""
    return {
        "schema": SCHEMA,
        "kit_version": __version__,
        "family": family_name,
        "variants": {
            v.variant: {k: json_value(x) for k, x in v.to_record().items() if k != "variant"}
            for v in verdicts
        },
        "tests": [{k: json_value(x) for k, x in r.items()} for r in tests.to_dict("records")],
        "thresholds": THRESHOLDS,
        "representation_thresholds": REPRESENTATION_THRESHOLDS,
        "config": {k: json_value(x) for k, x in asdict(cfg).items()},
        "reference_task": ref.name,
        "reference_task_hash": ref.hash,
        "seconds": seconds,
        "stage_seconds": dict(stage_seconds),
        "warnings": [w.to_record() for w in warnings],
        "embedding_probe": None
        if embedding is None
        else {"auroc": json_value(embedding[0]), "n": embedding[1], "task": embedding[2]},
        "discrimination": {k: d.to_record() for k, d in (discrimination or {}).items()},
    }


def write_json(payload: Mapping[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(payload, indent=1))
    return path


def to_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write a table; object columns holding lists/tuples become strings (parquet-safe)."""
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object and df[c].map(lambda x: isinstance(x, list | tuple | dict)).any():
            df[c] = df[c].astype(str)
    df.to_parquet(path, index=False)
