"""What every ``elicit`` command shares: kit errors become a one-line message and exit code 2,
and the options that several commands take, defined once.

The CLI modules import nothing from :mod:`probes` or :mod:`steering` at module level (each command
imports what it runs): ``import probes`` loads torch, and ``elicit --help`` should not wait for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

__all__ = [
    "guarded",
    "Family",
    "Device",
    "Dtype",
    "Seed",
    "DSae",
    "Steps",
    "BatchSize",
    "Lr",
    "Executor",
    "Partition",
    "GpusPerNode",
    "TimeoutMin",
    "ArrayParallelism",
    "CpusPerTask",
    "executor_config",
    "Scorer",
    "PromptField",
    "AnswerField",
    "jsonl_task",
]

T = TypeVar("T")

Family = Annotated[str, typer.Option(help="family TOML, folder with family.toml, or 'organism'")]
Device = Annotated[str, typer.Option(help="torch device, e.g. cpu or cuda")]
Dtype = Annotated[
    str,
    typer.Option(help="dtype every variant is loaded in: float32, bfloat16 or float16 (never cast later)"),
]
Seed = Annotated[int, typer.Option(help="seed of initialisation and batch order")]
# a task given as a JSONL file (`collect --task`, `report --task`)
Scorer = Annotated[str, typer.Option(help="scorer for a JSONL task: exact, gsm8k, math, scratchpad")]
PromptField = Annotated[str, typer.Option(help="field of a JSONL task holding the prompt (e.g. 'question')")]
AnswerField = Annotated[str, typer.Option(help="field of a JSONL task holding the answer")]
# dictionary training (`sae train`, `crosscoder train`)
DSae = Annotated[int | None, typer.Option(help="latents (default 8 x d_model)")]
Steps = Annotated[int, typer.Option(min=1, help="optimiser steps")]
BatchSize = Annotated[int, typer.Option(min=1, help="activation rows per step")]
Lr = Annotated[float, typer.Option(help="learning rate")]


def jsonl_task(path: str, *, scorer: str, prompt_field: str, answer_field: str) -> Any:
    """A ``--task`` JSONL file as a :class:`~probes.data.tasks.Task`; a record without the fields
    is an error naming the CLI flags that rename them."""
    from probes.data.tasks import Task
    from probes.errors import TaskError

    try:
        return Task.from_jsonl(path, scorer=scorer, prompt_field=prompt_field, answer_field=answer_field)
    except TaskError as err:
        if "lacks" not in str(err):
            raise
        raise TaskError(
            str(err).split(" Pass prompt_field=")[0]
            + " Pass --prompt-field / --answer-field to name the fields of your data (e.g. --prompt-field question)."
        ) from None


def guarded(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call fn; turn a kit error into a one-line message and exit code 2."""
    # lazy: see the module docstring
    from probes.errors import ElicitError

    try:
        return fn(*args, **kwargs)
    except ElicitError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


# where shards run (`sweep run`, `collect`): steering.executor
Executor = Annotated[
    str,
    typer.Option(
        help="inprocess (here), local (one process per shard) or slurm (a job array), through submitit"
    ),
]
Partition = Annotated[str | None, typer.Option(help="SLURM partition (--executor slurm)")]
GpusPerNode = Annotated[int, typer.Option(min=0, help="GPUs per job (--executor local or slurm)")]
TimeoutMin = Annotated[int, typer.Option(min=1, help="wall-clock limit of each job, minutes")]
ArrayParallelism = Annotated[
    int, typer.Option("--slurm-array-parallelism", min=1, help="array tasks running at once (slurm)")
]
CpusPerTask = Annotated[
    int | None, typer.Option(min=1, help="CPU cores (torch threads) of each job (default: torch's)")
]


def executor_config(
    executor: str,
    partition: str | None,
    gpus_per_node: int,
    timeout_min: int,
    array_parallelism: int,
    cpus_per_task: int | None,
) -> Any:
    """The :class:`steering.executor.ExecutorConfig` of the executor options."""
    from steering.executor import ExecutorConfig

    return ExecutorConfig(
        executor, None, partition, gpus_per_node, timeout_min, array_parallelism, cpus_per_task
    )
