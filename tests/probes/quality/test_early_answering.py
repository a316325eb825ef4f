"""Early answering on a tiny model: forced answers after each truncation, and the answer probe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import transformers

from probes import Task, collect_activations, load_family
from probes.quality.early_answering import answer_probe, early_answers, early_summary
from probes.quality.information_gain import StepFormat


def test_forced_answers_match_transformers_argmax(tiny_dir) -> None:
    folder = tiny_dir("llama")
    fam = load_family({"base": str(folder)})
    traces = pd.DataFrame(
        {"prompt_id": ["a", "b"], "prompt": ["N 1 0 1 =", "C 1 ="], "completion": ["# 1 1 2 > 0", "# 1 > 1"]}
    )
    with fam.open("base") as model:
        ea = early_answers(model, fam.tokenizer(), traces, variant="v", max_answer_tokens=1)
    assert ea.groupby("prompt_id").size().to_dict() == {"a": 4, "b": 2}
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    fmt = StepFormat()
    for r in ea.itertuples():
        steps, _ = fmt.split(traces.set_index("prompt_id").loc[r.prompt_id, "completion"])
        ctx = fmt.context(traces.set_index("prompt_id").loc[r.prompt_id, "prompt"], steps[: r.t])
        with torch.no_grad():
            nxt = int(hf(tok(ctx, return_tensors="pt").input_ids).logits[0, -1].argmax())
        expect = tok.decode([nxt], skip_special_tokens=True).strip() or None
        assert r.answer_t == expect
        assert r.agree == (expect == r.full_answer)
    summ = early_summary(ea, n_resamples=50)
    assert set(summ["t"]) == {0, 1, 2, 3}
    assert summ[summ["t"] == 0]["chance"].iloc[0] == pytest.approx(0.5)


def test_answer_probe_reads_planted_answer(tiny_dir, tmp_path) -> None:
    fam = load_family({"base": str(tiny_dir("llama"))})
    rng = np.random.default_rng(0)
    letters = list("abcdefghij")
    records = []
    for i in range(40):
        mid = " ".join(rng.choice(letters, size=3))
        last = "x" if i % 2 else "y"
        records.append({"id": f"p{i}", "prompt": f"{mid} {last}", "answer": "1" if last == "x" else "0"})
    task = Task.from_records("t", records)
    acts = collect_activations(fam, task, "resid_post:0-1", "last", out=tmp_path / "acts", progress=False)
    answers = pd.DataFrame({"variant": "base", "prompt_id": task.ids, "answer": task.answers})
    probe = answer_probe(acts, answers, folds=4, n_resamples=50)
    assert list(probe["layer"]) == [0, 1]
    assert (probe["accuracy"] >= 0.9).all() and (probe["null"] == 0.5).all()
    shuffled = answers.assign(answer=rng.permutation(answers["answer"].to_numpy()))
    assert answer_probe(acts, shuffled, folds=4, n_resamples=50)["accuracy"].max() < 0.8
