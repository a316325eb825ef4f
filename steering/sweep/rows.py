"""A sweep's rows on disk: one JSONL file, appended one whole unit at a time and fsynced, so a
killed run leaves complete units plus at most one torn unit, which :func:`read_rows` drops."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from probes.errors import ElicitError
from steering.sweep.config import SweepConfig

__all__ = ["read_rows", "rewrite", "append", "shard_path", "merge_shards"]

#: the columns that identify one row of a sweep
ROW_KEY = ["unit", "control", "draw", "alpha", "prompt_id"]


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of complete units only (a torn last line or a partial unit is ignored)."""
    path = Path(path)
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    with open(path) as fh:
        for line in fh:
            if not line.endswith("\n"):
                break  # torn write at the end of a killed run
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["unit"]] = counts.get(r["unit"], 0) + 1
    return [r for r in rows if counts[r["unit"]] == r["unit_rows"]]


def rewrite(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Replace ``path`` by ``rows`` atomically (write a temporary file, fsync, rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def append(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append one unit's ``rows`` in one write, then fsync."""
    data = "".join(json.dumps(r) + "\n" for r in rows)
    with open(path, "a") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def shard_path(out: str | Path, i: int, n: int) -> Path:
    """The rows file of shard ``i`` of ``n`` (``out`` itself when unsharded)."""
    out = Path(out)
    return out if n == 1 else out.with_name(f"{out.stem}.shard-{i}-of-{n}{out.suffix}")


def merge_shards(config: SweepConfig | str | Path, n: int, out: str | Path | None = None) -> pd.DataFrame:
    """Join the rows of ``n`` shards into one file (parquet if ``out`` ends in .parquet)."""
    cfg = config if isinstance(config, SweepConfig) else SweepConfig.from_toml(config)
    base = Path(cfg.out)
    frames = []
    for i in range(n):
        p = shard_path(base, i, n)
        if not p.exists():
            raise ElicitError(
                f"Shard file {str(p)!r} is missing; run `elicit sweep run CONFIG --shard {i}/{n}` first."
            )
        frames.append(pd.DataFrame(read_rows(p)))
    df = pd.concat(frames, ignore_index=True)
    dup = df.duplicated(ROW_KEY).sum()
    if dup:
        raise ElicitError(f"{dup} duplicated rows across shards; were shards run with different n?")
    df = df.sort_values(ROW_KEY, kind="stable").reset_index(drop=True)
    target = Path(out) if out is not None else base.with_suffix(".parquet")
    if target.suffix == ".parquet":
        df.to_parquet(target, index=False)
    else:
        rewrite(target, df.to_dict("records"))
    return df
