"""The ``elicit`` command line.

Each subcommand is a thin wrapper over a package function; ``elicit --help`` lists them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="elicit",
    help="elicitkit: does post-training create reasoning, or select a mode the base model already had?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _run(fn, *args, **kwargs):
    """Call fn; turn a kit error into a one-line message and exit code 2."""
    from probes.errors import ElicitError

    try:
        return fn(*args, **kwargs)
    except ElicitError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


# ---------------------------------------------------------------- collect (foundation)
@app.command()
def collect(
    family: Annotated[str, typer.Option(help="family TOML, folder with family.toml, or 'organism'")],
    task: Annotated[str, typer.Option(help="task JSONL file, or a task name declared by the family")],
    out: Annotated[Path, typer.Option(help="output folder (safetensors shards + meta.json)")],
    hooks: Annotated[str, typer.Option(help="hook sites, e.g. 'resid_post:0-2' or 'resid_post.1,mlp_out.1'")] = "resid_post:all",
    positions: Annotated[str, typer.Option(help="'last', 'all', an index, 'match:=', 'match:Wait:-12:4', 'span:NAME'")] = "last",
    variants: Annotated[str | None, typer.Option(help="comma-separated variants (default: all)")] = None,
    scorer: Annotated[str, typer.Option(help="scorer for a JSONL task: exact, gsm8k, scratchpad")] = "exact",
    text: Annotated[str, typer.Option(help="'prompt' or 'prompt+trace' (teacher-forced reasoning)")] = "prompt",
    batch_size: Annotated[int, typer.Option(min=1)] = 16,
    device: Annotated[str, typer.Option()] = "cpu",
) -> None:
    """Collect activations of every variant on the same prompts into a reusable on-disk store."""
    from probes.activations import collect_activations
    from probes.family import load_family
    from probes.tasks import Task

    def go() -> None:
        fam = load_family(family, device=device)
        t = fam.load_task(task) if task in fam.tasks else Task.from_jsonl(task, scorer=scorer)
        acts = collect_activations(
            fam, t, hooks, positions, variants=variants.split(",") if variants else None,
            out=out, batch_size=batch_size, text=text,
        )
        typer.echo(f"{acts!r}\nwritten to {out}")

    _run(go)


# ---------------------------------------------------------------- organism
organism_app = typer.Typer(help="The model organism: a tiny family with planted ground truth.", no_args_is_help=True)
app.add_typer(organism_app, name="organism")

# ---------------------------------------------------------------- sae / crosscoder
sae_app = typer.Typer(help="Train and evaluate SAEs on stored activations (sae_lens).", no_args_is_help=True)
app.add_typer(sae_app, name="sae")
crosscoder_app = typer.Typer(help="Crosscoder model diffing between base and a variant.", no_args_is_help=True)
app.add_typer(crosscoder_app, name="crosscoder")

# ---------------------------------------------------------------- sweeps
sweep_app = typer.Typer(help="Steering sweeps: run a grid, resume, shard and merge.", no_args_is_help=True)
app.add_typer(sweep_app, name="sweep")


# ---------------------------------------------------------------- weights
@app.command()
def weights(
    family: Annotated[str, typer.Option(help="family TOML, folder with family.toml, or 'organism'")],
    variant: Annotated[str, typer.Option(help="the fine-tuned variant compared with the base")],
    out: Annotated[Path, typer.Option(help="output folder (weights_<variant>.parquet + .json summary)")],
    base: Annotated[str, typer.Option(help="the reference variant")] = "base",
    against: Annotated[str | None, typer.Option(help="a second variant: cosine of the two updates")] = None,
    directions: Annotated[Path | None, typer.Option(help="safetensors file of residual directions")] = None,
    ks: Annotated[str, typer.Option(help="principal-subspace sizes, comma-separated")] = "1,4,16",
    tols: Annotated[str, typer.Option(help="absolute |dW| tolerances for sparsity, comma-separated")] = "0,1e-5,1e-3",
    svd: Annotated[str, typer.Option(help="'auto', 'full' or 'lowrank'")] = "auto",
    full_svd_max: Annotated[int, typer.Option(min=1, help="auto: full SVD when min(out, in) <= this")] = 1024,
    device: Annotated[str, typer.Option()] = "cpu",
) -> None:
    """Weight geometry of a variant's update: norm, rank, sparsity, principal subspaces, alignment."""
    import json
    import time

    from probes.family import load_family
    from probes.weights import (
        SVDSettings,
        load_directions,
        summarize_weight_diff,
        update_cosine,
        weight_diff,
    )

    def go() -> None:
        start = time.perf_counter()
        fam = load_family(family, check=False)
        fam.check(tokenizers=False)  # architecture fields only: no tokenizer is needed here
        dirs = load_directions(directions) if directions is not None else None
        df = weight_diff(
            fam, variant, base=base, directions=dirs,
            ks=[int(k) for k in ks.split(",")], tols=[float(t) for t in tols.split(",")],
            svd=SVDSettings(method=svd, full_svd_max=full_svd_max), device=device,
        )
        out.mkdir(parents=True, exist_ok=True)
        table = out / f"weights_{variant}.parquet"
        df.to_parquet(table)
        summary = {
            "family": fam.name, "base": base, "variant": variant, "table": str(table),
            "n_params": len(df), "svd_methods": df["svd_method"].value_counts().to_dict(),
            **{k: v for k, v in df.attrs.items() if k not in ("family", "variant", "base_variant")},
            "by_component": summarize_weight_diff(df, "component").to_dict(orient="records"),
        }
        if against is not None:
            cos = update_cosine(fam, variant, against, base=base, device=device)
            cos_table = out / f"update_cosine_{variant}_vs_{against}.parquet"
            cos.to_parquet(cos_table)
            summary["update_cosine"] = {
                "table": str(cos_table),
                "by_component": cos.groupby("component")["cosine"].mean().to_dict(),
            }
        summary["wall_s"] = round(time.perf_counter() - start, 2)
        (out / f"weights_{variant}.json").write_text(json.dumps(summary, indent=2, default=str))
        typer.echo(
            f"{len(df)} parameters compared ({variant} vs {base}) in {summary['wall_s']} s; "
            f"written to {table}"
        )

    _run(go)


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    app()


if __name__ == "__main__":
    main()
