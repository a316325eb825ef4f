"""The shared CLI edge: kit errors become one line on stderr and exit code 2; others propagate."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from probes.errors import FamilyError
from steering.cli.common import guarded


def test_guarded_returns_the_value_and_maps_kit_errors_to_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert guarded(lambda a, b=0: a + b, 2, b=3) == 5

    def bad() -> None:
        raise FamilyError("No family file at 'x'. Pass a family TOML file.")

    with pytest.raises(typer.Exit) as done:
        guarded(bad)
    assert done.value.exit_code == 2
    assert capsys.readouterr().err.strip() == "error: No family file at 'x'. Pass a family TOML file."


def test_guarded_lets_other_errors_through() -> None:
    with pytest.raises(ZeroDivisionError):
        guarded(lambda: 1 / 0)


def test_an_error_in_a_command_exits_2_with_the_message() -> None:
    app = typer.Typer()

    @app.command()
    def cmd() -> None:
        guarded(lambda: (_ for _ in ()).throw(FamilyError("bad family 'x'")))

    res = CliRunner().invoke(app, [])
    assert res.exit_code == 2 and "error: bad family 'x'" in res.output
