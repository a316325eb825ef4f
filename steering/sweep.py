"""Steering sweeps: a grid over variants x vectors x layers x alphas x positions.

A sweep is read from TOML (``SweepConfig.from_toml``; unknown keys are errors)::

    family = "organism"            # family file / folder / 'organism'
    task = "parity"                # a task declared by the family, or a JSONL path
    variants = ["base"]            # steered
    baselines = ["dpo", "create"]  # evaluated unsteered (for gap recovered)
    layers = [0, 1, 2]
    alphas = [0.0, 1.0, 2.0, 4.0]
    positions = ["match:=", "all"]
    label = "neutral"              # which prompts are evaluated
    splits = ["dev", "test"]       # settings chosen on the first, reported on the second
    [[vectors]]
    name = "careful-direct"
    variant = "base"
    contrast = ["careful", "direct"]
    position = "match:="
    split = "train"

Every (layer, alpha, position) also runs a norm-matched random direction (the mandatory
control, docs/design.md). Work is cut into units (one setting x one chunk of prompts, all alphas
in one batched generate call with per-row alphas); each unit's rows are appended to a JSONL
file in one write and fsynced, so a killed sweep reruns to exactly the rows of an
uninterrupted one. ``shard=(i, n)`` runs every n-th unit; :func:`merge_shards` joins them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from probes.data.activations import collect_activations
from probes.data.tasks import Task
from probes.errors import ElicitError
from probes.models.family import ModelFamily, load_family
from probes.models.generation import generate
from probes.stats import bootstrap_ci
from steering.apply import apply, steer_positions_key
from steering.vector import SteeringVector, fit_vector, random_like

__all__ = [
    "VectorSpec",
    "SweepConfig",
    "run_sweep",
    "read_rows",
    "merge_shards",
    "summarize_sweep",
    "gap_recovered",
    "resolve_task",
    "fit_vectors",
]


@dataclass(frozen=True)
class VectorSpec:
    """How to obtain one steering vector: fit on a variant's activations, or load a file."""

    name: str
    variant: str = "base"
    method: str = "diff_means"
    contrast: tuple[str, str] = ("careful", "direct")
    position: str = "match:="
    split: str | None = "train"
    path: str | None = None
    seed: int = 0


@dataclass(frozen=True)
class SweepConfig:
    family: str
    task: str
    vectors: tuple[VectorSpec, ...]
    layers: tuple[int, ...]
    alphas: tuple[float, ...]
    variants: tuple[str, ...] = ("base",)
    baselines: tuple[str, ...] = ()
    positions: tuple[str, ...] = ("match:=",)
    units: str = "vector"
    random_control: bool = True
    label: str | None = "neutral"
    splits: tuple[str, ...] = ("dev", "test")
    max_prompts: int | None = None  # per split
    max_new_tokens: int | None = None
    chunk_size: int = 32
    batch_size: int = 256
    seed: int = 0
    out: str = "sweep.jsonl"

    def __post_init__(self) -> None:
        if not self.vectors:
            raise ElicitError("A sweep needs at least one [[vectors]] entry.")
        if not self.layers or not self.alphas:
            raise ElicitError(f"A sweep needs layers and alphas (got layers={self.layers}, alphas={self.alphas}).")
        for p in self.positions:
            steer_positions_key(p)
        if self.chunk_size < 1 or self.batch_size < 1:
            raise ElicitError(f"chunk_size and batch_size must be >= 1 (got {self.chunk_size}, {self.batch_size}).")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "config") -> SweepConfig:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(fields)
        if unknown:
            raise ElicitError(f"Unknown sweep key(s) {sorted(unknown)} in {where}. Valid keys: {sorted(fields)}.")
        vfields = {f.name for f in dataclasses.fields(VectorSpec)}
        vectors = []
        for i, v in enumerate(data.get("vectors", [])):
            bad = set(v) - vfields
            if bad:
                raise ElicitError(f"Unknown key(s) {sorted(bad)} in vectors[{i}] of {where}. Valid: {sorted(vfields)}.")
            if "name" not in v:
                raise ElicitError(f"vectors[{i}] of {where} needs a name.")
            vv = dict(v)
            if "contrast" in vv:
                vv["contrast"] = tuple(vv["contrast"])
            vectors.append(VectorSpec(**vv))
        kw: dict[str, Any] = {}
        for k, val in data.items():
            if k == "vectors":
                continue
            kw[k] = tuple(val) if isinstance(val, list) else val
        missing = [k for k in ("family", "task", "layers", "alphas") if k not in kw]
        if missing:
            raise ElicitError(f"Sweep {where} lacks required key(s) {missing}.")
        return cls(vectors=tuple(vectors), **kw)

    @classmethod
    def from_toml(cls, path: str | Path) -> SweepConfig:
        path = Path(path)
        if not path.exists():
            raise ElicitError(f"No sweep config at {str(path)!r}.")
        data = tomllib.loads(path.read_text())
        cfg = cls.from_dict(data, where=str(path))
        # relative output/family paths resolve against the config's folder
        updates: dict[str, Any] = {}
        if not Path(cfg.out).is_absolute():
            updates["out"] = str(path.parent / cfg.out)
        if cfg.family != "organism" and not Path(cfg.family).is_absolute() and (path.parent / cfg.family).exists():
            updates["family"] = str(path.parent / cfg.family)
        return dataclasses.replace(cfg, **updates)

    def digest(self) -> str:
        """Hash of everything that determines the rows (not the output path)."""
        d = dataclasses.asdict(self)
        d.pop("out")
        d.pop("batch_size")
        return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def resolve_task(family: ModelFamily, task: str | Task) -> Task:
    """A task object from a family-declared name or a JSONL path."""
    if isinstance(task, Task):
        return task
    if task in family.tasks:
        return family.load_task(task)
    if Path(task).exists():
        return Task.from_jsonl(task)
    raise ElicitError(
        f"Task {task!r} is neither declared by family {family.name!r} (declared: {sorted(family.tasks)}) "
        "nor a JSONL file."
    )


def fit_vectors(
    family: ModelFamily, task: Task, cfg: SweepConfig, workdir: Path, *, progress: bool = True
) -> dict[str, SteeringVector]:
    """Fit (or load) every vector of the sweep; cached under ``workdir/vectors``."""
    out: dict[str, SteeringVector] = {}
    n_layers = int(family.config("base").get("num_hidden_layers", family.config("base").get("n_layer", 0)))
    for spec in cfg.vectors:
        if spec.path is not None:
            out[spec.name] = SteeringVector.load(spec.path)
            continue
        cache = workdir / "vectors" / spec.name
        if cache.with_suffix(".json").exists():
            vec = SteeringVector.load(cache)
            if vec.task_hash == task.hash:
                out[spec.name] = vec
                continue
        fit_task = task.filter(split=spec.split, label=list(spec.contrast)) if spec.split else task.filter(label=list(spec.contrast))
        acts = collect_activations(
            family, fit_task, f"resid_post:0-{n_layers - 1}", spec.position, variants=[spec.variant],
            out=workdir / "acts" / f"{spec.name}-{fit_task.hash}", progress=progress,
        )
        vec = fit_vector(
            acts, spec.variant, f"resid_post:0-{n_layers - 1}", spec.contrast, method=spec.method,
            position=spec.position, seed=spec.seed, name=spec.name,
        )
        vec.save(cache)
        out[spec.name] = vec
    return out


# ---------------------------------------------------------------- rows on disk
def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of complete units only (a torn last line or a partial unit is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    with open(path) as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # torn write at the end of a killed run
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["unit"]] = counts.get(r["unit"], 0) + 1
    return [r for r in rows if counts[r["unit"]] == r["unit_rows"]]


def _rewrite(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _append(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    data = "".join(json.dumps(r) + "\n" for r in rows)
    with open(path, "a") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


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
                        units.append(_Unit(f"{variant}|{spec.name}|{layer}|{pos}|{c}", variant, spec.name, layer, pos, c, chunk))
    return units


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
        fam._spec(v)
    task = task if task is not None else resolve_task(fam, cfg.task)
    eval_task = task.filter(split=list(cfg.splits), label=cfg.label) if cfg.label else task.filter(split=list(cfg.splits))
    if cfg.max_prompts is not None:  # the first max_prompts of *each* split
        kept = []
        for sp in cfg.splits:
            kept += [e for e in eval_task.examples if e.split == sp][: cfg.max_prompts]
        eval_task = eval_task.with_examples(kept)
    out = Path(cfg.out)
    if n > 1:
        out = out.with_name(f"{out.stem}.shard-{i}-of-{n}{out.suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(cfg.out).with_suffix("")
    workdir = workdir.with_name(workdir.name + ".work")
    vectors = fit_vectors(fam, task, cfg, workdir, progress=progress)
    digest = cfg.digest() + "-" + task.hash[:8]

    # resume: keep complete units of this config; drop partial ones (rewrite atomically)
    raw_lines = len(out.read_text().splitlines()) if out.exists() else 0
    rows = [r for r in read_rows(out) if r.get("digest") == digest]
    if out.exists() and len(rows) != raw_lines:
        _rewrite(out, rows)
    done = {r["unit"] for r in rows}
    units = [u for k, u in enumerate(_units(cfg, list(eval_task.ids))) if k % n == i and u.key not in done]
    by_id = {e.id: e for e in eval_task.examples}
    max_new = cfg.max_new_tokens or task.max_new_tokens
    tok = fam.tokenizer(cfg.variants[0])
    bar = tqdm(total=len(units), desc="sweep units", disable=not progress)
    for variant in dict.fromkeys(u.variant for u in units):
        with fam.open(variant) as model:
            for unit in (u for u in units if u.variant == variant):
                rows_out = _run_unit(model, tok, cfg, unit, vectors, by_id, max_new, digest, task)
                _append(out, rows_out)
                bar.update(1)
    bar.close()
    return pd.DataFrame([r for r in read_rows(out) if r.get("digest") == digest])


def _run_unit(
    model: Any,
    tok: Any,
    cfg: SweepConfig,
    unit: _Unit,
    vectors: Mapping[str, SteeringVector],
    by_id: Mapping[str, Any],
    max_new: int,
    digest: str,
    task: Task,
) -> list[dict[str, Any]]:
    exs = [by_id[i] for i in unit.ids]
    settings: list[tuple[str, SteeringVector | None]] = [("none", None)]
    if unit.vector is not None:
        fitted = vectors[unit.vector]
        settings = [("steer", fitted)]
        if cfg.random_control:
            settings.append(("random", random_like(fitted, seed=cfg.seed + 1000 * (unit.layer or 0))))
    alphas = list(cfg.alphas) if unit.vector is not None else [0.0]
    rows: list[dict[str, Any]] = []
    for control, vec in settings:
        prompts = [e.prompt for _ in alphas for e in exs]
        alpha_rows = [a for a in alphas for _ in exs]
        completions: list[str] = []
        for b0 in range(0, len(prompts), cfg.batch_size):
            sub = prompts[b0 : b0 + cfg.batch_size]
            if vec is None:
                completions += generate(model, tok, sub, max_new_tokens=max_new, batch_size=len(sub))
            else:
                a = torch.tensor(alpha_rows[b0 : b0 + cfg.batch_size])

                def steer(m: Any, batch: Any, a: torch.Tensor = a, vec: SteeringVector = vec) -> Any:
                    return apply(m, vec, layers=[unit.layer or 0], alpha=a, positions=unit.position or "all", units=cfg.units)

                completions += generate(model, tok, sub, max_new_tokens=max_new, batch_size=len(sub), intervention=steer)
        for k, comp in enumerate(completions):
            e = exs[k % len(exs)]
            s = task.score(comp, e.answer)
            rows.append(
                {
                    "digest": digest,
                    "unit": unit.key,
                    "variant": unit.variant,
                    "vector": unit.vector or "none",
                    "control": control,
                    "layer": -1 if unit.layer is None else unit.layer,
                    "position": unit.position or "none",
                    "alpha": float(alpha_rows[k]) if vec is not None else 0.0,
                    "units": cfg.units,
                    "prompt_id": e.id,
                    "split": e.split,
                    "label": e.label,
                    "completion": comp,
                    "parsed": s.parsed,
                    "correct": bool(s.correct),
                    "used_format": bool(s.used_format),
                }
            )
    n_rows = len(rows)
    for r in rows:
        r["unit_rows"] = n_rows
    return rows


def merge_shards(config: SweepConfig | str | Path, n: int, out: str | Path | None = None) -> pd.DataFrame:
    """Join the rows of ``n`` shards into one file (parquet if ``out`` ends in .parquet)."""
    cfg = config if isinstance(config, SweepConfig) else SweepConfig.from_toml(config)
    base = Path(cfg.out)
    frames = []
    for i in range(n):
        p = base.with_name(f"{base.stem}.shard-{i}-of-{n}{base.suffix}")
        if not p.exists():
            raise ElicitError(f"Shard file {str(p)!r} is missing; run `elicit sweep run CONFIG --shard {i}/{n}` first.")
        frames.append(pd.DataFrame(read_rows(p)))
    df = pd.concat(frames, ignore_index=True)
    dup = df.duplicated(["unit", "control", "alpha", "prompt_id"]).sum()
    if dup:
        raise ElicitError(f"{dup} duplicated rows across shards; were shards run with different n?")
    df = df.sort_values(["unit", "control", "alpha", "prompt_id"], kind="stable").reset_index(drop=True)
    target = Path(out) if out is not None else base.with_suffix(".parquet")
    if target.suffix == ".parquet":
        df.to_parquet(target, index=False)
    else:
        _rewrite(target, df.to_dict("records"))
    return df


# ---------------------------------------------------------------- summaries
def gap_recovered(acc_intervention: float, acc_base: float, acc_tuned: float) -> float:
    """Venhoff et al. 2025: ``(acc(base+intervention) - acc(base)) / (acc(tuned) - acc(base))``,
    clipped at 0. NaN when the tuned model does not beat the base (no gap to recover)."""
    gap = acc_tuned - acc_base
    if gap <= 0:
        return float("nan")
    return max(0.0, (acc_intervention - acc_base) / gap)


def _per_prompt(df: pd.DataFrame) -> pd.Series:
    return df.groupby("prompt_id")["correct"].mean()


def summarize_sweep(
    df: pd.DataFrame,
    *,
    tuned: Sequence[str] = (),
    base: str = "base",
    dev: str = "dev",
    test: str = "test",
    seed: int = 0,
) -> pd.DataFrame:
    """Choose (vector, layer, position, alpha) on ``dev``; report on ``test``.

    One row per (steered variant, vector, position) and per tuned variant: the dev-chosen
    setting, test accuracy with a bootstrap CI, the norm-matched random control at the same
    setting, the unsteered accuracy, gap recovered (with a bootstrap CI over test prompts,
    resampled jointly) and the per-prompt distribution (share of prompts flipped to correct /
    to wrong by steering), after Tan et al. 2024. Protocol: ``dev-select/test-report``.
    """
    out = []
    steer = df[df.control == "steer"]
    plain = df[df.control == "none"]
    for (variant, vector, position), grp in steer.groupby(["variant", "vector", "position"]):
        dev_acc = grp[grp.split == dev].groupby(["layer", "alpha"])["correct"].mean().reset_index()
        if dev_acc.empty:
            continue
        dev_acc["abs_alpha"] = dev_acc.alpha.abs()
        best = dev_acc.sort_values(["correct", "abs_alpha", "layer"], ascending=[False, True, True]).iloc[0]
        layer, alpha = int(best.layer), float(best.alpha)
        sel = grp[(grp.split == test) & (grp.layer == layer) & (grp.alpha == alpha)]
        rnd = df[(df.control == "random") & (df.variant == variant) & (df.vector == vector) & (df.position == position)
                 & (df.split == test) & (df.layer == layer) & (df.alpha == alpha)]
        unsteered = plain[(plain.variant == variant) & (plain.split == test)]
        s, r, u = _per_prompt(sel), _per_prompt(rnd), _per_prompt(unsteered)
        ids = s.index.intersection(u.index)
        s, u = s.loc[ids], u.loc[ids]
        row: dict[str, Any] = {
            "variant": variant, "vector": vector, "position": position, "layer": layer, "alpha": alpha,
            "dev_acc": float(best.correct), "n_dev": int(grp[(grp.split == dev) & (grp.layer == layer) & (grp.alpha == alpha)].prompt_id.nunique()),
            "test_acc": float(s.mean()), "n_test": len(ids),
            "random_acc": float(r.mean()) if len(r) else float("nan"),
            "unsteered_acc": float(u.mean()),
            "flipped_to_correct": float(((s > u)).mean()), "flipped_to_wrong": float(((s < u)).mean()),
            "protocol": f"{dev}-select/{test}-report",
        }
        row["test_lo"], row["test_hi"] = bootstrap_ci(s.to_numpy(), seed=seed)
        if len(r):
            row["random_lo"], row["random_hi"] = bootstrap_ci(r.to_numpy(), seed=seed)
        for t in tuned:
            tu = _per_prompt(plain[(plain.variant == t) & (plain.split == test)])
            common = ids.intersection(tu.index)
            if len(common) == 0:
                continue
            S, U, T = (x.loc[common].to_numpy() for x in (s, u, tu))
            gr = gap_recovered(S.mean(), U.mean(), T.mean())
            idx = np.arange(len(common))
            def stat(k: np.ndarray, S: np.ndarray = S, U: np.ndarray = U, T: np.ndarray = T) -> float:
                return _nan_gr(S[k], U[k], T[k])

            lo, hi = bootstrap_ci(idx, stat, seed=seed)
            row[f"tuned_acc[{t}]"] = float(T.mean())
            row[f"gap_recovered[{t}]"] = gr
            row[f"gap_recovered_lo[{t}]"], row[f"gap_recovered_hi[{t}]"] = lo, hi
        out.append(row)
    return pd.DataFrame(out)


def _nan_gr(s: np.ndarray, u: np.ndarray, t: np.ndarray) -> float:
    g = gap_recovered(float(s.mean()), float(u.mean()), float(t.mean()))
    return 0.0 if np.isnan(g) else g


def iter_settings(cfg: SweepConfig) -> Iterator[tuple[str, int, str, float]]:
    """Every (vector, layer, position, alpha) of the grid."""
    for spec in cfg.vectors:
        for layer in cfg.layers:
            for pos in cfg.positions:
                for a in cfg.alphas:
                    yield spec.name, layer, pos, a
