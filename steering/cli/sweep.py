"""``elicit sweep``: run (or resume) a steering grid, one shard of it, or merge the shards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from steering.cli.common import (
    ArrayParallelism,
    CpusPerTask,
    Device,
    Dtype,
    Executor,
    GpusPerNode,
    Partition,
    TimeoutMin,
    executor_config,
    guarded,
)

__all__ = ["app", "parse_shard"]


class _DefaultRun(TyperGroup):
    """``elicit sweep CONFIG.toml`` means ``elicit sweep run CONFIG.toml``."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    help="Steering sweeps: `elicit sweep CONFIG.toml` runs (or resumes) a grid; `merge` joins shards.",
    no_args_is_help=True,
    cls=_DefaultRun,
)


def parse_shard(shard: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)``; anything else is an :class:`~probes.errors.ElicitError` naming the form."""
    from probes.errors import ElicitError

    try:
        i, n = (int(x) for x in shard.split("/"))
    except ValueError:
        raise ElicitError(f"--shard must look like i/n (e.g. 0/4), got {shard!r}.") from None
    return i, n


@app.command("run")
def sweep_run(
    config: Annotated[Path, typer.Argument(help="sweep TOML (see configs/sweeps/organism.toml)")],
    shard: Annotated[
        str, typer.Option(help="run shard i of n, e.g. 0/4 (a job array or one GPU each)")
    ] = "0/1",
    device: Device = "cpu",
    dtype: Dtype = "float32",
    summary: Annotated[bool, typer.Option(help="print the dev-chosen / test-reported summary")] = True,
    shards: Annotated[
        int, typer.Option(min=1, help="run all n shards on --executor, then merge them (instead of --shard)")
    ] = 1,
    executor: Executor = "inprocess",
    partition: Partition = None,
    gpus_per_node: GpusPerNode = 0,
    timeout_min: TimeoutMin = 60,
    slurm_array_parallelism: ArrayParallelism = 256,
    cpus_per_task: CpusPerTask = None,
) -> None:
    """Run or resume a sweep; rows are appended to the config's `out` file (with --shards N, to
    N shard files run on --executor and merged into `out` with .parquet)."""
    from steering.sweep import SweepConfig, run_sweep, summarize_sweep

    def go() -> None:
        from probes.errors import ElicitError
        from probes.models.family import resolve_dtype
        from steering.executor import run_sweep_sharded

        cfg = SweepConfig.from_toml(config)
        ex = executor_config(
            executor, partition, gpus_per_node, timeout_min, slurm_array_parallelism, cpus_per_task
        )
        if shards > 1 or executor != "inprocess":
            if shard != "0/1":
                raise ElicitError(
                    f"--shard {shard} runs one shard by hand; --shards {shards} / --executor {executor} run "
                    "them all. Give one or the other."
                )
            df = run_sweep_sharded(cfg, shards=shards, executor=ex, device=device, dtype=dtype)
            typer.echo(f"{len(df)} rows from {shards} shards ({executor}) merged")
        else:
            df = run_sweep(cfg, shard=parse_shard(shard), device=device, dtype=resolve_dtype(dtype))
            typer.echo(
                f"{len(df)} rows in {cfg.out if shard == '0/1' else cfg.out + ' (shard ' + shard + ')'}"
            )
        if summary and shard == "0/1" and len(df):
            import pandas as pd

            with pd.option_context("display.width", 200, "display.max_columns", 30):
                typer.echo(summarize_sweep(df, tuned=list(cfg.baselines)).to_string(index=False))

    guarded(go)


@app.command("merge")
def sweep_merge(
    config: Annotated[Path, typer.Argument(help="the sweep TOML the shards ran")],
    shards: Annotated[int, typer.Option(help="number of shards n")],
    out: Annotated[Path | None, typer.Option(help="merged file (.parquet or .jsonl)")] = None,
) -> None:
    """Join the rows of n shards into one table (no rows lost or duplicated)."""
    from steering.sweep import merge_shards

    def go() -> None:
        df = merge_shards(config, shards, out)
        typer.echo(f"merged {len(df)} rows from {shards} shards")

    guarded(go)
