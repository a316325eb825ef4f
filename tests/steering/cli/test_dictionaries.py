"""`elicit sae train` / `elicit crosscoder train`: the shared options, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from steering.cli import app
from steering.cli.dictionaries import _fit

runner = CliRunner()


@pytest.mark.parametrize("group", ["sae", "crosscoder"])
def test_missing_store_names_the_folder(group: str, tmp_path: Path) -> None:
    args = [
        group,
        "train",
        "--acts",
        str(tmp_path / "nope"),
        "--hook",
        "resid_post.1",
        "--out",
        str(tmp_path / "o"),
    ]
    res = runner.invoke(app, args + (["--variant", "sft"] if group == "crosscoder" else []))
    assert res.exit_code == 2 and "No activation store" in res.output and "nope" in res.output


@pytest.mark.parametrize("group", ["sae", "crosscoder"])
def test_both_commands_share_the_optimisation_options(group: str) -> None:
    res = runner.invoke(app, [group, "train", "--help"])
    text = " ".join(res.output.split())
    for opt in ("--d-sae", "--steps", "--batch-size", "--lr", "--seed", "--device"):
        assert opt in text, opt
    res = runner.invoke(
        app, [group, "train", "--acts", "a", "--hook", "h", "--out", "o", "--variant", "v", "--steps", "0"]
    )
    assert res.exit_code == 2 and "--steps" in res.output


def test_fit_keywords() -> None:
    assert _fit(None, 5, 8, 1e-3, 2, "cpu", Path("o")) == {
        "d_sae": None,
        "steps": 5,
        "batch_size": 8,
        "lr": 1e-3,
        "seed": 2,
        "device": "cpu",
        "out": Path("o"),
    }
