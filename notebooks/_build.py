"""Writes the notebooks from their cell sources (run: python notebooks/_build.py).

Notebooks import, configure and plot; every loop over data lives in the packages.
The test suite executes each notebook on the quick organism (ELICIT_ORGANISM points at it).
"""

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).parent

SETUP = '''import os
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from probes.organism import organism_family

# The organism family (seed 0). The first call trains it (~6 min on 2 CPU cores), later calls load
# it from the cache. The test suite points ELICIT_ORGANISM at the small quick organism.
FAMILY_DIR = Path(os.environ.get("ELICIT_ORGANISM") or organism_family())
OUT = Path(os.environ.get("ELICIT_NB_OUT", "nb-out"))
OUT.mkdir(parents=True, exist_ok=True)'''


def nb(title: str, cells: list[tuple[str, str]]) -> nbf.NotebookNode:
    book = nbf.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    book.cells = [nbf.v4.new_markdown_cell(title)]
    for kind, src in cells:
        book.cells.append(nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src))
    return book


WALKTHROUGH = nb(
    "# Walkthrough: load a family, collect, steer, read the report\n\n"
    "The organism is a tiny Llama-style family trained on CPU with planted ground truth: its base can do 9-bit parity "
    "with a running-count scratchpad (careful sources) but rarely chooses to on neutral prompts. Post-training either "
    "*selects* that latent mode (`sft`, `dpo`, `rl`) or *creates* a new ability (`create`, `create_far`).",
    [
        ("code", SETUP),
        ("md", "## 1. The family\n`load_family` reads `family.toml`; one variant is in memory at a time."),
        ("code", '''from probes import load_family

fam = load_family(FAMILY_DIR)
print(fam.variants)
task = fam.load_task("parity")
print(len(task), "prompts;", task.examples[0])'''),
        ("md", "## 2. Activations at the decision token and inside the scratchpad\nThe store is safetensors shards on disk, reused on a rerun."),
        ("code", '''from probes import collect_activations

sub = task.filter(split="train", label=["careful", "direct"]).head(64)
acts = collect_activations(fam, sub, "resid_post:all", ["match:=", "span:scratchpad"],
                           variants=["base", "dpo"], text="prompt+trace", out=OUT / "acts")
acts'''),
        ("md", "## 3. The base's reasoning direction, and steering with it\nDifference of means (CAA) of careful minus direct at `=`."),
        ("code", '''from probes.models.generation import generate
from steering import apply, fit_vector

vec = fit_vector(acts, "base", "resid_post:all", ("careful", "direct"), position="match:=")
neutral = task.filter(split="test", label="neutral").head(32)
with fam.open("base") as model:
    plain = generate(model, model.tokenizer, list(neutral.prompts), max_new_tokens=task.max_new_tokens)
    steer = lambda m, batch: apply(m, vec, layers=[vec.layers[-1]], alpha=4.0, positions="match:=")
    steered = generate(model, model.tokenizer, list(neutral.prompts), max_new_tokens=task.max_new_tokens, intervention=steer)
acc = lambda comps: sum(task.score(c, e.answer).correct for c, e in zip(comps, neutral.examples)) / len(comps)
print(f"base on neutral prompts: {acc(plain):.2f}; steered at the decision token: {acc(steered):.2f}")
print("example:", neutral.examples[0].prompt, "->", steered[0])
vec'''),
        ("md", "## 4. The report\n`run_report` runs the whole battery (steering with dev/test protocol and random controls, forced format, "
               "direction and probe transfer, weight geometry) and writes `report.md`, `report.json`, tables and figures."),
        ("code", '''from steering.battery import BatteryConfig
from steering.report import run_report

report = run_report(fam, out=OUT / "report", variants=["dpo", "create"],
                    config=BatteryConfig(max_dev=24, max_test=48, alphas=(0.0, 2.0, 4.0, 8.0)))
report'''),
        ("code", '''from IPython.display import Image, Markdown, display

display(Markdown((OUT / "report" / "report.md").read_text().split("## The verdict rule")[0]))
display(Image(filename=str(OUT / "report" / "figures" / "gap_recovered.png"), width=400))'''),
    ],
)

SWEEP = nb(
    "# A steering sweep\n\nA grid over layers × alphas × positions on the base, with a norm-matched random direction at "
    "every setting; resumable and shardable (`elicit sweep CONFIG.toml --shard i/n`). Settings are chosen on `dev` and "
    "reported on `test`.",
    [
        ("code", SETUP),
        ("code", '''from probes import load_family
from steering.sweep import SweepConfig, VectorSpec, run_sweep, summarize_sweep

fam = load_family(FAMILY_DIR)
cfg = SweepConfig(
    family=str(FAMILY_DIR), task="parity", variants=("base",), baselines=("dpo", "create"),
    vectors=(VectorSpec(name="careful-direct", contrast=("careful", "direct"), position="match:=", split="train"),),
    layers=(0, 1, 2), alphas=(0.0, 1.0, 2.0, 4.0, 8.0), positions=("match:=", "all"),
    label="neutral", splits=("dev", "test"), max_prompts=48, out=str(OUT / "sweep.jsonl"),
)
rows = run_sweep(cfg, family=fam)
rows.head()'''),
        ("md", "Per-prompt outcomes are kept (Tan et al. 2024: report the distribution, not just the mean)."),
        ("code", '''summary = summarize_sweep(rows, tuned=["dpo"])
summary[["position", "layer", "alpha", "dev_acc", "test_acc", "test_lo", "test_hi", "random_acc", "unsteered_acc",
         "flipped_to_correct", "flipped_to_wrong", "gap_recovered[dpo]"]]'''),
        ("code", '''from probes.plots.figures import steering_sweep

fig = steering_sweep(rows.assign(task="parity"), position="match:=")
fig'''),
        ("md", "Adding the vector at *all* positions instead of the decision token:"),
        ("code", '''fig = steering_sweep(rows.assign(task="parity"), position="all")
fig'''),
    ],
)

SAE = nb(
    "# SAE features and crosscoder diffing\n\nDoes the tuned model run on the base's features (selection) or on new "
    "ones (creation)? Two instruments: a base SAE spliced into each variant (Kissane et al. 2024), and a crosscoder "
    "trained on base and variant activations together (Lindsey et al. 2024; Minder et al. 2025, BatchTopK).",
    [
        ("code", SETUP),
        ("code", '''from probes import collect_activations, load_family
from probes.dictionaries.sae import decoder_direction, latent_shifts, sae_transfer, train_sae

fam = load_family(FAMILY_DIR)
task = fam.load_task("parity")
fit = task.filter(split="train").head(96)
acts = collect_activations(fam, fit, "resid_post.1", "all", variants=["base", "dpo", "create"],
                           text="prompt+trace", out=OUT / "acts")
sae = train_sae(acts, "base", "resid_post.1", "all", architecture="batchtopk", d_sae=512, k=16, steps=300, lr=1e-3,
                out=OUT / "sae")
sae'''),
        ("md", "FVU, L0 and CE-loss recovered with the base SAE spliced into each variant (zero-ablation baseline), with "
               "bootstrap CIs over prompts:"),
        ("code", '''test = task.filter(split="test", label="neutral").head(32)
transfer = sae_transfer(fam, sae, test, "resid_post.1", variants=["base", "dpo", "create"], text="prompt+trace",
                        n_resamples=300)
transfer[["variant", "fvu", "fvu_lo", "fvu_hi", "l0", "ce_recovered", "ce_recovered_lo", "ce_recovered_hi"]]'''),
        ("md", "Which base latents change firing rate in the tuned model, and which separate careful from direct prompts?"),
        ("code", '''shifts = latent_shifts(acts, sae, "resid_post.1", "all", variants=["dpo", "create"])
shifts.sort_values("shift_rank").head(8)'''),
        ("md", "Any latent's decoder row is a steering vector:"),
        ("code", '''from steering import SteeringVector

top = int(shifts.sort_values("shift_rank").iloc[0]["latent"])
vec = SteeringVector.from_direction(decoder_direction(sae, top), layer=1, name=f"sae-latent-{top}")
vec'''),
        ("md", "## Crosscoder: shared, base-only and variant-only latents"),
        ("code", '''from probes.dictionaries.crosscoder import crosscoder_latents, crosscoder_summary, train_crosscoder

summaries = {}
for v in ["dpo", "create"]:
    cc = train_crosscoder(acts, "base", v, "resid_post.1", "all", d_sae=512, k=8, steps=300, lr=1e-3)
    lat = crosscoder_latents(cc, acts)
    summaries[v] = (lat, crosscoder_summary(lat))
import pandas as pd
pd.concat({v: s for v, (_, s) in summaries.items()})'''),
        ("code", '''fig, ax = plt.subplots(figsize=(3.4, 2.2))
for v, (lat, _) in summaries.items():
    alive = lat[lat.alive] if "alive" in lat else lat
    ax.hist(alive.rel_norm, bins=20, range=(0, 1), histtype="step", label=v)
ax.set_xlabel("relative decoder norm Δ = ‖d_variant‖ / (‖d_base‖ + ‖d_variant‖)"); ax.set_ylabel("latents"); ax.legend()
fig'''),
    ],
)

WEIGHTS = nb(
    "# Weight geometry: where did post-training move the weights?\n\nStreams the two checkpoints tensor by tensor "
    "(never two models in memory): relative update norm, stable rank, sparsity, overlap with the base's principal "
    "subspaces, and alignment of residual-writing updates with the base's reasoning direction.",
    [
        ("code", SETUP),
        ("code", '''from probes import load_family
from probes.weights.geometry import summarize_weight_diff, update_cosine, weight_diff

fam = load_family(FAMILY_DIR)
tables = {v: weight_diff(fam, v) for v in ["sft", "dpo", "rl", "create"]}
tables["dpo"][["name", "layer", "component", "rel_norm", "stable_rank", "overlap@4", "updated@1e-05", "svd_method"]].head(12)'''),
        ("code", '''import pandas as pd

summary = pd.concat({v: summarize_weight_diff(t) for v, t in tables.items()}, names=["variant"])
summary'''),
        ("code", '''fig, ax = plt.subplots(figsize=(3.4, 2.2))
for v, t in tables.items():
    mats = t[t.component.isin(["q", "k", "v", "o", "gate", "up", "down"])]
    ax.plot(mats.groupby("layer").rel_norm.mean(), marker="o", label=v)
ax.set_xlabel("layer"); ax.set_ylabel("mean ‖ΔW‖_F / ‖W‖_F"); ax.legend()
fig'''),
        ("code", '''cos = update_cosine(fam, "sft", "dpo")
cos.head()'''),
    ],
)

BYO = nb(
    "# Bring your own family (OLMo 2, Tulu 3, Qwen2.5)\n\n"
    "Everything the organism does runs on a real family. What changes:\n\n"
    "1. **A family file.** `configs/families/olmo2-1b.toml` (base / SFT / DPO / RLVR), "
    "`tulu3-llama31-8b.toml`, `qwen25-7b-orz.toml` ship with the kit. Hub ids are resolved through the local Hugging "
    "Face cache; with `HF_HUB_OFFLINE=1` an id that is not cached fails at once, saying how to pass a local folder.\n"
    "2. **A task with a contrast.** A JSONL file: `question`, `answer` (GSM8K `#### 42` style parsed by the `gsm8k` "
    "scorer), a `label` for the contrast (e.g. `reasoning` = prompt ending in \"Let's think step by step\", `direct` = "
    "\"Answer:\") and a `split` (`train` / `dev` / `test`).\n"
    "3. **A GPU and a dtype.** `load_family(path, device=\"cuda\", dtype=torch.bfloat16)`; `device_map=\"auto\"` spreads an "
    "8B model over several GPUs. Nothing is cast or moved silently.\n"
    "4. **Battery settings.** Add a `[battery]` table to the family file: `contrast = [\"reasoning\", \"direct\"]`, "
    "`eval_label = \"direct\"`, `decision = \"last\"`, `computation = \"\"` (or a span your traces define), `layers = [8, 12, 16]`.\n\n"
    "Below, the same code runs on a stand-in family built from tiny random checkpoints (so this notebook runs anywhere).",
    [
        ("code", '''import json, tempfile
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from probes import load_family, resolve_checkpoint, Task

root = Path(tempfile.mkdtemp())
vocab = {t: i for i, t in enumerate(["<pad>", "<bos>", "<eos>", "<unk>"] + [str(d) for d in range(10)] + list("+=?#") + ["Q", "A"])}
tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
tk.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>")
cfg = transformers.Olmo2Config(vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                               num_attention_heads=4, num_key_value_heads=4, bos_token_id=1, eos_token_id=2, pad_token_id=0)
for i, name in enumerate(["base", "sft", "dpo"]):
    torch.manual_seed(0)
    m = transformers.AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.01 * i * torch.randn_like(p))
    m.save_pretrained(root / name); tok.save_pretrained(root / name)'''),
        ("md", "A family file pointing at local folders (swap in `allenai/OLMo-2-0425-1B` etc. on a machine with the weights):"),
        ("code", '''(root / "gsm.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "question": f"Q {i} + {i} = ?", "answer": f"# {i} + {i} #### {2 * i}",
                                                   "label": ["reasoning", "direct"][i % 2], "split": ["train", "dev", "test"][i % 3]}) + "\\n" for i in range(30)))
(root / "family.toml").write_text(\'\'\'
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
\'\'\')
fam = load_family(root)
task = fam.load_task("gsm8k")
fam.variants, task.examples[0]'''),
        ("code", '''from probes import collect_activations
from steering import fit_vector

acts = collect_activations(fam, task.filter(split="train"), "resid_post:all", "last", out=root / "acts")
vec = fit_vector(acts, "base", "resid_post:all", ("reasoning", "direct"), position="last")
vec'''),
        ("md", "Real ids fail fast offline, with the fix in the message:"),
        ("code", '''import os
os.environ["HF_HUB_OFFLINE"] = "1"
try:
    load_family("../configs/families/olmo2-1b.toml")
except Exception as err:
    print(type(err).__name__, ":", err)'''),
    ],
)


def main() -> None:
    for name, book in {
        "01_walkthrough.ipynb": WALKTHROUGH,
        "02_steering_sweep.ipynb": SWEEP,
        "03_sae_crosscoder.ipynb": SAE,
        "04_weight_geometry.ipynb": WEIGHTS,
        "05_bring_your_own_family.ipynb": BYO,
    }.items():
        nbf.write(book, HERE / name)


if __name__ == "__main__":
    main()
