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
# # Walkthrough: load a family, collect, steer, read the report
#
# The organism is a tiny Llama-style family trained on CPU with planted ground truth: its base can do 9-bit
# parity with a running-count scratchpad (careful sources) but rarely chooses to on neutral prompts.
# Post-training either *selects* that latent mode (`sft`, `dpo`, `rl`) or *creates* a new ability (`create`,
# `create_far`).

# %%
import os
from pathlib import Path

from probes.organism import organism_family

# The organism family (seed 0). The first call trains it (~6 min on 2 CPU cores), later calls load
# it from the cache. The test suite points ELICIT_ORGANISM at the small quick organism.
FAMILY_DIR = Path(os.environ.get("ELICIT_ORGANISM") or organism_family())
OUT = Path(os.environ.get("ELICIT_NB_OUT", "nb-out"))
OUT.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## 1. The family
# `load_family` reads `family.toml`; one variant is in memory at a time.

# %%
from probes import load_family

fam = load_family(FAMILY_DIR)
print(fam.variants)
task = fam.load_task("parity")
print(len(task), "prompts;", task.examples[0])

# %% [markdown]
# ## 2. Activations at the decision token and inside the scratchpad
# The store is safetensors shards on disk, reused on a rerun.

# %%
from probes import collect_activations

sub = task.filter(split="train", label=["careful", "direct"]).head(64)
acts = collect_activations(
    fam,
    sub,
    "resid_post:all",
    ["match:=", "span:scratchpad"],
    variants=["base", "dpo"],
    text="prompt+trace",
    out=OUT / "acts",
)
acts

# %% [markdown]
# ## 3. The base's reasoning direction, and steering with it
# Difference of means (CAA) of careful minus direct at `=`; greedy completions of neutral test prompts,
# plain and with the vector added at the decision token of the last layer.

# %%
from probes.decoding.sampling import sample_task
from steering import fit_vector
from steering.intervention import steering_intervention

vec = fit_vector(acts, "base", "resid_post:all", ("careful", "direct"), position="match:=")
neutral = task.filter(split="test", label="neutral").head(32)
steer = steering_intervention(vec, layers=[vec.layers[-1]], alpha=4.0, positions="match:=")
with fam.open("base") as model:
    plain = sample_task(model, model.tokenizer, neutral, variant="base")
    steered = sample_task(model, model.tokenizer, neutral, variant="base", intervention=steer)
print(
    f"base on neutral prompts: {plain.correct.mean():.2f}; steered at the decision token: {steered.correct.mean():.2f}"
)
print("example:", neutral.examples[0].prompt, "->", steered.completion[0])
vec

# %% [markdown]
# ## 4. The report
# `run_report` runs the whole battery (steering with dev/test protocol and random controls, forced format,
# direction and probe transfer, weight geometry) and writes `report.md`, `report.json`, tables and figures.

# %%
from steering.battery import BatteryConfig
from steering.report import run_report

report = run_report(
    fam,
    out=OUT / "report",
    variants=["dpo", "create"],
    config=BatteryConfig(max_dev=24, max_test=48, alphas=(0.0, 2.0, 4.0, 8.0)),
)
report

# %%
from IPython.display import Image, Markdown, display

display(Markdown((OUT / "report" / "report.md").read_text().split("## The verdict rule")[0]))
display(Image(filename=str(OUT / "report" / "figures" / "gap_recovered.png"), width=400))
