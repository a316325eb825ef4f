"""``elicit passk``: pass@k and the crossover k from samples generated elsewhere (a JSONL)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from steering.cli.common import Family, guarded

__all__ = ["passk"]


def _ks(ks: str | None) -> list[int] | None:
    """``--k`` as a list of integers >= 1; a malformed one is a usage error (exit code 2)."""
    if ks is None:
        return None
    try:
        out = [int(k) for k in ks.split(",")]
    except ValueError as err:
        raise typer.BadParameter(
            f"--k takes integers >= 1, comma-separated (e.g. 1,8,64); got {ks!r}."
        ) from err
    if not out or min(out) < 1:
        raise typer.BadParameter(f"--k takes integers >= 1, comma-separated (e.g. 1,8,64); got {ks!r}.")
    return out


def passk(
    family: Family,
    task: Annotated[str, typer.Option(help="the family file's task the samples answer")],
    samples: Annotated[
        Path, typer.Option(help="JSONL, one sample a line: {prompt_id, variant, completion[, sample]}")
    ],
    out: Annotated[Path, typer.Option(help="output folder (samples, passk, crossover, counts as parquet)")],
    k: Annotated[
        str | None, typer.Option("--k", help="comma-separated k values (default: 1 .. the fewest samples)")
    ] = None,
    base: Annotated[str, typer.Option(help="the variant the others are compared with")] = "base",
) -> None:
    """Score samples generated elsewhere with the task's scorer; write pass@k and the crossover k."""
    ks = _ks(k)

    def go() -> None:
        import pandas as pd

        from probes.decoding.imported import check_samples, read_samples, sample_counts
        from probes.decoding.passk import answer_count, crossover_k, passk_curve
        from probes.models.family import load_family

        fam = load_family(family, check=False)  # no weights are read
        t = fam.load_task(task, contrast=False)  # the questions as the task file writes them
        table = read_samples(samples, t, variants=fam.variants)
        counts = check_samples(table, ks) if ks is not None else sample_counts(table)
        curve = passk_curve(table, ks).assign(task=t.name)
        cross = (
            crossover_k(table, base=base, n_answers=answer_count(t)).assign(task=t.name)
            if table["variant"].nunique() > 1
            else pd.DataFrame()
        )
        out.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out / "samples.parquet", index=False)
        counts.to_parquet(out / "counts.parquet", index=False)
        curve.to_parquet(out / "passk.parquet", index=False)
        n = counts.groupby("variant", sort=False)["n"].agg(["min", "max", "size"])
        for v, r in n.iterrows():
            typer.echo(f"{v}: {r['size']} prompts, {r['min']}-{r['max']} samples each")
        with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
            typer.echo(
                curve[["variant", "k", "pass_at_k", "ci_lo", "ci_hi", "n_prompts"]].to_string(index=False)
            )
            if len(cross):
                cross.to_parquet(out / "crossover.parquet", index=False)
                cols = ["variant", "base", "crossover_k", "ci_lo", "ci_hi", "reached", "guess_k", "n_answers"]
                typer.echo(cross[cols].to_string(index=False))
        typer.echo(f"\ntables: {out}")

    guarded(go)
