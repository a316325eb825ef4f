"""Evaluating the organism: greedy generation, the tidy table, which tasks, the text table."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from probes.errors import FamilyError
from probes.organism.evaluate import (
    EVAL_COLUMNS,
    evaluate_family,
    evaluate_model,
    format_table,
    generate,
    tasks_to_evaluate,
)
from probes.organism.pretrain import ModelConfig, new_model
from probes.organism.tasks import parity_task
from probes.organism.train import _family_toml
from probes.organism.world import EOS_ID, PAD_ID, VOCAB, encode, make_tokenizer


@pytest.fixture(scope="module")
def model():
    return new_model(ModelConfig(), seed=1).eval()


def _greedy_reference(model, prompt: str, n: int) -> str:
    """One prompt, one token at a time: argmax of the full forward (no cache, no batching)."""
    ids = encode(prompt)
    words = []
    with torch.no_grad():
        for _ in range(n):
            t = int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax())
            if t in (EOS_ID, PAD_ID):
                break
            ids.append(t)
            words.append(VOCAB[t])
    return " ".join(words)


def test_generate_equals_a_hand_rolled_greedy_loop(model):
    prompts = ["N 1 0 1 =", "C1 0 0 =", "N 1 1 1 =", "D2 1 ="]  # two lengths: two unpadded groups
    got = generate(model, prompts, 6, batch_size=1)
    assert got == [_greedy_reference(model, p, 6) for p in prompts]
    assert generate(model, prompts, 6) == got  # batching within a length group changes nothing
    forced = generate(model, prompts[:1], 4, prefix="#")
    assert forced[0].split()[0] == "#" and forced == ["# " + _greedy_reference(model, prompts[0] + " #", 4)]


class _Scripted:
    """A stand-in model whose ``generate`` appends a fixed completion per prompt (by its text)."""

    def __init__(self, replies: dict[str, str]) -> None:
        self.replies = replies

    def generate(self, input_ids, **_):
        rows = []
        for row in input_ids.tolist():
            text = " ".join(VOCAB[t] for t in row[1:])
            reply = encode(self.replies.get(text, "0"), bos=False, eos=True)
            rows.append(row + reply + [PAD_ID] * (14 - len(reply)))
        return torch.tensor(rows)


def test_evaluate_model_counts_cells_by_hand():
    task = parity_task(seed=0, n_train=2, n_heldout=2)
    # careful prompts reason correctly, direct answer correctly only on train, neutral answer '0'
    replies = {}
    for e in task.examples:
        if e.label == "careful":
            replies[e.prompt] = e.trace
            replies[e.prompt + " #"] = str(e.trace)[2:]
        elif e.label == "direct":
            replies[e.prompt] = e.answer if e.split == "train" else str(1 - int(e.answer))
    rows = evaluate_model(_Scripted(replies), task, variant="v")
    assert list(rows.columns) == EVAL_COLUMNS and len(rows) == 3 * 2 * 2
    cell = rows.set_index(["source", "split", "forced"])
    assert cell.loc[("careful", "heldout", False), "accuracy"] == 1.0
    assert cell.loc[("careful", "heldout", False), "scratchpad_rate"] == 1.0
    assert cell.loc[("careful", "train", True), "accuracy"] == 1.0
    assert cell.loc[("direct", "train", False), "accuracy"] == 1.0
    assert cell.loc[("direct", "heldout", False), "accuracy"] == 0.0
    assert cell.loc[("direct", "heldout", False), "scratchpad_rate"] == 0.0
    neutral = [e for e in task.examples if e.label == "neutral" and e.split != "train"]
    assert cell.loc[("neutral", "heldout", False), "accuracy"] == sum(e.answer == "0" for e in neutral) / len(
        neutral
    )
    assert cell.loc[("neutral", "heldout", False), "n"] == len(neutral) == 2
    # forced rows start with '#': the format is used even when the scratchpad never closes
    assert cell.loc[("neutral", "heldout", True), "scratchpad_rate"] == 1.0


def test_tasks_to_evaluate():
    controls = {"create": "create", "create_far": "create_far"}
    assert tasks_to_evaluate("base", controls) == ["parity", "create", "create_far"]
    assert tasks_to_evaluate("create", controls) == ["parity", "create"]
    assert tasks_to_evaluate("dpo", controls) == ["parity"]


def test_format_table_by_hand():
    rows = [
        {
            "variant": "base",
            "task": "parity",
            "source": s,
            "split": "heldout",
            "forced": f,
            "n": 4,
            "accuracy": 0.5 if f else 0.25,
            "scratchpad_rate": 1.0 if f else 0.0,
        }
        for s in ("careful", "direct", "neutral")
        for f in (False, True)
    ]
    text = format_table(pd.DataFrame(rows, columns=EVAL_COLUMNS))
    lines = text.splitlines()
    assert lines[0].startswith("heldout strings") and lines[1].split()[:4] == [
        "variant",
        "care",
        "dire",
        "neut",
    ]
    assert lines[2].split() == ["base"] + ["0.25(0.0)"] * 3 + ["0.50(1.0)"] * 3


def _one_variant_family(tmp_path):
    folder = tmp_path / "fam"
    new_model(ModelConfig(), seed=1).save_pretrained(folder / "base")
    make_tokenizer(folder / "base")
    task = parity_task(seed=0, n_train=2, n_heldout=2)
    task.to_jsonl(folder / "tasks" / "parity.jsonl")
    meta = {"seed": 0, "quick": True, "threads": 1}
    (folder / "family.toml").write_text(
        _family_toml("tiny", meta, {"base": "parity"}, {"parity": task.settings()})
    )
    return folder, task


def test_evaluate_family_writes_the_table_and_restores_threads(tmp_path, model):
    folder, task = _one_variant_family(tmp_path)
    threads = torch.get_num_threads()
    table = evaluate_family(folder, progress=False)
    assert torch.get_num_threads() == threads
    assert table.equals(pd.read_parquet(folder / "eval.parquet"))
    want = evaluate_model(new_model(ModelConfig(), seed=1).eval(), task, variant="base")
    pd.testing.assert_frame_equal(table, want)
    with pytest.raises(FamilyError, match=r"no variant\(s\) \['nope'\]"):
        evaluate_family(folder, variants=["nope"], progress=False)
