"""Running a sweep: resumable without lost or duplicated rows, shardable, summarised on dev/test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

from steering.sweep import merge_shards, read_rows, run_sweep, summarize_sweep
from tests.tiny import perturb_checkpoint

ROOT = str(Path(__file__).resolve().parents[3])


def _family(tmp: Path, base: Path) -> Path:
    perturb_checkpoint(base, tmp / "tuned", scale=0.3)
    recs = []
    letters = "abcdefgh"
    for i in range(24):
        label = ["careful", "direct", "neutral"][i % 3]
        tag = {"careful": "C", "direct": "D", "neutral": "N"}[label]
        body = " ".join(letters[(i + k) % 8] for k in range(3 + i % 4))
        recs.append(
            {
                "id": f"q{i}",
                "prompt": f"{tag} {body} =",
                "answer": "a",
                "label": label,
                "split": ["train", "dev", "test"][(i // 3) % 3],
                "trace": "# a > a",
            }
        )
    (tmp / "tasks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (tmp / "family.toml").write_text(
        textwrap.dedent(f"""
        name = "toy"
        [variants.base]
        path = "{base}"
        [variants.tuned]
        path = "tuned"
        task = "toy"
        [tasks.toy]
        path = "tasks.jsonl"
        scorer = "scratchpad"
        format_prefix = "#"
        max_new_tokens = 4
    """)
    )
    return tmp


def _config(tmp: Path, out: str = "sweep.jsonl") -> Path:
    (tmp / "sweep.toml").write_text(
        textwrap.dedent(f"""
        family = "{tmp}"
        task = "toy"
        variants = ["base"]
        baselines = ["tuned"]
        layers = [0, 1]
        alphas = [0.0, 2.0, 8.0]
        positions = ["match:=", "all"]
        label = "neutral"
        splits = ["dev", "test"]
        chunk_size = 3
        out = "{out}"
        [[vectors]]
        name = "cd"
        contrast = ["careful", "direct"]
        position = "match:="
        split = "train"
    """)
    )
    return tmp / "sweep.toml"


KILL = """
import os, sys, time
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, {root!r})
import steering.sweep.rows as S
from steering.sweep import run_sweep
orig = S.append
n = {{"k": 0}}
def torn(path, rows):
    n["k"] += 1
    if n["k"] == {after}:
        data = "".join(__import__("json").dumps(r) + "\\n" for r in rows)
        with open(path, "a") as fh:
            fh.write(data[: len(data) // 2])  # a torn write, then death
            fh.flush()
        print("READY", flush=True)
        time.sleep(60)
    orig(path, rows)
S.append = torn
run_sweep({cfg!r}, progress=False)
"""


def test_killed_sweep_resumes_to_identical_rows(tiny_dir, tmp_path: Path) -> None:
    fam = _family(tmp_path, tiny_dir("llama"))
    cfg_path = _config(fam)
    clean_cfg = _config(fam, out="clean.jsonl")
    clean_cfg = clean_cfg.rename(fam / "clean.toml")
    cfg_path = _config(fam)
    script = tmp_path / "k.py"
    script.write_text(KILL.format(root=ROOT, after=5, cfg=str(cfg_path)))
    with subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    ) as proc:
        assert proc.stdout is not None and b"READY" in proc.stdout.readline()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    partial = read_rows(fam / "sweep.jsonl")
    assert len(partial) > 0
    resumed = run_sweep(cfg_path, progress=False)
    clean = run_sweep(clean_cfg, progress=False)
    key = ["unit", "control", "alpha", "prompt_id"]
    a = resumed.drop(columns=[]).sort_values(key).reset_index(drop=True)
    b = clean.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert not a.duplicated(key).any()
    # every (setting x prompt) is there: 2 neutral prompts per split... count from the grid
    n_prompts = a.prompt_id.nunique()
    n_steer = 1 * 2 * 2 * 3 * n_prompts  # vectors x layers x positions x alphas x prompts
    assert (a.control == "steer").sum() == n_steer and (a.control == "random").sum() == n_steer
    assert (a.control == "none").sum() == 2 * n_prompts  # base + tuned unsteered
    # alpha 0 rows equal the unsteered base
    zero = a[(a.control == "steer") & (a.alpha == 0)].groupby("prompt_id").correct.first()
    plain = a[(a.control == "none") & (a.variant == "base")].set_index("prompt_id").correct
    assert (zero == plain.loc[zero.index]).all()
    # shards cover the same rows
    for i in range(2):
        run_sweep(cfg_path, shard=(i, 2), progress=False)
    merged = merge_shards(cfg_path, 2, out=tmp_path / "merged.parquet")
    pd.testing.assert_frame_equal(
        merged.drop(columns=["unit_rows"]).sort_values(key).reset_index(drop=True),
        b.drop(columns=["unit_rows"]).sort_values(key).reset_index(drop=True),
    )
    summary = summarize_sweep(clean, tuned=["tuned"])
    assert set(summary.position) == {"match:=", "all"}
    assert {"test_acc", "test_lo", "test_hi", "random_acc", "gap_recovered[tuned]"} <= set(summary.columns)
    assert (summary.protocol == "dev-select/test-report").all()


def test_a_retrained_variant_never_reuses_its_rows(tiny_dir, tmp_path: Path) -> None:
    from steering.sweep import SweepConfig

    fam = _family(tmp_path, tiny_dir("llama"))
    cfg = SweepConfig.from_dict(
        {
            "family": str(fam),
            "task": "toy",
            "variants": ["base"],
            "baselines": ["tuned"],
            "layers": [0],
            "alphas": [2.0],
            "label": "neutral",
            "out": str(tmp_path / "s.jsonl"),
            "vectors": [{"name": "cd", "contrast": ["careful", "direct"], "split": "train"}],
        }
    )
    first = run_sweep(cfg, progress=False)
    assert run_sweep(cfg, progress=False).equals(first)  # unchanged weights: every row reused
    perturb_checkpoint(tiny_dir("llama"), fam / "tuned", scale=0.9, seed=7)  # "retrain" tuned in place
    second = run_sweep(cfg, progress=False)
    assert set(first.digest) != set(second.digest) and len(second) == len(first)
    assert read_rows(tmp_path / "s.jsonl") == second.to_dict("records")  # the stale rows are gone


def test_a_bf16_sweep_is_keyed_apart_from_fp32(tiny_dir, tmp_path: Path) -> None:
    """`elicit sweep run --dtype bfloat16` loads the family in bf16 and its rows carry the dtype in
    their digest: fp32 rows already in the file are never taken for bf16 ones."""
    from typer.testing import CliRunner

    from steering.cli import app

    fam = _family(tmp_path, tiny_dir("llama"))
    cfg = _config(fam)
    fp32 = run_sweep(cfg, progress=False)
    res = CliRunner().invoke(app, ["sweep", "run", str(cfg), "--dtype", "bf16", "--no-summary"])
    assert res.exit_code == 0, res.output
    rows = pd.DataFrame(read_rows(fam / "sweep.jsonl"))
    bf16 = rows[rows.digest != fp32.digest.iloc[0]]
    assert len(bf16) == len(fp32) and set(bf16.digest) == {fp32.digest.iloc[0] + "-bfloat16"}
    res = CliRunner().invoke(app, ["sweep", "run", str(cfg), "--dtype", "half"])
    assert res.exit_code == 2 and "Unknown dtype 'half'" in res.output
