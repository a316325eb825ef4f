"""Settings of the battery, and the prompt subsets every test draws from them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from probes.data.tasks import Example, Task
from probes.errors import ElicitError
from probes.models.config_keys import check_keys
from probes.models.family import ModelFamily

__all__ = ["BatteryConfig", "subset", "balanced", "contrast_fit", "chance_level"]


@dataclass(frozen=True)
class BatteryConfig:
    """Settings of the battery; defaults fit the organism and read the family file's
    ``[battery]`` table (unknown keys are errors)."""

    reference_task: str | None = None
    contrast: tuple[str, str] = ("careful", "direct")
    eval_label: str | None = "neutral"
    decision: str = "match:="
    computation: str | None = "span:scratchpad"
    layers: tuple[int, ...] | None = None
    #: steering strengths in ``units``: with ``resid_norm`` alpha 1 is a push as long as the layer's
    #: mean residual vector. Measured on the organism (seed 0, layers 0-2, 48 neutral dev prompts):
    #: the reasoning direction flips the base into its scratchpad mode from 0.125-0.25 residual
    #: norms on (median next-token KL 0.2-1.2 nats), while no one of 20 random directions flips a
    #: prompt up to 0.5 residual norms (median KL <= 0.01); at 1 residual norm 2 of the 20 do; in
    #: the old vector units (alpha 1 = 1.55 residual norms at layer 0) most pushes from alpha 1 on
    #: flip the mode whatever their direction. The grid stops at half a residual norm.
    alphas: tuple[float, ...] = (0.0, 0.125, 0.25, 0.5)
    units: str = "resid_norm"
    dev_split: str = "dev"
    test_split: str = "test"
    fit_split: str = "train"
    max_dev: int = 48
    max_test: int = 96
    max_fit: int = 192
    n_shuffles: int = 20
    #: norm-matched random directions of the steering null, each given the vector's dev search
    n_random: int = 20
    seed: int = 0
    batch_size: int = 512

    @classmethod
    def from_family(cls, family: ModelFamily, **overrides: Any) -> BatteryConfig:
        table = dict(getattr(family, "settings", {}).get("battery", {}))
        table.update(overrides)
        check_keys(
            table,
            (f.name for f in dataclasses.fields(cls)),
            f"the [battery] table of family {family.name!r}",
            what="battery setting",
        )
        for k in ("contrast", "layers", "alphas"):
            if isinstance(table.get(k), list):
                table[k] = tuple(table[k])
        return cls(**table)


def subset(task: Task, split: str, label: str | None, n: int) -> Task:
    """The first ``n`` prompts of ``split`` with ``label``. A task whose prompts carry no labels
    at all is used whole; a labelled task without ``label`` is an error (never a silent fallback
    to every label)."""
    labels = {e.label for e in task.examples if e.label is not None}
    if label is not None and labels and label not in labels:
        raise ElicitError(
            f"Task {task.name!r} has no prompts labelled {label!r} (labels: {sorted(labels)}). Set "
            "eval_label in the family's [battery] table to one of them (or to nothing to use every prompt), "
            "or label the evaluation prompts."
        )
    return task.filter(split=split, label=label if labels else None).head(n)


def balanced(task: Task, contrast: Sequence[str], n: int) -> list[Example]:
    per = max(2, n // len(contrast))
    out = []
    for c in contrast:
        out += [e for e in task.examples if e.label == c][:per]
    return out


def contrast_fit(ref: Task, cfg: BatteryConfig) -> Task:
    """The prompts a contrast direction is fitted on: the reference task's fit split, the two
    contrast labels, at most ``max_fit`` balanced between them."""
    fit = ref.filter(split=cfg.fit_split, label=list(cfg.contrast))
    return fit.with_examples(balanced(fit, cfg.contrast, cfg.max_fit))


def chance_level(task: Task) -> float:
    """Accuracy of uniform guessing among the task's distinct answers (parity 1/2, mod 3 1/3)."""
    return 1.0 / max(1, len({e.answer for e in task.examples}))
