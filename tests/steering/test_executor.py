"""Shards through submitit's local executor: the same rows as the unsharded sweep, the same
store as one in-process collection; bad executor settings name the value and the fix."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from probes.errors import ElicitError
from steering.executor import ExecutorConfig, collect_sharded, run_sweep_sharded
from steering.sweep import SweepConfig, run_sweep
from tests.steering.sweep.test_run import _family

KEY = ["unit", "control", "draw", "alpha", "prompt_id"]


def _sweep(fam: Path, out: Path) -> SweepConfig:
    return SweepConfig.from_dict(
        {
            "family": str(fam),
            "task": "toy",
            "variants": ["base"],
            "baselines": ["tuned"],
            "layers": [1],
            "alphas": [0.0, 8.0],
            "positions": ["match:="],
            "label": "neutral",
            "splits": ["dev", "test"],
            "chunk_size": 2,
            "out": str(out),
            "vectors": [
                {"name": "cd", "contrast": ["careful", "direct"], "position": "match:=", "split": "train"}
            ],
        }
    )


def test_four_local_shards_equal_the_unsharded_sweep(tiny_dir, tmp_path: Path) -> None:
    fam = _family(tmp_path, tiny_dir("llama"))
    whole = run_sweep(_sweep(fam, tmp_path / "whole.jsonl"), progress=False)
    cfg = _sweep(fam, tmp_path / "sharded.jsonl")
    merged = run_sweep_sharded(
        cfg, shards=4, executor=ExecutorConfig("local", timeout_min=5, cpus_per_task=1)
    )
    assert len(merged) == len(whole) > 0
    pd.testing.assert_frame_equal(
        merged.drop(columns=["unit_rows"]).sort_values(KEY).reset_index(drop=True),
        whole.drop(columns=["unit_rows"]).sort_values(KEY).reset_index(drop=True),
    )
    # the four shards ran as four submitit jobs, each with its own log
    logs = list((tmp_path / "sharded.work" / "submitit").glob("*_log.out"))
    assert len(logs) == 5  # the vector-fitting job and the four shards


def test_collection_one_local_job_per_variant_equals_in_process(tiny_dir, tmp_path: Path) -> None:
    from probes.data.activations import collect_activations
    from probes.models.family import load_family

    fam_dir = _family(tmp_path, tiny_dir("llama"))
    fam = load_family(fam_dir)
    task = fam.load_task("toy")
    here = collect_activations(fam, task, "resid_post:0-1", "last", out=tmp_path / "here", progress=False)
    jobs = collect_sharded(
        fam_dir,
        task,
        "resid_post:0-1",
        "last",
        out=tmp_path / "jobs",
        executor=ExecutorConfig("local", cpus_per_task=1),
    )
    assert jobs.variants == here.variants == ["base", "tuned"]
    for v in here.variants:
        for layer in (0, 1):
            assert torch.equal(jobs.get(v, f"resid_post.{layer}"), here.get(v, f"resid_post.{layer}"))


def test_bad_executor_settings_name_the_fix() -> None:
    with pytest.raises(
        ElicitError, match=r"executor must be one of \['inprocess', 'local', 'slurm'\], got 'ssh'"
    ):
        ExecutorConfig("ssh")
    with pytest.raises(ElicitError, match="partition='gpu' only applies to the slurm executor"):
        ExecutorConfig("local", partition="gpu")
    with pytest.raises(
        ElicitError, match="timeout_min, array_parallelism and cpus_per_task >= 1; got 0, 0, 256, None"
    ):
        ExecutorConfig("slurm", timeout_min=0)


def _threads_in_job(_: int) -> tuple[int, str]:
    import os

    import torch

    return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS", "")


def test_cpus_per_task_reach_the_job_through_its_environment(tmp_path) -> None:
    import torch

    from steering.executor import run_jobs

    before = torch.get_num_threads()
    got = run_jobs(_threads_in_job, [(0,), (1,)], ExecutorConfig("local", cpus_per_task=1), tmp_path, "job")
    assert got == [(1, "1"), (1, "1")]
    assert torch.get_num_threads() == before  # nothing set here
