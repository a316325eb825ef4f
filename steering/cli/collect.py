"""``elicit collect``: activations of every variant on the same prompts, into an on-disk store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steering.cli.common import (
    AnswerField,
    Device,
    Dtype,
    Family,
    PromptField,
    Scorer,
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
        acts = collect_activations(
            fam,
            t,
            hooks,
            positions,
            variants=variants.split(",") if variants else None,
            out=out,
            batch_size=batch_size,
            text=text,
        )
        typer.echo(f"{acts!r}\nwritten to {out}")

    guarded(go)
