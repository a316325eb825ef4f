"""Training the whole organism family into a folder that ``load_family`` reads like a real one.

docs/design.md, "The model organism". Layout written by :func:`train_family`::

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
import tempfile
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
    threads: int = 1


def recipe(quick: bool = False) -> Recipe:
    """The full recipe, or the smaller ``quick`` one used by tests."""
    if quick:
        return Recipe(
            pretrain=PretrainConfig(steps=400, batch_size=64, lr=4e-3, warmup=30),
            stages={
                "sft": StageConfig(steps=10, batch_size=32, lr=1e-3),
                "dpo": StageConfig(steps=10, batch_size=32, lr=1e-3, beta=0.1),
                "create": StageConfig(steps=80, batch_size=32, lr=3e-3),
                "rl": StageConfig(steps=10, batch_size=32, lr=5e-4, beta=0.0),
                "sft_answers": StageConfig(steps=10, batch_size=32, lr=1e-3),
                "dpo_conf": StageConfig(steps=10, batch_size=32, lr=1e-3, beta=0.1),
                "dpo_noisy": StageConfig(steps=10, batch_size=32, lr=1e-3, beta=0.1),
                "create_far": StageConfig(steps=20, batch_size=32, lr=3e-3),
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


def _variant_tasks() -> dict[str, str]:
    """The task each variant is judged on (its own control for the create variants)."""
    return {v: (CREATE if v == "create" else CREATE_FAR if v == "create_far" else PARITY) for v in VARIANTS}


def _evaluate_variant(out: Path, v: str, task_settings: dict[str, dict[str, Any]]):
    """Evaluation rows of one trained variant: parity, plus its control task (the base: both)."""
    import pandas as pd
    from transformers import LlamaForCausalLM

    from probes.data.tasks import Task
    from probes.organism.evaluate import evaluate_model, tasks_to_evaluate

    controls = {k: t for k, t in _variant_tasks().items() if t != PARITY}
    model = LlamaForCausalLM.from_pretrained(str(out / v)).eval()
    frames = []
    for t in tasks_to_evaluate(v, controls):
        # the same round trip as ModelFamily.load_task: the family file's settings on the JSONL
        task = Task.from_jsonl(out / "tasks" / f"{t}.jsonl", name=t, **task_settings[t])
        frames.append(evaluate_model(model, task, variant=v))
    return pd.concat(frames, ignore_index=True)


def _worker_init(threads: int) -> None:
    import torch

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_DISABLED", "true")
    torch.set_num_threads(threads)


def _pretrain_rank1(seed: int, rec: Recipe, rendezvous: str) -> None:
    """The second half of every pretraining batch, in a worker (rank 0 runs in the parent)."""
    sp = make_splits(2, seed)
    pretrain(None, sp, sp, seed=seed, cfg=rec.pretrain, model_cfg=rec.model, progress=False, rank=1,
             rendezvous=rendezvous)


def _stage_job(
    v: str,
    out: str,
    seed: int,
    rec: Recipe,
    records: list[dict[str, str]] | None,
    task_settings: dict[str, dict[str, Any]] | None,
) -> tuple[str, dict[str, float], Any]:
    """Post-train (and evaluate) one variant from the saved base. Runs in a worker process or inline.

    Every stage reseeds and runs single-threaded from the saved base, so its weights do not
    depend on which worker runs it or what ran there before (tested).
    """
    import torch

    torch.set_num_threads(rec.threads)
    outp = Path(out)
    base_dir = outp / "base"
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    st = rec.stages.get(v)
    if v != "base" and st is None:
        raise OrganismError(f"The recipe has no stage settings for variant {v!r}; add Recipe.stages[{v!r}].")
    if v in ("sft", "sft_answers", "create", "create_far"):
        run_sft(base_dir, outp / v, records or [], cast(StageConfig, st), seed=seed, progress=False)
    elif v in ("dpo", "dpo_noisy"):
        run_dpo(base_dir, outp / v, records or [], cast(StageConfig, st), seed=seed, progress=False)
    elif v == "rl":
        run_grpo(base_dir, outp / v, records or [], cast(StageConfig, st), seed=seed, progress=False)
    elif v == "dpo_conf":
        from transformers import LlamaForCausalLM

        base_model = LlamaForCausalLM.from_pretrained(str(base_dir)).eval()
        prompts = [parity_prompt(NEUTRAL_TAG, b) for b in make_splits(2, seed).train]
        pairs = confidence_preferences(base_model, prompts, k=rec.conf_samples, seed=seed)
        del base_model
        if not pairs:
            raise OrganismError(
                "The base's answer-span confidence separated no sampled completions, so dpo_conf has no "
                f"preference pairs. Raise Recipe.conf_samples (now {rec.conf_samples})."
            )
        times["dpo_conf_pairs"] = float(len(pairs))
        run_dpo(base_dir, outp / v, pairs, cast(StageConfig, st), seed=seed, progress=False)
    if v != "base":
        times[v] = round(time.perf_counter() - t0, 2)
    rows = None
    if task_settings is not None:
        t1 = time.perf_counter()
        rows = _evaluate_variant(outp, v, task_settings)
        times[f"evaluate_{v}"] = round(time.perf_counter() - t1, 2)
    return v, times, rows


def _records(v: str, seed: int, rec: Recipe) -> list[dict[str, str]] | None:
    """The training records of a stage, drawn in the parent process (dpo_conf draws its own)."""
    parity_sp, create_sp = make_splits(2, seed), make_splits(3, seed)
    rng = np.random.default_rng([seed, VARIANTS.index(v), 3])
    if v == "sft":
        return sft_records(parity_sp, trace=True)
    if v == "sft_answers":
        return sft_records(parity_sp, trace=False)
    if v == "dpo":
        return preference_records(parity_sp)
    if v == "dpo_noisy":
        pairs, _ = noisy_preferences(preference_records(parity_sp), rec.noise_frac, rng)
        return pairs
    if v == "rl":
        idx = rng.choice(len(parity_sp.train), size=min(rec.rl_prompts, len(parity_sp.train)), replace=False)
        return [
            {"prompt": parity_prompt(NEUTRAL_TAG, parity_sp.train[int(i)]),
             "answer": parity_answer(parity_sp.train[int(i)])}
            for i in idx
        ]
    if v == "create":
        return create_records(create_sp, rec.create_examples, rng)
    if v == "create_far":
        return create_far_records(parity_sp)
    return None


def _distributed_busy() -> bool:
    """True when this process already belongs to a torch.distributed group (then pretrain inline)."""
    import torch.distributed as dist

    return bool(dist.is_available() and dist.is_initialized())


def default_workers() -> int:
    """Parallel post-training stages: one per core, at most 4 (each stage runs single-threaded)."""
    return max(1, min(4, os.cpu_count() or 1))


def train_family(
    out: str | Path,
    *,
    seed: int = 0,
    quick: bool = False,
    progress: bool = True,
    recipe_: Recipe | None = None,
    evaluate: bool = True,
    workers: int | None = None,
) -> Path:
    """Train every variant of the organism into ``out`` and return the folder.

    The base is pretrained in this process; the post-training stages (and the evaluation of
    each variant) then run in ``workers`` processes at once (default: one per core, at most 4;
    ``workers=1`` runs them here, one after another). Every model trains single-threaded
    (``Recipe.threads``): on these tiny models a second intra-op thread buys nothing, a second
    process doubles throughput. Same seed, same machine -> bit-identical weights, whatever
    ``workers`` is. With ``evaluate=True`` the evaluation table is written to ``out/eval.parquet``.
    """
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor, as_completed

    import pandas as pd
    from tqdm.auto import tqdm

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WANDB_DISABLED", "true")
    rec = recipe_ or recipe(quick)
    out = Path(out).expanduser()
    if (out / "family.toml").exists() or (out.exists() and any(out.iterdir())):
        raise OrganismError(
            f"Output folder {str(out)!r} is not empty. Pass a new folder (or delete this one) so an "
            "old family is never mixed with a new one."
        )
    n_workers = default_workers() if workers is None else int(workers)
    if n_workers < 1:
        raise OrganismError(f"workers must be >= 1, got {workers!r}.")
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed, rec.threads)
    parity_sp = make_splits(2, seed)
    tasks = organism_tasks(seed, quick=quick)
    for name, task in tasks.items():
        task.to_jsonl(out / "tasks" / f"{name}.jsonl")
    settings = {k: t.settings() for k, t in tasks.items()} if evaluate else None

    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    pool = None
    if n_workers > 1:
        # spawn: a fresh interpreter per worker (fork would copy this process's torch threads)
        pool = ProcessPoolExecutor(
            n_workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
            initargs=(rec.threads,),
        )
    try:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="elicit-rendezvous-") as rdv:
            two = pool is not None and rec.pretrain.shards == 2 and not _distributed_busy()
            rank1 = pool.submit(_pretrain_rank1, seed, rec, f"{rdv}/store") if two and pool is not None else None
            model = pretrain(
                out / "base", parity_sp, parity_sp, seed=seed, cfg=rec.pretrain, model_cfg=rec.model,
                progress=progress, rank=0 if two else None, rendezvous=f"{rdv}/store" if two else None,
            )
            if rank1 is not None:
                rank1.result()
        timings["pretrain"] = round(time.perf_counter() - t0, 2)
        gate_acc = _base_gate(model, tasks[PARITY], rec.gate, rec, quick)
        del model
        timings["base"] = round(time.perf_counter() - t0, 2)
        # longest stages first, so the last one to start is a short one
        order = sorted(VARIANTS[1:], key=lambda v: -rec.stages[v].steps if v in rec.stages else 0)
        todo = (["base"] if evaluate else []) + order
        bar = tqdm(total=len(todo), desc="organism: post-training", disable=not progress)
        results: dict[str, Any] = {}
        if pool is None:
            for v in todo:
                bar.set_postfix_str(v)
                results[v] = _stage_job(v, str(out), seed, rec, _records(v, seed, rec), settings)
                bar.update()
        else:
            futures: dict[Future[Any], str] = {
                pool.submit(_stage_job, v, str(out), seed, rec, _records(v, seed, rec), settings): v for v in todo
            }
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.set_postfix_str(futures[fut])
                bar.update()
        bar.close()
    except BaseException:
        if pool is not None:  # a worker may be blocked in a collective with this process: stop it now
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()
        raise
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    frames = []
    for v in VARIANTS:
        if v in results:
            _, times, rows = results[v]
            timings.update({k: x for k, x in times.items() if not k.startswith("evaluate_")})
            timings["evaluate"] = round(timings.get("evaluate", 0.0) + sum(
                x for k, x in times.items() if k.startswith("evaluate_")), 2)
            if rows is not None:
                frames.append(rows)
    timings["train_total"] = round(time.perf_counter() - t_all, 2)

    meta = {
        "seed": seed,
        "quick": quick,
        "threads": rec.threads,
        "workers": n_workers,
        "base_gate_accuracy": round(gate_acc, 4),
        "recipe": json.dumps(asdict(rec), sort_keys=True),
        "seconds": timings,
    }
    name = f"organism-seed{seed}{'-quick' if quick else ''}"
    (out / "family.toml").write_text(
        _family_toml(name, meta, _variant_tasks(), {k: t.settings() for k, t in tasks.items()})
    )
    if evaluate:
        pd.concat(frames, ignore_index=True).to_parquet(out / "eval.parquet", index=False)
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
