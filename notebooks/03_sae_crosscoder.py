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
# # SAE features and crosscoder diffing
#
# Does the tuned model run on the base's features (selection) or on new ones (creation)? Two instruments: a
# base SAE spliced into each variant (Kissane et al. 2024), and a crosscoder trained on base and variant
# activations together (Lindsey et al. 2024; Minder et al. 2025, BatchTopK).

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
from probes import collect_activations, load_family
from probes.dictionaries.sae import decoder_direction, latent_shifts, sae_transfer, train_sae

fam = load_family(FAMILY_DIR)
task = fam.load_task("parity")
fit = task.filter(split="train").head(96)
acts = collect_activations(
    fam, fit, "resid_post.1", "all", variants=["base", "dpo", "create"], text="prompt+trace", out=OUT / "acts"
)
sae = train_sae(
    acts,
    "base",
    "resid_post.1",
    "all",
    architecture="batchtopk",
    d_sae=512,
    k=16,
    steps=300,
    lr=1e-3,
    out=OUT / "sae",
)
sae

# %% [markdown]
# FVU, L0 and CE-loss recovered with the base SAE spliced into each variant (zero-ablation baseline), with
# bootstrap CIs over prompts:

# %%
test = task.filter(split="test", label="neutral").head(32)
transfer = sae_transfer(
    fam, sae, test, "resid_post.1", variants=["base", "dpo", "create"], text="prompt+trace", n_resamples=300
)
transfer[["variant", "fvu", "fvu_lo", "fvu_hi", "l0", "ce_recovered", "ce_recovered_lo", "ce_recovered_hi"]]

# %% [markdown]
# Which base latents change firing rate in the tuned model, and which separate careful from direct prompts?

# %%
shifts = latent_shifts(acts, sae, "resid_post.1", "all", variants=["dpo", "create"])
shifts.sort_values("shift_rank").head(8)

# %% [markdown]
# Any latent's decoder row is a steering vector:

# %%
from steering import SteeringVector

top = int(shifts.sort_values("shift_rank").iloc[0]["latent"])
vec = SteeringVector.from_direction(decoder_direction(sae, top), layer=1, name=f"sae-latent-{top}")
vec

# %% [markdown]
# ## Crosscoder: shared, base-only and variant-only latents
# One crosscoder per variant with the base, on the same token rows; the counts per class:

# %%
from probes.dictionaries.family_crosscoders import family_crosscoders

crosscoders = family_crosscoders(
    acts, "resid_post.1", "all", variants=["dpo", "create"], d_sae=512, k=8, steps=300, lr=1e-3
)
crosscoders.summary

# %% [markdown]
# Relative decoder norm Δ = ‖d_variant‖ / (‖d_base‖ + ‖d_variant‖) of the live latents (Δ > 0.9: variant-only,
# Δ < 0.1: base-only):

# %%
from probes.plots.dictionaries import crosscoder_norms

fig = crosscoder_norms(crosscoders.latents)
fig
