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
    from probes.data.activations import collect_activations
    from probes.data.tasks import Task
    from probes.models.family import load_family

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


@organism_app.command("train")
def organism_train(
    out: Annotated[Path, typer.Option(help="new folder for the family (family.toml, variants, tasks, eval.parquet)")],
    seed: Annotated[int, typer.Option(help="seed of every stage (same seed, same machine -> same weights)")] = 0,
    quick: Annotated[bool, typer.Option(help="the small family used by tests (~1.5 min on 2 cores)")] = False,
    workers: Annotated[
        int | None, typer.Option(help="post-training stages run at once (default: one per core, at most 4)")
    ] = None,
) -> None:
    """Train every organism variant with progress bars, evaluate them and print the table."""
    from probes.organism import format_table, train_family

    def go() -> None:
        import pandas as pd

        folder = train_family(out, seed=seed, quick=quick, workers=workers)
        table = pd.read_parquet(folder / "eval.parquet")
        typer.echo(format_table(table, "heldout") + "\n\n" + format_table(table, "train"))
        typer.echo(f"\nfamily written to {folder}")

    _run(go)


@organism_app.command("eval")
def organism_eval(
    folder: Annotated[Path, typer.Argument(help="an organism folder written by `elicit organism train`")],
) -> None:
    """Re-evaluate an organism folder (rewrites eval.parquet) and print the table."""
    from probes.organism import evaluate_family, format_table

    def go() -> None:
        table = evaluate_family(folder)
        typer.echo(format_table(table, "heldout") + "\n\n" + format_table(table, "train"))

    _run(go)

# ---------------------------------------------------------------- sae / crosscoder
sae_app = typer.Typer(help="Train and evaluate SAEs on stored activations (sae_lens).", no_args_is_help=True)
app.add_typer(sae_app, name="sae")
crosscoder_app = typer.Typer(help="Crosscoder model diffing between base and a variant.", no_args_is_help=True)
app.add_typer(crosscoder_app, name="crosscoder")


@sae_app.command("train")
def sae_train(
    acts: Annotated[Path, typer.Option(help="activation store folder (from `elicit collect`)")],
    hook: Annotated[str, typer.Option(help="hook site, e.g. 'resid_post.1'")],
    out: Annotated[Path, typer.Option(help="output folder (sae_lens format: cfg.json + sae_weights.safetensors)")],
    variant: Annotated[str, typer.Option(help="variant whose activations train the SAE")] = "base",
    position: Annotated[str, typer.Option(help="stored position, e.g. 'all' or 'match:='")] = "all",
    architecture: Annotated[str, typer.Option(help="standard, topk, batchtopk or jumprelu")] = "batchtopk",
    d_sae: Annotated[int | None, typer.Option(help="latents (default 8 x d_model)")] = None,
    k: Annotated[float, typer.Option(help="active latents per token (topk / batchtopk)")] = 16,
    sparsity_coefficient: Annotated[float | None, typer.Option(help="L1 (standard) or L0 (jumprelu) coefficient")] = None,
    steps: Annotated[int, typer.Option(min=1)] = 2000,
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
    lr: Annotated[float, typer.Option()] = 3e-4,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option()] = "cpu",
) -> None:
    """Train an SAE on stored activations with sae_lens (no wandb); loads with sae_lens.SAE.load_from_disk."""
    from probes.data.activations import ActivationSet
    from probes.dictionaries.sae import train_sae

    def go() -> None:
        sae = train_sae(
            ActivationSet.load(acts), variant, hook, position, architecture=architecture, d_sae=d_sae, k=k,
            sparsity_coefficient=sparsity_coefficient, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
            device=device, out=out,
        )
        typer.echo(f"{type(sae).__name__} d_in={sae.cfg.d_in} d_sae={sae.cfg.d_sae} written to {out}")

    _run(go)


@crosscoder_app.command("train")
def crosscoder_train(
    acts: Annotated[Path, typer.Option(help="activation store folder holding both variants")],
    variant: Annotated[str, typer.Option(help="the fine-tuned variant compared with the base")],
    hook: Annotated[str, typer.Option(help="hook site, e.g. 'resid_post.1'")],
    out: Annotated[Path, typer.Option(help="output folder (sae_lens folder + crosscoder.json + latents.parquet)")],
    base: Annotated[str, typer.Option(help="the reference variant")] = "base",
    position: Annotated[str, typer.Option(help="stored position, e.g. 'all'")] = "all",
    d_sae: Annotated[int | None, typer.Option(help="latents (default 8 x d_model)")] = None,
    k: Annotated[float, typer.Option(help="BatchTopK: mean active latents per token")] = 8,
    steps: Annotated[int, typer.Option(min=1)] = 2000,
    batch_size: Annotated[int, typer.Option(min=1)] = 256,
    lr: Annotated[float, typer.Option()] = 3e-4,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option()] = "cpu",
) -> None:
    """Train a BatchTopK crosscoder on base and variant activations concatenated; write latents and class counts."""
    from probes.data.activations import ActivationSet
    from probes.dictionaries.crosscoder import crosscoder_latents, crosscoder_summary, train_crosscoder

    def go() -> None:
        store = ActivationSet.load(acts)
        cc = train_crosscoder(
            store, base, variant, hook, position, d_sae=d_sae, k=k, steps=steps, batch_size=batch_size, lr=lr,
            seed=seed, device=device, out=out,
        )
        lat = crosscoder_latents(cc, store)
        lat.to_parquet(out / "latents.parquet")
        summary = crosscoder_summary(lat)
        summary.to_json(out / "summary.json", orient="records", indent=1)
        typer.echo(summary.to_string(index=False))

    _run(go)

# ---------------------------------------------------------------- sweeps
from typer.core import TyperGroup  # noqa: E402


class _DefaultRun(TyperGroup):
    """``elicit sweep CONFIG.toml`` means ``elicit sweep run CONFIG.toml``."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


sweep_app = typer.Typer(
    help="Steering sweeps: `elicit sweep CONFIG.toml` runs (or resumes) a grid; `merge` joins shards.",
    no_args_is_help=True,
    cls=_DefaultRun,
)
app.add_typer(sweep_app, name="sweep")


def _parse_shard(shard: str) -> tuple[int, int]:
    from probes.errors import ElicitError

    try:
        i, n = (int(x) for x in shard.split("/"))
    except ValueError:
        raise ElicitError(f"--shard must look like i/n (e.g. 0/4), got {shard!r}.") from None
    return i, n


@sweep_app.command("run")
def sweep_run(
    config: Annotated[Path, typer.Argument(help="sweep TOML (see configs/sweeps/organism.toml)")],
    shard: Annotated[str, typer.Option(help="run shard i of n, e.g. 0/4 (a job array or one GPU each)")] = "0/1",
    device: Annotated[str, typer.Option()] = "cpu",
    summary: Annotated[bool, typer.Option(help="print the dev-chosen / test-reported summary")] = True,
) -> None:
    """Run or resume a sweep; rows are appended to the config's `out` file."""
    from steering.sweep import SweepConfig, run_sweep, summarize_sweep

    def go() -> None:
        cfg = SweepConfig.from_toml(config)
        df = run_sweep(cfg, shard=_parse_shard(shard), device=device)
        typer.echo(f"{len(df)} rows in {cfg.out if shard == '0/1' else cfg.out + ' (shard ' + shard + ')'}")
        if summary and shard == "0/1" and len(df):
            import pandas as pd

            with pd.option_context("display.width", 200, "display.max_columns", 30):
                typer.echo(summarize_sweep(df, tuned=list(cfg.baselines)).to_string(index=False))

    _run(go)


@sweep_app.command("merge")
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

    _run(go)


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

    from probes.models.family import load_family
    from probes.weights.geometry import (
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
        try:
            ks_list, tols_list = [int(k) for k in ks.split(",")], [float(t) for t in tols.split(",")]
        except ValueError as err:
            raise typer.BadParameter(
                f"--ks takes integers and --tols numbers, comma-separated; got {ks!r} and {tols!r}."
            ) from err
        df = weight_diff(
            fam, variant, base=base, directions=dirs, ks=ks_list, tols=tols_list,
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


# ---------------------------------------------------------------- figures
@app.command()
def figures(
    results: Annotated[Path, typer.Argument(help="a results folder written by `elicit report` / `elicit run`")],
    out: Annotated[Path | None, typer.Option(help="where to write PDF + PNG (default: RESULTS/figures)")] = None,
) -> None:
    """Regenerate every paper figure from saved result tables (never runs a model)."""
    from probes.plots.figures import render_all

    def go() -> None:
        done = render_all(results, out or results / "figures")
        if not done:
            from probes.errors import ElicitError

            raise ElicitError(f"No result tables under {str(results / 'tables')!r}; run `elicit report` or `elicit run` first.")
        for name, paths in done.items():
            typer.echo(f"{name:20s} " + "  ".join(str(p) for p in paths))

    _run(go)


# ---------------------------------------------------------------- report and the main job
def _print_verdicts(verdicts) -> None:  # type: ignore[no-untyped-def]
    cols = ["variant", "task", "verdict", "acc_base", "acc_variant", "chance", "steer_grc", "steer_grc_lo", "steer_grc_hi",
            "random_grc", "forced_grc", "forced_grc_lo", "forced_grc_hi", "max_cos_decision", "n_test"]
    import pandas as pd

    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.2f}".format):
        typer.echo(verdicts[cols].to_string(index=False))


@app.command()
def report(
    family: Annotated[str, typer.Option(help="family TOML, folder with family.toml, or 'organism'")],
    out: Annotated[Path, typer.Option(help="output folder (report.md, report.json, tables/, figures/)")],
    task: Annotated[str | None, typer.Option(help="judge every variant on this task (default: each variant's own)")] = None,
    variants: Annotated[str | None, typer.Option(help="comma-separated variants (default: all but base)")] = None,
    device: Annotated[str, typer.Option()] = "cpu",
) -> None:
    """Run the select-vs-create battery on every variant and write the report."""
    from probes.models.family import load_family
    from steering.report import run_report

    def go() -> None:
        fam = load_family(family, device=device)
        rep = run_report(fam, out=out, task=task, variants=variants.split(",") if variants else None)
        _print_verdicts(rep.verdicts)
        typer.echo(f"\nreport: {out / 'report.md'}\nfigures: {out / 'figures'}")

    _run(go)


@app.command("run")
def run_main(
    out: Annotated[Path, typer.Option(help="where everything is written")] = Path("elicit-out"),
    seed: Annotated[int, typer.Option(help="organism seed")] = 0,
    quick: Annotated[bool, typer.Option(help="the small organism (a smoke test)")] = False,
) -> None:
    """The main job: train (or load) the model organism, judge every variant, write report and figures."""
    import time

    from probes.models.family import load_family
    from probes.organism import organism_family
    from steering.report import run_report

    def go() -> None:
        t0 = time.time()
        folder = organism_family(seed=seed, quick=quick)
        typer.echo(f"organism (seed {seed}{', quick' if quick else ''}): {folder}  [{time.time() - t0:.0f} s]")
        fam = load_family(folder)
        from steering.quality import QualityConfig

        rep = run_report(fam, out=out, quality=QualityConfig(n_samples=16, max_prompts=32, cot_k=5))
        typer.echo("")
        _print_verdicts(rep.verdicts)
        typer.echo(f"\nreport:  {out / 'report.md'}\njson:    {out / 'report.json'}\nfigures: {out / 'figures'}"
                   f"\ntotal {time.time() - t0:.0f} s")

    _run(go)


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Before torch loads: spinning OpenMP threads make training ~10x slower on a shared CPU.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()


if __name__ == "__main__":
    main()
