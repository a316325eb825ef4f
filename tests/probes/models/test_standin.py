"""The stand-in family: loadable checkpoints whose variants step away from the base as stated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from probes.data.tasks import Task
from probes.errors import FamilyError
from probes.models.family import load_family
from probes.models.standin import (
    STANDIN_CHAT_TOKENS,
    standin_checkpoints,
    standin_family,
    standin_questions,
    standin_tokenizer,
)


def test_variants_step_along_one_noise_direction_and_leave_the_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    root = standin_family(tmp_path / "fam", variants=("base", "sft", "dpo"), step=0.01)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG is untouched
    w = {v: load_file(str(root / v / "model.safetensors")) for v in ("base", "sft", "dpo")}
    assert set(w["base"]) == set(w["sft"]) == set(w["dpo"])
    for name, b in w["base"].items():
        d1, d2 = w["sft"][name] - b, w["dpo"][name] - b
        # variant i = base + 0.01 * i * (one seeded noise draw): dpo's step is twice sft's
        torch.testing.assert_close(d2, 2 * d1, atol=1e-6, rtol=1e-4)
        assert float(d1.abs().max()) > 0
    again = standin_family(tmp_path / "again", variants=("base",))
    assert all(
        torch.equal(v, load_file(str(again / "base" / "model.safetensors"))[k]) for k, v in w["base"].items()
    )


def test_loads_as_a_family_with_a_gsm8k_task(tmp_path: Path) -> None:
    root = standin_family(tmp_path / "fam", model_type="llama", n_questions=6)
    fam = load_family({v: str(root / v) for v in ("base", "sft", "dpo")})  # checks shapes and vocabularies
    assert fam.config("base")["model_type"] == "llama" and fam.config("base")["num_hidden_layers"] == 2
    task = Task.from_jsonl(root / "gsm.jsonl", scorer="gsm8k", prompt_field="question")
    assert [e.answer for e in task.examples] == ["0", "2", "4", "6", "8", "10"]
    assert task.examples[3].prompt == "Q 3 + 3 = ?" and task.examples[3].trace == "# 3 + 3"
    assert [e.label for e in task.examples[:2]] == ["reasoning", "direct"]
    assert [e.split for e in task.examples[:4]] == ["train", "dev", "test", "train"]


def test_tokenizer_reads_one_symbol_per_token() -> None:
    tok = standin_tokenizer()
    ids = tok("Q 12 + 12 = ?")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["<bos>", "Q", "<unk>", "+", "<unk>", "=", "?"]
    assert len(standin_questions(4)) == 4


def test_refuses_a_used_folder_and_bad_names(tmp_path: Path) -> None:
    standin_family(tmp_path, variants=("base",))
    with pytest.raises(FamilyError, match=r"already holds \['base'\]"):
        standin_family(tmp_path, variants=("base",))
    with pytest.raises(FamilyError, match="distinct names"):
        standin_family(tmp_path / "x", variants=("base", "base"))
    with pytest.raises(FamilyError, match="Unknown model_type 'nope'"):
        standin_family(tmp_path / "y", model_type="nope")


def test_checkpoints_for_a_shipped_family_file_sit_at_its_hub_ids(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[3] / "configs" / "families" / "olmo2-1b.toml"
    hub = standin_checkpoints(shipped, tmp_path, model_type="olmo2", n_questions=12)
    ids = ["allenai/OLMo-2-0425-1B", *(f"allenai/OLMo-2-0425-1B-{s}" for s in ("SFT", "DPO", "RLVR1"))]
    assert all((hub / i / "config.json").exists() for i in ids)
    fam = load_family(shipped, checkpoints=hub)  # the shipped file, unchanged; vocabularies checked
    assert [fam.local_path(v) for v in fam.variants] == [(hub / i).resolve() for i in ids]
    assert not fam.tokenizer("base").chat_template and fam.tokenizer("sft").chat_template
    assert set(STANDIN_CHAT_TOKENS) <= set(fam.tokenizer("rl").get_added_vocab())
    assert fam.config("base")["vocab_size"] == len(standin_tokenizer(chat=True))  # one embedding size
    lines = [json.loads(x) for x in (hub / "gsm8k_test.jsonl").read_text().splitlines()]
    assert len(lines) == 12 and set(lines[0]) == {"id", "question", "answer"}  # no labels, no splits
    with pytest.raises(FamilyError, match="already exists"):
        standin_checkpoints(shipped, tmp_path, model_type="olmo2")
