"""The rows file: torn writes and partial units are dropped on read; shards merge without duplicates."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from probes import ElicitError
from steering.sweep import SweepConfig
from steering.sweep.rows import append, merge_shards, read_rows, rewrite, shard_path


def _unit(key: str, n: int, control: str = "none") -> list[dict]:
    """``n`` rows of one unit; a random control's rows are draws 0..n-1 of one prompt."""
    return [
        {
            "unit": key,
            "unit_rows": n,
            "control": control,
            "draw": i if control == "random" else -1,
            "alpha": 0.0,
            "prompt_id": "p0" if control == "random" else f"p{i}",
        }
        for i in range(n)
    ]


def test_read_rows_drops_a_torn_line_and_a_partial_unit(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    assert read_rows(path) == []
    append(path, _unit("a", 2))
    append(path, _unit("b", 3))
    assert [r["unit"] for r in read_rows(path)] == ["a", "a", "b", "b", "b"]
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:4]) + lines[4][:10])  # unit b: two whole lines and a torn one
    assert [r["unit"] for r in read_rows(path)] == ["a", "a"]
    rewrite(path, read_rows(path))
    assert path.read_text() == "".join(json.dumps(r) + "\n" for r in _unit("a", 2))
    assert not path.with_suffix(".jsonl.tmp").exists()


def test_shard_path() -> None:
    assert shard_path("out/s.jsonl", 0, 1) == Path("out/s.jsonl")
    assert shard_path("out/s.jsonl", 2, 4) == Path("out/s.shard-2-of-4.jsonl")


def _cfg(tmp_path: Path) -> SweepConfig:
    return SweepConfig.from_dict(
        {
            "family": "x",
            "task": "t",
            "layers": [0],
            "alphas": [1.0],
            "vectors": [{"name": "v"}],
            "out": str(tmp_path / "s.jsonl"),
        }
    )


def test_merge_shards(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    with pytest.raises(ElicitError, match=r"s\.shard-0-of-2\.jsonl' is missing.*--shard 0/2"):
        merge_shards(cfg, 2)
    append(shard_path(cfg.out, 0, 2), _unit("b", 2))
    append(shard_path(cfg.out, 1, 2), _unit("a", 1))
    df = merge_shards(cfg, 2)
    assert list(df.unit) == ["a", "b", "b"] and (tmp_path / "s.parquet").exists()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "s.parquet"), df)
    append(shard_path(cfg.out, 1, 2), _unit("b", 2))
    with pytest.raises(ElicitError, match="2 duplicated rows across shards"):
        merge_shards(cfg, 2)
    # random draws of one prompt differ only in their draw: not duplicates
    shard_path(cfg.out, 1, 2).unlink()
    append(shard_path(cfg.out, 1, 2), _unit("r", 3, control="random"))
    assert list(merge_shards(cfg, 2).draw) == [-1, -1, 0, 1, 2]
