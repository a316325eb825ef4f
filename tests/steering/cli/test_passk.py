"""`elicit passk`: samples from a JSONL scored on a family's task, tables written, bad input named."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from probes.decoding.passk import pass_at_k
from steering.cli import app

runner = CliRunner()

FAMILY = """name = "toy"
[variants.base]
path = "base"
[variants.rl]
path = "rl"
task = "gsm"
[tasks.gsm]
path = "gsm.jsonl"
scorer = "gsm8k"
"""


@pytest.fixture
def family(tmp_path: Path) -> Path:
    # no checkpoint folders: `elicit passk` reads no weights
    (tmp_path / "family.toml").write_text(FAMILY)
    qs = [{"id": f"q{i}", "prompt": f"Q {i} + {i} = ?", "answer": f"#### {2 * i}"} for i in (1, 2)]
    (tmp_path / "gsm.jsonl").write_text("".join(json.dumps(q) + "\n" for q in qs))
    return tmp_path / "family.toml"


def _samples(path: Path, right: dict[tuple[str, str], int], n: int = 4) -> Path:
    rows = []
    for (variant, pid), c in right.items():
        answer = {"q1": 2, "q2": 4}[pid]
        for j in range(n):
            rows.append(
                {"prompt_id": pid, "variant": variant, "completion": f"#### {answer if j < c else 0}"}
            )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_passk_writes_the_tables(family: Path, tmp_path: Path) -> None:
    s = _samples(
        tmp_path / "s.jsonl", {("base", "q1"): 1, ("base", "q2"): 2, ("rl", "q1"): 4, ("rl", "q2"): 0}
    )
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [
            "passk",
            "--family",
            str(family),
            "--task",
            "gsm",
            "--samples",
            str(s),
            "--out",
            str(out),
            "--k",
            "1,4",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "base: 2 prompts, 4-4 samples each" in res.output
    curve = pd.read_parquet(out / "passk.parquet").set_index(["variant", "k"])["pass_at_k"]
    assert curve[("base", 1)] == pytest.approx((pass_at_k(4, 1, 1) + pass_at_k(4, 2, 1)) / 2)
    assert curve[("rl", 4)] == pytest.approx(0.5)
    cross = pd.read_parquet(out / "crossover.parquet").iloc[0]
    assert cross["variant"] == "rl" and cross["n_answers"] == 2
    assert len(pd.read_parquet(out / "samples.parquet")) == 16


def test_passk_names_short_prompts_and_unknown_variants(family: Path, tmp_path: Path) -> None:
    s = _samples(tmp_path / "s.jsonl", {("base", "q1"): 1, ("base", "q2"): 1}, n=2)
    args = [
        "passk",
        "--family",
        str(family),
        "--task",
        "gsm",
        "--samples",
        str(s),
        "--out",
        str(tmp_path / "o"),
    ]
    res = runner.invoke(app, [*args, "--k", "4"])
    assert res.exit_code == 2 and "base/q1 (n=2)" in res.output and "lower k to at most 2" in res.output
    bad = _samples(tmp_path / "b.jsonl", {("dpo", "q1"): 1})
    res = runner.invoke(app, [*args[:6], str(bad), *args[7:]])
    assert res.exit_code == 2 and "['dpo']" in res.output and "['base', 'rl']" in res.output
    res = runner.invoke(app, [*args, "--k", "0,2"])
    assert res.exit_code == 2 and "--k" in res.output
