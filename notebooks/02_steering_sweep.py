# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A steering sweep
#
# A grid over layers × alphas × positions on the base, with a norm-matched random direction at every setting;
# resumable and shardable (`elicit sweep CONFIG.toml --shard i/n`). Settings are chosen on `dev` and reported
# on `test`.

# %%
import os
from pathlib import Path

from probes.organism import organism_family

# The organism family (seed 0). The first call trains it (~6 min on 2 CPU cores), later calls load
# it from the cache. The test suite points ELICIT_ORGANISM at the small quick organism.
FAMILY_DIR = Path(os.environ.get("ELICIT_ORGANISM") or organism_family())
OUT = Path(os.environ.get("ELICIT_NB_OUT", "nb-out"))
OUT.mkdir(parents=True, exist_ok=True)

# %%
from probes import load_family
from steering.sweep import SweepConfig, VectorSpec, run_sweep, summarize_sweep

fam = load_family(FAMILY_DIR)
cfg = SweepConfig(
    family=str(FAMILY_DIR),
    task="parity",
    variants=("base",),
    baselines=("dpo", "create"),
    vectors=(
        VectorSpec(name="careful-direct", contrast=("careful", "direct"), position="match:=", split="train"),
    ),
    layers=(0, 1, 2),
    alphas=(0.0, 1.0, 2.0, 4.0, 8.0),
    positions=("match:=", "all"),
    label="neutral",
    splits=("dev", "test"),
    max_prompts=48,
    out=str(OUT / "sweep.jsonl"),
)
rows = run_sweep(cfg, family=fam)
rows.head()

# %% [markdown]
# Per-prompt outcomes are kept (Tan et al. 2024: report the distribution, not just the mean).

# %%
summary = summarize_sweep(rows, tuned=["dpo"])
summary[
    [
        "position",
        "layer",
        "alpha",
        "dev_acc",
        "test_acc",
        "test_lo",
        "test_hi",
        "random_acc",
        "unsteered_acc",
        "flipped_to_correct",
        "flipped_to_wrong",
        "gap_recovered[dpo]",
    ]
]

# %%
from probes.plots.sweep import steering_sweep

fig = steering_sweep(rows.assign(task="parity"), position="match:=")
fig

# %% [markdown]
# Adding the vector at *all* positions instead of the decision token:

# %%
fig = steering_sweep(rows.assign(task="parity"), position="all")
fig
