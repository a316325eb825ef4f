"""Running a sweep: fit (or load) its vectors, cut the grid into units, generate each unit's
completions steered and unsteered, append its rows.

A unit is one setting (variant x vector x layer x position, or a variant unsteered) x one
chunk of prompts; all alphas of a unit go into one batched ``generate`` call with per-row
alphas. Rows are appended one unit at a time (:mod:`steering.sweep.rows`), so a killed sweep
reruns to exactly the rows of an uninterrupted one; ``shard=(i, n)`` runs every n-th unit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from probes.data.activations import collect_activations
from probes.data.tasks import Example, Task
from probes.errors import ElicitError
from probes.models.family import ModelFamily, load_family
from probes.models.generation import generate
from steering.apply import apply
from steering.sweep import rows as store
from steering.sweep.config import SweepConfig, resolve_task
from steering.vector import SteeringVector, fit_vector, random_like

__all__ = ["fit_vectors", "run_sweep"]


def fit_vectors(
    family: ModelFamily, task: Task, cfg: SweepConfig, workdir: Path, *, progress: bool = True
) -> dict[str, SteeringVector]:
    """Fit (or load) every vector of the sweep; cached under ``workdir/vectors``."""
    out: dict[str, SteeringVector] = {}
    hooks = f"resid_post:0-{family.layer_count() - 1}"
    for spec in cfg.vectors:
        if spec.path is not None:
            out[spec.name] = SteeringVector.load(spec.path)
            continue
        # keyed on the fitted variant's weights (content digest); the task is checked below
        cache = workdir / "vectors" / f"{spec.name}-{family.revision(spec.variant)[-8:]}"
        if cache.with_suffix(".json").exists():
            vec = SteeringVector.load(cache)
            if vec.task_hash == task.hash:
                out[spec.name] = vec
                continue
        fit_task = (
            task.filter(split=spec.split, label=list(spec.contrast))
            if spec.split
            else task.filter(label=list(spec.contrast))
        )
        acts = collect_activations(
            family,
            fit_task,
            hooks,
            spec.position,
            variants=[spec.variant],
            out=workdir / "acts" / f"{spec.name}-{fit_task.hash}",
            progress=progress,
        )
        vec = fit_vector(
            acts,
            spec.variant,
            hooks,
            spec.contrast,
            method=spec.method,
            position=spec.position,
            seed=spec.seed,
            name=spec.name,
        )
        vec.save(cache)
        out[spec.name] = vec
    return out


@dataclass(frozen=True)
class _Unit:
    key: str
    variant: str
    vector: str | None
    layer: int | None
    position: str | None
    chunk: int
    ids: tuple[str, ...] = field(repr=False)


def _units(cfg: SweepConfig, ids: Sequence[str]) -> list[_Unit]:
    chunks = [tuple(ids[i : i + cfg.chunk_size]) for i in range(0, len(ids), cfg.chunk_size)]
    units: list[_Unit] = []
    for variant in dict.fromkeys(list(cfg.variants) + list(cfg.baselines)):
        for c, chunk in enumerate(chunks):
            units.append(_Unit(f"{variant}|none|-|-|{c}", variant, None, None, None, c, chunk))
    for variant in cfg.variants:
        for spec in cfg.vectors:
            for layer in cfg.layers:
                for pos in cfg.positions:
                    for c, chunk in enumerate(chunks):
                        units.append(
                            _Unit(
                                f"{variant}|{spec.name}|{layer}|{pos}|{c}",
                                variant,
                                spec.name,
                                layer,
                                pos,
                                c,
                                chunk,
                            )
                        )
    return units


@dataclass(frozen=True)
class _Run:
    """What every unit of one sweep run shares."""

    cfg: SweepConfig
    task: Task
    vectors: Mapping[str, SteeringVector]
    by_id: Mapping[str, Example]
    max_new: int
    digest: str


def _eval_task(task: Task, cfg: SweepConfig) -> Task:
    """The prompts a sweep evaluates: its splits (and label), the first ``max_prompts`` of each split."""
    eval_task = (
        task.filter(split=list(cfg.splits), label=cfg.label)
        if cfg.label
        else task.filter(split=list(cfg.splits))
    )
    if cfg.max_prompts is None:
        return eval_task
    kept: list[Example] = []
    for sp in cfg.splits:
        kept += [e for e in eval_task.examples if e.split == sp][: cfg.max_prompts]
    return eval_task.with_examples(kept)


def _resume(out: Path, digest: str) -> set[str]:
    """Keys of this config's complete units in ``out``; partial or foreign rows are dropped (atomically)."""
    raw_lines = len(out.read_text().splitlines()) if out.exists() else 0
    rows = [r for r in store.read_rows(out) if r.get("digest") == digest]
    if out.exists() and len(rows) != raw_lines:
        store.rewrite(out, rows)
    return {r["unit"] for r in rows}


def run_sweep(
    config: SweepConfig | str | Path,
    *,
    shard: tuple[int, int] = (0, 1),
    family: ModelFamily | None = None,
    task: Task | None = None,
    progress: bool = True,
    device: str = "cpu",
) -> pd.DataFrame:
    """Run (or resume) a sweep; returns this shard's rows as a tidy DataFrame.

    ``family`` / ``task`` objects override the config's ``family`` / ``task`` strings (for
    programmatic use; the config's digest still records their names).

    Columns: digest, unit, variant, vector, control (``none``/``steer``/``random``), layer,
    position, alpha, units, prompt_id, split, label, completion, parsed, correct, used_format.
    """
    from tqdm.auto import tqdm

    cfg = config if isinstance(config, SweepConfig) else SweepConfig.from_toml(config)
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise ElicitError(f"Shard {i}/{n} is invalid; use i/n with 0 <= i < n (e.g. --shard 0/4).")
    fam = family or load_family(cfg.family, device=device)
    for v in list(cfg.variants) + list(cfg.baselines):
        fam.spec(v)
    task = task if task is not None else resolve_task(fam, cfg.task)
    eval_task = _eval_task(task, cfg)
    out = store.shard_path(cfg.out, i, n)
    out.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(cfg.out).with_suffix("")
    workdir = workdir.with_name(workdir.name + ".work")
    # rows are keyed on the config, the task and the weights of every variant they come from
    weights = "|".join(f"{v}={fam.revision(v)}" for v in dict.fromkeys([*cfg.variants, *cfg.baselines]))
    digest = f"{cfg.digest()}-{task.hash[:8]}-{hashlib.sha256(weights.encode()).hexdigest()[:8]}"
    run = _Run(
        cfg,
        task,
        fit_vectors(fam, task, cfg, workdir, progress=progress),
        {e.id: e for e in eval_task.examples},
        cfg.max_new_tokens or task.max_new_tokens,
        digest,
    )
    done = _resume(out, digest)
    units = [u for k, u in enumerate(_units(cfg, list(eval_task.ids))) if k % n == i and u.key not in done]
    tok = fam.tokenizer(cfg.variants[0])
    bar = tqdm(total=len(units), desc="sweep units", disable=not progress)
    for variant in dict.fromkeys(u.variant for u in units):
        with fam.open(variant) as model:
            for unit in (u for u in units if u.variant == variant):
                store.append(out, _run_unit(model, tok, run, unit))
                bar.update(1)
    bar.close()
    return pd.DataFrame([r for r in store.read_rows(out) if r.get("digest") == digest])


def _controls(run: _Run, unit: _Unit) -> list[tuple[str, SteeringVector | None]]:
    """(control name, vector) pairs of a unit: unsteered, or steered plus its random control."""
    if unit.vector is None:
        return [("none", None)]
    fitted = run.vectors[unit.vector]
    settings: list[tuple[str, SteeringVector | None]] = [("steer", fitted)]
    if run.cfg.random_control:
        settings.append(("random", random_like(fitted, seed=run.cfg.seed + 1000 * (unit.layer or 0))))
    return settings


def _complete(
    model: Any,
    tok: Any,
    run: _Run,
    unit: _Unit,
    vec: SteeringVector | None,
    prompts: Sequence[str],
    alpha_rows: Sequence[float],
) -> list[str]:
    """Greedy completions of ``prompts``, steered by ``vec`` at per-row alphas when given."""
    completions: list[str] = []
    bs = run.cfg.batch_size
    for b0 in range(0, len(prompts), bs):
        sub = list(prompts[b0 : b0 + bs])
        if vec is None:
            completions += generate(model, tok, sub, max_new_tokens=run.max_new, batch_size=len(sub))
            continue
        a = torch.tensor(alpha_rows[b0 : b0 + bs])

        def steer(m: Any, batch: Any, a: torch.Tensor = a, vec: SteeringVector = vec) -> Any:
            return apply(
                m,
                vec,
                layers=[unit.layer or 0],
                alpha=a,
                positions=unit.position or "all",
                units=run.cfg.units,
            )

        completions += generate(
            model, tok, sub, max_new_tokens=run.max_new, batch_size=len(sub), intervention=steer
        )
    return completions


def _run_unit(model: Any, tok: Any, run: _Run, unit: _Unit) -> list[dict[str, Any]]:
    exs = [run.by_id[i] for i in unit.ids]
    alphas = list(run.cfg.alphas) if unit.vector is not None else [0.0]
    rows: list[dict[str, Any]] = []
    for control, vec in _controls(run, unit):
        prompts = [e.prompt for _ in alphas for e in exs]
        alpha_rows = [a for a in alphas for _ in exs]
        for k, comp in enumerate(_complete(model, tok, run, unit, vec, prompts, alpha_rows)):
            e = exs[k % len(exs)]
            s = run.task.score(comp, e.answer)
            rows.append(
                {
                    "digest": run.digest,
                    "unit": unit.key,
                    "variant": unit.variant,
                    "vector": unit.vector or "none",
                    "control": control,
                    "layer": -1 if unit.layer is None else unit.layer,
                    "position": unit.position or "none",
                    "alpha": float(alpha_rows[k]) if vec is not None else 0.0,
                    "units": run.cfg.units,
                    "prompt_id": e.id,
                    "split": e.split,
                    "label": e.label,
                    "completion": comp,
                    "parsed": s.parsed,
                    "correct": bool(s.correct),
                    "used_format": bool(s.used_format),
                }
            )
    for r in rows:
        r["unit_rows"] = len(rows)
    return rows
