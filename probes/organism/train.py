"""Training the whole organism family into a folder that ``load_family`` reads like a real one.

DESIGN.md, "The model organism". Layout written by :func:`train_family`::

    DIR/family.toml            name, [organism] (seed, quick, recipe, timings), [variants.*], [tasks.*]
    DIR/<variant>/             config.json, model.safetensors, tokenizer files
    DIR/tasks/<task>.jsonl     parity, create, create_far (splits train / dev / test)
    DIR/eval.parquet           probes.organism.evaluate.EVAL_COLUMNS

The base must pass a gate before anything is post-trained: careful-source greedy accuracy
on held-out strings at least ``Recipe.gate`` (0.95), else :class:`OrganismError` says which
knob to turn.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from probes.errors import ElicitError
from probes.organism.corpus import (
    create_far_records,
    create_records,
    noisy_preferences,
    preference_records,
    sft_records,
)
from probes.organism.pretrain import ModelConfig, PretrainConfig, pretrain, seed_everything
from probes.organism.stages import StageConfig, confidence_preferences, run_dpo, run_grpo, run_sft
from probes.organism.tasks import CREATE, CREATE_FAR, PARITY, organism_tasks
from probes.organism.world import NEUTRAL_TAG, make_splits, parity_answer, parity_prompt

__all__ = ["OrganismError", "Recipe", "recipe", "train_family", "organism_family", "VARIANTS", "default_cache"]

#: Variants in training order (the order of family.toml).
VARIANTS = ("base", "sft", "dpo", "create", "rl", "sft_answers", "dpo_conf", "dpo_noisy", "create_far")


class OrganismError(ElicitError):
    """The organism could not be trained to spec, or a cached organism is unusable."""


@dataclass(frozen=True)
class Recipe:
    """Every knob of one family build (recorded in ``family.toml``'s ``[organism]`` table)."""

    pretrain: PretrainConfig = PretrainConfig()
    model: ModelConfig = ModelConfig()
    stages: dict[str, StageConfig] = field(default_factory=dict)
    gate: float = 0.95
    noise_frac: float = 0.30
    conf_samples: int = 8
    rl_prompts: int = 64
    create_examples: int = 4096
    threads: int = 2


def recipe(quick: bool = False) -> Recipe:
    """The full recipe, or the smaller ``quick`` one used by tests."""
    if quick:
        return Recipe(
            pretrain=PretrainConfig(steps=400, batch_size=64, lr=4e-3, warmup=30),
            stages={
                "sft": StageConfig(steps=10, batch_size=32, lr=1e-3),
                "dpo": StageConfig(steps=10, batch_size=32, lr=1e-3, beta=0.1),
                "create": StageConfig(steps=100, batch_size=32, lr=3e-3),
                "rl": StageConfig(steps=10, batch_size=32, lr=5e-4, beta=0.0),
                "sft_answers": StageConfig(steps=10, batch_size=32, lr=1e-3),
                "dpo_conf": StageConfig(steps=10, batch_size=32, lr=1e-3, beta=0.1),
                "dpo_noisy": StageConfig(steps=10, batch_size=32, lr=1e-3, beta=0.1),
                "create_far": StageConfig(steps=30, batch_size=32, lr=3e-3),
            },
            gate=0.60,
            conf_samples=4,
            rl_prompts=32,
            create_examples=1600,
        )
    return Recipe(
        pretrain=PretrainConfig(steps=1000),
        stages={
            "sft": StageConfig(steps=30, batch_size=32, lr=1e-3),
            "dpo": StageConfig(steps=30, batch_size=32, lr=1e-3, beta=0.1),
            "create": StageConfig(steps=120, batch_size=32, lr=3e-3),
            "rl": StageConfig(steps=40, batch_size=32, lr=5e-4, beta=0.0),
            "sft_answers": StageConfig(steps=120, batch_size=32, lr=1e-3),
            "dpo_conf": StageConfig(steps=30, batch_size=32, lr=1e-3, beta=0.1),
            "dpo_noisy": StageConfig(steps=30, batch_size=32, lr=1e-3, beta=0.1),
            "create_far": StageConfig(steps=100, batch_size=32, lr=3e-3),
        },
    )


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _family_toml(name: str, meta: dict[str, Any], variant_tasks: dict[str, str], tasks: dict[str, Any]) -> str:
    lines = [f"name = {_toml_value(name)}", "", "[organism]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in meta.items()]
    for v, t in variant_tasks.items():
        lines += ["", f"[variants.{v}]", f"path = {_toml_value(v)}", f"task = {_toml_value(t)}"]
    for t, settings in tasks.items():
        lines += ["", f"[tasks.{t}]", f"path = {_toml_value(f'tasks/{t}.jsonl')}"]
        lines += [f"{k} = {_toml_value(x)}" for k, x in settings.items()]
    return "\n".join(lines) + "\n"


def _base_gate(base_model, parity_task, gate: float, rec: Recipe, quick: bool) -> float:
    from probes.organism.evaluate import evaluate_model

    rows = evaluate_model(base_model, parity_task.filter(label="careful"), variant="base", forced=(False,))
    acc = float(rows[rows.split == "heldout"].accuracy.iloc[0])
    if acc < gate:
        raise OrganismError(
            f"The pretrained base reaches only {acc:.2f} careful-source accuracy on held-out strings "
            f"(gate {gate:.2f}{', quick recipe' if quick else ''}); the latent reasoning mode is not there, "
            "so post-training could not be read as selecting it. Raise the pretraining budget "
            f"(Recipe.pretrain.steps, now {rec.pretrain.steps}; or batch_size, now {rec.pretrain.batch_size}) "
            f"or the careful share of the corpus (CorpusConfig.careful_frac, now "
            f"{rec.pretrain.corpus.careful_frac}), or try another --seed."
        )
    return acc


def train_family(
    out: str | Path,
    *,
    seed: int = 0,
    quick: bool = False,
    progress: bool = True,
    recipe_: Recipe | None = None,
    evaluate: bool = True,
) -> Path:
    """Train every variant of the organism into ``out`` and return the folder.

    Same seed, same machine, same thread count -> bit-identical weights. With
    ``evaluate=True`` the evaluation table is written to ``out/eval.parquet``.
    """
    from tqdm.auto import tqdm
    from transformers import LlamaForCausalLM

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_DISABLED", "true")
    rec = recipe_ or recipe(quick)
    out = Path(out).expanduser()
    if (out / "family.toml").exists() or (out.exists() and any(out.iterdir())):
        raise OrganismError(
            f"Output folder {str(out)!r} is not empty. Pass a new folder (or delete this one) so an "
            "old family is never mixed with a new one."
        )
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed, rec.threads)
    parity_sp, create_sp = make_splits(2, seed), make_splits(3, seed)
    tasks = organism_tasks(seed, quick=quick)
    for name, task in tasks.items():
        task.to_jsonl(out / "tasks" / f"{name}.jsonl")

    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    bar = tqdm(VARIANTS, desc="organism", disable=not progress)
    base_dir = out / "base"
    gate_acc = float("nan")
    for v in bar:
        bar.set_description(f"organism: {v}")
        t0 = time.perf_counter()
        if v != "base" and v not in rec.stages:
            raise OrganismError(f"The recipe has no stage settings for variant {v!r}; add Recipe.stages[{v!r}].")
        st = cast(StageConfig, rec.stages.get(v))  # None only for the base, which has no post-training stage
        rng = np.random.default_rng([seed, VARIANTS.index(v), 3])
        if v == "base":
            model = pretrain(
                base_dir, parity_sp, parity_sp, seed=seed, cfg=rec.pretrain, model_cfg=rec.model, progress=progress
            )
            gate_acc = _base_gate(model, tasks[PARITY], rec.gate, rec, quick)
            del model
        elif v == "sft":
            run_sft(base_dir, out / v, sft_records(parity_sp, trace=True), st, seed=seed, progress=progress)
        elif v == "sft_answers":
            run_sft(base_dir, out / v, sft_records(parity_sp, trace=False), st, seed=seed, progress=progress)
        elif v == "dpo":
            run_dpo(base_dir, out / v, preference_records(parity_sp), st, seed=seed, progress=progress)
        elif v == "dpo_noisy":
            pairs, _ = noisy_preferences(preference_records(parity_sp), rec.noise_frac, rng)
            run_dpo(base_dir, out / v, pairs, st, seed=seed, progress=progress)
        elif v == "dpo_conf":
            base_model = LlamaForCausalLM.from_pretrained(str(base_dir)).eval()
            prompts = [parity_prompt(NEUTRAL_TAG, b) for b in parity_sp.train]
            pairs = confidence_preferences(base_model, prompts, k=rec.conf_samples, seed=seed)
            del base_model
            if not pairs:
                raise OrganismError(
                    "The base's answer-span confidence separated no sampled completions, so dpo_conf has no "
                    f"preference pairs. Raise Recipe.conf_samples (now {rec.conf_samples})."
                )
            timings["dpo_conf_pairs"] = float(len(pairs))
            run_dpo(base_dir, out / v, pairs, st, seed=seed, progress=progress)
        elif v == "rl":
            idx = rng.choice(len(parity_sp.train), size=min(rec.rl_prompts, len(parity_sp.train)), replace=False)
            records = [
                {"prompt": parity_prompt(NEUTRAL_TAG, parity_sp.train[int(i)]),
                 "answer": parity_answer(parity_sp.train[int(i)])}
                for i in idx
            ]
            run_grpo(base_dir, out / v, records, st, seed=seed, progress=progress)
        elif v == "create":
            run_sft(base_dir, out / v, create_records(create_sp, rec.create_examples, rng), st, seed=seed,
                    progress=progress)
        elif v == "create_far":
            run_sft(base_dir, out / v, create_far_records(parity_sp), st, seed=seed, progress=progress)
        timings[v] = round(time.perf_counter() - t0, 2)
    timings["train_total"] = round(time.perf_counter() - t_all, 2)

    variant_tasks = {v: (CREATE if v == "create" else CREATE_FAR if v == "create_far" else PARITY) for v in VARIANTS}
    meta = {
        "seed": seed,
        "quick": quick,
        "threads": rec.threads,
        "base_gate_accuracy": round(gate_acc, 4),
        "recipe": json.dumps(asdict(rec), sort_keys=True),
        "seconds": timings,
    }
    name = f"organism-seed{seed}{'-quick' if quick else ''}"
    (out / "family.toml").write_text(
        _family_toml(name, meta, variant_tasks, {k: t.settings() for k, t in tasks.items()})
    )
    if evaluate:
        from probes.organism.evaluate import evaluate_family

        t0 = time.perf_counter()
        evaluate_family(out, progress=progress)
        timings["evaluate"] = round(time.perf_counter() - t0, 2)
        meta["seconds"] = timings
        (out / "family.toml").write_text(
            _family_toml(name, meta, variant_tasks, {k: t.settings() for k, t in tasks.items()})
        )
    return out


def default_cache(seed: int = 0, quick: bool = False) -> Path:
    """``$ELICIT_CACHE/organism-seed{N}`` if set, else ``~/.cache/elicitkit/organism-seed{N}``."""
    root = Path(os.environ.get("ELICIT_CACHE", Path.home() / ".cache" / "elicitkit")).expanduser()
    return root / f"organism-seed{seed}{'-quick' if quick else ''}"


def organism_family(cache_dir: str | Path | None = None, seed: int = 0, quick: bool = False) -> Path:
    """The organism folder for ``seed``: loaded from ``cache_dir`` if complete, else trained there.

    Training goes to a sibling temporary folder that is renamed into place only when the
    whole family and its evaluation are written, so an interrupted run never leaves a
    half family behind.
    """
    import tomllib

    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache(seed, quick)
    toml = folder / "family.toml"
    if toml.exists() and (folder / "eval.parquet").exists():
        meta = tomllib.loads(toml.read_text()).get("organism", {})
        if meta.get("seed") != seed or bool(meta.get("quick")) != quick:
            raise OrganismError(
                f"Cached organism {str(folder)!r} was trained with seed={meta.get('seed')}, "
                f"quick={meta.get('quick')}, not seed={seed}, quick={quick}. Pass another cache_dir "
                "or delete the folder."
            )
        return folder
    if folder.exists() and any(folder.iterdir()):
        raise OrganismError(
            f"Cache folder {str(folder)!r} exists but holds no complete organism (family.toml and "
            "eval.parquet). Delete it to retrain, or pass another cache_dir."
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    train_family(tmp, seed=seed, quick=quick)
    if folder.exists():
        folder.rmdir()
    tmp.rename(folder)
    return folder
