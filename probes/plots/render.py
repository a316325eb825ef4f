"""Render paper figures from a results folder (never from models).

A results folder is what ``elicit report`` / ``elicit run`` writes: ``tables/*.parquet`` and
``report.json``. :data:`FIGURES` maps a figure name to the tables it reads and the plot
function that draws it; :func:`render_all` saves every figure whose tables exist as vector PDF
plus PNG::

    from probes.plots.render import render_all
    render_all("elicit-out", "elicit-out/figures")

Figures that draw the verdict rule's thresholds (``gap_recovered``) read them from
``report.json`` (``"thresholds"``), so a figure can never disagree with the rule that judged.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from probes.errors import ElicitError
from probes.plots.decoding import pass_at_k
from probes.plots.dictionaries import crosscoder_norms, sae_transfer
from probes.plots.quality import information_gain
from probes.plots.representation import direction_transfer, probe_transfer
from probes.plots.style import save_figure
from probes.plots.sweep import steering_sweep
from probes.plots.verdicts import gap_recovered, verdict_summary
from probes.plots.weights import weight_geometry

__all__ = ["FigureSpec", "FIGURES", "read_thresholds", "render", "render_all"]


@dataclass(frozen=True)
class FigureSpec:
    """One figure: the tables it reads (in argument order), its function, and whether it also
    takes the verdict rule's thresholds as the last argument."""

    tables: tuple[str, ...]
    draw: Callable[..., Figure]
    thresholds: bool = False


FIGURES: dict[str, FigureSpec] = {
    "steering_sweep": FigureSpec(("sweep",), steering_sweep),
    "gap_recovered": FigureSpec(("verdicts",), gap_recovered, thresholds=True),
    "direction_transfer": FigureSpec(("battery",), direction_transfer),
    "probe_transfer": FigureSpec(("battery",), probe_transfer),
    "verdict_summary": FigureSpec(("verdicts",), verdict_summary),
    "sae_transfer": FigureSpec(("sae_transfer",), sae_transfer),
    "crosscoder_norms": FigureSpec(("crosscoder",), crosscoder_norms),
    "weight_geometry": FigureSpec(("weights",), weight_geometry),
    "pass_at_k": FigureSpec(("passk",), pass_at_k),
    "information_gain": FigureSpec(("ig_profile",), information_gain),
}


def _tables(results: Path) -> dict[str, pd.DataFrame]:
    return {p.stem: pd.read_parquet(p) for p in sorted((results / "tables").glob("*.parquet"))}


def read_thresholds(results: str | Path) -> dict[str, float]:
    """The verdict thresholds the report recorded in ``results/report.json``."""
    path = Path(results) / "report.json"
    if not path.is_file():
        raise ElicitError(
            f"{str(path)!r} is missing: the verdict figures draw the thresholds recorded there; "
            "run `elicit report` (or `elicit run`) to write it."
        )
    try:
        thresholds = json.loads(path.read_text())["thresholds"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ElicitError(
            f"{str(path)!r} has no readable 'thresholds' ({e!r}); it was written by an older kit "
            "or is corrupt: rerun `elicit report`."
        ) from e
    return {str(k): float(v) for k, v in thresholds.items()}


def _draw(name: str, spec: FigureSpec, results: Path, tables: dict[str, pd.DataFrame]) -> Figure:
    missing = [t for t in spec.tables if t not in tables]
    if missing:
        raise ElicitError(
            f"Figure {name!r} needs table(s) {missing} under {str(results / 'tables')!r}; "
            "run `elicit report` first."
        )
    args: list[object] = [tables[t] for t in spec.tables]
    if spec.thresholds:
        args.append(read_thresholds(results))
    return spec.draw(*args)


def render(name: str, results: str | Path, out: str | Path) -> list[Path]:
    """Render one figure of :data:`FIGURES` from ``results`` into ``out/name.{pdf,png}``."""
    if name not in FIGURES:
        raise ElicitError(f"Unknown figure {name!r}. Figures: {sorted(FIGURES)}.")
    results = Path(results)
    return save_figure(_draw(name, FIGURES[name], results, _tables(results)), Path(out) / name)


def render_all(results: str | Path, out: str | Path) -> dict[str, list[Path]]:
    """Every figure whose tables exist (and are non-empty) under ``results/tables``; returns
    name -> the saved files."""
    results = Path(results)
    tables = _tables(results)
    done: dict[str, list[Path]] = {}
    for name, spec in FIGURES.items():
        if all(t in tables and not tables[t].empty for t in spec.tables):
            done[name] = save_figure(_draw(name, spec, results, tables), Path(out) / name)
    return done
