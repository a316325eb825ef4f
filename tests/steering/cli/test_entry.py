"""The assembled `elicit` app: every command and group listed, every --help works, and main()
sets only its documented process defaults."""

from __future__ import annotations

import os
import sys

import pytest
from typer.testing import CliRunner

from steering.cli import app, main

runner = CliRunner()

COMMANDS = [
    ["collect"],
    ["organism", "train"],
    ["organism", "eval"],
    ["sae", "train"],
    ["crosscoder", "train"],
    ["sweep", "run"],
    ["sweep", "merge"],
    ["weights"],
    ["passk"],
    ["figures"],
    ["report"],
    ["run"],
]


def test_help_lists_every_command() -> None:
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("run", "report", "collect", "sweep", "sae", "crosscoder", "weights", "organism", "figures"):
        assert cmd in res.output


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_has_help(cmd: list[str]) -> None:
    res = runner.invoke(app, [*cmd, "--help"])
    assert res.exit_code == 0, res.output
    assert f"Usage: elicit {' '.join(cmd)}" in " ".join(res.output.split())


def test_main_sets_only_its_documented_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TOKENIZERS_PARALLELISM", "OMP_WAIT_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MPLBACKEND", "pdf")  # a value the user exported wins
    monkeypatch.setattr(sys, "argv", ["elicit", "--help"])
    before = set(os.environ)
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code == 0
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false" and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    assert os.environ["MPLBACKEND"] == "pdf"
    assert set(os.environ) - before == {"TOKENIZERS_PARALLELISM", "OMP_WAIT_POLICY"}
