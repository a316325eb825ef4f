"""``elicit report``, ``elicit run`` (the main job) and ``elicit figures``: verdicts, report, figures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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


def _numbers(flag: str, text: str | None, kind: type) -> tuple | None:
    """``--layers 4,6,8`` / ``--alphas 0,0.25,0.5`` as a tuple; a malformed list is a usage error."""
    if text is None:
        return None
    try:
        return tuple(kind(x) for x in text.split(",") if x.strip())
    except ValueError as err:
        raise typer.BadParameter(
            f"{flag} takes comma-separated {'integers' if kind is int else 'numbers'} (e.g. "
            f"{'4,6,8' if kind is int else '0,0.25,0.5'}), got {text!r}."
        ) from err


def battery_overrides(
    *,
    layers: str | None = None,
    alphas: str | None = None,
    max_new_tokens: int | None = None,
    batch_size: int | None = None,
    max_dev: int | None = None,
    max_test: int | None = None,
) -> dict[str, object]:
    """The ``[battery]`` settings the report's flags override (the flags given, nothing else);
    ``--layers all`` is every layer, spelled out later against the model."""
    out: dict[str, object] = {}
    if layers is not None and layers.strip() != "all":
        out["layers"] = _numbers("--layers", layers, int)
    if alphas is not None:
        out["alphas"] = _numbers("--alphas", alphas, float)
    for key, value in (
        ("max_new_tokens", max_new_tokens),
        ("batch_size", batch_size),
        ("max_dev", max_dev),
        ("max_test", max_test),
    ):
        if value is not None:
            out[key] = value
    return out


def report(
    family: Family,
    out: Annotated[Path, typer.Option(help="output folder (report.md, report.json, tables/, figures/)")],
    task: Annotated[
        str | None,
        typer.Option(
            help="judge every variant on this task: a family task name or a JSONL file (default: each variant's own)"
        ),
    ] = None,
    variants: Annotated[
        str | None, typer.Option(help="comma-separated variants (default: all but base)")
    ] = None,
    scorer: Scorer = "exact",
    prompt_field: PromptField = "prompt",
    answer_field: AnswerField = "answer",
    layers: Annotated[
        str | None,
        typer.Option(
            help="steering layers, e.g. 4,6,8, or 'all' (default: [battery] layers, else 5 from 25% to 75% depth)"
        ),
    ] = None,
    alphas: Annotated[
        str | None, typer.Option(help="steering strengths, e.g. 0,0.25,0.5 (default: [battery] alphas)")
    ] = None,
    max_new_tokens: Annotated[
        int | None, typer.Option(min=1, help="token budget of every completion (default: the task's)")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="prompts per forward pass")] = None,
    max_dev: Annotated[int | None, typer.Option(min=1, help="at most this many dev prompts")] = None,
    max_test: Annotated[int | None, typer.Option(min=1, help="at most this many test prompts")] = None,
    sae: Annotated[bool, typer.Option(help="the SAE-transfer and crosscoder test")] = True,
    figures: Annotated[bool, typer.Option(help="draw the figures")] = True,
    device: Device = "cpu",
    dtype: Dtype = "float32",
    quality: Annotated[
        bool,
        typer.Option(
            "--quality/--no-quality",
            help="the decoding stage: pass@k, crossover k, CoT-decoding (16 test prompts, 8 samples); "
            "on a scratchpad task also information gain, early answering and the OOD drop",
        ),
    ] = True,
) -> None:
    """Run the select-vs-create battery on every variant and write the report.

    Flags override the family file's [battery] table (validated alike)."""
    from probes.models.family import load_family, resolve_dtype
    from steering.battery.config import BatteryConfig
    from steering.battery.quality import QualityConfig
    from steering.report import run_report

    def go() -> None:
        # the flags are checked before any model is loaded (or an organism trained)
        overrides = battery_overrides(
            layers=layers,
            alphas=alphas,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            max_dev=max_dev,
            max_test=max_test,
        )
        fam = load_family(family, device=device, dtype=resolve_dtype(dtype))
        if layers is not None and layers.strip() == "all":
            overrides["layers"] = tuple(range(fam.layer_count()))
        cfg = BatteryConfig.from_family(fam, **overrides)
        judged_on = task
        # a file is read with the field flags; any other name goes on to the family's tasks (whose
        # error lists the declared ones)
        if task is not None and task not in fam.tasks and Path(task).is_file():
            judged_on = jsonl_task(task, scorer=scorer, prompt_field=prompt_field, answer_field=answer_field)
        named = {"task": task} if task is not None and task in fam.tasks else {}
        qcfg = QualityConfig.for_family(fam, **named) if quality else None
        rep = run_report(
            fam,
            out=out,
            task=judged_on,
            variants=variants.split(",") if variants else None,
            config=cfg,
            sae=sae,
            figures=figures,
            quality=qcfg,
        )
        _print_verdicts(rep.judged)
        for w in rep.warnings:
            typer.secho(f"warning: {w.message}", fg=typer.colors.YELLOW)
        typer.echo(f"\nreport: {out / 'report.md'}" + (f"\nfigures: {out / 'figures'}" if figures else ""))

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
        for w in rep.warnings:
            typer.secho(f"warning: {w.message}", fg=typer.colors.YELLOW)
        typer.echo(
            f"\nreport:  {out / 'report.md'}\njson:    {out / 'report.json'}\nfigures: {out / 'figures'}"
            f"\ntotal {time.time() - t0:.0f} s"
        )

    guarded(go)
