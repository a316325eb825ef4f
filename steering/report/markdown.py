"""``report.md``: the verdict table, why each verdict, what would change it, and every test row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from probes.data.tasks import Task
from probes.models.family import ModelFamily
from probes.version import __version__
from steering.battery.config import BatteryConfig
from steering.battery.discrimination import Discrimination, role
from steering.battery.verdict import REPRESENTATION_THRESHOLDS, THRESHOLDS
from steering.report.caveats import Caveat

__all__ = ["markdown", "what_would_change"]


def _fmt(x: float, lo: float | None = None, hi: float | None = None) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "–"
    s = f"{x:.2f}"
    if lo is not None and hi is not None and not (np.isnan(lo) or np.isnan(hi)):
        s += f" [{lo:.2f}, {hi:.2f}]"
    return s


def what_would_change(r: dict[str, Any]) -> str:
    t = THRESHOLDS
    if r["verdict"] == "select":
        return (
            f"`create` would need both gap-recovered CIs below {t['create_gr_hi']}; `inconclusive` if forced-format "
            f"and steering CI lower bounds fell under {t['select_gr_lo']}."
        )
    if r["verdict"] == "create":
        return (
            f"`select` would need a forced-format or steering gap-recovered CI lower bound >= {t['select_gr_lo']} "
            "(steering also beating the best null direction in a paired test)."
        )
    return (
        f"a gap of >= {t['min_gap']} over the base with CI above 0, then a gap-recovered CI either >= "
        f"{t['select_gr_lo']} (select) or, for two tests with a passed manipulation check, entirely < "
        f"{t['create_gr_hi']} (create)."
    )


def _null_table(verdicts: pd.DataFrame) -> list[str]:
    """The steering test against its null, per variant: the numbers a sceptic checks first."""
    lines = [
        "## Steering against its null",
        "",
        "Each null direction (norm-matched random draws and the label-shuffled contrast vector) gets the same dev "
        "search as the reasoning vector; the best of them (highest dev accuracy) is compared with the vector "
        "prompt by prompt on test. *Draws recovering* is the share of random draws whose test GR above chance "
        "is at least 0.5; *fired* / *KL* are the steering run's manipulation check.",
        "",
        "| variant | steering GR (above chance) | best null GR | steered − best null (accuracy) [95% CI over prompts] | "
        "[95% CI over draws and prompts] | p | random draws | draws recovering | shuffled GR | fired | median KL (nats) | n |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in verdicts.to_dict("records"):
        if np.isnan(r.get("diff_vs_random", np.nan)) and np.isnan(r.get("steer_grc", np.nan)):
            continue
        lines.append(
            f"| {r['variant']} | {_fmt(r['steer_grc'])} | {_fmt(r['random_grc'])} | "
            f"{_fmt(r['diff_vs_random'], r['diff_vs_random_lo'], r['diff_vs_random_hi'])} | "
            f"{_fmt(r.get('diff_vs_random_hlo', np.nan))}, {_fmt(r.get('diff_vs_random_hhi', np.nan))} | "
            f"{_fmt(r['diff_vs_random_p'])} | {int(r['n_random'])} | {_fmt(r['random_recover_share'])} | "
            f"{_fmt(r['shuffled_grc'])} | {_fmt(r['fired_share'])} | {_fmt(r['kl_median'])} | {int(r['n_test'])} |"
        )
    return lines + [""]


def _representation(verdicts: pd.DataFrame) -> list[str]:
    """The representation verdict beside the behavioural one, and the combined verdict."""
    t = REPRESENTATION_THRESHOLDS
    lines = [
        "## Representation verdict",
        "",
        "Does the base already represent what the tuned model computes? Read on the computation probe: a probe "
        "fitted on the tuned model's activations at each scratchpad step (before the step's result is written) is "
        "scored on the base's activations of the same traces; the share is the part of the tuned model's "
        "decodability above an input-only baseline that the base carries, at the layer where the tuned model's own "
        f"probe decodes best. `present`: CI lower bound ≥ {t['present_lo']} and above the shuffled null; `absent`: "
        f"CI upper bound < {t['absent_hi']}. Combined: agreement (or an inconclusive representation) keeps the "
        "behavioural verdict; a conflict is `inconclusive`; a behavioural `inconclusive` stays so.",
        "",
        "| variant | behavioural | representation | share [95% CI] | layer | combined | why |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in verdicts.to_dict("records"):
        if "representation" not in r:
            continue
        layer = r.get("rep_layer", -1)
        lines.append(
            f"| {r['variant']} | {r['verdict']} | {r['representation']} | "
            f"{_fmt(r.get('rep_share', np.nan), r.get('rep_share_lo'), r.get('rep_share_hi'))} | "
            f"{'' if layer is None or layer < 0 else int(layer)} | **{r.get('combined', '')}** | {r.get('combined_reason', '')} |"
        )
    return lines + [""]


def _discrimination(table: dict[str, Discrimination]) -> list[str]:
    """Each statistic's separation of the organism's select and create controls."""
    lines = ["## Which tests discriminate (organism calibration)", ""]
    if not table:
        return lines + ["No discrimination table is installed: every test below is uncalibrated.", ""]
    seeds = next(iter(table.values())).seeds
    lines += [
        f"AUROC of select controls against create controls over organism seeds {', '.join(map(str, seeds))} (one "
        "value per seed and control), with a 95% bootstrap interval; a test whose interval does not lie above 0.5 "
        "is *descriptive*: reported, not evidence. Regenerate with `python scripts/seeds.py --discrimination`.",
        "",
        "| statistic | test | AUROC [95% CI] | n select / create | role |",
        "|---|---|---|---|---|",
    ]
    for d in table.values():
        lines.append(
            f"| {d.what} | `{d.test}` | {_fmt(d.auroc, d.auroc_lo, d.auroc_hi)} | {d.n_select} / {d.n_create} | "
            f"{'discriminates' if d.discriminates else 'descriptive'} |"
        )
    return lines + [""]


def _warnings(warnings: Sequence[Caveat]) -> list[str]:
    """The report's warnings, one bullet each (none: the section says so)."""
    lines = ["## Warnings", ""]
    if not warnings:
        return lines + [
            "None of the report's checks fired (split sizes and agreement, token budget, "
            "embedding separability, CE recovered, weight-angle noise floor).",
            "",
        ]
    return lines + [f"- **{w.check}**: {w.message}" for w in warnings] + [""]


def markdown(
    family: ModelFamily,
    verdicts: pd.DataFrame,
    tests: pd.DataFrame,
    cfg: BatteryConfig,
    ref: Task,
    warnings: Sequence[Caveat] = (),
    discrimination: dict[str, Discrimination] | None = None,
) -> str:
    disc = discrimination or {}
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
    lines += [
        "",
        *_representation(verdicts),
        *_warnings(warnings),
        *_null_table(verdicts),
        *_discrimination(disc),
        "## Why, and what would change it",
        "",
    ]
    for r in verdicts.to_dict("records"):
        lines.append(
            f"- **{r['variant']}** ({r['verdict']}): {r['reason']}. What would change it: {what_would_change(r)}"
        )
    lines += [
        "",
        "## The verdict rule",
        "",
        f"Thresholds (fixed in `steering/battery/verdict.py`): {', '.join(f'`{k}` = {v}' for k, v in THRESHOLDS.items())}.",
        "1. A variant must beat the base by `min_gap` with the CI of the difference above 0; otherwise `inconclusive`.",
        "2. `select` if forcing the reasoning format, or steering the base along its own reasoning direction (and beating "
        "the best null direction in a paired test whose interval lies above 0), recovers the gap with CI lower bound "
        "≥ `select_gr_lo`.",
        "3. `create` needs two witnesses of absence: forcing the format and steering (with a passed manipulation check: "
        "the hook fired on ≥ `min_fired_share` of prompts, median KL ≥ `min_kl`) both keep their CI upper bounds < "
        "`create_gr_hi`, and no test shows presence; otherwise `inconclusive`, naming the missing witness.",
        "4. Direction, probe, computation-probe, dictionary and weight tests are reported below but never decide the "
        "behavioural verdict: a cosine alone cannot separate select from create (prototype: create 0.70–0.75 vs "
        "select 0.81–0.88 at the decision token). The computation probe gives the representation verdict above; "
        "each test's role (decides / discriminates / descriptive) is its calibration on the organism.",
        "",
        f"Reference task for the base direction: `{ref.name}` (hash `{ref.hash}`), contrast {list(cfg.contrast)} at "
        f"`{cfg.decision}`.",
        "",
        "## Every test",
        "",
        "| test | role | variant | task | layer | position | effect | null | 95% CI | n | detail |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in tests.to_dict("records"):
        lines.append(
            f"| {r['test']} | {role(r['test'], disc)} | {r['variant']} | {r['task']} | "
            f"{'' if r['layer'] < 0 else r['layer']} | `{r['position']}` | "
            f"{_fmt(r['effect'])} | {_fmt(r['null'])} | {_fmt(r['ci_lo'])}–{_fmt(r['ci_hi'])} | {r['n']} | {r['detail']} |"
        )
    lines += ["", f"_elicitkit {__version__}; tables in `tables/`, figures in `figures/`._", ""]
    return "\n".join(lines)
