"""`elicit collect`: bad input is a clear error with exit code 2; a tiny family is collected."""

from __future__ import annotations

from pathlib import Path

import torch
from typer.testing import CliRunner

from probes.data.activations import ActivationSet
from steering.cli import app

runner = CliRunner()


def test_missing_family_names_the_fix(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        ["collect", "--family", str(tmp_path / "nope"), "--task", "t.jsonl", "--out", str(tmp_path / "o")],
    )
    assert res.exit_code == 2 and "No family file" in res.output and "family.toml" in res.output


def test_missing_required_option_is_a_usage_error(tmp_path: Path) -> None:
    res = runner.invoke(app, ["collect", "--family", "organism", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "--task" in res.output


def test_collects_a_tiny_family(tmp_path: Path, tiny_dir) -> None:
    folder = tiny_dir("llama")
    (tmp_path / "family.toml").write_text(f'name = "tiny"\n[variants.base]\npath = "{folder}"\n')
    (tmp_path / "t.jsonl").write_text(
        '{"id": "a", "prompt": "a b =", "answer": "1"}\n{"id": "b", "prompt": "c =", "answer": "2"}\n'
    )
    res = runner.invoke(
        app,
        [
            "collect",
            "--family",
            str(tmp_path),
            "--task",
            str(tmp_path / "t.jsonl"),
            "--out",
            str(tmp_path / "acts"),
            "--hooks",
            "resid_post.1",
            "--positions",
            "last",
        ],
    )
    assert res.exit_code == 0, res.output
    acts = ActivationSet.load(tmp_path / "acts")
    assert acts.get("base", "resid_post.1", "last").shape == (2, 64)


def test_dtype_and_field_names(tmp_path: Path, tiny_dir) -> None:
    folder = tiny_dir("llama")
    (tmp_path / "family.toml").write_text(f'name = "tiny"\n[variants.base]\npath = "{folder}"\n')
    (tmp_path / "q.jsonl").write_text(
        '{"question": "a b =", "gold": "1"}\n{"question": "c =", "gold": "2"}\n'
    )
    args = [
        "collect",
        "--family",
        str(tmp_path),
        "--task",
        str(tmp_path / "q.jsonl"),
        "--hooks",
        "resid_post.1",
    ]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert (
        res.exit_code == 2 and "lacks 'prompt' or 'answer'" in res.output and "--prompt-field" in res.output
    )
    fields = ["--prompt-field", "question", "--answer-field", "gold"]
    res = runner.invoke(app, [*args, *fields, "--out", str(tmp_path / "b"), "--dtype", "bf16"])
    assert res.exit_code == 0, res.output
    acts = ActivationSet.load(tmp_path / "b")
    assert acts.meta["dtype"] == "bfloat16"
    assert acts.get("base", "resid_post.1", "last").dtype == torch.bfloat16
    res = runner.invoke(app, [*args, *fields, "--out", str(tmp_path / "c"), "--dtype", "half"])
    assert res.exit_code == 2 and "Unknown dtype 'half'" in res.output and "bfloat16" in res.output


def test_store_dtype_option(tmp_path: Path, tiny_dir) -> None:
    """--store-dtype bfloat16 writes a bf16 store of the fp32 model's rows, cast; a bad value is
    a usage error naming it and the valid dtypes."""
    folder = tiny_dir("llama")
    (tmp_path / "family.toml").write_text(f'name = "tiny"\n[variants.base]\npath = "{folder}"\n')
    (tmp_path / "t.jsonl").write_text(
        '{"id": "a", "prompt": "a b =", "answer": "1"}\n{"id": "b", "prompt": "c =", "answer": "2"}\n'
    )
    common = [
        "collect",
        "--family",
        str(tmp_path),
        "--task",
        str(tmp_path / "t.jsonl"),
        "--hooks",
        "resid_post.1",
    ]
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "fp32")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "bf16"), "--store-dtype", "bfloat16"])
    assert res.exit_code == 0, res.output
    full, small = ActivationSet.load(tmp_path / "fp32"), ActivationSet.load(tmp_path / "bf16")
    assert small.meta["store_dtype"] == "bfloat16" and small.meta["dtype"] == "float32"
    assert torch.equal(small.get("base", "resid_post.1"), full.get("base", "resid_post.1").to(torch.bfloat16))
    res = runner.invoke(app, [*common, "--out", str(tmp_path / "bad"), "--store-dtype", "int8"])
    assert res.exit_code == 2 and "store_dtype must be one of" in res.output and "'int8'" in res.output
