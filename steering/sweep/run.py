"""Running a sweep: fit (or load) its vectors, cut the grid into units, generate each unit's
completions steered and unsteered, append its rows.

A unit is one setting (variant x vector x layer x position, or a variant unsteered) x one
chunk of prompts; all alphas of a unit go into one batched ``generate`` call with per-row
alphas. Rows are appended one unit at a time (:mod:`steering.sweep.rows`), so a killed sweep
reruns to exactly the rows of an uninterrupted one; ``shard=(i, n)`` runs every n-th unit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from probes.data.activations import collect_activations
from probes.data.tasks import Example, Task
from probes.errors import ElicitError
from probes.models.family import ModelFamily, load_family, resolve_dtype
from probes.models.generation import generate
from steering.apply import SteerRecord, apply
from steering.sweep import rows as store
from steering.sweep.config import SweepConfig, resolve_task
from steering.vector import SteeringVector, fit_shuffled, fit_vector, norm_matched, random_like

__all__ = ["fit_vectors", "run_sweep", "work_folder"]


def fit_vectors(
    family: ModelFamily, task: Task, cfg: SweepConfig, workdir: Path, *, progress: bool = True
) -> dict[str, SteeringVector]:
    """Fit (or load) every vector of the sweep; cached under ``workdir/vectors``."""
    return {name: vec for name, (vec, _) in _fit_all(family, task, cfg, workdir, progress=progress).items()}


def _fit_all(
    family: ModelFamily, task: Task, cfg: SweepConfig, workdir: Path, *, progress: bool = True
) -> dict[str, tuple[SteeringVector, SteeringVector | None]]:
    """Every vector of the sweep with its label-shuffled control (``None`` unless
    ``cfg.shuffled_control``), fitted or loaded; fitted ones cached under ``workdir/vectors``."""
    out: dict[str, tuple[SteeringVector, SteeringVector | None]] = {}
    hooks = f"resid_post:0-{family.layer_count() - 1}"
    tag = _dtype_tag(family)
    for spec in cfg.vectors:
        if spec.path is not None:
            vec = SteeringVector.load(spec.path)
            shuffled = None
            if cfg.shuffled_control:
                if spec.shuffled_path is None:
                    raise ElicitError(
                        f"shuffled_control needs a label-shuffled vector for the loaded vector {spec.name!r}: "
                        "give its file as shuffled_path (steering.vector.fit_shuffled makes one), or fit the "
                        "vector in the sweep instead of loading it."
                    )
                shuffled = norm_matched(SteeringVector.load(spec.shuffled_path), vec)
            out[spec.name] = (vec, shuffled)
            continue
        # keyed on the fitted variant's weights (content digest); the task is checked below
        cache = workdir / "vectors" / f"{spec.name}-{family.revision(spec.variant)[-8:]}{tag}"
        shuffled_cache = cache.with_name(cache.name + "-shuffled")
        if cache.with_suffix(".json").exists():
            vec = SteeringVector.load(cache)
            if vec.task_hash == task.hash and (
                not cfg.shuffled_control or shuffled_cache.with_suffix(".json").exists()
            ):
                out[spec.name] = (
                    vec,
                    SteeringVector.load(shuffled_cache) if cfg.shuffled_control else None,
                )
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
            out=workdir / "acts" / f"{spec.name}-{fit_task.hash}{tag}",
            progress=progress,
        )
        common: dict[str, Any] = dict(method=spec.method, position=spec.position, seed=spec.seed)
        vec = fit_vector(acts, spec.variant, hooks, spec.contrast, name=spec.name, **common)
        vec.save(cache)
        shuffled = None
        if cfg.shuffled_control:
            shuffled = fit_shuffled(acts, spec.variant, hooks, spec.contrast, like=vec, **common)
            shuffled.save(shuffled_cache)
        out[spec.name] = (vec, shuffled)
    return out


def work_folder(cfg: SweepConfig) -> Path:
    """The sweep's cache folder (fitted vectors, their activations): ``out`` without its
    suffix, plus ``.work``."""
    workdir = Path(cfg.out).with_suffix("")
    return workdir.with_name(workdir.name + ".work")


def _dtype_tag(family: ModelFamily) -> str:
    """``""`` for a float32 family, else ``"-bfloat16"`` etc.: what every cache of a sweep adds to its key."""
    return "" if family.dtype == torch.float32 else "-" + str(family.dtype).removeprefix("torch.")


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
    for variant in dict.fromkeys(list(cfg.variants) + list(cfg.baselines)) if cfg.unsteered else ():
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
    shuffled: Mapping[str, SteeringVector | None]
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
    dtype: str | torch.dtype = "float32",
) -> pd.DataFrame:
    """Run (or resume) a sweep; returns this shard's rows as a tidy DataFrame.

    ``device`` / ``dtype`` load the config's family (a ``family`` object keeps its own); the
    rows are keyed on the dtype the family runs in (other than float32), so bf16 rows never
    answer for fp32 ones.

    ``family`` / ``task`` objects override the config's ``family`` / ``task`` strings (for
    programmatic use; the config's digest still records their names).

    Columns: digest, unit, variant, vector, control (``none``/``steer``/``random``/``shuffled``),
    draw (the random draw, -1 otherwise), layer, position, alpha, units, prompt_id, split, label,
    completion, parsed, correct, used_format, and the manipulation check of each row: ``fired``
    (positions the hook steered; 0 where the prompt lacks the position's token, so nothing was
    added) and ``kl`` (KL, in nats, of the next-token distribution after the prompt, steered vs
    unsteered; 0 for alpha 0 and unsteered rows); ``finish``: ``stop`` or ``budget`` (the row used
    every new token without reaching EOS or a stop string: a truncated completion).
    """
    from tqdm.auto import tqdm

    cfg = config if isinstance(config, SweepConfig) else SweepConfig.from_toml(config)
    i, n = shard
    if not (n >= 1 and 0 <= i < n):
        raise ElicitError(f"Shard {i}/{n} is invalid; use i/n with 0 <= i < n (e.g. --shard 0/4).")
    fam = family or load_family(cfg.family, device=device, dtype=resolve_dtype(dtype))
    for v in list(cfg.variants) + list(cfg.baselines):
        fam.spec(v)
    task = task if task is not None else resolve_task(fam, cfg.task)
    eval_task = _eval_task(task, cfg)
    out = store.shard_path(cfg.out, i, n)
    out.parent.mkdir(parents=True, exist_ok=True)
    workdir = work_folder(cfg)
    # rows are keyed on the config, the task and the weights of every variant they come from
    weights = "|".join(f"{v}={fam.revision(v)}" for v in dict.fromkeys([*cfg.variants, *cfg.baselines]))
    digest = f"{cfg.digest()}-{task.hash[:8]}-{hashlib.sha256(weights.encode()).hexdigest()[:8]}"
    digest += _dtype_tag(fam)
    fitted = _fit_all(fam, task, cfg, workdir, progress=progress)
    run = _Run(
        cfg,
        task,
        {name: vec for name, (vec, _) in fitted.items()},
        {name: shuffled for name, (_, shuffled) in fitted.items()},
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


def random_seed(seed: int, layer: int, draw: int) -> int:
    """The seed of random draw ``draw`` at ``layer`` (draw 0 is the sweep's historical single draw)."""
    return seed + 1000 * layer + 7919 * draw


def _controls(run: _Run, unit: _Unit) -> list[tuple[str, int, SteeringVector | None]]:
    """(control, draw, vector) of a unit: unsteered; or steered, its ``n_random`` norm-matched
    random draws and its label-shuffled control. ``draw`` is -1 except for random draws."""
    if unit.vector is None:
        return [("none", -1, None)]
    fitted = run.vectors[unit.vector]
    settings: list[tuple[str, int, SteeringVector | None]] = []
    if run.cfg.steer_control:
        settings.append(("steer", -1, fitted))
    if run.cfg.random_control:
        for k in run.cfg.draws if run.cfg.draws is not None else range(run.cfg.n_random):
            settings.append(
                ("random", k, random_like(fitted, seed=random_seed(run.cfg.seed, unit.layer or 0, k)))
            )
    shuffled = run.shuffled.get(unit.vector)
    if shuffled is not None:
        settings.append(("shuffled", -1, shuffled))
    return settings


@dataclass
class _Completed:
    """Completions of one generate pass with the manipulation check of each row: steered
    positions on the prompt (``fired``) and the next-token log-probs after the prompt."""

    texts: list[str]
    fired: list[int]
    logprobs: torch.Tensor | None
    finish: list[str]  # "stop" or "budget" (the row used every new token without stopping)


def _complete(
    model: Any,
    tok: Any,
    run: _Run,
    unit: _Unit,
    vec: SteeringVector | None,
    prompts: Sequence[str],
    alpha_rows: Sequence[float],
) -> _Completed:
    """Greedy completions of ``prompts``, steered by ``vec`` at per-row alphas when given."""
    if vec is None:
        ends: list[str] = []
        plain = generate(
            model, tok, list(prompts), max_new_tokens=run.max_new, batch_size=run.cfg.batch_size, finish=ends
        )
        return _Completed(plain, [0] * len(plain), None, ends)
    records: list[SteerRecord] = []
    bs = run.cfg.batch_size
    texts: list[str] = []
    finish: list[str] = []
    for b0 in range(0, len(prompts), bs):
        sub = list(prompts[b0 : b0 + bs])
        a = torch.tensor(alpha_rows[b0 : b0 + bs])

        @contextmanager
        def steer(m: Any, batch: Any, a: torch.Tensor = a, vec: SteeringVector = vec) -> Iterator[None]:
            with apply(
                m,
                vec,
                layers=[unit.layer or 0],
                alpha=a,
                positions=unit.position or "all",
                units=run.cfg.units,
                record_logits=True,
            ) as rec:
                records.append(rec)
                yield

        batch_ends: list[str] = []
        texts += generate(
            model,
            tok,
            sub,
            max_new_tokens=run.max_new,
            batch_size=len(sub),
            intervention=steer,
            finish=batch_ends,
        )
        finish += batch_ends
    fired = [int(x) for r in records for x in (r.positions if r.positions is not None else [])]
    lps = [r.first_logprobs for r in records if r.first_logprobs is not None]
    return _Completed(texts, fired, torch.cat(lps) if len(lps) == len(records) else None, finish)


def _kl(steered: torch.Tensor | None, ref: torch.Tensor | None) -> list[float]:
    """KL(steered || unsteered) of the next token after the prompt, in nats, per row."""
    if steered is None or ref is None:
        return [float("nan")] * (0 if steered is None else len(steered))
    return (steered.exp() * (steered - ref)).sum(-1).clamp_min(0.0).tolist()


def _run_unit(model: Any, tok: Any, run: _Run, unit: _Unit) -> list[dict[str, Any]]:
    exs = [run.by_id[i] for i in unit.ids]
    prompts = [e.prompt for e in exs]
    rows: list[dict[str, Any]] = []

    def add(
        control: str, draw: int, alpha: float, e: Example, comp: str, fired: int, kl: float, finish: str
    ) -> None:
        s = run.task.score(comp, e.answer)
        rows.append(
            {
                "digest": run.digest,
                "unit": unit.key,
                "variant": unit.variant,
                "vector": unit.vector or "none",
                "control": control,
                "draw": draw,
                "layer": -1 if unit.layer is None else unit.layer,
                "position": unit.position or "none",
                "alpha": alpha,
                "units": run.cfg.units,
                "prompt_id": e.id,
                "split": e.split,
                "label": e.label,
                "completion": comp,
                "parsed": s.parsed,
                "correct": bool(s.correct),
                "used_format": bool(s.used_format),
                "fired": fired,
                "kl": kl,
                "finish": finish,
            }
        )

    controls = _controls(run, unit)
    if unit.vector is None:
        done = _complete(model, tok, run, unit, None, prompts, [0.0] * len(exs))
        for e, comp, end in zip(exs, done.texts, done.finish, strict=True):
            add("none", -1, 0.0, e, comp, 0, 0.0, end)
    else:
        # alpha 0 adds nothing: generated once (through the hook, for the unsteered next-token
        # distribution every KL is measured against) and shared by every control
        alphas = [float(a) for a in run.cfg.alphas if a != 0]
        zero = _complete(model, tok, run, unit, run.vectors[unit.vector], prompts, [0.0] * len(exs))
        ref = zero.logprobs
        for control, draw, vec in controls:
            if len(alphas) < len(run.cfg.alphas):
                for e, comp, fired, end in zip(exs, zero.texts, zero.fired, zero.finish, strict=True):
                    add(control, draw, 0.0, e, comp, fired, 0.0, end)
            if not alphas:
                continue
            done = _complete(
                model, tok, run, unit, vec, prompts * len(alphas), [a for a in alphas for _ in exs]
            )
            base_lp = ref.repeat(len(alphas), 1) if ref is not None else None
            kls = _kl(done.logprobs, base_lp)
            for k, comp in enumerate(done.texts):
                a, e = alphas[k // len(exs)], exs[k % len(exs)]
                add(control, draw, a, e, comp, done.fired[k], kls[k], done.finish[k])
    for r in rows:
        r["unit_rows"] = len(rows)
    return rows
