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
