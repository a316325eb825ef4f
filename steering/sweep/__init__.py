"""Steering sweeps: a grid over variants x vectors x layers x alphas x positions.

A sweep is read from TOML (:meth:`SweepConfig.from_toml`; unknown keys are errors)::

    family = "organism"            # family file / folder / 'organism'
    task = "parity"                # a task declared by the family, or a JSONL path
    variants = ["base"]            # steered
    baselines = ["dpo", "create"]  # evaluated unsteered (for gap recovered)
    layers = [0, 1, 2]
    alphas = [0.0, 1.0, 2.0, 4.0]
    positions = ["match:=", "all"]
    label = "neutral"              # which prompts are evaluated
    splits = ["dev", "test"]       # settings chosen on the first, reported on the second
    [[vectors]]
    name = "careful-direct"
    variant = "base"
    contrast = ["careful", "direct"]
    position = "match:="
    split = "train"

Every (layer, alpha, position) also runs a norm-matched random direction (the mandatory
control, docs/design.md). ``config`` holds what a sweep runs, ``run`` runs it resumably and in
shards, ``rows`` is its file on disk, ``summary`` chooses on dev and reports on test.
"""

from steering.sweep.config import SweepConfig, VectorSpec, resolve_task
from steering.sweep.rows import merge_shards, read_rows
from steering.sweep.run import fit_vectors, run_sweep
from steering.sweep.summary import DevChoice, choose_setting, gap_recovered, summarize_sweep

__all__ = [
    "VectorSpec",
    "SweepConfig",
    "run_sweep",
    "read_rows",
    "merge_shards",
    "summarize_sweep",
    "gap_recovered",
    "choose_setting",
    "DevChoice",
    "resolve_task",
    "fit_vectors",
]
