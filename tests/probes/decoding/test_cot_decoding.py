"""CoT-decoding on a hand-built bigram model picks the planted reasoning path."""

from __future__ import annotations

import pytest
import torch

from probes.data.tasks import Task
from probes.decoding.cot_decoding import (
    answer_char_span,
    cot_decode,
    cot_summary,
    greedy_continue,
    token_span,
)
from tests.tiny import make_bpe_tokenizer, make_tokenizer


class Bigram(torch.nn.Module):
    """Next-token distribution depends only on the last token: ``probs[last]``."""

    def __init__(self, probs: torch.Tensor) -> None:
        super().__init__()
        self.logp = torch.nn.Parameter(probs.clamp_min(1e-9).log(), requires_grad=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.logp[input_ids]


def planted(tok) -> Bigram:
    v = tok.get_vocab()
    n = len(tok)
    probs = torch.full((n, n), 1e-4)
    probs[:, v["<eos>"]] = 1.0  # default: stop

    def set_row(src: str, dist: dict[str, float]) -> None:
        probs[v[src]] = 1e-4
        for t, p in dist.items():
            probs[v[src], v[t]] = p

    # greedy first token '0' is a direct, wrong, low-margin answer (0.45 vs 0.40)
    set_row("=", {"0": 0.45, "#": 0.40, "1": 0.10})
    set_row("0", {"<eos>": 1.0})
    # the planted path: '# a > 1' with a confident answer token
    set_row("#", {"a": 0.9, "b": 0.1})
    set_row("a", {">": 0.9, "b": 0.1})
    set_row(">", {"1": 0.95, "0": 0.05})
    set_row("1", {"<eos>": 1.0})
    probs = probs / probs.sum(-1, keepdim=True)
    return Bigram(probs)


def test_picks_planted_path() -> None:
    tok = make_tokenizer()
    model = planted(tok)
    task = Task.from_records(
        "toy",
        [{"id": "q", "prompt": "c =", "answer": "1"}],
        scorer="scratchpad",
        format_prefix="#",
        max_new_tokens=8,
    )
    paths = cot_decode(model, tok, task, variant="toy", k=3)
    greedy = paths[paths["greedy"]].iloc[0]
    chosen = paths[paths["chosen"]].iloc[0]
    assert greedy["completion"] == "0" and not greedy["correct"]
    assert chosen["completion"] == "# a > 1" and chosen["correct"] and chosen["branch"] == 1
    assert chosen["confidence"] > greedy["confidence"]
    summ = cot_summary(paths, n_resamples=50).iloc[0]
    assert summ["greedy_acc"] == 0.0 and summ["cot_acc"] == 1.0 and summ["oracle_acc"] == 1.0


def test_greedy_continue_matches_argmax_and_stops() -> None:
    tok = make_tokenizer()
    model = planted(tok)
    v = tok.get_vocab()
    toks, margins = greedy_continue(model, [[v["#"]], [v["="], v["0"]]], max_new_tokens=5, eos_id=v["<eos>"])
    assert tok.convert_ids_to_tokens(toks[0]) == ["a", ">", "1"]
    assert toks[1] == []
    assert len(margins[0]) == 3 and all(0 < m <= 1 for m in margins[0])


def test_answer_char_span() -> None:
    assert answer_char_span("# 1 1 > 1", "1", ">") == (8, 9)
    assert answer_char_span("1 0", "1") == (0, 1)
    assert answer_char_span("# 1 >", "1", ">") is None
    assert answer_char_span("3 + 4 = 7, so 17 and 7", "7", last=True) == (21, 22)  # not inside 17
    assert answer_char_span("paid $1,000 in all", "1000") == (6, 11)
    assert answer_char_span("no number", "42") is None


def test_token_span_on_word_and_bpe_tokenizers() -> None:
    word = make_tokenizer()
    ids = word("# 1 1 > 1", add_special_tokens=False)["input_ids"]
    assert token_span(word, ids, (8, 9)) == (4, 5)
    bpe = make_bpe_tokenizer()
    ids = bpe("The answer is 42.")["input_ids"]
    assert bpe.convert_ids_to_tokens(ids) == ["The", "Ġanswer", "Ġis", "Ġ42", "."]
    # the answer tokenised alone is another token: matching token strings never finds it
    assert bpe.convert_ids_to_tokens(bpe("42")["input_ids"]) == ["42"]
    assert token_span(bpe, ids, (14, 16)) == (3, 4)  # "42" lies inside "Ġ42"
    assert token_span(bpe, ids, (4, 13)) == (1, 3)  # "answer is"
    assert token_span(bpe, ids, (0, 17)) == (0, 5)


def _bpe_bigram(tok) -> Bigram:
    """Rows that sum to 1 exactly: the named tokens, the rest of the mass spread evenly."""
    v, n = tok.get_vocab(), len(tok)
    eos = tok.eos_token_id
    probs = torch.zeros((n, n), dtype=torch.float64)
    probs[:, eos] = 1.0  # default: stop

    def set_row(src: str, dist: dict[str, float]) -> None:
        rest = (1.0 - sum(dist.values())) / (n - len(dist))
        probs[v[src]] = rest
        for t, p in dist.items():
            probs[v[src], v[t]] = p

    set_row("Ġ?", {"Ġ7": 0.45, "The": 0.40})  # greedy: " 7." (wrong); branch 1: the answer
    set_row("Ġ7", {".": 0.6, "Ġ42": 0.3})
    set_row("The", {"Ġanswer": 0.9})
    set_row("Ġanswer", {"Ġis": 0.8})
    set_row("Ġis", {"Ġ42": 0.7, "Ġ7": 0.2})
    set_row("Ġ42", {".": 0.9})
    set_row("Ġ=", {".": 0.6, "Ġ*": 0.3})  # the second prompt: no path writes a number
    return Bigram(probs.float())


def test_bpe_answer_confidence_is_the_hand_computed_margin() -> None:
    tok = make_bpe_tokenizer()
    model = _bpe_bigram(tok)
    recs = [
        {"id": "q", "prompt": "Q: 6 * 7 = ?", "answer": "#### 42"},
        {"id": "r", "prompt": "Q: 6 * 7 =", "answer": "#### 42"},
    ]
    task = Task.from_records("toy", recs, scorer="gsm8k", max_new_tokens=8)
    paths = cot_decode(model, tok, task, variant="toy", k=2).set_index(["prompt_id", "branch"])
    g, c = paths.loc[("q", 0)], paths.loc[("q", 1)]
    assert (g["completion"], g["parsed"], bool(g["correct"])) == ("7.", "7", False)
    assert (c["completion"], c["parsed"], bool(c["correct"])) == ("The answer is 42.", "42", True)
    # greedy's answer token is its first, " 7": margin p(Ġ7) - p(The) after "Ġ?" = 0.45 - 0.40;
    # branch 1's answer token is "Ġ42": p(Ġ42) - p(Ġ7) after "Ġis" = 0.7 - 0.2
    assert g["confidence"] == pytest.approx(0.05, abs=1e-5)
    assert c["confidence"] == pytest.approx(0.5, abs=1e-5)
    assert bool(c["chosen"]) and not bool(g["chosen"])
    # prompt r: "." and " *" hold no number: no span, counted; greedy is chosen by default
    assert not paths.loc["r"]["span_found"].any() and bool(paths.loc[("r", 0)]["chosen"])
    summ = cot_summary(paths.reset_index(), n_resamples=50).iloc[0]
    assert (summ["n_paths"], summ["n_no_span"], summ["n_unparsed"], summ["n_fallback"]) == (4, 2, 2, 1)
    assert summ["greedy_acc"] == 0.0 and summ["cot_acc"] == 0.5


def test_chosen_path_is_the_most_confident_and_ties_go_to_the_lowest_branch() -> None:
    import pandas as pd

    from probes.decoding.cot_decoding import _chosen

    nan = float("nan")
    df = pd.DataFrame(
        {
            "variant": ["v"] * 6,
            "prompt_id": ["a", "a", "a", "b", "b", "b"],
            "branch": [0, 1, 2] * 2,
            "confidence": [nan, 0.5, 0.5, nan, nan, nan],
        }
    )
    # a: branches 1 and 2 tie at 0.5 -> branch 1; b: no confidence at all -> branch 0 (greedy)
    assert _chosen(df).tolist() == [False, True, False, True, False, False]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_greedy_continue_cached_equals_uncached(tiny_dir, arch: str) -> None:
    """The KV-cached loop (left-padded prefill, one token a step) gives the tokens of re-running
    each row's whole text at every step, and margins equal to float precision; so does a
    TransformerBridge (its Hugging Face module drives the cache)."""
    import transformers

    folder = tiny_dir(arch)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(folder)).eval()

    class Uncached(torch.nn.Module):  # no cache: greedy_continue's fallback loop
        def __init__(self, m: torch.nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
        ) -> torch.Tensor:
            return self.m(input_ids, attention_mask=attention_mask).logits

    g = torch.Generator().manual_seed(0)
    rows = [torch.randint(5, 30, (n,), generator=g).tolist() for n in (3, 7, 5, 1)]
    eos = 2
    ref_t, ref_m = greedy_continue(Uncached(model), rows, max_new_tokens=9, eos_id=eos, batch_size=3)
    got_t, got_m = greedy_continue(model, rows, max_new_tokens=9, eos_id=eos, batch_size=3)
    assert got_t == ref_t and any(len(t) == 9 for t in ref_t)
    for a, b in zip(got_m, ref_m, strict=True):
        assert a == pytest.approx(b, abs=1e-5)
    from transformer_lens.model_bridge import TransformerBridge

    bridge = TransformerBridge.boot_transformers(str(folder), device="cpu")
    br_t, br_m = greedy_continue(bridge, rows, max_new_tokens=9, eos_id=eos, batch_size=3)
    assert br_t == ref_t
    assert greedy_continue(model, rows, max_new_tokens=0, eos_id=eos) == ([[], [], [], []], [[], [], [], []])
