"""``elicit organism train|eval``: the model organism, a tiny family with planted ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steering.cli.common import guarded

__all__ = ["app"]

app = typer.Typer(help="The model organism: a tiny family with planted ground truth.", no_args_is_help=True)


def _echo_tables(table) -> None:  # type: ignore[no-untyped-def]
    from probes.organism.evaluate import format_table

    typer.echo(format_table(table, "heldout") + "\n\n" + format_table(table, "train"))


@app.command("train")
def train(
    out: Annotated[
        Path, typer.Option(help="new folder for the family (family.toml, variants, tasks, eval.parquet)")
    ],
    seed: Annotated[
        int, typer.Option(help="seed of every stage (same seed, same machine -> same weights)")
    ] = 0,
    quick: Annotated[bool, typer.Option(help="the small family used by tests (~1.5 min on 2 cores)")] = False,
    workers: Annotated[
        int | None, typer.Option(help="post-training stages run at once (default: one per core, at most 4)")
    ] = None,
) -> None:
    """Train every organism variant with progress bars, evaluate them and print the table."""
    from probes.organism.train import train_family

    def go() -> None:
        import pandas as pd

        folder = train_family(out, seed=seed, quick=quick, workers=workers)
        _echo_tables(pd.read_parquet(folder / "eval.parquet"))
        typer.echo(f"\nfamily written to {folder}")

    guarded(go)


@app.command("eval")
def evaluate(
    folder: Annotated[Path, typer.Argument(help="an organism folder written by `elicit organism train`")],
) -> None:
    """Re-evaluate an organism folder (rewrites eval.parquet) and print the table."""
    from probes.organism.evaluate import evaluate_family

    guarded(lambda: _echo_tables(evaluate_family(folder)))
