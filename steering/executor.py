"""Running the shards of a sweep or a collection as jobs: in this process, as local processes,
or as a SLURM job array, through submitit.

The shards are the ones the kit already has: a sweep's ``shard=(i, n)`` (every n-th unit,
one rows file per shard, joined by :func:`~steering.sweep.rows.merge_shards`) and a
collection's variants (each variant's shards of the same store). This module only submits
them and waits::

    ex = ExecutorConfig("slurm", partition="gpu", gpus_per_node=1, timeout_min=120)
    rows = run_sweep_sharded("configs/sweeps/organism.toml", shards=8, executor=ex)

``"inprocess"`` (the default) runs the shards one after another here, with no submitit;
``"local"`` runs each as its own process through submitit's ``LocalExecutor`` (what the tests
use); ``"slurm"`` submits one job array (``sbatch``, with ``partition``, ``gpus_per_node``,
``timeout_min`` and ``array_parallelism``). A sweep first fits its vectors in one job (so the
shards never write the same cache), then runs the shards as one array, then merges their rows.
submitit's logs and pickles go to ``folder`` (default: next to the sweep's rows or the store).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from probes.errors import ElicitError

__all__ = ["EXECUTORS", "ExecutorConfig", "run_jobs", "run_sweep_sharded", "collect_sharded"]

#: Where shards run: here, as local processes (submitit), or as a SLURM job array (submitit).
EXECUTORS = ("inprocess", "local", "slurm")


@dataclass(frozen=True)
class ExecutorConfig:
    """Where and how the shards run.

    Attributes:
        kind: one of :data:`EXECUTORS`.
        folder: submitit's folder (job pickles, stdout / stderr logs); ``None``: a default
            beside the outputs.
        partition: the SLURM partition (``slurm`` only; ``None``: the cluster's default).
        gpus_per_node: GPUs per job (``local``: made visible to each process; ``slurm``: requested).
        timeout_min: wall-clock limit of each job, in minutes.
        array_parallelism: at most this many array tasks run at once (``slurm`` only).
        cpus_per_task: CPU cores of each job (``slurm``: requested); exported to each job's
            environment as ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` (torch's thread count there),
            so local jobs do not oversubscribe the machine. ``None``: torch's default.
    """

    kind: str = "inprocess"
    folder: Path | None = None
    partition: str | None = None
    gpus_per_node: int = 0
    timeout_min: int = 60
    array_parallelism: int = 256
    cpus_per_task: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ElicitError(
                f"executor must be one of {list(EXECUTORS)}, got {self.kind!r} (e.g. --executor local)."
            )
        if (
            self.gpus_per_node < 0
            or self.timeout_min < 1
            or self.array_parallelism < 1
            or (self.cpus_per_task is not None and self.cpus_per_task < 1)
        ):
            raise ElicitError(
                f"gpus_per_node must be >= 0, timeout_min, array_parallelism and cpus_per_task >= 1; got "
                f"{self.gpus_per_node}, {self.timeout_min}, {self.array_parallelism}, {self.cpus_per_task}."
            )
        if self.kind != "slurm" and self.partition is not None:
            raise ElicitError(
                f"partition={self.partition!r} only applies to the slurm executor, not {self.kind!r}; "
                "drop --partition or use --executor slurm."
            )

    def executor(self, folder: Path) -> Any:
        """The submitit executor (``AutoExecutor`` for ``local`` / ``slurm``) writing to ``folder``."""
        if self.kind == "inprocess":
            raise ElicitError("The inprocess executor runs shards here and has no submitit executor.")
        import submitit

        ex = submitit.AutoExecutor(folder=str(self.folder or folder), cluster=self.kind)
        params: dict[str, Any] = {"timeout_min": self.timeout_min, "gpus_per_node": self.gpus_per_node}
        if self.cpus_per_task is not None:
            params["cpus_per_task"] = self.cpus_per_task
            # the thread count reaches the job through its environment, read as torch starts
            # there: nothing in the job's (or this) process sets torch's thread count
            n = self.cpus_per_task
            params[f"{self.kind}_setup"] = [f"export OMP_NUM_THREADS={n}", f"export MKL_NUM_THREADS={n}"]
        if self.kind == "slurm":
            params["slurm_array_parallelism"] = self.array_parallelism
            if self.partition is not None:
                params["slurm_partition"] = self.partition
        ex.update_parameters(**params)
        return ex


def run_jobs(
    fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], executor: ExecutorConfig, folder: Path, what: str
) -> list[Any]:
    """``fn(*a)`` for every ``a`` of ``args``: here in order, or as one submitit job array; the
    results in order. A failed job is an :class:`~probes.errors.ElicitError` naming it and its log."""
    if executor.kind == "inprocess":
        return [fn(*a) for a in args]
    ex = executor.executor(folder)
    jobs = ex.map_array(fn, *zip(*args, strict=True)) if args else []
    out = []
    for k, job in enumerate(jobs):
        try:
            out.append(job.result())
        except Exception as err:  # submitit re-raises the job's error (or its own, for a lost job)
            paths = getattr(job, "paths", None)
            log = f" Its log: {paths.stderr}." if paths is not None else ""
            raise ElicitError(
                f"{what} {k} of {len(jobs)} (job {job.job_id}, {executor.kind} executor) failed: "
                f"{str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__}.{log}"
            ) from err
    return out


# ------------------------------------------------------------------ sweeps
def _fit_job(config: Any, device: str, dtype: str) -> int:
    """Fit (or load) the sweep's vectors into its work folder; how many."""
    from probes.models.family import load_family, resolve_dtype
    from steering.sweep.config import resolve_task
    from steering.sweep.run import fit_vectors, work_folder

    fam = load_family(config.family, device=device, dtype=resolve_dtype(dtype))
    return len(fit_vectors(fam, resolve_task(fam, config.task), config, work_folder(config), progress=False))


def _sweep_shard_job(config: Any, i: int, n: int, device: str, dtype: str) -> int:
    """Run shard ``i`` of ``n`` (resumable, as ``elicit sweep run --shard i/n``); its row count."""
    from steering.sweep.run import run_sweep

    return len(run_sweep(config, shard=(i, n), device=device, dtype=dtype, progress=False))


def run_sweep_sharded(
    config: Any,
    *,
    shards: int,
    executor: ExecutorConfig | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    out: str | Path | None = None,
) -> pd.DataFrame:
    """Run a sweep as ``shards`` shards on ``executor`` and merge their rows (into ``out``,
    default the config's ``out`` with ``.parquet``). Equal, row for row, to the unsharded sweep.

    The vectors are fitted first, in one job, so the shards only read the cache."""
    from steering.sweep.config import SweepConfig
    from steering.sweep.rows import merge_shards
    from steering.sweep.run import work_folder

    cfg = config if isinstance(config, SweepConfig) else SweepConfig.from_toml(config)
    if shards < 1:
        raise ElicitError(f"shards must be >= 1, got {shards} (e.g. --shards 8).")
    ex = executor or ExecutorConfig()
    folder = work_folder(cfg) / "submitit"
    run_jobs(_fit_job, [(cfg, device, dtype)], ex, folder, "The vector-fitting job")
    run_jobs(
        _sweep_shard_job, [(cfg, i, shards, device, dtype) for i in range(shards)], ex, folder, "Sweep shard"
    )
    return merge_shards(cfg, shards, out)


# ------------------------------------------------------------------ collections
def _collect_job(
    family: str | Path,
    device: str,
    dtype: str,
    task: Any,
    hooks: Any,
    positions: Any,
    variant: str,
    kwargs: dict[str, Any],
) -> str:
    from probes.data.activations import collect_activations
    from probes.models.family import load_family, resolve_dtype

    fam = load_family(family, device=device, dtype=resolve_dtype(dtype))
    collect_activations(fam, task, hooks, positions, variants=[variant], progress=False, **kwargs)
    return variant


def collect_sharded(
    family: str | Path,
    task: Any,
    hooks: Any,
    positions: Any = "last",
    *,
    out: str | Path,
    variants: Sequence[str] | None = None,
    executor: ExecutorConfig | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    **kwargs: Any,
) -> Any:
    """:func:`~probes.data.activations.collect_activations` with one job per variant (each
    loads the family file ``family`` itself), into the one store at ``out``; then a final pass
    here checks every shard and records every variant (it loads no model)."""
    from probes.data.activations import collect_activations
    from probes.models.family import load_family, resolve_dtype

    if "overwrite" in kwargs:
        raise ElicitError(
            "collect_sharded does not overwrite a store; remove it first or choose another out=."
        )
    fam = load_family(family, device=device, dtype=resolve_dtype(dtype))
    names = list(variants) if variants is not None else fam.variants
    for v in names:
        fam.spec(v)  # raises with the valid names
    ex = executor or ExecutorConfig()
    args = [(family, device, dtype, task, hooks, positions, v, {"out": out, **kwargs}) for v in names]
    run_jobs(
        _collect_job, args, ex, Path(out).with_name(Path(out).name + ".submitit"), "Collection of variant"
    )
    return collect_activations(fam, task, hooks, positions, variants=names, out=out, progress=False, **kwargs)
