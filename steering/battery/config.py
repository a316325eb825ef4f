"""Settings of the battery, and the prompt subsets every test draws from them."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from probes.data.tasks import Example, Task
from probes.errors import ElicitError
from probes.models.config_keys import check_keys
from probes.models.family import ModelFamily

__all__ = [
    "BatteryConfig",
    "subset",
    "balanced",
    "contrast_fit",
    "chance_level",
    "default_layers",
    "steering_layers",
    "DEFAULT_LAYER_COUNT",
    "MIN_SPLIT",
]

#: how many layers the steering sweep searches when the family file names none
DEFAULT_LAYER_COUNT = 5
#: a dev or test split with fewer evaluated prompts than this is flagged in the report: at 32
#: prompts a 95% interval of an accuracy near 0.5 is about +/- 0.17 wide, more than ``min_gap``
MIN_SPLIT = 32


def default_layers(n_layers: int, k: int = DEFAULT_LAYER_COUNT) -> tuple[int, ...]:
    """The layers the steering sweep searches when none are named: every layer of a model with
    at most ``k`` (the organism's 3), else ``k`` evenly spaced from 25% to 75% depth, rounded
    (16 layers: 4, 6, 8, 9, 11; 30 layers: 7, 11, 15, 18, 22).

    >>> default_layers(3), default_layers(16), default_layers(30)
    ((0, 1, 2), (4, 6, 8, 9, 11), (7, 11, 15, 18, 22))
    """
    if n_layers < 1:
        raise ElicitError(f"A model needs at least one layer to steer, got n_layers={n_layers}.")
    if n_layers <= k:
        return tuple(range(n_layers))
    last = n_layers - 1
    picks = [int(math.floor(last * (0.25 + 0.5 * i / (k - 1)) + 0.5)) for i in range(k)]
    return tuple(sorted(set(picks)))


def steering_layers(cfg: BatteryConfig, n_layers: int) -> tuple[int, ...]:
    """``cfg.layers`` checked against the model's ``n_layers``, or :func:`default_layers`."""
    if cfg.layers is None:
        return default_layers(n_layers)
    bad = [layer for layer in cfg.layers if not 0 <= layer < n_layers]
    if bad:
        raise ElicitError(
            f"Battery layers {bad} are outside the model's layers 0-{n_layers - 1}. Set [battery] layers "
            f"(or --layers) to layers in 0-{n_layers - 1}, or leave them out for {list(default_layers(n_layers))}."
        )
    return cfg.layers


@dataclass(frozen=True)
class BatteryConfig:
    """Settings of the battery; defaults fit the organism and read the family file's
    ``[battery]`` table (unknown keys are errors)."""

    reference_task: str | None = None
    contrast: tuple[str, str] = ("careful", "direct")
    eval_label: str | None = "neutral"
    decision: str = "match:="
    computation: str | None = "span:scratchpad"
    #: the steering sweep's layers; ``None``: :func:`default_layers` (a handful from 25% to 75% depth)
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
    #: principal directions of the base's activations whose span the direction test's span share reads
    span_k: int = 8
    #: SAE and crosscoder schedules: the first run's steps, doubled until the training FVU plateaus
    #: or the next run would exceed ``dict_max_steps`` (probes.dictionaries.training.until_converged)
    dict_steps: int = 500
    dict_max_steps: int = 4000
    #: norm-matched random directions of the steering null, each given the vector's dev search
    n_random: int = 20
    seed: int = 0
    batch_size: int = 512
    #: generation budget of the steering sweep and the forced format; ``None``: the task's own
    max_new_tokens: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "max_dev",
            "max_test",
            "max_fit",
            "batch_size",
            "span_k",
            "dict_steps",
            "dict_max_steps",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ElicitError(f"Battery setting {name} must be an integer >= 1, got {v!r}.")
        if self.max_new_tokens is not None and (
            isinstance(self.max_new_tokens, bool)
            or not isinstance(self.max_new_tokens, int)
            or self.max_new_tokens < 1
        ):
            raise ElicitError(
                f"Battery setting max_new_tokens must be an integer >= 1 (or left out for the task's own), "
                f"got {self.max_new_tokens!r}."
            )
        if self.layers is not None and (
            not self.layers
            or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in self.layers)
        ):
            raise ElicitError(
                f"Battery setting layers must be non-negative layer indices (e.g. [4, 6, 8]) or left out, "
                f"got {self.layers!r}."
            )
        if not self.alphas or any(isinstance(a, bool) or not isinstance(a, int | float) for a in self.alphas):
            raise ElicitError(
                f"Battery setting alphas must be numbers (e.g. [0, 0.25, 0.5]), got {self.alphas!r}."
            )
        if not any(a != 0 for a in self.alphas):
            raise ElicitError(
                f"Battery setting alphas needs a nonzero strength to steer with (alpha 0 is no push), got {self.alphas!r}."
            )

    @classmethod
    def from_family(cls, family: ModelFamily, **overrides: Any) -> BatteryConfig:
        """The family file's ``[battery]`` table with ``overrides`` (the CLI's flags) on top,
        validated alike: unknown keys are errors, naming the valid ones."""
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
