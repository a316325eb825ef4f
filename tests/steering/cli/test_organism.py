"""`elicit organism train|eval`: bad input exits 2 with the message, before anything trains."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from steering.cli import app

runner = CliRunner()


def test_train_refuses_zero_workers_before_training(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["organism", "train", "--out", str(tmp_path / "fam"), "--quick", "--workers", "0"]
    )
    assert res.exit_code == 2 and "workers must be >= 1, got 0" in res.output
    assert not (tmp_path / "fam").exists()


def test_train_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "old").write_text("x")
    res = runner.invoke(app, ["organism", "train", "--out", str(tmp_path), "--quick"])
    assert res.exit_code == 2 and "is not empty" in res.output


def test_eval_of_a_folder_without_a_family(tmp_path: Path) -> None:
    res = runner.invoke(app, ["organism", "eval", str(tmp_path)])
    assert res.exit_code == 2 and "family.toml" in res.output
