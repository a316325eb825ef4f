"""``elicit weights``: the weight geometry of a variant's update (norm, rank, sparsity, subspaces)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from steering.cli.common import Device, Family, guarded

__all__ = ["weights"]


def _numbers(ks: str, tols: str) -> tuple[list[int], list[float]]:
    """``--ks`` and ``--tols`` as lists; a malformed one is a usage error (exit code 2)."""
    try:
        return [int(k) for k in ks.split(",")], [float(t) for t in tols.split(",")]
    except ValueError as err:
        raise typer.BadParameter(
            f"--ks takes integers and --tols numbers, comma-separated; got {ks!r} and {tols!r}."
        ) from err


def _summary(fam: Any, df: Any, base: str, variant: str, table: Path) -> dict[str, Any]:
    """The JSON summary of one weight comparison (the table's attrs, per-component means)."""
    from probes.weights.geometry import summarize_weight_diff

    return {
        "family": fam.name,
        "base": base,
        "variant": variant,
        "table": str(table),
        "n_params": len(df),
        "svd_methods": df["svd_method"].value_counts().to_dict(),
        **{k: v for k, v in df.attrs.items() if k not in ("family", "variant", "base_variant")},
        "by_component": summarize_weight_diff(df, "component").to_dict(orient="records"),
    }


def _update_cosine(fam: Any, variant: str, against: str, base: str, device: str, out: Path) -> dict[str, Any]:
    """Cosine of ``variant``'s and ``against``'s updates per parameter: table written, summary returned."""
    from probes.weights.geometry import update_cosine

    cos = update_cosine(fam, variant, against, base=base, device=device)
    cos_table = out / f"update_cosine_{variant}_vs_{against}.parquet"
    cos.to_parquet(cos_table)
    return {"table": str(cos_table), "by_component": cos.groupby("component")["cosine"].mean().to_dict()}


def weights(
    family: Family,
    variant: Annotated[str, typer.Option(help="the fine-tuned variant compared with the base")],
    out: Annotated[Path, typer.Option(help="output folder (weights_<variant>.parquet + .json summary)")],
    base: Annotated[str, typer.Option(help="the reference variant")] = "base",
    against: Annotated[str | None, typer.Option(help="a second variant: cosine of the two updates")] = None,
    directions: Annotated[Path | None, typer.Option(help="safetensors file of residual directions")] = None,
    ks: Annotated[str, typer.Option(help="principal-subspace sizes, comma-separated")] = "1,4,16",
    tols: Annotated[
        str, typer.Option(help="absolute |dW| tolerances for sparsity, comma-separated")
    ] = "0,1e-5,1e-3",
    svd: Annotated[str, typer.Option(help="'auto', 'full' or 'lowrank'")] = "auto",
    full_svd_max: Annotated[int, typer.Option(min=1, help="auto: full SVD when min(out, in) <= this")] = 1024,
    device: Device = "cpu",
) -> None:
    """Weight geometry of a variant's update: norm, rank, sparsity, principal subspaces, alignment."""
    import json
    import time

    from probes.models.family import load_family
    from probes.weights.alignment import load_directions
    from probes.weights.geometry import weight_diff
    from probes.weights.measures import SVDSettings

    def go() -> None:
        start = time.perf_counter()
        fam = load_family(family, check=False)
        fam.check(tokenizers=False)  # architecture fields only: no tokenizer is needed here
        dirs = load_directions(directions) if directions is not None else None
        ks_list, tols_list = _numbers(ks, tols)
        df = weight_diff(
            fam,
            variant,
            base=base,
            directions=dirs,
            ks=ks_list,
            tols=tols_list,
            svd=SVDSettings(method=svd, full_svd_max=full_svd_max),
            device=device,
        )
        out.mkdir(parents=True, exist_ok=True)
        table = out / f"weights_{variant}.parquet"
        df.to_parquet(table)
        summary = _summary(fam, df, base, variant, table)
        if against is not None:
            summary["update_cosine"] = _update_cosine(fam, variant, against, base, device, out)
        summary["wall_s"] = round(time.perf_counter() - start, 2)
        (out / f"weights_{variant}.json").write_text(json.dumps(summary, indent=2, default=str))
        typer.echo(
            f"{len(df)} parameters compared ({variant} vs {base}) in {summary['wall_s']} s; written to {table}"
        )

    guarded(go)
