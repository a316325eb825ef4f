"""CoT-decoding on a hand-built bigram model picks the planted reasoning path."""

from __future__ import annotations

import torch

from probes.data.tasks import Task
from probes.decoding.cot_decoding import answer_token_span, cot_decode, cot_summary, greedy_continue
from tests.tiny import make_tokenizer


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


def test_answer_token_span() -> None:
    assert answer_token_span(["#", "1", "1", ">", "1"], ["1"], ">") == (4, 5)
    assert answer_token_span(["1", "0"], ["1"], None) == (0, 1)
    assert answer_token_span(["#", "1", ">"], ["1"], ">") is None


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
