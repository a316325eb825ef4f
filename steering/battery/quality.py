"""Battery rows for decoding elicitation and reasoning quality (docs/design.md, battery tests 2 and 7).

Each adapter turns a tidy table from :mod:`probes` into rows of the battery schema
``test, variant, task, layer, position, effect, null, ci_lo, ci_hi, n, verdict, detail``
(verdict ``info``: these tests inform the report; the verdict rule lives in
:func:`steering.battery.verdict.verdict`). ``ci_lo``/``ci_hi`` always bound ``effect``.

    >>> rows = passk_rows(crossover_k(samples), task="parity")   # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from probes.data.activations import collect_activations
from probes.data.tasks import Task
from probes.decoding.cot_decoding import cot_decode, cot_summary
from probes.decoding.passk import answer_count, crossover_k, passk_curve
from probes.decoding.sampling import sample_task
from probes.errors import ElicitError
from probes.models.family import ModelFamily
from probes.quality.early_answering import answer_probe, early_answers, early_summary
from probes.quality.information_gain import (
    StepFormat,
    ig_profile,
    ig_totals,
    information_gain,
    wu_information_gain,
    wu_relative_change,
)
from probes.quality.ood import ood_table
from steering.battery.rows import BatteryRow, TestId

__all__ = [
    "STAGES",
    "QualityConfig",
    "quality_tables",
    "quality_rows",
    "passk_rows",
    "cot_rows",
    "ig_rows",
    "wu_ig_rows",
    "early_answer_rows",
    "probe_answer_rows",
    "ood_rows",
]


#: What :func:`quality_tables` can run: ``decoding`` (samples, pass@k, the crossover k,
#: CoT-decoding) and ``quality`` (greedy answers, forced traces, information gain, early answering,
#: the answer probe, the OOD drop; their step format is the organism's unless ``fmt`` says otherwise).
STAGES = ("decoding", "quality")


@dataclass(frozen=True)
class QualityConfig:
    """Settings of :func:`quality_tables` (defaults fit the organism; for any family,
    :meth:`for_family`).

    ``task`` is the reference task; a variant whose family entry names another task (the
    organism's ``create`` controls) is sampled, with the base, on that task for pass@k and
    CoT-decoding. Prompts: ``label`` / ``split`` of the task, at most ``max_prompts``.
    ``max_new_tokens``: the generation budget (``None``: each task's own). ``stages``: which of
    :data:`STAGES` run.
    """

    task: str = "parity"
    label: str | None = "neutral"
    split: str = "test"
    max_prompts: int = 64
    n_samples: int = 32
    temperature: float = 1.0
    top_p: float | None = None
    seed: int = 0
    cot_k: int = 10
    scoring_variant: str = "base"
    ood_task: str | None = "parity_ood"
    probe_hook: str = "resid_post:all"
    fmt: StepFormat = StepFormat()
    batch_size: int = 512
    max_new_tokens: int | None = None
    stages: tuple[str, ...] = STAGES

    def __post_init__(self) -> None:
        bad = [x for x in self.stages if x not in STAGES]
        if bad or not self.stages:
            raise ElicitError(
                f"QualityConfig.stages must be a non-empty subset of {list(STAGES)}; got {list(self.stages)}."
            )
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise ElicitError(
                f"QualityConfig.max_new_tokens must be >= 1 or None (the task's), got {self.max_new_tokens}."
            )
        for name in ("max_prompts", "n_samples", "cot_k"):
            if getattr(self, name) < 1:
                raise ElicitError(f"QualityConfig.{name} must be >= 1, got {getattr(self, name)}.")

    @classmethod
    def for_family(cls, family: ModelFamily, **overrides: Any) -> QualityConfig:
        """The decoding stage of any family, small: the battery's reference task and evaluation
        label (the family file's ``[battery]`` table), 16 test prompts, 8 samples each, 4
        CoT-decoding branches, each task's own budget. Every variant is asked through its own
        prompt protocol (the sampler and CoT-decoding read it from the opened model).

        The reasoning-quality stage (information gain, early answering, the answer probe, and the
        OOD drop when the family declares a task ``<reference>_ood``) runs too where the reference
        task's traces have a known step format: a ``scratchpad`` task (``FORMAT s_1 .. s_T > a``,
        the organism's). Free-text traces (GSM8K, MATH) have no step format the kit can split
        without guessing, so those families get the decoding stage only. ``overrides`` replace
        any field."""
        from steering.battery.config import BatteryConfig

        bcfg = BatteryConfig.from_family(family)
        ref = bcfg.reference_task or next(iter(family.tasks), None)
        if ref is None:
            raise ElicitError(
                f"Family {family.name!r} declares no task to sample; add a [tasks] table (or pass task=...)."
            )
        base: dict[str, Any] = {
            "task": ref,
            "label": bcfg.eval_label,
            "split": bcfg.test_split,
            "max_prompts": 16,
            "n_samples": 8,
            "cot_k": 4,
            "ood_task": None,
            "seed": bcfg.seed,
            "batch_size": bcfg.batch_size,
            "stages": ("decoding",),
        }
        spec = dict(family.tasks.get(ref, {}))  # the family file's task table
        if spec.get("scorer") == "scratchpad":
            prefix = spec.get("format_prefix")
            base["stages"] = STAGES
            base["fmt"] = StepFormat(head=(prefix or "#").strip())
            base["ood_task"] = f"{ref}_ood" if f"{ref}_ood" in family.tasks else None
        base.update(overrides)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(base) - fields)
        if unknown:
            raise ElicitError(f"Unknown QualityConfig field(s) {unknown}; valid: {sorted(fields)}.")
        return cls(**base)


def _subset(task: Task, cfg: QualityConfig) -> Task:
    labels = {e.label for e in task.examples}
    return task.filter(split=cfg.split, label=cfg.label if cfg.label in labels else None).head(
        cfg.max_prompts
    )


def quality_tables(
    family: ModelFamily,
    cfg: QualityConfig = QualityConfig(),
    *,
    variants: Sequence[str] | None = None,
    ood: Task | None = None,
    workdir: str | Path | None = None,
) -> dict[str, pd.DataFrame]:
    """Run every decoding-elicitation and reasoning-quality measure on a family.

    Returns tables keyed ``samples, passk, crossover, cot_paths, cot, traces, ig, ig_totals,
    ig_profile, ig_wu, ig_wu_totals, early, early_summary, answer_probe, ood_samples, ood`` (with ``cfg.stages ==
    ("decoding",)``: the first five, and ``traces, greedy, early, ood_samples`` empty). Each variant is
    loaded once (plus the scoring variant once more for information gain). ``ood`` overrides
    the family's ``cfg.ood_task``; without either, the OOD tables are empty.
    """
    names = list(variants) if variants is not None else family.variants
    if "base" not in names:
        names = ["base", *names]
    ref = _subset(family.load_task(cfg.task), cfg)
    tasks = {cfg.task: ref}
    for v in names:
        t = family.task_name(v)
        if t and t not in tasks:
            tasks[t] = _subset(family.load_task(t), cfg)
    if ood is None and cfg.ood_task is not None and cfg.ood_task in family.tasks:
        ood = family.load_task(cfg.ood_task)
    out = _generate_all(family, cfg, names, tasks, ood)
    answers = {t: answer_count(x) for t, x in tasks.items()}
    out.update(_decoding_tables(out["samples"], out["cot_paths"], answers))
    if "quality" not in cfg.stages:
        return out
    out["ig"], out["ig_wu"] = _information_gain(family, cfg, ref, out["traces"])
    out["ig_totals"] = ig_totals(out["ig"])
    out["ig_wu_totals"] = wu_relative_change(out["ig_wu"], "base")
    out["ig_profile"] = ig_profile(out["ig"])
    out["early_summary"] = early_summary(out["early"])
    acts = collect_activations(
        family,
        ref,
        cfg.probe_hook,
        "last",
        variants=names,
        progress=False,
        out=None if workdir is None else Path(workdir) / "quality_acts",
        overwrite=True,
    )
    g = out["greedy"]
    out["answer_probe"] = answer_probe(acts, g.assign(answer=g["parsed"])[["variant", "prompt_id", "answer"]])
    out["ood"] = ood_table(out["ood_samples"]) if len(out["ood_samples"]) else pd.DataFrame()
    return out


def _generate_all(
    family: ModelFamily, cfg: QualityConfig, names: Sequence[str], tasks: dict[str, Task], ood: Task | None
) -> dict[str, pd.DataFrame]:
    """Everything each variant generates, loading it once: samples on the reference task and its
    own task (the base: on every task), CoT-decoding paths, greedy answers, prefilled traces
    with their early answers, and OOD samples."""
    ref = tasks[cfg.task]
    frames: dict[str, list[pd.DataFrame]] = {
        k: [] for k in ("samples", "cot_paths", "traces", "greedy", "early", "ood_samples")
    }
    tok = family.tokenizer("base")
    kw: dict[str, Any] = {"batch_size": cfg.batch_size}
    gen: dict[str, Any] = {**kw, "max_new_tokens": cfg.max_new_tokens}
    for v in names:
        vt = family.task_name(v)
        own = [cfg.task] + ([vt] if vt is not None and vt != cfg.task else [])
        todo = list(tasks) if v == "base" else own
        with family.open(v) as model:
            for t in todo:
                frames["samples"].append(
                    sample_task(
                        model,
                        tok,
                        tasks[t],
                        variant=v,
                        n=cfg.n_samples,
                        do_sample=True,
                        temperature=cfg.temperature,
                        top_p=cfg.top_p,
                        seed=cfg.seed,
                        **gen,
                    )
                )
                # CoT-decoding on the same tasks as pass@k (the create controls' own tasks too)
                frames["cot_paths"].append(cot_decode(model, tok, tasks[t], variant=v, k=cfg.cot_k, **gen))
            if "quality" not in cfg.stages:
                continue
            frames["greedy"].append(sample_task(model, tok, ref, variant=v, **gen))
            traces = sample_task(model, tok, ref, variant=v, prefill=ref.format_prefix, **gen)
            frames["traces"].append(traces)
            frames["early"].append(early_answers(model, tok, traces, variant=v, fmt=cfg.fmt, **kw))
            if ood is not None:
                frames["ood_samples"].append(sample_task(model, tok, ood, variant=v, **gen))
    return {k: pd.concat(f, ignore_index=True) if f else pd.DataFrame() for k, f in frames.items()}


def _decoding_tables(
    samples: pd.DataFrame, cot_paths: pd.DataFrame, answers: dict[str, int]
) -> dict[str, pd.DataFrame]:
    """pass@k per task, the crossover k of every task with more than one variant (against the
    uniform guesser over the task's ``answers[task]`` distinct answers), the CoT summary."""
    passk = pd.concat(
        [passk_curve(s).assign(task=t) for t, s in samples.groupby("task", sort=False)], ignore_index=True
    )
    cross = [
        crossover_k(s, n_answers=answers[str(t)]).assign(task=t)
        for t, s in samples.groupby("task", sort=False)
        if s["variant"].nunique() > 1
    ]
    return {
        "passk": passk,
        "crossover": pd.concat(cross, ignore_index=True) if cross else pd.DataFrame(),
        "cot": cot_summary(cot_paths),
    }


def _information_gain(
    family: ModelFamily, cfg: QualityConfig, ref: Task, traces: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Information gain of every variant's own traces under the one scoring variant: the
    answer-only increment per step, and Wu et al.'s whole-text InfoGain per trace."""
    tok = family.tokenizer("base")
    steps, wu = [], []
    with family.open(cfg.scoring_variant) as scorer:
        for v, s in traces.groupby("variant", sort=False):
            args = (scorer, tok, list(s["prompt"]), list(s["completion"]))
            kw: dict[str, Any] = dict(
                ids=list(s["prompt_id"]), variant=str(v), fmt=cfg.fmt, batch_size=cfg.batch_size
            )
            answers = [ref.examples[ref.ids.index(p)].answer for p in s["prompt_id"]]
            steps.append(information_gain(*args, answers, **kw))
            wu.append(wu_information_gain(*args, answers, **kw))
    return pd.concat(steps, ignore_index=True), pd.concat(wu, ignore_index=True)


def quality_rows(
    tables: dict[str, pd.DataFrame], task: str = "", reference: str = "base"
) -> list[BatteryRow]:
    """Every battery row from :func:`quality_tables` (the decoding rows alone when only the
    ``decoding`` stage ran)."""
    rows = passk_rows(tables["crossover"], task) if len(tables["crossover"]) else []
    rows += cot_rows(tables["cot"], task)
    if "ig_totals" not in tables:  # the decoding stage alone
        return rows
    rows += ig_rows(tables["ig_totals"], reference, task)
    if "ig_wu_totals" in tables:
        rows += wu_ig_rows(tables["ig_wu_totals"], reference, task)
    rows += early_answer_rows(tables["early_summary"], task) + probe_answer_rows(tables["answer_probe"], task)
    if len(tables["ood"]):
        rows += ood_rows(tables["ood"], task)
    return rows


def passk_rows(crossover: pd.DataFrame, task: str = "") -> list[BatteryRow]:
    """From :func:`probes.decoding.passk.crossover_k`: ``test = "passk_crossover"``.

    effect: the smallest k at which the base's mean pass@k overtakes the variant's by more than
    the tie tolerance while beating the uniform guesser by more than the margin (``n + 1`` when it
    never does up to ``n`` samples); null: ``n + 1``, i.e. "never"; CI: bootstrap over prompts.
    A small effect means the base already samples the tuned model's solutions (select). The
    detail names the first k where the base overtook only at the guessing level.
    """
    rows = []
    for r in crossover.itertuples(index=False):
        never = int(r.n_samples) + 1
        reach = f"k={r.crossover_k}" if r.reached else f"none up to n={r.n_samples}"
        guess_k = getattr(r, "guess_k", never)
        if guess_k < never:
            reach += f" (overtakes at the guessing level from k={guess_k}, m={r.n_answers} answers)"
        rows.append(
            BatteryRow.make(
                TestId.PASSK_CROSSOVER,
                r.variant,
                str(getattr(r, "task", task)),
                None,
                "",
                r.crossover_k,
                never,
                r.ci_lo,
                r.ci_hi,
                r.n_prompts,
                f"{reach}; pass@1 base {r.pass1_base:.2f} vs {r.pass1_tuned:.2f}; pass@{r.n_samples} "
                f"base {r.passn_base:.2f} vs {r.passn_tuned:.2f}",
            )
        )
    return rows


def cot_rows(summary: pd.DataFrame, task: str = "") -> list[BatteryRow]:
    """From :func:`probes.decoding.cot_decoding.cot_summary`: ``test = "cot_decoding"``.

    effect: accuracy of the CoT-decoding path minus greedy accuracy of the same variant; null: 0
    (no gain from branching); CI: paired bootstrap over prompts. A large gain on the base means
    reasoning paths exist among its top first tokens (select). The detail counts the paths whose
    answer was not located and the prompts that fell back to greedy for want of any.
    """
    return [
        BatteryRow.make(
            TestId.COT_DECODING,
            r.variant,
            str(getattr(r, "task", task)),
            None,
            "",
            r.diff,
            0.0,
            r.diff_lo,
            r.diff_hi,
            r.n_prompts,
            f"greedy {r.greedy_acc:.2f}, cot {r.cot_acc:.2f} (k={r.k}), oracle {r.oracle_acc:.2f}, "
            f"chosen-path format rate {r.chosen_format_rate:.2f}; no answer span on {r.n_no_span} of "
            f"{r.n_paths} paths ({r.n_unparsed} unparsed), {r.n_fallback} prompts greedy by default",
        )
        for r in summary.itertuples(index=False)
    ]


def ig_rows(totals: pd.DataFrame, reference: str = "base", task: str = "") -> list[BatteryRow]:
    """From :func:`probes.quality.information_gain.ig_totals`: ``test = "information_gain"``.

    effect: mean total information gain (nats) of the variant's traces, ``log p(a | trace) −
    log p(a | no steps)`` under the fixed scoring model; null: the same for the ``reference``
    row (e.g. the base's forced traces or gold traces); CI: bootstrap over the variant's traces.
    """
    ref = totals[totals["variant"] == reference]
    null = float(ref["total_ig"].iloc[0]) if len(ref) else float("nan")
    return [
        BatteryRow.make(
            TestId.INFORMATION_GAIN,
            r.variant,
            task,
            None,
            "",
            r.total_ig,
            null,
            r.ci_lo,
            r.ci_hi,
            r.n_traces,
            f"per step {r.ig_per_step:.3f} nats over {r.mean_steps:.1f} steps; final log p(a) "
            f"{r.final_logp:.2f}; null = {reference}",
        )
        for r in totals.itertuples(index=False)
    ]


def wu_ig_rows(totals: pd.DataFrame, reference: str = "base", task: str = "") -> list[BatteryRow]:
    """From :func:`probes.quality.information_gain.wu_relative_change`: ``test =
    "information_gain:wu"``.

    effect: the relative change of Wu et al.'s mean InfoGain of the variant's traces against the
    ``reference``'s (their −38.9% for SFT); null: 0 (no change); CI: bootstrap over both
    variants' traces. The reference's own row is left out.
    """
    return [
        BatteryRow.make(
            TestId.INFORMATION_GAIN_WU,
            r.variant,
            task,
            None,
            "",
            r.rel_change,
            0.0,
            r.rel_lo,
            r.rel_hi,
            r.n_traces,
            f"Wu et al.'s InfoGain {r.info_gain:.3f} [{r.ci_lo:.3f}, {r.ci_hi:.3f}] (perplexity units per step) "
            f"vs {reference}'s, relative change {r.rel_change:+.1%}",
            info_gain=r.info_gain,
        )
        for r in totals.itertuples(index=False)
        if r.variant != reference
    ]


def early_answer_rows(summary: pd.DataFrame, task: str = "") -> list[BatteryRow]:
    """From :func:`probes.quality.early_answering.early_summary`, at ``t = 0``: ``test = "early_answer"``.

    effect: agreement of the answer forced before any reasoning step with the full-reasoning
    answer; null: chance agreement ``Σ p(a)²``; CI: bootstrap over traces. Effect well above the
    null means the answer was fixed before the reasoning (post-hoc rationalization).
    """
    rows = []
    for variant, sub in summary.groupby("variant", sort=False):
        r0 = sub[sub["t"] == sub["t"].min()].iloc[0]
        curve = ", ".join(f"t={int(t)}:{a:.2f}" for t, a in zip(sub["t"], sub["agreement"], strict=True))
        rows.append(
            BatteryRow.make(
                TestId.EARLY_ANSWER,
                variant,
                task,
                None,
                "",
                r0["agreement"],
                r0["chance"],
                r0["ci_lo"],
                r0["ci_hi"],
                r0["n"],
                f"agreement by steps kept: {curve}",
            )
        )
    return rows


def probe_answer_rows(probe: pd.DataFrame, task: str = "") -> list[BatteryRow]:
    """From :func:`probes.quality.early_answering.answer_probe`: ``test = "early_answer_probe"`` per layer.

    effect: held-out accuracy of a logistic probe reading the variant's final answer at the last
    prompt token; null: the majority-class rate; CI: bootstrap over prompts.
    """
    return [
        BatteryRow.make(
            TestId.EARLY_ANSWER_PROBE,
            r.variant,
            task,
            r.layer,
            "last",
            r.accuracy,
            r.null,
            r.ci_lo,
            r.ci_hi,
            r.n,
            f"{r.hook}, {r.n_classes} answer classes",
        )
        for r in probe.itertuples(index=False)
    ]


def ood_rows(table: pd.DataFrame, task: str = "") -> list[BatteryRow]:
    """From :func:`probes.quality.ood.ood_table` (pooled-label rows): ``test = "ood_drop"``.

    effect: accuracy ratio OOD / in-distribution; null: 1 (no drop); CI: bootstrap resampling
    the two prompt sets independently. ``position`` holds the OOD split name.
    """
    pooled = table[table["label"] == "all"]
    return [
        BatteryRow.make(
            TestId.OOD_DROP,
            r.variant,
            task,
            None,
            str(r.ood_split),
            r.ratio,
            1.0,
            r.ci_lo,
            r.ci_hi,
            r.n_ood,
            f"{r.ood_split}: OOD {r.ood_acc:.2f} (n={r.n_ood}) vs ID {r.id_acc:.2f} (n={r.n_id})",
        )
        for r in pooled.itertuples(index=False)
    ]
