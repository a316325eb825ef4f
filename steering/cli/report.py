"""``elicit report``, ``elicit run`` (the main job) and ``elicit figures``: verdicts, report, figures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from steering.cli.common import Device, Dtype, Family, guarded

if TYPE_CHECKING:
    from steering.battery.verdict import VariantVerdict

__all__ = ["report", "run_main", "figures"]


def _print_verdicts(judged: Sequence[VariantVerdict]) -> None:
    """The verdict table (the typed verdicts, as ``tables/verdicts.parquet`` holds them)."""
    from steering.report.run import SUMMARY_COLUMNS, verdict_table

    verdicts = verdict_table(judged)
    import pandas as pd

    with pd.option_context(
        "display.width", 200, "display.max_columns", 30, "display.float_format", "{:.2f}".format
    ):
        typer.echo(verdicts[list(SUMMARY_COLUMNS)].to_string(index=False))


def figures(
    results: Annotated[
        Path, typer.Argument(help="a results folder written by `elicit report` / `elicit run`")
    ],
    out: Annotated[
        Path | None, typer.Option(help="where to write PDF + PNG (default: RESULTS/figures)")
    ] = None,
) -> None:
    """Regenerate every paper figure from saved result tables (never runs a model)."""
    from probes.errors import ElicitError
    from probes.plots.render import render_all

    def go() -> None:
        done = render_all(results, out or results / "figures")
        if not done:
            raise ElicitError(
                f"No result tables under {str(results / 'tables')!r}; run `elicit report` or `elicit run` first."
            )
        for name, paths in done.items():
            typer.echo(f"{name:20s} " + "  ".join(str(p) for p in paths))

    guarded(go)


def report(
    family: Family,
    out: Annotated[Path, typer.Option(help="output folder (report.md, report.json, tables/, figures/)")],
    task: Annotated[
        str | None, typer.Option(help="judge every variant on this task (default: each variant's own)")
    ] = None,
    variants: Annotated[
        str | None, typer.Option(help="comma-separated variants (default: all but base)")
    ] = None,
    device: Device = "cpu",
    dtype: Dtype = "float32",
    quality: Annotated[
        bool,
        typer.Option(
            "--quality/--no-quality",
            help="the decoding stage: pass@k, crossover k, CoT-decoding (16 test prompts, 8 samples)",
        ),
    ] = True,
) -> None:
    """Run the select-vs-create battery on every variant and write the report."""
    from probes.models.family import load_family, resolve_dtype
    from steering.battery.quality import QualityConfig
    from steering.report import run_report

    def go() -> None:
        fam = load_family(family, device=device, dtype=resolve_dtype(dtype))
        qcfg = (QualityConfig.for_family(fam, **({"task": task} if task else {}))) if quality else None
        rep = run_report(
            fam, out=out, task=task, variants=variants.split(",") if variants else None, quality=qcfg
        )
        _print_verdicts(rep.judged)
        typer.echo(f"\nreport: {out / 'report.md'}\nfigures: {out / 'figures'}")

    guarded(go)


def run_main(
    out: Annotated[Path, typer.Option(help="where everything is written")] = Path("elicit-out"),
    seed: Annotated[int, typer.Option(help="organism seed")] = 0,
    quick: Annotated[bool, typer.Option(help="the small organism (a smoke test)")] = False,
) -> None:
    """The main job: train (or load) the model organism, judge every variant, write report and figures."""
    import time

    from probes.models.family import load_family
    from probes.organism.train import organism_family
    from steering.battery.quality import QualityConfig
    from steering.report import run_report

    def go() -> None:
        t0 = time.time()
        folder = organism_family(seed=seed, quick=quick)
        typer.echo(
            f"organism (seed {seed}{', quick' if quick else ''}): {folder}  [{time.time() - t0:.0f} s]"
        )
        fam = load_family(folder)
        rep = run_report(fam, out=out, quality=QualityConfig(n_samples=16, max_prompts=32, cot_k=5))
        typer.echo("")
        _print_verdicts(rep.judged)
        typer.echo(
            f"\nreport:  {out / 'report.md'}\njson:    {out / 'report.json'}\nfigures: {out / 'figures'}"
            f"\ntotal {time.time() - t0:.0f} s"
        )

    guarded(go)
