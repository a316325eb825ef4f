"""The `elicit` command line: help, clear errors with exit code 2, the default `sweep run`."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from steering.cli import app

runner = CliRunner()


def test_help_lists_every_command() -> None:
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("run", "report", "collect", "sweep", "sae", "crosscoder", "weights", "organism", "figures"):
        assert cmd in res.output


def test_figures_without_tables_is_a_clear_error(tmp_path: Path) -> None:
    res = runner.invoke(app, ["figures", str(tmp_path)])
    assert res.exit_code == 2
    assert "No result tables" in res.output and "elicit report" in res.output


def test_sweep_config_path_means_run(tmp_path: Path) -> None:
    cfg = tmp_path / "s.toml"
    cfg.write_text('family = "x"\ntask = "t"\nlayers = [0]\nalphas = [1.0]\nalhpas = [2.0]\n')
    res = runner.invoke(app, ["sweep", str(cfg)])  # no 'run' subcommand given
    assert res.exit_code == 2 and "alhpas" in res.output
    res = runner.invoke(app, ["sweep", "run", str(cfg), "--shard", "3"])
    assert res.exit_code == 2


def test_report_on_missing_family_names_the_fix(tmp_path: Path) -> None:
    res = runner.invoke(app, ["report", "--family", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "family.toml" in res.output
