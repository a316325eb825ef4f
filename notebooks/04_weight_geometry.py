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
# # Weight geometry: where did post-training move the weights?
#
# Streams the two checkpoints tensor by tensor (never two models in memory): relative update norm, stable rank,
# sparsity, overlap with the base's principal subspaces, and alignment of residual-writing updates with the
# base's reasoning direction.

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
from probes.weights.family_updates import family_weight_diff
from probes.weights.geometry import summarize_weight_diff, update_cosine

fam = load_family(FAMILY_DIR)
table = family_weight_diff(fam, ["sft", "dpo", "rl", "create"])
table.query("variant == 'dpo'")[
    ["name", "layer", "component", "rel_norm", "stable_rank", "overlap@4", "updated@1e-05", "svd_method"]
].head(12)

# %%
summarize_weight_diff(table, by=["variant", "component"])

# %% [markdown]
# Per layer: relative update norm, stable rank of ΔW and its overlap with the base's top-4 singular subspaces.

# %%
from probes.plots.weights import weight_geometry

fig = weight_geometry(table)
fig

# %%
cos = update_cosine(fam, "sft", "dpo")
cos.head()
