"""`elicit report`, `elicit run`, `elicit figures`: clear errors with exit code 2, the verdict table."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from steering.cli import app

runner = CliRunner()


def test_figures_without_tables_is_a_clear_error(tmp_path: Path) -> None:
    res = runner.invoke(app, ["figures", str(tmp_path)])
    assert res.exit_code == 2
    assert "No result tables" in res.output and "elicit report" in res.output


def test_report_on_missing_family_names_the_fix(tmp_path: Path) -> None:
    res = runner.invoke(app, ["report", "--family", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "family.toml" in res.output


def test_run_rejects_a_non_integer_seed() -> None:
    res = runner.invoke(app, ["run", "--seed", "zero"])
    assert res.exit_code == 2 and "--seed" in res.output


def test_report_rejects_an_unknown_dtype_before_loading(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["report", "--family", "organism", "--out", str(tmp_path / "o"), "--dtype", "half"]
    )
    assert res.exit_code == 2 and "Unknown dtype 'half'" in res.output and "'bfloat16'" in res.output
    assert not (tmp_path / "o").exists()
