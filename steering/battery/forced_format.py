"""Battery test 1b: force the reasoning format (prefill ``task.format_prefix``) on the base; gap recovered per variant."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from probes.data.tasks import Task
from probes.models.family import ModelFamily
from probes.models.generation import generate
from steering.battery.config import BatteryConfig, chance_level, subset
from steering.battery.gap import floored, gr_ci
from steering.battery.rows import BatteryRow, TestId
from steering.sweep import gap_recovered

__all__ = ["forced_format_rows"]


def forced_format_rows(
    family: ModelFamily,
    task: Task,
    variants: Sequence[str],
    sweep_df: pd.DataFrame,
    cfg: BatteryConfig,
    workdir: Path,
) -> list[BatteryRow]:
    """Accuracy of the base when the reasoning format is prefilled; gap recovered per variant."""
    if not task.format_prefix:
        return []
    test = subset(task, cfg.test_split, cfg.eval_label, cfg.max_test)
    budget = cfg.max_new_tokens or task.max_new_tokens
    # keyed on the prompts, the base's weights (content digest) and the budget: never stale
    key = hashlib.sha256(f"{test.hash}|{family.revision('base')}|{budget}".encode()).hexdigest()[:16]
    cache = workdir / "forced" / f"{task.name}-{key}.json"
    ends_cache = cache.with_name(cache.stem + "-finish.json")
    if cache.exists():
        correct = json.loads(cache.read_text())
        # each completion's finish ("stop" / "budget"); a cache written before it was kept has none
        ends = json.loads(ends_cache.read_text()) if ends_cache.exists() else {}
    else:
        tok = family.tokenizer("base")
        prefix = task.format_prefix.strip()
        finish: list[str] = []
        with family.open("base") as model:
            # the prefix is prefilled after the prompt as the base's protocol renders it (after
            # "Answer:" or the assistant turn); each completion starts with it
            comps = generate(
                model,
                tok,
                list(test.prompts),
                max_new_tokens=budget,
                batch_size=cfg.batch_size,
                prefix=prefix,
                finish=finish,
            )
        correct = {
            e.id: bool(task.score(c, e.answer).correct) for e, c in zip(test.examples, comps, strict=True)
        }
        ends = {e.id: f for e, f in zip(test.examples, finish, strict=True)}
        cache.parent.mkdir(parents=True, exist_ok=True)
        ends_cache.write_text(json.dumps(ends))
        cache.write_text(json.dumps(correct))
    # the share of forced completions the budget cut off (NaN when unknown)
    budget_share = float(np.mean([f == "budget" for f in ends.values()])) if ends else float("nan")
    F = pd.Series(correct, dtype=float)
    test_df = sweep_df[(sweep_df.split == cfg.test_split) & (sweep_df.control == "none")]
    base_acc = test_df[test_df.variant == "base"].set_index("prompt_id").correct
    rows = []
    for v in variants:
        if v == "base":
            continue
        t = test_df[test_df.variant == v].set_index("prompt_id").correct
        ids = F.index.intersection(base_acc.index).intersection(t.index)
        Fv, B, T = (
            F.loc[ids].to_numpy(),
            base_acc.loc[ids].to_numpy().astype(float),
            t.loc[ids].to_numpy().astype(float),
        )
        gr = gap_recovered(Fv.mean(), B.mean(), T.mean())
        lo, hi = gr_ci(Fv, B, T, cfg.seed)
        rows.append(
            BatteryRow.make(
                TestId.FORCED_FORMAT,
                v,
                task.name,
                None,
                "prefill:" + task.format_prefix,
                gr,
                float("nan"),
                lo,
                hi,
                len(ids),
                f"base {B.mean():.2f} -> forced '{task.format_prefix}' {Fv.mean():.2f} vs {v} {T.mean():.2f}",
                acc_base=B.mean(),
                acc_tuned=T.mean(),
                acc_intervention=Fv.mean(),
                **floored(Fv, B, T, chance_level(task), cfg.seed),
                budget_share=budget_share,
            )
        )
    return rows
