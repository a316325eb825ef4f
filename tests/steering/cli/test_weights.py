"""`elicit weights`: malformed lists are usage errors (exit 2); a tiny family writes its tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from steering.cli import app
from steering.cli.weights import _numbers

runner = CliRunner()


def test_numbers() -> None:
    assert _numbers("1,4", "0,1e-3") == ([1, 4], [0.0, 1e-3])


@pytest.fixture
def family(tmp_path: Path, tiny_dir) -> Path:
    (tmp_path / "family.toml").write_text(
        f'name = "tiny"\n[variants.base]\npath = "{tiny_dir("llama", 0)}"\n[variants.sft]\npath = "{tiny_dir("llama", 1)}"\n'
        f'[variants.dpo]\npath = "{tiny_dir("llama", 2)}"\n'
    )
    return tmp_path


def test_bad_ks_is_a_usage_error(family: Path) -> None:
    res = runner.invoke(
        app,
        ["weights", "--family", str(family), "--variant", "sft", "--out", str(family / "o"), "--ks", "a,b"],
    )
    assert res.exit_code == 2 and "--ks takes integers" in " ".join(res.output.split())


def test_missing_family(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["weights", "--family", str(tmp_path / "nope"), "--variant", "sft", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and "No family file" in res.output


def test_writes_table_and_summary(family: Path) -> None:
    out = family / "o"
    res = runner.invoke(
        app, ["weights", "--family", str(family), "--variant", "sft", "--out", str(out), "--against", "dpo"]
    )
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "weights_sft.json").read_text())
    assert summary["variant"] == "sft" and summary["family"] == "tiny" and summary["n_params"] > 0
    assert (out / "weights_sft.parquet").exists() and Path(summary["update_cosine"]["table"]).exists()
    assert f"{summary['n_params']} parameters compared (sft vs base)" in res.output
