"""The select-vs-create report: run the battery on every non-base variant and write
``report.md`` (for a reader), ``report.json`` (schema-versioned, for machines), the tidy
result tables and the figures.

    report = run_report(load_family("organism"), out="elicit-out/report")
    print(report.verdicts)

The steps, each a function: :func:`plan_tasks` (which task judges which variant),
:func:`run_battery` (every test, timed per stage), :func:`judge_all` (typed verdicts) and
:func:`write_report` (tables, ``report.json``, ``report.md``, figures).
"""

from __future__ import annotations

import dataclasses
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from probes.data.tasks import Task
from probes.errors import ElicitError
from probes.models.family import ModelFamily
from steering.battery.behavioural import behavioural_rows, fit_reasoning_vector
from steering.battery.computation import computation_rows
from steering.battery.config import BatteryConfig
from steering.battery.direction import direction_rows
from steering.battery.forced_format import forced_format_rows
from steering.battery.probe import embedding_separability, probe_rows
from steering.battery.quality import QualityConfig
from steering.battery.rows import BatteryRow, TestId, rows_frame
from steering.battery.sae import sae_rows
from steering.battery.verdict import THRESHOLDS, VariantVerdict, judge
from steering.battery.weights import weight_rows
from steering.report.caveats import Caveat, report_caveats
from steering.report.markdown import markdown
from steering.report.schema import report_payload, to_parquet, write_json
from steering.sweep import resolve_task

__all__ = [
    "Report",
    "run_report",
    "plan_tasks",
    "run_battery",
    "judge_all",
    "write_report",
    "BatteryRun",
    "TaskPlan",
]


@dataclass(frozen=True)
class Report:
    """What :func:`run_report` wrote: the verdict table, every test row, and the paths."""

    verdicts: pd.DataFrame
    tests: pd.DataFrame
    out: Path
    judged: tuple[VariantVerdict, ...] = ()
    rows: tuple[BatteryRow, ...] = ()
    #: what the report flags (``report.md`` "Warnings", ``report.json`` ``warnings``)
    warnings: tuple[Caveat, ...] = ()

    def __repr__(self) -> str:
        return f"Report({len(self.verdicts)} variants at {str(self.out)!r})\n" + self.verdicts[
            ["variant", "task", "verdict"]
        ].to_string(index=False)

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


def _like_reference(family: ModelFamily, cfg: BatteryConfig, task: Task) -> Task:
    """A task given as an object (``--task FILE.jsonl``, ``run_report(task=...)``) prepared the way
    the family prepares its own when it has no splits (a bare JSONL export): without labels it gets
    the reference task's contrast recipe (``contrast = "cot_vs_direct"``: neutral dev / test
    questions, hashed splits), else hashed splits. A task that carries its splits is used as given."""
    from probes.data.contrasts import apply_contrast, with_splits

    if all(e.split is not None for e in task.examples):
        return task  # the file's own splits (and labels, or none: an unlabelled task is judged whole)
    labelled = any(e.label is not None for e in task.examples)
    settings = family.tasks.get(cfg.reference_task or "", {})
    if not labelled and settings.get("contrast"):
        return apply_contrast(task, settings)  # hashes the splits itself
    return with_splits(task)


@dataclass(frozen=True)
class TaskPlan:
    """Which task judges which variant (the organism's create controls are judged on their own task)."""

    names: tuple[str, ...]
    task_of: dict[str, Task]
    loaded: dict[str, Task]
    ref: Task

    def by_task(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = defaultdict(list)
        for v, t in self.task_of.items():
            groups[t.name].append(v)
        return groups


def plan_tasks(
    family: ModelFamily, cfg: BatteryConfig, task: str | Task | None, variants: Sequence[str] | None
) -> TaskPlan:
    names = [v for v in (variants or family.variants) if v != "base"]
    if not names:
        raise ElicitError(f"Family {family.name!r} has no variant besides 'base' to judge.")
    task_of: dict[str, Task] = {}
    loaded: dict[str, Task] = {}
    for v in names:
        tname = task if task is not None else family.task_name(v)
        if tname is None:
            raise ElicitError(
                f'Variant {v!r} names no task. Pass --task, or add task = "..." to [variants.{v}] in the family file.'
            )
        key = tname.name if isinstance(tname, Task) else tname
        if key not in loaded:
            loaded[key] = (
                _like_reference(family, cfg, tname)
                if isinstance(tname, Task)
                else resolve_task(family, tname)
            )
        task_of[v] = loaded[key]
    return TaskPlan(tuple(names), task_of, loaded, _reference_task(family, cfg, loaded))


class _Clock:
    """Seconds per stage, summed over repeated stages (one per task)."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = defaultdict(float)
        self._last = time.time()

    def lap(self, name: str) -> None:
        now = time.time()
        self.stages[name] += round(now - self._last, 2)
        self._last = now


@dataclass
class BatteryRun:
    """Everything the battery produced: rows and the tables the figures read."""

    rows: list[BatteryRow] = field(default_factory=list)
    sweeps: list[pd.DataFrame] = field(default_factory=list)
    sae_tables: list[pd.DataFrame] = field(default_factory=list)
    cc_tables: list[pd.DataFrame] = field(default_factory=list)
    weights: pd.DataFrame = field(default_factory=pd.DataFrame)
    quality: dict[str, pd.DataFrame] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)
    #: (held-out AUROC, prompts, task) of the contrast probe on the base's token embeddings
    embedding: tuple[float, int, str] | None = None


def _per_task(
    family: ModelFamily,
    plan: TaskPlan,
    cfg: BatteryConfig,
    work: Path,
    run: BatteryRun,
    clock: _Clock,
    *,
    sae: bool,
    progress: bool,
) -> None:
    vec_path = work / "vectors" / "base-reasoning"
    controls: dict[str, float] | None = None  # the crosscoder controls, trained once per family
    for tname, vs in plan.by_task().items():
        t = plan.loaded[tname]
        b_rows, sweep_df = behavioural_rows(family, t, vs, vec_path, cfg, work, progress=progress)
        clock.lap("behavioural")
        run.rows += b_rows
        run.rows += forced_format_rows(family, t, vs, sweep_df, cfg, work)
        clock.lap("forced_format")
        run.rows += direction_rows(family, t, plan.ref, vs, cfg, work, progress=progress)
        clock.lap("direction")
        run.rows += computation_rows(family, t, vs, cfg, work, progress=progress)
        clock.lap("computation_probe")
        run.sweeps.append(sweep_df.assign(task=tname))
        if sae:
            s_rows, s_tab, c_tab, controls = sae_rows(
                family, t, vs, cfg, work, controls=controls, progress=progress
            )
            clock.lap("sae_crosscoder")
            run.rows += s_rows
            run.sae_tables.append(s_tab)
            run.cc_tables.append(c_tab)


def run_battery(
    family: ModelFamily,
    plan: TaskPlan,
    cfg: BatteryConfig,
    work: Path,
    *,
    sae: bool = True,
    quality: QualityConfig | None = None,
    progress: bool = True,
) -> BatteryRun:
    """Fit the base's reasoning vector, then run every test; stage seconds in ``stages``."""
    clock, run = _Clock(), BatteryRun()
    vec, _ = fit_reasoning_vector(family, plan.ref, cfg, work, progress=progress)
    clock.lap("fit_vector")
    _per_task(family, plan, cfg, work, run, clock, sae=sae, progress=progress)
    run.rows += probe_rows(family, plan.ref, plan.names, cfg, work, progress=progress)
    clock.lap("probe")
    auroc, n = embedding_separability(family, plan.ref, cfg, work, progress=progress)
    run.embedding = (auroc, n, plan.ref.name)
    clock.lap("embedding_probe")
    w_rows, run.weights = weight_rows(family, plan.names, vec)
    clock.lap("weights")
    run.rows += w_rows
    if quality is not None:
        from steering.battery.quality import quality_rows, quality_tables

        run.quality = quality_tables(
            family, quality, variants=["base", *plan.names], workdir=work / "quality"
        )
        run.rows += quality_rows(run.quality, quality.task)
        clock.lap("quality")
    run.stages = dict(clock.stages)
    return run


#: gap-recovered columns measured from max(base, chance) (what the rule reads), then the plain ones
_GRC_COLUMNS = (
    "steer_grc",
    "steer_grc_lo",
    "steer_grc_hi",
    "random_grc",
    "forced_grc",
    "forced_grc_lo",
    "forced_grc_hi",
)
_GR_COLUMNS = (
    *_GRC_COLUMNS,
    *("steer_gr", "steer_gr_lo", "steer_gr_hi", "random_gr", "forced_gr", "forced_gr_lo", "forced_gr_hi"),
)


def judge_all(
    plan: TaskPlan, rows: Sequence[BatteryRow], cfg: BatteryConfig
) -> tuple[list[VariantVerdict], list[BatteryRow]]:
    """Each variant's :class:`VariantVerdict`, and the rows with the verdict written onto its behavioural rows."""
    judged = [
        judge(
            v,
            plan.task_of[v].name,
            [r for r in rows if r.variant == v],
            decision=cfg.decision,
            computation=cfg.computation,
        )
        for v in plan.names
    ]
    label = {j.variant: j.verdict.value for j in judged}
    behavioural = (TestId.STEERING, TestId.FORCED_FORMAT)
    marked = [
        dataclasses.replace(r, verdict=label[r.variant])
        if r.test in behavioural and r.variant in label
        else r
        for r in rows
    ]
    return judged, marked


#: the verdict-table columns the CLI prints (all of them are in ``tables/verdicts.parquet``)
SUMMARY_COLUMNS = (
    *("variant", "task", "verdict", "acc_base", "acc_variant", "chance"),
    *_GRC_COLUMNS,
    *("diff_vs_random", "diff_vs_random_hlo", "n_random", "max_cos_decision", "n_test"),
    *("representation", "rep_share", "combined"),
)


def verdict_table(judged: Sequence[VariantVerdict]) -> pd.DataFrame:
    """``tables/verdicts.parquet``: with no gap to explain, a gap-recovered ratio has a ~0 denominator: missing."""
    verdicts = pd.DataFrame([j.to_record() for j in judged])
    no_gap = ~(verdicts["gap"] >= THRESHOLDS["min_gap"])
    # the steering null's numbers are about a gap too: missing with it
    null_cols = [
        c for c in verdicts.columns if c.startswith(("diff_vs_random", "random_")) or c == "shuffled_grc"
    ]
    for c in (*_GR_COLUMNS, *null_cols):
        verdicts.loc[no_gap, c] = np.nan
    return verdicts


_QUALITY_TABLES = (
    "passk",
    "crossover",
    "cot",
    "ig_profile",
    "ig_wu_totals",
    "ig_totals",
    "early_summary",
    "answer_probe",
    "ood",
)
_WEIGHT_TEXT_COLUMNS = ("name", "component", "kind", "variant", "shape", "svd_method")


def _write_tables(tables: Path, tests: pd.DataFrame, verdicts: pd.DataFrame, run: BatteryRun) -> None:
    tables.mkdir(exist_ok=True)
    tests.to_parquet(tables / "battery.parquet", index=False)
    verdicts.to_parquet(tables / "verdicts.parquet", index=False)
    pd.concat(run.sweeps, ignore_index=True).to_parquet(tables / "sweep.parquet", index=False)
    for name in _QUALITY_TABLES:
        if name in run.quality and len(run.quality[name]):
            to_parquet(run.quality[name], tables / f"{name}.parquet")
    w = run.weights
    if not w.empty:
        drop = [c for c in w.columns if w[c].dtype == object and c not in _WEIGHT_TEXT_COLUMNS]
        w.drop(columns=drop).to_parquet(tables / "weights.parquet", index=False)
    if run.sae_tables:
        pd.concat(run.sae_tables, ignore_index=True).to_parquet(tables / "sae_transfer.parquet", index=False)
        pd.concat(run.cc_tables, ignore_index=True).to_parquet(tables / "crosscoder.parquet", index=False)


def write_report(
    family: ModelFamily,
    plan: TaskPlan,
    cfg: BatteryConfig,
    run: BatteryRun,
    judged: Sequence[VariantVerdict],
    rows: Sequence[BatteryRow],
    out: Path,
    *,
    seconds: float,
    figures: bool = True,
) -> Report:
    """Write the tables, ``report.json``, ``report.md`` and (optionally) the figures under ``out``."""
    from steering.battery.discrimination import load_discrimination

    tests, verdicts = rows_frame(rows), verdict_table(judged)
    disc = load_discrimination()
    _write_tables(out / "tables", tests, verdicts, run)
    warnings = report_caveats(
        run.sweeps,
        dev_split=cfg.dev_split,
        test_split=cfg.test_split,
        embedding=run.embedding,
        sae_tables=run.sae_tables,
        weights=run.weights,
        tests=tests,
    )
    write_json(
        report_payload(
            family.name,
            judged,
            tests,
            cfg,
            plan.ref,
            seconds=seconds,
            stage_seconds=run.stages,
            warnings=warnings,
            embedding=run.embedding,
            discrimination=disc,
        ),
        out / "report.json",
    )
    (out / "report.md").write_text(markdown(family, verdicts, tests, cfg, plan.ref, warnings, disc))
    if figures:
        from probes.plots.render import render_all

        render_all(out, out / "figures")
    return Report(verdicts, tests, out, tuple(judged), tuple(rows), tuple(warnings))


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
    :class:`steering.battery.quality.QualityConfig`) adds pass@k, CoT-decoding, information gain,
    early answering and OOD drop.
    """
    t0 = time.time()
    out = Path(out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    cfg = config or BatteryConfig.from_family(family)
    plan = plan_tasks(family, cfg, task, variants)
    run = run_battery(family, plan, cfg, work, sae=sae, quality=quality, progress=progress)
    judged, rows = judge_all(plan, run.rows, cfg)
    return write_report(
        family, plan, cfg, run, judged, rows, out, seconds=round(time.time() - t0, 1), figures=figures
    )
