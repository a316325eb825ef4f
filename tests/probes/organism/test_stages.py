"""Post-training stages: the RLSF confidence, the verifiable reward, TRL settings, seeded runs."""

from __future__ import annotations

import os

import pytest
import torch

from probes.organism.pretrain import ModelConfig, new_model
from probes.organism.stages import (
    StageConfig,
    _common,
    _correct_reward,
    answer_confidence,
    confidence_preferences,
    run_sft,
)
from probes.organism.world import encode, make_tokenizer


@pytest.fixture(scope="module")
def model():
    return new_model(ModelConfig(), seed=0).eval()


def _prob_of_last(model, ids: list[int]) -> float:
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    return float(logits[len(ids) - 2].softmax(-1)[ids[-1]])


def test_answer_confidence_reads_the_answer_token(model):
    prompts = ["N 1 0 =", "N 1 0 =", "N 1 1 =", "N 0 0 ="]
    comps = ["# 1 1 > 1", "0 <eos>", "# 1 2", ""]
    conf = answer_confidence(model, prompts, comps)
    # scratchpad: the token after '>'; direct: the first token; no answer: 0
    assert conf[0] == pytest.approx(
        _prob_of_last(model, encode("N 1 0 =") + encode("# 1 1 > 1", bos=False)), abs=1e-6
    )
    assert conf[1] == pytest.approx(
        _prob_of_last(model, encode("N 1 0 =") + encode("0", bos=False)), abs=1e-6
    )
    assert conf[2] == 0.0 and conf[3] == 0.0


def test_confidence_preferences_are_seeded_and_leave_the_rng_alone(model):
    prompts = ["N 1 0 1 =", "N 0 0 1 ="]
    before = torch.random.get_rng_state()
    a = confidence_preferences(model, prompts, k=4, seed=1, min_gap=0.0)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert a == confidence_preferences(model, prompts, k=4, seed=1, min_gap=0.0)
    assert [p["prompt"] for p in a] == prompts
    assert all(p["chosen"].startswith(" ") and p["rejected"].startswith(" ") for p in a)
    assert confidence_preferences(model, prompts, k=4, seed=1, min_gap=1.01) == []  # no gap can exceed 1


def test_correct_reward_on_hand_written_completions():
    comps = ["# 1 2 > 0", "# 1 2 > 1", "0", "1", "# 1 2"]
    assert _correct_reward(comps, ["0", "0", "0", "0", "0"]) == [1.0, 0.0, 1.0, 0.0, 0.0]


def test_trl_settings_of_a_stage():
    cfg = StageConfig(steps=7, batch_size=4, lr=2e-3)
    args = _common(cfg, seed=3, out_dir="/tmp/x", progress=False)
    assert (
        args["max_steps"] == 7 and args["per_device_train_batch_size"] == 4 and args["learning_rate"] == 2e-3
    )
    assert args["seed"] == args["data_seed"] == 3 and args["report_to"] == [] and args["use_cpu"]
    assert args["disable_tqdm"] and args["save_strategy"] == "no"


def test_sft_stage_is_bit_reproducible_and_leaves_the_process_alone(tmp_path):
    from safetensors.torch import load_file

    base = tmp_path / "base"
    base.mkdir()
    new_model(ModelConfig(), seed=0).save_pretrained(base)
    make_tokenizer(base)
    records = [{"prompt": f"N 1 {b} =", "completion": f" # 1 {1 + b} > {(1 + b) % 2}"} for b in (0, 1)] * 4
    cfg = StageConfig(steps=2, batch_size=4, lr=1e-3)
    import torch._dynamo  # noqa: F401  # torch sets TORCHINDUCTOR_CACHE_DIR when this first loads (once per process)

    env, threads, rng = dict(os.environ), torch.get_num_threads(), torch.random.get_rng_state()
    one = run_sft(base, tmp_path / "a", records, cfg, seed=0, progress=False)
    two = run_sft(base, tmp_path / "b", records, cfg, seed=0, progress=False)
    assert dict(os.environ) == env and torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), rng)
    a, b, ref = (load_file(p / "model.safetensors") for p in (one, two, base))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], ref[k]) for k in a)
