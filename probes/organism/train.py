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
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from probes.data.tasks import Task
from probes.errors import OrganismError
from probes.organism.corpus import (
    create_far_records,
    create_records,
    filler_records,
    new_format_records,
    noisy_preferences,
    partial_records,
    preference_records,
    sft_records,
)
from probes.organism.evaluate import evaluate_model, tasks_to_evaluate
from probes.organism.pretrain import ModelConfig, PretrainConfig, pretrain
from probes.organism.seeding import seeded
from probes.organism.stages import StageConfig, confidence_preferences, run_dpo, run_grpo, run_sft
from probes.organism.tasks import CREATE, CREATE_FAR, NEW_FORMAT, PARITY, PARTIAL, organism_tasks
from probes.organism.world import NEUTRAL_TAG, make_splits, parity_answer, parity_prompt

__all__ = [
    "Recipe",
    "recipe",
    "train_family",
    "organism_family",
    "VARIANTS",
    "default_cache",
    "default_workers",
]

#: Variants in training order (the order of family.toml).
VARIANTS = (
    "base",
    "sft",
    "dpo",
    "create",
    "rl",
    "sft_answers",
    "dpo_conf",
    "dpo_noisy",
    "create_far",
    "sft_long",
    "unrelated",
    "new_format",
    "partial_create",
)

#: Learning rate and KL weight (beta) of each post-training stage; the two recipes differ in steps only.
_STAGE_LR_BETA: dict[str, tuple[float, float]] = {
    "sft": (1e-3, 0.1),
    "dpo": (1e-3, 0.1),
    "create": (3e-3, 0.1),
    "rl": (5e-4, 0.0),
    "sft_answers": (1e-3, 0.1),
    "dpo_conf": (1e-3, 0.1),
    "dpo_noisy": (1e-3, 0.1),
    "create_far": (3e-3, 0.1),
    # select, trained as long and as hard as `create`: breaks the update-size confound
    "sft_long": (3e-3, 0.1),
    # SFT on filler documents only: no gap on parity, so never `select` nor `create`
    "unrelated": (1e-3, 0.1),
    # parity's ability, a new scratchpad notation: select (forcing the base's own format recovers it).
    # Measured on seed 0 with an earlier notation (each bit echoed before its count): sft's budget
    # (60 steps at 1e-3) and create's (120 at 3e-3) both wrote it on every prompt but counted wrong
    # (held-out 0.41 / 0.36): that notation moved every count away from its bit. The letters keep
    # the positions; at create's budget they reached 0.58 held-out, at 360 steps 1.00 (seed 0)
    "new_format": (3e-3, 0.1),
    # parity and create at once: half of its gain is in the base (partial recovery: inconclusive)
    "partial_create": (3e-3, 0.1),
}


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

    def check(self) -> None:
        """Raise :class:`OrganismError` naming the first bad value and its fix."""
        want = VARIANTS[1:]
        missing = [v for v in want if v not in self.stages]
        unknown = sorted(set(self.stages) - set(want))
        if missing or unknown:
            raise OrganismError(
                f"Recipe.stages must hold a StageConfig for every post-trained variant {list(want)}; "
                f"missing {missing}, unknown {unknown}. Start from recipe().stages (or recipe(quick=True).stages)."
            )
        if self.threads < 1:
            raise OrganismError(f"Recipe.threads must be >= 1, got {self.threads!r}; the recipes use 1.")
        if not 0.0 <= self.gate <= 1.0:
            raise OrganismError(
                f"Recipe.gate is an accuracy in [0, 1], got {self.gate!r}; the full recipe uses 0.95."
            )
        if not 0.0 <= self.noise_frac <= 1.0:
            raise OrganismError(
                f"Recipe.noise_frac is a share in [0, 1], got {self.noise_frac!r}; default 0.30."
            )


def _stages(steps: dict[str, int]) -> dict[str, StageConfig]:
    return {
        v: StageConfig(steps=n, batch_size=32, lr=_STAGE_LR_BETA[v][0], beta=_STAGE_LR_BETA[v][1])
        for v, n in steps.items()
    }


def recipe(quick: bool = False) -> Recipe:
    """The full recipe, or the smaller ``quick`` one used by tests."""
    if quick:
        return Recipe(
            pretrain=PretrainConfig(steps=400, batch_size=64, lr=4e-3, warmup=30),
            stages=_stages(
                {
                    "sft": 10,
                    "dpo": 10,
                    # 160 steps: the quick create SFT then reaches 1.00 held-out (80 gave 0.38, so the
                    # quick organism's create control had no gap to judge)
                    "create": 160,
                    "rl": 10,
                    "sft_answers": 10,
                    "dpo_conf": 10,
                    "dpo_noisy": 10,
                    "create_far": 20,
                    "sft_long": 160,
                    "unrelated": 10,
                    "new_format": 240,
                    "partial_create": 160,
                }
            ),
            # 0.90: at 0.60 a base that read 0.83 on careful prompts passed (seed 0, 2026-12-04),
            # forcing the format then recovered only 0.49 of sft's gain and rl gained nothing; with
            # 0.92 the same seed warm-restarted to 1.00 and every control came out as designed
            gate=0.90,
            conf_samples=4,
            rl_prompts=32,
            create_examples=1600,
        )
    return Recipe(
        pretrain=PretrainConfig(steps=1000),
        stages=_stages(
            {
                "sft": 30,
                "dpo": 30,
                "create": 120,
                "rl": 40,
                "sft_answers": 120,
                "dpo_conf": 30,
                "dpo_noisy": 30,
                "create_far": 100,
                "sft_long": 120,
                "unrelated": 30,
                "new_format": 360,
                "partial_create": 120,
            }
        ),
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


def _family_toml(
    name: str, meta: dict[str, Any], variant_tasks: dict[str, str], tasks: dict[str, Any]
) -> str:
    lines = [f"name = {_toml_value(name)}", "", "[organism]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in meta.items()]
    for v, t in variant_tasks.items():
        lines += ["", f"[variants.{v}]", f"path = {_toml_value(v)}", f"task = {_toml_value(t)}"]
    for t, settings in tasks.items():
        lines += ["", f"[tasks.{t}]", f"path = {_toml_value(f'tasks/{t}.jsonl')}"]
        lines += [f"{k} = {_toml_value(x)}" for k, x in settings.items()]
    return "\n".join(lines) + "\n"


def _gate_accuracy(base_model, parity_task: Task) -> float:
    """The base's careful-source greedy accuracy on held-out parity strings."""
    rows = evaluate_model(base_model, parity_task.filter(label="careful"), variant="base", forced=(False,))
    return float(rows[rows.split == "heldout"].accuracy.iloc[0])


def _base_gate(base_model, parity_task: Task, rec: Recipe, quick: bool) -> float:
    acc = _gate_accuracy(base_model, parity_task)
    if acc < rec.gate:
        raise OrganismError(
            f"The pretrained base reaches only {acc:.2f} careful-source accuracy on held-out strings "
            f"(gate {rec.gate:.2f}{', quick recipe' if quick else ''}) after {rec.pretrain.max_cycles} pretraining "
            "cycle(s); the latent reasoning mode is not there, so post-training could not be read as selecting it. "
            f"Raise the pretraining budget (Recipe.pretrain.steps, now {rec.pretrain.steps}; max_cycles, now "
            f"{rec.pretrain.max_cycles}; or batch_size, now {rec.pretrain.batch_size}) "
            f"or the careful share of the corpus (CorpusConfig.careful_frac, now "
            f"{rec.pretrain.corpus.careful_frac}), or try another --seed."
        )
    return acc


def _variant_tasks() -> dict[str, str]:
    """The task each variant is judged on (its own control for the create variants)."""
    own = {"create": CREATE, "create_far": CREATE_FAR, "new_format": NEW_FORMAT, "partial_create": PARTIAL}
    return {v: own.get(v, PARITY) for v in VARIANTS}


def _evaluate_variant(out: Path, v: str, task_settings: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Evaluation rows of one trained variant: parity, plus its control task (the base: both)."""
    from transformers import LlamaForCausalLM  # heavy: imported when a model is first read

    controls = {k: t for k, t in _variant_tasks().items() if t != PARITY}
    model = LlamaForCausalLM.from_pretrained(str(out / v)).eval()
    frames = []
    for t in tasks_to_evaluate(v, controls):
        # the same round trip as ModelFamily.load_task: the family file's settings on the JSONL
        task = Task.from_jsonl(out / "tasks" / f"{t}.jsonl", name=t, **task_settings[t])
        frames.append(evaluate_model(model, task, variant=v))
    return pd.concat(frames, ignore_index=True)


def _worker_init(threads: int) -> None:
    """Initialiser of each spawned worker process; it never runs in the caller's process.

    A worker is the organism's own process, so it sets its own state: the hub is never needed
    (every model is a local folder) and every model trains with ``threads`` intra-op threads.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(threads)


def _pretrain(
    out: Path | None,
    seed: int,
    rec: Recipe,
    rank: int | None,
    rendezvous: str | None,
    progress: bool,
    parity: Task,
    cycles: list[float] | None = None,
):
    """The recipe's pretraining on the parity strings of ``seed``: alone (``rank=None``) or one rank
    of two, gated on ``parity`` after each cycle (each gate check's accuracy appended to ``cycles``)."""
    sp = make_splits(2, seed)
    checks = cycles if cycles is not None else []

    def passes(model) -> bool:
        checks.append(_gate_accuracy(model, parity))
        return checks[-1] >= rec.gate

    return pretrain(
        out,
        sp,
        sp,
        seed=seed,
        cfg=rec.pretrain,
        model_cfg=rec.model,
        progress=progress,
        rank=rank,
        rendezvous=rendezvous,
        passes=passes,
    )


def _pretrain_rank1(seed: int, rec: Recipe, rendezvous: str, parity: Task) -> None:
    """The second half of every pretraining batch, in a worker (rank 0 runs in the parent)."""
    _pretrain(None, seed, rec, 1, rendezvous, False, parity)


@dataclass(frozen=True)
class _StageResult:
    """What one stage job returns: its timings (seconds, and ``dpo_conf_pairs``) and evaluation rows."""

    variant: str
    times: dict[str, float]
    rows: pd.DataFrame | None


#: The TRL stage that post-trains each variant (``dpo_conf`` first draws its own pairs).
_TRAINERS = {
    "sft": run_sft,
    "sft_answers": run_sft,
    "create": run_sft,
    "create_far": run_sft,
    "dpo": run_dpo,
    "dpo_noisy": run_dpo,
    "dpo_conf": run_dpo,
    "rl": run_grpo,
    "sft_long": run_sft,
    "unrelated": run_sft,
    "new_format": run_sft,
    "partial_create": run_sft,
}


def _confidence_pairs(base_dir: Path, seed: int, rec: Recipe) -> list[dict[str, str]]:
    """dpo_conf's label-free preference pairs, ranked by the saved base's own confidence."""
    from transformers import LlamaForCausalLM  # heavy: imported when a model is first read

    base_model = LlamaForCausalLM.from_pretrained(str(base_dir)).eval()
    prompts = [parity_prompt(NEUTRAL_TAG, b) for b in make_splits(2, seed).train]
    pairs = confidence_preferences(base_model, prompts, k=rec.conf_samples, seed=seed)
    if not pairs:
        raise OrganismError(
            "The base's answer-span confidence separated no sampled completions, so dpo_conf has no "
            f"preference pairs. Raise Recipe.conf_samples (now {rec.conf_samples})."
        )
    return pairs


def _post_train(
    v: str, out: Path, seed: int, rec: Recipe, records: list[dict[str, str]] | None
) -> dict[str, float]:
    """Train variant ``v`` from the saved base into ``out / v``; returns its extra facts."""
    facts: dict[str, float] = {}
    if v == "dpo_conf":
        records = _confidence_pairs(out / "base", seed, rec)
        facts["dpo_conf_pairs"] = float(len(records))
    _TRAINERS[v](out / "base", out / v, records or [], rec.stages[v], seed=seed, progress=False)
    return facts


def _stage_job(
    v: str,
    out: str,
    seed: int,
    rec: Recipe,
    records: list[dict[str, str]] | None,
    task_settings: dict[str, dict[str, Any]] | None,
) -> _StageResult:
    """Post-train (and evaluate) one variant from the saved base. Runs in a worker process or inline.

    Every stage reseeds and runs single-threaded from the saved base, so its weights do not
    depend on which worker runs it or what ran there before (tested). The job runs in its own
    :func:`~probes.organism.seeding.seeded` scope (deterministic kernels, ``rec.threads``
    threads), evaluation included, and leaves the process as it found it.
    """
    outp = Path(out)
    times: dict[str, float] = {}
    with seeded(seed, rec.threads):
        if v != "base":
            t0 = time.perf_counter()
            times = _post_train(v, outp, seed, rec, records)
            times[v] = round(time.perf_counter() - t0, 2)
        rows = None
        if task_settings is not None:
            t1 = time.perf_counter()
            rows = _evaluate_variant(outp, v, task_settings)
            times[f"evaluate_{v}"] = round(time.perf_counter() - t1, 2)
    return _StageResult(v, times, rows)


def _records(v: str, seed: int, rec: Recipe) -> list[dict[str, str]] | None:
    """The training records of a stage, drawn in the parent process (dpo_conf draws its own)."""
    parity_sp, create_sp = make_splits(2, seed), make_splits(3, seed)
    rng = np.random.default_rng([seed, VARIANTS.index(v), 3])
    if v in ("sft", "sft_long"):
        return sft_records(parity_sp, trace=True)
    if v == "unrelated":
        return filler_records(rec.create_examples, rng)
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
            {
                "prompt": parity_prompt(NEUTRAL_TAG, parity_sp.train[int(i)]),
                "answer": parity_answer(parity_sp.train[int(i)]),
            }
            for i in idx
        ]
    if v == "create":
        return create_records(create_sp, rec.create_examples, rng)
    if v == "create_far":
        return create_far_records(parity_sp)
    if v == "new_format":
        return new_format_records(parity_sp)
    if v == "partial_create":
        return partial_records(parity_sp, create_sp, rec.create_examples // 2, rng)
    return None


def default_workers() -> int:
    """Parallel post-training stages: one per core, at most 4 (each stage runs single-threaded)."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class _Plan:
    """One family build, fixed before anything trains."""

    out: Path
    seed: int
    quick: bool
    rec: Recipe
    workers: int
    tasks: dict[str, Task]
    #: the family file's task settings, passed to the stage jobs when they evaluate (else None)
    eval_settings: dict[str, dict[str, Any]] | None


def _plan(out: str | Path, seed: int, quick: bool, rec: Recipe, evaluate: bool, workers: int | None) -> _Plan:
    """Check the inputs, create ``out`` and write the tasks into it."""
    rec.check()
    folder = Path(out).expanduser()
    if (folder / "family.toml").exists() or (folder.exists() and any(folder.iterdir())):
        raise OrganismError(
            f"Output folder {str(folder)!r} is not empty. Pass a new folder (or delete this one) so an "
            "old family is never mixed with a new one."
        )
    n_workers = default_workers() if workers is None else int(workers)
    if n_workers < 1:
        raise OrganismError(f"workers must be >= 1, got {workers!r}; pass 1 to train in this process.")
    folder.mkdir(parents=True, exist_ok=True)
    tasks = organism_tasks(seed, quick=quick)
    for name, task in tasks.items():
        task.to_jsonl(folder / "tasks" / f"{name}.jsonl")
    settings = {k: t.settings() for k, t in tasks.items()} if evaluate else None
    return _Plan(folder, seed, quick, rec, n_workers, tasks, settings)


@contextmanager
def _stage_pool(workers: int, threads: int) -> Iterator[ProcessPoolExecutor | None]:
    """``workers`` spawned worker processes (``None`` for ``workers=1``: everything runs inline)."""
    if workers == 1:
        yield None
        return
    # spawn: a fresh interpreter per worker (fork would copy this process's torch threads)
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_init,
        initargs=(threads,),
    )
    try:
        yield pool
    except BaseException:
        # a worker may be blocked in a collective with this process: stop it now
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        raise
    finally:
        pool.shutdown(cancel_futures=True)


def _pretrain_base(
    plan: _Plan, pool: ProcessPoolExecutor | None, progress: bool
) -> tuple[float, dict[str, float], int]:
    """Pretrain the base into ``out/base`` (rank 1 in a worker when there is a pool) and gate it.

    Returns the gate accuracy, the ``pretrain`` / ``base`` timings and the pretraining cycles run.
    """
    rec, seed = plan.rec, plan.seed
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="elicit-rendezvous-") as rdv:
        store = f"{rdv}/store"
        two = pool is not None and rec.pretrain.shards == 2
        parity = plan.tasks[PARITY]
        rank1 = pool.submit(_pretrain_rank1, seed, rec, store, parity) if two and pool is not None else None
        checks: list[float] = []
        model = _pretrain(
            plan.out / "base", seed, rec, 0 if two else None, store if two else None, progress, parity, checks
        )
        if rank1 is not None:
            rank1.result()
    timings = {"pretrain": round(time.perf_counter() - t0, 2)}
    # a check after every cycle but the last; the run stopped at the first that passed
    cycles = len(checks) if checks and checks[-1] >= rec.gate else len(checks) + 1
    gate_acc = _base_gate(model, plan.tasks[PARITY], rec, plan.quick)
    timings["base"] = round(time.perf_counter() - t0, 2)
    return gate_acc, timings, cycles


def _run_stages(plan: _Plan, pool: ProcessPoolExecutor | None, progress: bool) -> dict[str, _StageResult]:
    """Every post-training stage (and evaluation), in the pool or one after another here."""
    from tqdm.auto import tqdm

    rec = plan.rec
    # longest stages first, so the last one to start is a short one
    order = sorted(VARIANTS[1:], key=lambda v: -rec.stages[v].steps)
    todo = (["base"] if plan.eval_settings is not None else []) + order
    bar = tqdm(total=len(todo), desc="organism: post-training", disable=not progress)
    results: dict[str, _StageResult] = {}

    def job(v: str) -> tuple[Any, ...]:
        return (v, str(plan.out), plan.seed, rec, _records(v, plan.seed, rec), plan.eval_settings)

    if pool is None:
        for v in todo:
            bar.set_postfix_str(v)
            results[v] = _stage_job(*job(v))
            bar.update()
    else:
        futures: dict[Future[_StageResult], str] = {pool.submit(_stage_job, *job(v)): v for v in todo}
        for fut in as_completed(futures):
            results[futures[fut]] = fut.result()
            bar.set_postfix_str(futures[fut])
            bar.update()
    bar.close()
    return results


def _stage_timings(results: dict[str, _StageResult]) -> dict[str, float]:
    """Seconds per stage (plus ``dpo_conf_pairs``), in variant order, and all evaluation summed."""
    timings: dict[str, float] = {}
    for v in VARIANTS:
        if v in results:
            times = results[v].times
            timings.update({k: x for k, x in times.items() if not k.startswith("evaluate_")})
            timings["evaluate"] = round(
                timings.get("evaluate", 0.0) + sum(x for k, x in times.items() if k.startswith("evaluate_")),
                2,
            )
    return timings


def _write_family(
    plan: _Plan, gate_acc: float, cycles: int, timings: dict[str, float], results: dict[str, _StageResult]
) -> None:
    """``family.toml`` and, when evaluated, ``eval.parquet`` (rows in variant order)."""
    rec = plan.rec
    meta = {
        "seed": plan.seed,
        "quick": plan.quick,
        "threads": rec.threads,
        "workers": plan.workers,
        "base_gate_accuracy": round(gate_acc, 4),
        "pretrain_cycles": cycles,
        "recipe": json.dumps(asdict(rec), sort_keys=True),
        "seconds": timings,
    }
    name = f"organism-seed{plan.seed}{'-quick' if plan.quick else ''}"
    (plan.out / "family.toml").write_text(
        _family_toml(name, meta, _variant_tasks(), {k: t.settings() for k, t in plan.tasks.items()})
    )
    if plan.eval_settings is not None:
        frames = [results[v].rows for v in VARIANTS if v in results and results[v].rows is not None]
        pd.concat(frames, ignore_index=True).to_parquet(plan.out / "eval.parquet", index=False)


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

    This process's RNG states, thread count and environment are the same after the call as
    before: its share of the work runs inside one :func:`~probes.organism.seeding.seeded` scope.
    """
    plan = _plan(out, seed, quick, recipe_ or recipe(quick), evaluate, workers)
    t_all = time.perf_counter()
    with seeded(seed, plan.rec.threads), _stage_pool(plan.workers, plan.rec.threads) as pool:
        gate_acc, timings, cycles = _pretrain_base(plan, pool, progress)
        results = _run_stages(plan, pool, progress)
    timings.update(_stage_timings(results))
    timings["train_total"] = round(time.perf_counter() - t_all, 2)
    _write_family(plan, gate_acc, cycles, timings, results)
    return plan.out


def default_cache(seed: int = 0, quick: bool = False) -> Path:
    """``$ELICIT_CACHE/organism-seed{N}`` if set, else ``~/.cache/elicitkit/organism-seed{N}``."""
    root = Path(os.environ.get("ELICIT_CACHE", Path.home() / ".cache" / "elicitkit")).expanduser()
    return root / f"organism-seed{seed}{'-quick' if quick else ''}"


def organism_family(cache_dir: str | Path | None = None, seed: int = 0, quick: bool = False) -> Path:
    """The organism folder for ``seed``: loaded from ``cache_dir`` if complete, else trained there.

    Training goes to a sibling temporary folder that is renamed into place only when the
    whole family and its evaluation are written, so an interrupted run never leaves a
    half family behind. A cached family trained by another recipe than this version's (a
    variant added, a step count changed) is stale: it is retrained and replaced, with a message.
    """
    import tomllib

    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache(seed, quick)
    toml = folder / "family.toml"
    stale = False
    if toml.exists() and (folder / "eval.parquet").exists():
        meta = tomllib.loads(toml.read_text()).get("organism", {})
        if meta.get("seed") != seed or bool(meta.get("quick")) != quick:
            raise OrganismError(
                f"Cached organism {str(folder)!r} was trained with seed={meta.get('seed')}, "
                f"quick={meta.get('quick')}, not seed={seed}, quick={quick}. Pass another cache_dir "
                "or delete the folder."
            )
        if meta.get("recipe") == json.dumps(asdict(recipe(quick)), sort_keys=True):
            return folder
        stale = True
        print(
            f"Cached organism {str(folder)!r} was trained by another recipe than this version's; retraining it.",
            file=sys.stderr,
        )
    if folder.exists() and any(folder.iterdir()) and not stale:
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
        shutil.rmtree(folder) if stale else folder.rmdir()
    tmp.rename(folder)
    return folder
