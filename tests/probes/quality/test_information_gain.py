"""Information gain: hand values from the definition on a model with a known next-token table, and the
telescoping sum against plain transformers on a tiny random model."""

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
    text_perplexity,
    wu_information_gain,
    wu_relative_change,
)
from tests.tiny import make_tokenizer

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
        ig = information_gain(
            model, fam.tokenizer(), PROMPTS, TRACES, ids=["a", "b", "c"], variant="v", fmt=fmt, batch_size=2
        )
        for pid, prompt, trace in zip("abc", PROMPTS, TRACES, strict=True):
            steps, ans = fmt.split(trace)
            sub = ig[ig["prompt_id"] == pid]
            assert list(sub["step"]) == list(range(1, len(steps) + 1))
            full = hf_logprob(folder, fmt.context(prompt, steps), fmt.continuation(ans))
            empty = hf_logprob(folder, fmt.context(prompt, []), fmt.continuation(ans))
            assert sub["ig"].sum() == pytest.approx(full - empty, abs=1e-4)
            assert sub["logp"].iloc[-1] == pytest.approx(full, abs=1e-4)
        # answer_logprob equals plain transformers on an answer the trace did not give
        lp = answer_logprob(model, fam.tokenizer(), [fmt.context(PROMPTS[0], [])], [" 1"])
        assert lp[0] == pytest.approx(hf_logprob(folder, fmt.context(PROMPTS[0], []), " 1"), abs=1e-4)
    tot = ig_totals(ig, n_resamples=50)
    assert tot.iloc[0]["n_traces"] == 3
    assert tot.iloc[0]["total_ig"] == pytest.approx(ig.groupby("prompt_id")["ig"].sum().mean())
    prof = ig_profile(ig, n_resamples=50)
    assert prof[prof["step"] == 1]["n"].iloc[0] == 3


class Positional(torch.nn.Module):
    """Next-token distribution set by position alone: ``probs[t]`` after the token at index ``t``."""

    def __init__(self, probs: torch.Tensor) -> None:
        super().__init__()
        self.logp = torch.nn.Parameter(probs.log(), requires_grad=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.logp[: input_ids.shape[1]].expand(input_ids.shape[0], -1, -1)


def _positional(tok, p_one: dict[int, float]) -> Positional:
    """Uniform over the vocabulary, except p('1') = p_one[t] after index t (the rest spread evenly)."""
    v, n = tok.get_vocab(), len(tok)
    probs = torch.full((16, n), 1.0 / n)
    for t, p in p_one.items():
        probs[t] = (1.0 - p) / (n - 1)
        probs[t, v["1"]] = p
    return Positional(probs / probs.sum(-1, keepdim=True))


def test_ig_by_hand_from_the_definition() -> None:
    tok = make_tokenizer()
    # "N 1 = # >" is <bos> N 1 = # > (6 tokens): the answer is read after index 5; one step more, after 6; ...
    model = _positional(tok, {5: 0.1, 6: 0.4, 7: 0.2})
    ig = information_gain(model, tok, ["N 1 ="], ["# 1 2 > 1"], ids=["q"], variant="v")
    # IG_1 = log p(1 | N 1 = # 1 >) − log p(1 | N 1 = # >) = log 0.4 − log 0.1; IG_2 = log 0.2 − log 0.4
    assert ig["ig"].tolist() == pytest.approx([np.log(4.0), np.log(0.5)], abs=1e-5)
    assert ig["logp_prev"].tolist() == pytest.approx([np.log(0.1), np.log(0.4)], abs=1e-5)
    assert ig["step_text"].tolist() == ["1", "2"] and ig["step"].tolist() == [1, 2]
    tot = ig_totals(ig, n_resamples=20).iloc[0]
    assert tot["total_ig"] == pytest.approx(np.log(2.0), abs=1e-5)  # telescopes: log 0.2 − log 0.1
    assert tot["ig_per_step"] == pytest.approx(np.log(2.0) / 2, abs=1e-5)
    # a two-token answer sums its tokens: log p(1 | ...>) + log p(0 | ...> 1) at the next position
    n = len(tok)
    p0_after_6 = (1.0 - 0.4) / (n - 1)
    lp = answer_logprob(model, tok, ["N 1 = #"], [" > 1"])  # '>' is read after index 4 (uniform), '1' after 5
    assert lp[0] == pytest.approx(np.log(1.0 / n) + np.log(0.1), abs=1e-5)
    lp2 = answer_logprob(model, tok, ["N 1 = # >"], [" 1 0"])
    assert lp2[0] == pytest.approx(np.log(0.1) + np.log(p0_after_6), abs=1e-5)


def test_wu_information_gain_by_hand_from_the_definition() -> None:
    tok = make_tokenizer()
    n = len(tok)
    model = _positional(tok, {5: 0.5})  # uniform, except p('1') = 0.5 after index 5
    # texts: question + first t steps + '>' + answer, each token predicted from the ones before it
    # t=0 "<bos> N 1 = # > 1": 6 predictions, the last ('1' after index 5) at 0.5, the rest 1/n
    ppl0 = np.exp((5 * np.log(n) + np.log(2.0)) / 6)
    # t=1 "<bos> N 1 = # 1 > 1": index 5 is the step '1'; the '>' after it is predicted from row 5,
    # where every token but '1' has (1 - 0.5) / (n - 1); the other 6 predictions are 1/n
    ppl1 = np.exp((6 * np.log(n) + np.log(2.0 * (n - 1))) / 7)
    # t=2 "<bos> N 1 = # 1 2 > 1": the '2' after index 5 at 0.5 / (n - 1), the other 7 at 1/n
    ppl2 = np.exp((7 * np.log(n) + np.log(2.0 * (n - 1))) / 8)
    got = text_perplexity(model, tok, ["N 1 = # > 1", "N 1 = # 1 > 1", "N 1 = # 1 2 > 1"])
    assert got == pytest.approx([ppl0, ppl1, ppl2], rel=1e-5)
    wu = wu_information_gain(model, tok, ["N 1 ="], ["# 1 2 > 1"], ids=["q"], variant="v")
    row = wu.iloc[0]
    assert row.n_steps == 2 and row.ppl_0 == pytest.approx(ppl0, rel=1e-5)
    # Σ_t (PPL_{t-1} - PPL_t) / (T + 1) = ((ppl0 - ppl1) + (ppl1 - ppl2)) / 3
    assert row.info_gain == pytest.approx((ppl0 - ppl2) / 3, rel=1e-5)
    assert row.ppl_final == pytest.approx(ppl2, rel=1e-5)


def test_wu_relative_change_is_the_published_statistic() -> None:
    import pandas as pd

    g = pd.DataFrame(
        {"variant": ["base"] * 4 + ["sft"] * 4, "info_gain": [2.0, 2.0, 2.0, 2.0, 1.2, 1.2, 1.2, 1.2]}
    )
    out = wu_relative_change(g, "base", n_resamples=200).set_index("variant")
    assert out.loc["base", "rel_change"] == 0.0
    assert out.loc["sft", "rel_change"] == pytest.approx(-0.4)  # (1.2 - 2) / 2
    assert out.loc["sft", "rel_lo"] == pytest.approx(-0.4) and out.loc["sft", "n_traces"] == 4
    assert wu_relative_change(g, "missing").empty
