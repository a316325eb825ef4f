"""``elicit collect``: activations of every variant on the same prompts, into an on-disk store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from steering.cli.common import (
    AnswerField,
    ArrayParallelism,
    CpusPerTask,
    Device,
    Dtype,
    Executor,
    Family,
    GpusPerNode,
    Partition,
    PromptField,
    Scorer,
    TimeoutMin,
    executor_config,
    guarded,
    jsonl_task,
)

__all__ = ["collect"]


def collect(
    family: Family,
    task: Annotated[str, typer.Option(help="task JSONL file, or a task name declared by the family")],
    out: Annotated[Path, typer.Option(help="output folder (safetensors shards + meta.json)")],
    hooks: Annotated[
        str, typer.Option(help="hook sites, e.g. 'resid_post:0-2' or 'resid_post.1,mlp_out.1'")
    ] = "resid_post:all",
    positions: Annotated[
        str, typer.Option(help="'last', 'all', an index, 'match:=', 'match:Wait:-12:4', 'span:NAME'")
    ] = "last",
    variants: Annotated[str | None, typer.Option(help="comma-separated variants (default: all)")] = None,
    scorer: Scorer = "exact",
    prompt_field: PromptField = "prompt",
    answer_field: AnswerField = "answer",
    text: Annotated[
        str, typer.Option(help="'prompt' or 'prompt+trace' (teacher-forced reasoning)")
    ] = "prompt",
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    device: Device = "cpu",
    dtype: Dtype = "float32",
    store_dtype: Annotated[
        str | None,
        typer.Option(help="store the activations as bfloat16 or float16 (default: the model's dtype)"),
    ] = None,
    executor: Executor = "inprocess",
    partition: Partition = None,
    gpus_per_node: GpusPerNode = 0,
    timeout_min: TimeoutMin = 60,
    slurm_array_parallelism: ArrayParallelism = 256,
    cpus_per_task: CpusPerTask = None,
) -> None:
    """Collect activations of every variant on the same prompts into a reusable on-disk store."""
    from probes.data.activations import collect_activations
    from probes.models.family import load_family, resolve_dtype

    def go() -> None:
        fam = load_family(family, device=device, dtype=resolve_dtype(dtype))
        if task in fam.tasks:
            t = fam.load_task(task)
        else:
            t = jsonl_task(task, scorer=scorer, prompt_field=prompt_field, answer_field=answer_field)
        common: dict[str, Any] = dict(batch_size=batch_size, text=text, store_dtype=store_dtype)
        names = variants.split(",") if variants else None
        ex = executor_config(
            executor, partition, gpus_per_node, timeout_min, slurm_array_parallelism, cpus_per_task
        )
        if ex.kind == "inprocess":
            acts = collect_activations(fam, t, hooks, positions, variants=names, out=out, **common)
        else:  # one job per variant (steering.executor)
            from steering.executor import collect_sharded

            acts = collect_sharded(
                family,
                t,
                hooks,
                positions,
                out=out,
                variants=names,
                executor=ex,
                device=device,
                dtype=dtype,
                **common,
            )
        typer.echo(f"{acts!r}\nwritten to {out}")

    guarded(go)
