"""`elicit report`, `elicit run`, `elicit figures`: clear errors with exit code 2, the verdict table."""

from __future__ import annotations

from pathlib import Path

import pytest
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


def _standin_family(tmp_path: Path) -> tuple[Path, Path]:
    """The shipped OLMo 2 family file over tiny random stand-ins, and a JSONL task whose prompts
    sit in a ``question`` field (as GSM8K's do), split into dev and test."""
    import json
    import shutil

    from probes.models.standin import standin_checkpoints

    families = Path(__file__).resolve().parents[3] / "configs" / "families"
    hub = standin_checkpoints(families / "olmo2-1b.toml", tmp_path / "hub", model_type="olmo2")
    shutil.copy(families / "olmo2-1b.toml", tmp_path / "family.toml")
    shutil.copy(hub / "gsm8k_test.jsonl", tmp_path / "gsm8k_test.jsonl")
    recs = [json.loads(x) for x in (hub / "gsm8k_test.jsonl").read_text().splitlines()]
    task = tmp_path / "questions.jsonl"
    task.write_text(
        "".join(json.dumps({**r, "split": "dev" if i % 5 < 2 else "test"}) + "\n" for i, r in enumerate(recs))
    )
    return tmp_path / "family.toml", task


def test_report_task_file_without_a_prompt_field_names_the_flag(tmp_path: Path, monkeypatch) -> None:
    family, task = _standin_family(tmp_path)
    monkeypatch.setenv("ELICIT_CHECKPOINTS", str(tmp_path / "hub"))
    res = runner.invoke(
        app, ["report", "--family", str(family), "--out", str(tmp_path / "o"), "--task", str(task)]
    )
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "lacks 'prompt'" in text and "'question'" in text and "--prompt-field" in text
    assert "prompt_field=" not in text  # the CLI path names the CLI flag


@pytest.mark.slow
def test_report_flags_override_the_battery_table_and_the_report_warns(tmp_path: Path, monkeypatch) -> None:
    """A new user's run: a JSONL with a `question` field, a few layers and alphas, a small budget,
    no SAE, no figures; random stand-ins hit the budget and the splits are small."""
    import json

    import pandas as pd

    family, task = _standin_family(tmp_path)
    monkeypatch.setenv("ELICIT_CHECKPOINTS", str(tmp_path / "hub"))
    out = tmp_path / "out"
    args = ["report", "--family", str(family), "--out", str(out), "--task", str(task)]
    args += ["--prompt-field", "question", "--scorer", "gsm8k", "--variants", "dpo"]
    args += ["--layers", "1", "--alphas", "0,1", "--max-new-tokens", "3", "--batch-size", "64"]
    args += ["--max-dev", "4", "--max-test", "6", "--no-sae", "--no-figures"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    payload = json.loads((out / "report.json").read_text())
    cfg = payload["config"]
    assert (cfg["layers"], cfg["alphas"], cfg["max_new_tokens"]) == ([1], [0.0, 1.0], 3)
    assert (cfg["max_dev"], cfg["max_test"], cfg["batch_size"]) == (4, 6, 64)
    assert cfg["contrast"] == ["careful", "direct"]  # the rest still from the file's [battery] table
    sweep = pd.read_parquet(out / "tables" / "sweep.parquet")
    assert set(sweep[sweep.control != "none"].layer) == {1} and set(sweep.alpha) <= {0.0, 1.0}
    assert sweep.groupby("split").prompt_id.nunique().to_dict() == {"dev": 4, "test": 6}
    assert not (out / "tables" / "sae_transfer.parquet").exists() and not (out / "figures").exists()
    checks = {w["check"] for w in payload["warnings"]}
    assert {"small_split", "budget"} <= checks, payload["warnings"]
    budget = [w for w in payload["warnings"] if w["check"] == "budget"]
    assert all("--max-new-tokens" in w["message"] for w in budget)
    want = (sweep[sweep.variant == "dpo"].finish == "budget").mean()
    assert [w["value"] for w in budget if w["variant"] == "dpo"] == [want]
    md = (out / "report.md").read_text()
    assert "## Warnings" in md and "**small_split**" in md
    assert payload["embedding_probe"]["task"] == "gsm8k" and payload["embedding_probe"]["n"] > 0
    assert "warning: " in res.output


def test_report_flag_values_are_checked(tmp_path: Path) -> None:
    res = runner.invoke(
        app, ["report", "--family", "organism", "--out", str(tmp_path / "o"), "--layers", "4,x"]
    )
    assert res.exit_code == 2 and "--layers takes comma-separated integers" in " ".join(res.output.split())
    res = runner.invoke(
        app, ["report", "--family", "organism", "--out", str(tmp_path / "o"), "--max-dev", "0"]
    )
    assert res.exit_code == 2 and "--max-dev" in res.output


def test_report_help_lists_the_new_flags() -> None:
    text = " ".join(runner.invoke(app, ["report", "--help"]).output.split())
    for flag in (
        "--layers",
        "--alphas",
        "--max-new-tokens",
        "--batch-size",
        "--max-dev",
        "--max-test",
        "--no-sae",
        "--no-figures",
        "--quality",
        "--prompt-field",
        "--answer-field",
        "--scorer",
        "--dtype",
    ):
        assert flag in text, flag


def test_report_task_that_is_neither_a_file_nor_declared_lists_the_declared(
    tmp_path: Path, monkeypatch
) -> None:
    family, _ = _standin_family(tmp_path)
    monkeypatch.setenv("ELICIT_CHECKPOINTS", str(tmp_path / "hub"))
    res = runner.invoke(
        app, ["report", "--family", str(family), "--out", str(tmp_path / "o"), "--task", "gsm9k"]
    )
    text = " ".join(res.output.split())
    assert res.exit_code == 2 and "'gsm9k' is neither declared" in text and "['gsm8k']" in text
