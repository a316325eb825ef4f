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
# # Bring your own family (OLMo 2, Tulu 3, Qwen2.5)
#
# Everything the organism does runs on a real family. What changes:
#
# 1. **A family file.** `configs/families/olmo2-1b.toml` (base / SFT / DPO / RLVR), `tulu3-llama31-8b.toml`,
#    `qwen25-7b-orz.toml` ship with the kit, complete: each variant's prompt protocol (`[variants.NAME.prompt]`:
#    chat template, system prompt, BOS, stop strings, prefill, k-shot), the task and a `[battery]` table. Hub
#    ids are resolved through the local Hugging Face cache or `load_family(..., checkpoints=DIR)` (folders
#    `DIR/owner/name`); with `HF_HUB_OFFLINE=1` an id that is not cached fails at once, saying how to pass a
#    local folder.
# 2. **A task with a contrast.** A JSONL file: `question`, `answer` (GSM8K `#### 42` style parsed by the
#    `gsm8k` scorer). Either `contrast = "cot_vs_direct"` in its task table (the shipped files: each question
#    becomes a `careful` "Let's think step by step." prompt and a `direct` one, held-out questions stay
#    `neutral`, no labels needed), or a `label` per line for your own contrast (below: `reasoning` /
#    `direct`) and a `split` (`train` / `dev` / `test`).
# 3. **A GPU and a dtype.** `load_family(path, device="cuda", dtype=torch.bfloat16)`; `device_map="auto"`
#    spreads an 8B model over several GPUs. Nothing is cast or moved silently.
# 4. **Battery settings.** Add a `[battery]` table to the family file: `contrast = ["reasoning", "direct"]`,
#    `eval_label = "direct"`, `decision = "last"`, `computation = ""` (or a span your traces define),
#    `layers = [8, 12, 16]`.
#
# Below, the same code runs on a stand-in family built from tiny random OLMo 2 checkpoints (so this notebook
# runs anywhere): `standin_family` writes one checkpoint folder per variant and a toy GSM8K-style `gsm.jsonl`.

# %%
import tempfile
from pathlib import Path

from probes.models.standin import standin_family

root = standin_family(Path(tempfile.mkdtemp()), variants=("base", "sft", "dpo"), model_type="olmo2")
print(sorted(p.name for p in root.iterdir()))
print((root / "gsm.jsonl").read_text().splitlines()[1])

# %% [markdown]
# A family file pointing at local folders (swap in `allenai/OLMo-2-0425-1B` etc. on a machine with the weights):

# %%
from probes import load_family

(root / "family.toml").write_text("""
name = "stand-in"
[variants.base]
path = "base"
[variants.sft]
path = "sft"
task = "gsm8k"
[variants.dpo]
path = "dpo"
task = "gsm8k"
[tasks.gsm8k]
path = "gsm.jsonl"
scorer = "gsm8k"
prompt_field = "question"
max_new_tokens = 8
[battery]
contrast = ["reasoning", "direct"]
eval_label = "direct"
decision = "last"
computation = ""
""")
fam = load_family(root)
task = fam.load_task("gsm8k")
fam.variants, task.examples[0]

# %%
from probes import collect_activations
from steering import fit_vector

acts = collect_activations(fam, task.filter(split="train"), "resid_post:all", "last", out=root / "acts")
vec = fit_vector(acts, "base", "resid_post:all", ("reasoning", "direct"), position="last")
vec

# %% [markdown]
# Real ids fail fast offline, with the fix in the message:

# %%
import os

os.environ["HF_HUB_OFFLINE"] = "1"
try:
    load_family("../configs/families/olmo2-1b.toml")
except Exception as err:
    print(type(err).__name__, ":", err)
