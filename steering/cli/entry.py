"""The ``elicit`` application: every command group assembled, and :func:`main`, the console script.

Each subcommand is a thin wrapper over a package function; ``elicit --help`` lists them.
"""

from __future__ import annotations

import os

import typer

from steering.cli import collect, dictionaries, organism, passk, report, sweep, weights

__all__ = ["app", "main"]

app = typer.Typer(
    name="elicit",
    help="elicitkit: does post-training create reasoning, or select a mode the base model already had?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(collect.collect)
app.add_typer(organism.app, name="organism")
app.add_typer(dictionaries.sae_app, name="sae")
app.add_typer(dictionaries.crosscoder_app, name="crosscoder")
app.add_typer(sweep.app, name="sweep")
app.command()(weights.weights)
app.command()(passk.passk)
app.command()(report.figures)
app.command()(report.report)
app.command("run")(report.run_main)


def main() -> None:
    """The console script: set the process state the CLI edge owns, then run the app.

    Only here, never in the packages (the process is the CLI's own):

    * ``TOKENIZERS_PARALLELISM=false``: the Rust tokenizers' thread pool neither competes with
      torch for the cores nor warns when a process starts after a tokenizer was used.
    * ``OMP_WAIT_POLICY=PASSIVE``: spinning OpenMP threads make training ~10x slower on a shared
      CPU. OpenMP reads it when torch loads, so it reaches the organism's spawned worker processes;
      this process's torch is already loaded by ``import steering`` (its ``__init__`` imports
      :mod:`steering.apply`), so here it comes too late unless the user exports it.
    * ``MPLBACKEND=Agg`` (before matplotlib loads): the CLI writes figures to files only, so it
      needs no display.

    Each is a default: a value the user exported wins.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("MPLBACKEND", "Agg")
    app()
