"""Information gain telescopes to log p(a | full trace) − log p(a | no steps) on a tiny random model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

from probes import load_family
from probes.errors import TaskError
from probes.quality.information_gain import (
    StepFormat,
    answer_logprob,
    ig_profile,
    ig_totals,
    information_gain,
)

PROMPTS = ["N 1 0 1 =", "C 0 0 1 1 =", "D 1 ="]
TRACES = ["# 1 1 2 > 0", "# 0 0 1 2 > 0", "# 1 > 1"]


def hf_logprob(folder, context: str, answer: str) -> float:
    """Plain transformers, one unpadded sequence: summed log-probs of the answer tokens."""
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    ctx = tok(context).input_ids
    full = tok(context + answer, return_tensors="pt").input_ids
    with torch.no_grad():
        logp = torch.log_softmax(model(full).logits[0], -1)
    pos = range(len(ctx), full.shape[1])
    return float(sum(logp[p - 1, full[0, p]] for p in pos))


def test_step_format_split_and_context() -> None:
    fmt = StepFormat()
    assert fmt.split("# 1 1 2 > 1") == (["1", "1", "2"], "1")
    assert fmt.split("# 1 2") == (["1", "2"], None)
    assert fmt.context("N 1 =", []) == "N 1 = # >"
    gsm = StepFormat(head="", separator="\n", marker="####")
    assert gsm.split("3 + 4 = 7\n7 * 2 = 14\n#### 14") == (["3 + 4 = 7", "7 * 2 = 14"], "14")
    with pytest.raises(TaskError, match="marker"):
        StepFormat(marker="")


def test_ig_telescopes_and_matches_transformers(tiny_dir) -> None:
    folder = tiny_dir("llama")
    fam = load_family({"base": str(folder)})
    fmt = StepFormat()
    with fam.open("base") as model:
        ig = information_gain(model, fam.tokenizer(), PROMPTS, TRACES, ids=["a", "b", "c"], variant="v",
                              fmt=fmt, batch_size=2)
        for pid, prompt, trace in zip("abc", PROMPTS, TRACES, strict=True):
            steps, ans = fmt.split(trace)
            sub = ig[ig["prompt_id"] == pid]
            assert list(sub["step"]) == list(range(1, len(steps) + 1))
            full = hf_logprob(folder, fmt.context(prompt, steps), fmt.continuation(ans))
            empty = hf_logprob(folder, fmt.context(prompt, []), fmt.continuation(ans))
            assert sub["ig"].sum() == pytest.approx(full - empty, abs=1e-4)
            assert sub["logp"].iloc[-1] == pytest.approx(full, abs=1e-4)
        # the reference answer overrides the trace's own
        lp = answer_logprob(model, fam.tokenizer(), [fmt.context(PROMPTS[0], [])], [" 1"])
        assert np.isfinite(lp).all()
    tot = ig_totals(ig, n_resamples=50)
    assert tot.iloc[0]["n_traces"] == 3
    assert tot.iloc[0]["total_ig"] == pytest.approx(ig.groupby("prompt_id")["ig"].sum().mean())
    prof = ig_profile(ig, n_resamples=50)
    assert prof[prof["step"] == 1]["n"].iloc[0] == 3
