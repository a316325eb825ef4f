"""The select-vs-create report: run the battery on every non-base variant and write
``report.md`` (for a reader), ``report.json`` (schema-versioned, for machines), the tidy
result tables and the figures.

    report = run_report(load_family("organism"), out="elicit-out/report")
    print(report.verdicts)
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from probes.data.tasks import Task
from probes.errors import ElicitError
from probes.models.family import ModelFamily
from probes.version import __version__
from steering.battery import (
    THRESHOLDS,
    BatteryConfig,
    behavioural_rows,
    direction_rows,
    fit_reasoning_vector,
    forced_format_rows,
    probe_rows,
    sae_rows,
    verdict,
    weight_rows,
)
from steering.quality import QualityConfig
from steering.sweep import resolve_task

__all__ = ["Report", "run_report", "SCHEMA"]

SCHEMA = "elicitkit.report/1"


@dataclass(frozen=True)
class Report:
    """What :func:`run_report` wrote: the verdict table, every test row, and the paths."""

    verdicts: pd.DataFrame
    tests: pd.DataFrame
    out: Path

    def __repr__(self) -> str:
        return f"Report({len(self.verdicts)} variants at {str(self.out)!r})\n" + self.verdicts[["variant", "task", "verdict"]].to_string(index=False)

    def _repr_html_(self) -> str:
        return "<b>select-vs-create report</b>" + self.verdicts.to_html(index=False)


def _reference_task(family: ModelFamily, cfg: BatteryConfig, tasks: dict[str, Task]) -> Task:
    if cfg.reference_task:
        return resolve_task(family, cfg.reference_task)
    for t in tasks.values():
        labels = {e.label for e in t.examples}
        if set(cfg.contrast) <= labels:
            return t
    for name in family.tasks:
        t = family.load_task(name)
        if set(cfg.contrast) <= {e.label for e in t.examples}:
            return t
    raise ElicitError(
        f"No task of family {family.name!r} has prompts labelled {list(cfg.contrast)} to fit the base's reasoning "
        "direction. Label contrast prompts in a task, or set [battery] reference_task / contrast in the family file."
    )


def run_report(
    family: ModelFamily,
    *,
    out: str | Path,
    task: str | Task | None = None,
    variants: Sequence[str] | None = None,
    config: BatteryConfig | None = None,
    figures: bool = True,
    sae: bool = True,
    quality: QualityConfig | None = None,
    progress: bool = True,
) -> Report:
    """Run the battery on every non-base variant of ``family`` and write the report to ``out``.

    Each variant is judged on its own task (``task = ...`` in the family file), or on
    ``task`` for all. Stages cache their results under ``out/work`` and are reused.
    ``sae`` adds base-SAE transfer and crosscoders; ``quality`` (a
    :class:`steering.quality.QualityConfig`) adds pass@k, CoT-decoding, information gain,
    early answering and OOD drop.
    """
    t0 = time.time()
    out = Path(out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    cfg = config or BatteryConfig.from_family(family)
    names = [v for v in (variants or family.variants) if v != "base"]
    if not names:
        raise ElicitError(f"Family {family.name!r} has no variant besides 'base' to judge.")
    task_of: dict[str, Task] = {}
    loaded: dict[str, Task] = {}
    for v in names:
        tname = task if task is not None else family.task_name(v)
        if tname is None:
            raise ElicitError(
                f"Variant {v!r} names no task. Pass --task, or add task = \"...\" to [variants.{v}] in the family file."
            )
        key = tname.name if isinstance(tname, Task) else tname
        if key not in loaded:
            loaded[key] = tname if isinstance(tname, Task) else resolve_task(family, tname)
        task_of[v] = loaded[key]
    ref = _reference_task(family, cfg, loaded)
    stages: dict[str, float] = defaultdict(float)
    clock = [time.time()]

    def lap(name: str) -> None:
        now = time.time()
        stages[name] += round(now - clock[0], 2)
        clock[0] = now

    vec, _ = fit_reasoning_vector(family, ref, cfg, work, progress=progress)
    lap("fit_vector")
    vec_path = work / "vectors" / "base-reasoning"

    rows: list[dict[str, Any]] = []
    sweeps, sae_tables, cc_tables = [], [], []
    by_task: dict[str, list[str]] = defaultdict(list)
    for v, t in task_of.items():
        by_task[t.name].append(v)
    for tname, vs in by_task.items():
        t = loaded[tname]
        b_rows, sweep_df = behavioural_rows(family, t, vs, vec_path, cfg, work, progress=progress)
        lap("behavioural")
        rows += b_rows
        rows += forced_format_rows(family, t, vs, sweep_df, cfg, work)
        lap("forced_format")
        rows += direction_rows(family, t, ref, vs, cfg, work, progress=progress)
        lap("direction")
        sweep_df = sweep_df.assign(task=tname)
        sweeps.append(sweep_df)
        if sae:
            s_rows, s_tab, c_tab = sae_rows(family, t, vs, cfg, work, progress=progress)
            lap("sae_crosscoder")
            rows += s_rows
            sae_tables.append(s_tab)
            cc_tables.append(c_tab)
    rows += probe_rows(family, ref, names, cfg, work, progress=progress)
    lap("probe")
    w_rows, w_table = weight_rows(family, names, vec)
    lap("weights")
    rows += w_rows
    q_tables: dict[str, pd.DataFrame] = {}
    if quality is not None:
        from steering.quality import quality_rows, quality_tables

        q_tables = quality_tables(family, quality, variants=["base", *names], workdir=work / "quality")
        rows += quality_rows(q_tables, quality.task)
        lap("quality")

    tests = pd.DataFrame(rows)
    verdict_rows = []
    for v in names:
        vr = tests[tests.variant == v].to_dict("records")
        label, reason = verdict(vr)
        steer: dict[str, Any] = next((r for r in vr if r["test"] == "behavioural:steering"), {})
        forced: dict[str, Any] = next((r for r in vr if r["test"] == "behavioural:forced_format"), {})
        direc = [r for r in vr if r["test"] == "direction"]
        verdict_rows.append({
            "variant": v, "task": task_of[v].name, "verdict": label,
            "acc_base": steer.get("acc_base", np.nan), "acc_variant": steer.get("acc_tuned", np.nan),
            "gap": steer.get("tuned_gap", np.nan),
            "steer_gr": steer.get("effect", np.nan), "steer_gr_lo": steer.get("ci_lo", np.nan), "steer_gr_hi": steer.get("ci_hi", np.nan),
            "random_gr": steer.get("null", np.nan),
            "forced_gr": forced.get("effect", np.nan), "forced_gr_lo": forced.get("ci_lo", np.nan), "forced_gr_hi": forced.get("ci_hi", np.nan),
            "chance": steer.get("chance", np.nan),
            "steer_grc": steer.get("gr_floor", np.nan), "steer_grc_lo": steer.get("gr_floor_lo", np.nan),
            "steer_grc_hi": steer.get("gr_floor_hi", np.nan), "random_grc": steer.get("gr_random_floor", np.nan),
            "forced_grc": forced.get("gr_floor", np.nan), "forced_grc_lo": forced.get("gr_floor_lo", np.nan),
            "forced_grc_hi": forced.get("gr_floor_hi", np.nan),
            "max_cos_decision": max((r["effect"] for r in direc if r["position"] == cfg.decision), default=np.nan),
            "max_cos_computation": max((r["effect"] for r in direc if r["position"] == cfg.computation), default=np.nan),
            "n_test": steer.get("n", 0), "reason": reason,
        })
    verdicts = pd.DataFrame(verdict_rows)
    # with no gap to explain, a gap-recovered ratio has a ~0 denominator: show it as missing
    no_gap = ~(verdicts["gap"] >= THRESHOLDS["min_gap"])
    for c in ("steer_grc", "steer_grc_lo", "steer_grc_hi", "random_grc", "forced_grc", "forced_grc_lo", "forced_grc_hi",
              "steer_gr", "steer_gr_lo", "steer_gr_hi", "random_gr", "forced_gr", "forced_gr_lo", "forced_gr_hi"):
        verdicts.loc[no_gap, c] = np.nan
    for r in verdict_rows:
        tests.loc[(tests.variant == r["variant"]) & tests.test.str.startswith("behavioural"), "verdict"] = r["verdict"]

    tables = out / "tables"
    tables.mkdir(exist_ok=True)
    tests.to_parquet(tables / "battery.parquet", index=False)
    verdicts.to_parquet(tables / "verdicts.parquet", index=False)
    pd.concat(sweeps, ignore_index=True).to_parquet(tables / "sweep.parquet", index=False)
    for name in ("passk", "crossover", "cot", "ig_profile", "ig_totals", "early_summary", "answer_probe", "ood"):
        if name in q_tables and len(q_tables[name]):
            _to_parquet(q_tables[name], tables / f"{name}.parquet")
    if not w_table.empty:
        w_table.drop(columns=[c for c in w_table.columns if w_table[c].dtype == object and c not in ("name", "component", "kind", "variant", "shape", "svd_method")]).to_parquet(tables / "weights.parquet", index=False)
    if sae_tables:
        pd.concat(sae_tables, ignore_index=True).to_parquet(tables / "sae_transfer.parquet", index=False)
        pd.concat(cc_tables, ignore_index=True).to_parquet(tables / "crosscoder.parquet", index=False)
    payload = {
        "schema": SCHEMA,
        "kit_version": __version__,
        "family": family.name,
        "variants": {r["variant"]: {k: _json(v) for k, v in r.items() if k != "variant"} for r in verdict_rows},
        "tests": [{k: _json(v) for k, v in r.items()} for r in tests.to_dict("records")],
        "thresholds": THRESHOLDS,
        "config": {k: _json(v) for k, v in asdict(cfg).items()},
        "reference_task": ref.name,
        "reference_task_hash": ref.hash,
        "seconds": round(time.time() - t0, 1),
        "stage_seconds": dict(stages),
    }
    (out / "report.json").write_text(json.dumps(payload, indent=1))
    (out / "report.md").write_text(_markdown(family, verdicts, tests, cfg, ref))
    if figures:
        from probes.plots.figures import render_all

        render_all(out, out / "figures")
    return Report(verdicts, tests, out)


def _to_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write a table; object columns holding lists/tuples become strings (parquet-safe)."""
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object and df[c].map(lambda x: isinstance(x, list | tuple | dict)).any():
            df[c] = df[c].astype(str)
    df.to_parquet(path, index=False)


def _json(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return None if np.isnan(v) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, tuple):
        return list(v)
    return v


def _fmt(x: float, lo: float | None = None, hi: float | None = None) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    s = f"{x:.2f}"
    if lo is not None and hi is not None and not (np.isnan(lo) or np.isnan(hi)):
        s += f" [{lo:.2f}, {hi:.2f}]"
    return s


def _what_would_change(r: dict[str, Any]) -> str:
    t = THRESHOLDS
    if r["verdict"] == "select":
        return (f"`create` would need both gap-recovered CIs below {t['create_gr_hi']}; `inconclusive` if forced-format "
                f"and steering CI lower bounds fell under {t['select_gr_lo']}.")
    if r["verdict"] == "create":
        return (f"`select` would need a forced-format or steering gap-recovered CI lower bound >= {t['select_gr_lo']} "
                "(steering also beating the random direction).")
    return (f"a gap of >= {t['min_gap']} over the base with CI above 0, then a gap-recovered CI either >= "
            f"{t['select_gr_lo']} (select) or entirely < {t['create_gr_hi']} (create).")


def _markdown(family: ModelFamily, verdicts: pd.DataFrame, tests: pd.DataFrame, cfg: BatteryConfig, ref: Task) -> str:
    lines = [
        f"# Select or create? — `{family.name}`",
        "",
        "Does post-training *create* the reasoning behaviour, or *select* a mode the base model already had?",
        "Each variant is judged on its own task against the base. Gap recovered (GR, Venhoff et al. 2025) = "
        "(acc(base + intervention) − acc(base)) / (acc(variant) − acc(base)), clipped at 0; 95% bootstrap CIs over "
        f"test prompts in brackets. Steering settings are chosen on `{cfg.dev_split}` and reported on `{cfg.test_split}`.",
        "",
        "## Verdicts",
        "",
        "| variant | task | verdict | base acc | variant acc | chance | steering GR | above chance | random dir. | forced-format GR | above chance | cos (decision / computation) | n |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in verdicts.to_dict("records"):
        lines.append(
            f"| {r['variant']} | {r['task']} | **{r['verdict']}** | {_fmt(r['acc_base'])} | {_fmt(r['acc_variant'])} | "
            f"{_fmt(r['chance'])} | {_fmt(r['steer_gr'], r['steer_gr_lo'], r['steer_gr_hi'])} | "
            f"{_fmt(r['steer_grc'], r['steer_grc_lo'], r['steer_grc_hi'])} | {_fmt(r['random_grc'])} | "
            f"{_fmt(r['forced_gr'], r['forced_gr_lo'], r['forced_gr_hi'])} | "
            f"{_fmt(r['forced_grc'], r['forced_grc_lo'], r['forced_grc_hi'])} | {_fmt(r['max_cos_decision'])} / "
            f"{_fmt(r['max_cos_computation'])} | {int(r['n_test'])} |"
        )
    lines += ["", "## Why, and what would change it", ""]
    for r in verdicts.to_dict("records"):
        lines.append(f"- **{r['variant']}** ({r['verdict']}): {r['reason']}. What would change it: {_what_would_change(r)}")
    lines += [
        "",
        "## The verdict rule",
        "",
        f"Thresholds (fixed in `steering/battery.py`): {', '.join(f'`{k}` = {v}' for k, v in THRESHOLDS.items())}.",
        "1. A variant must beat the base by `min_gap` with the CI of the difference above 0; otherwise `inconclusive`.",
        "2. `select` if forcing the reasoning format, or steering the base along its own reasoning direction (and beating "
        "a norm-matched random direction), recovers the gap with CI lower bound ≥ `select_gr_lo`.",
        "3. `create` if neither does: both CI upper bounds < `create_gr_hi`.",
        "4. Direction, probe and weight tests are reported below but never decide: a cosine alone cannot separate "
        "select from create (prototype: create 0.70–0.75 vs select 0.81–0.88 at the decision token).",
        "",
        f"Reference task for the base direction: `{ref.name}` (hash `{ref.hash}`), contrast {list(cfg.contrast)} at "
        f"`{cfg.decision}`.",
        "",
        "## Every test",
        "",
        "| test | variant | task | layer | position | effect | null | 95% CI | n | detail |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in tests.to_dict("records"):
        lines.append(
            f"| {r['test']} | {r['variant']} | {r['task']} | {'' if r['layer'] < 0 else r['layer']} | `{r['position']}` | "
            f"{_fmt(r['effect'])} | {_fmt(r['null'])} | {_fmt(r['ci_lo'])}–{_fmt(r['ci_hi'])} | {r['n']} | {r['detail']} |"
        )
    lines += ["", f"_elicitkit {__version__}; tables in `tables/`, figures in `figures/`._", ""]
    return "\n".join(lines)
