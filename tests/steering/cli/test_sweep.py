"""`elicit sweep`: a config path means `run`, a bad shard and a bad config exit 2 with the message."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from probes.errors import ElicitError
from steering.cli import app
from steering.cli.sweep import parse_shard

runner = CliRunner()


def test_sweep_config_path_means_run(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text('family = "x"\ntask = "t"\nlayers = [0]\nalphas = [1.0]\nalhpas = [2.0]\n')
    res = runner.invoke(app, ["sweep", str(cfg)])  # no 'run' subcommand given
    assert res.exit_code == 2 and "alhpas" in res.output
    res = runner.invoke(app, ["sweep", "run", str(cfg), "--shard", "3"])
    assert res.exit_code == 2


def test_parse_shard() -> None:
    assert parse_shard("2/4") == (2, 4)
    for bad in ("3", "a/b", "1/2/3"):
        with pytest.raises(ElicitError, match="--shard must look like i/n"):
            parse_shard(bad)


def test_merge_of_a_missing_config(tmp_path: Path) -> None:
    res = runner.invoke(app, ["sweep", "merge", str(tmp_path / "nope.toml"), "--shards", "2"])
    assert res.exit_code == 2 and "No sweep config" in res.output


def test_shards_on_an_executor_merge_to_the_unsharded_rows(tmp_path: Path, tiny_dir) -> None:
    """`--shards 2` (in this process) merges to the rows of the unsharded sweep; a hand-picked
    --shard beside it, or a SLURM option on another executor, exits 2 naming the fix."""
    import pandas as pd

    from steering.sweep import read_rows
    from tests.steering.sweep.test_run import _family

    fam = _family(tmp_path, tiny_dir("llama"))
    toml = (
        f'family = "{fam}"\ntask = "toy"\nvariants = ["base"]\nbaselines = ["tuned"]\nlayers = [1]\n'
        'alphas = [0.0, 8.0]\npositions = ["match:="]\nlabel = "neutral"\nchunk_size = 2\nout = "{out}"\n'
        '[[vectors]]\nname = "cd"\ncontrast = ["careful", "direct"]\nposition = "match:="\nsplit = "train"\n'
    )
    for name in ("whole", "split"):
        (tmp_path / f"{name}.toml").write_text(toml.replace("{out}", str(tmp_path / f"{name}.jsonl")))
    res = runner.invoke(app, ["sweep", "run", str(tmp_path / "whole.toml"), "--no-summary"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["sweep", "run", str(tmp_path / "split.toml"), "--shards", "2", "--no-summary"])
    assert res.exit_code == 0 and "merged" in res.output, res.output
    key = ["unit", "control", "draw", "alpha", "prompt_id"]
    whole = pd.DataFrame(read_rows(tmp_path / "whole.jsonl")).drop(columns=["unit_rows"])
    split = pd.read_parquet(tmp_path / "split.parquet").drop(columns=["unit_rows"])
    pd.testing.assert_frame_equal(
        split.sort_values(key).reset_index(drop=True), whole.sort_values(key).reset_index(drop=True)
    )
    res = runner.invoke(
        app, ["sweep", "run", str(tmp_path / "split.toml"), "--shards", "2", "--shard", "1/2"]
    )
    assert res.exit_code == 2 and "Give one or the other" in res.output
    res = runner.invoke(
        app, ["sweep", "run", str(tmp_path / "split.toml"), "--executor", "local", "--partition", "gpu"]
    )
    assert res.exit_code == 2 and "only applies to the slurm executor" in res.output
