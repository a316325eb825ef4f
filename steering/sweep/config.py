"""What a sweep runs: :class:`VectorSpec` (one steering vector) and :class:`SweepConfig` (the
grid), read from TOML with every unknown key named; :func:`resolve_task` turns the config's task
string into a :class:`~probes.data.tasks.Task`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probes.data.tasks import Task
from probes.errors import ElicitError
from probes.models.config_keys import check_keys
from probes.models.family import ModelFamily
from steering.apply import steer_positions_key

__all__ = ["VectorSpec", "SweepConfig", "resolve_task"]

#: keys a sweep file must give
REQUIRED = ("family", "task", "layers", "alphas")


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
    #: a label-shuffled contrast vector to use as this vector's ``shuffled`` control (a file);
    #: without it a fitted vector's shuffled control is fitted beside it
    shuffled_path: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> VectorSpec:
        check_keys(data, [f.name for f in dataclasses.fields(cls)], where)
        if "name" not in data:
            raise ElicitError(f'{where} needs a name (e.g. name = "careful-direct").')
        kw = dict(data)
        if "contrast" in kw:
            kw["contrast"] = tuple(kw["contrast"])
        return cls(**kw)


@dataclass(frozen=True)
class SweepConfig:
    """The grid: variants x vectors x layers x alphas x positions, evaluated on ``splits``."""

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
    #: norm-matched random directions per setting (draws 0..n_random-1), each over the whole grid
    n_random: int = 1
    #: also steer with a label-shuffled contrast vector, norm-matched per layer (control ``shuffled``)
    shuffled_control: bool = False
    #: which random draws to run (default: 0..n_random-1); a null's test pass runs only its own
    draws: tuple[int, ...] | None = None
    #: run the vectors themselves (control ``steer``) and the unsteered rows (control ``none``);
    #: a sweep of the nulls alone turns both off
    steer_control: bool = True
    unsteered: bool = True
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
            raise ElicitError(
                f"A sweep needs layers and alphas (got layers={self.layers}, alphas={self.alphas})."
            )
        for p in self.positions:
            steer_positions_key(p)
        if self.n_random < 0:
            raise ElicitError(f"n_random must be >= 0 (got {self.n_random}); use 20 or more for a null.")
        if self.chunk_size < 1 or self.batch_size < 1:
            raise ElicitError(
                f"chunk_size and batch_size must be >= 1 (got {self.chunk_size}, {self.batch_size})."
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "config") -> SweepConfig:
        check_keys(data, [f.name for f in dataclasses.fields(cls)], f"sweep {where}")
        vectors = tuple(
            VectorSpec.from_dict(v, f"vectors[{i}] of {where}") for i, v in enumerate(data.get("vectors", []))
        )
        kw: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "vectors"
        }
        missing = [k for k in REQUIRED if k not in kw]
        if missing:
            raise ElicitError(f"Sweep {where} lacks required key(s) {missing}.")
        return cls(vectors=vectors, **kw)

    @classmethod
    def from_toml(cls, path: str | Path) -> SweepConfig:
        path = Path(path)
        if not path.exists():
            raise ElicitError(f"No sweep config at {str(path)!r}.")
        cfg = cls.from_dict(tomllib.loads(path.read_text()), where=str(path))
        # relative output/family paths resolve against the config's folder
        updates: dict[str, Any] = {}
        if not Path(cfg.out).is_absolute():
            updates["out"] = str(path.parent / cfg.out)
        if (
            cfg.family != "organism"
            and not Path(cfg.family).is_absolute()
            and (path.parent / cfg.family).exists()
        ):
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
