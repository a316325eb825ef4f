"""``elicit sae train`` and ``elicit crosscoder train``: dictionaries on stored activations (sae_lens).

Both commands take the same optimisation options (``--d-sae --steps --batch-size --lr --seed
--device``), defined once in :mod:`steering.cli.common` and passed on as one keyword set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from steering.cli.common import BatchSize, Device, DSae, Lr, Seed, Steps, guarded

__all__ = ["sae_app", "crosscoder_app"]

sae_app = typer.Typer(help="Train and evaluate SAEs on stored activations (sae_lens).", no_args_is_help=True)
crosscoder_app = typer.Typer(
    help="Crosscoder model diffing between base and a variant.", no_args_is_help=True
)

Hook = Annotated[str, typer.Option(help="hook site, e.g. 'resid_post.1'")]


def _fit(
    d_sae: int | None, steps: int, batch_size: int, lr: float, seed: int, device: str, out: Path
) -> dict[str, Any]:
    """The keywords train_sae and train_crosscoder share."""
    return {
        "d_sae": d_sae,
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "device": device,
        "out": out,
    }


@sae_app.command("train")
def sae_train(
    acts: Annotated[Path, typer.Option(help="activation store folder (from `elicit collect`)")],
    hook: Hook,
    out: Annotated[
        Path, typer.Option(help="output folder (sae_lens format: cfg.json + sae_weights.safetensors)")
    ],
    variant: Annotated[str, typer.Option(help="variant whose activations train the SAE")] = "base",
    position: Annotated[str, typer.Option(help="stored position, e.g. 'all' or 'match:='")] = "all",
    architecture: Annotated[str, typer.Option(help="standard, topk, batchtopk or jumprelu")] = "batchtopk",
    d_sae: DSae = None,
    k: Annotated[float, typer.Option(help="active latents per token (topk / batchtopk)")] = 16,
    sparsity_coefficient: Annotated[
        float | None, typer.Option(help="L1 (standard) or L0 (jumprelu) coefficient")
    ] = None,
    # the optimisation options both trainers share (defined once in steering.cli.common); typer
    # reads a command's options from its own signature, so each signature lists them
    steps: Steps = 2000,
    batch_size: BatchSize = 256,
    lr: Lr = 3e-4,
    seed: Seed = 0,
    device: Device = "cpu",
) -> None:
    """Train an SAE on stored activations with sae_lens (no wandb); loads with sae_lens.SAE.load_from_disk.

    Prints the architecture trained and its FVU, L0 and dead-latent share on its training rows."""
    from probes.data.activations import ActivationSet
    from probes.dictionaries.sae import fit_quality, token_rows, train_sae

    def go() -> None:
        store = ActivationSet.load(acts)
        sae = train_sae(
            store,
            variant,
            hook,
            position,
            architecture=architecture,
            k=k,
            sparsity_coefficient=sparsity_coefficient,
            **_fit(d_sae, steps, batch_size, lr, seed, device, out),
        )
        # the rows train_sae trained on (the same BOS and outlier exclusion, its default factor)
        rows, _ = token_rows(store, variant, hook, position)
        typer.echo(f"{fit_quality(sae, rows)}\nd_in={sae.cfg.d_in}; written to {out}")

    guarded(go)


@crosscoder_app.command("train")
def crosscoder_train(
    acts: Annotated[Path, typer.Option(help="activation store folder holding both variants")],
    variant: Annotated[str, typer.Option(help="the fine-tuned variant compared with the base")],
    hook: Hook,
    out: Annotated[
        Path, typer.Option(help="output folder (sae_lens folder + crosscoder.json + latents.parquet)")
    ],
    base: Annotated[str, typer.Option(help="the reference variant")] = "base",
    position: Annotated[str, typer.Option(help="stored position, e.g. 'all'")] = "all",
    d_sae: DSae = None,
    k: Annotated[float, typer.Option(help="BatchTopK: mean active latents per token")] = 8,
    # the optimisation options both trainers share (defined once in steering.cli.common); typer
    # reads a command's options from its own signature, so each signature lists them
    steps: Steps = 2000,
    batch_size: BatchSize = 256,
    lr: Lr = 3e-4,
    seed: Seed = 0,
    device: Device = "cpu",
) -> None:
    """Train a BatchTopK crosscoder on base and variant activations concatenated; write latents and class counts."""
    from probes.data.activations import ActivationSet
    from probes.dictionaries.crosscoder import crosscoder_latents, crosscoder_summary, train_crosscoder

    def go() -> None:
        store = ActivationSet.load(acts)
        cc = train_crosscoder(
            store, base, variant, hook, position, k=k, **_fit(d_sae, steps, batch_size, lr, seed, device, out)
        )
        lat = crosscoder_latents(cc, store)
        lat.to_parquet(out / "latents.parquet")
        summary = crosscoder_summary(lat)
        summary.to_json(out / "summary.json", orient="records", indent=1)
        typer.echo(summary.to_string(index=False))

    guarded(go)
