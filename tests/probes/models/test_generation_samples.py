"""Shared-prefix sampling: one prompt forward, its cache repeated, each row sampled by the kit from
its own generator. Equal token for token to sampling each (prompt, seed) alone with a plain,
uncached loop; unchanged by the batch it is drawn in; and distributed as the model's next-token
distribution (chi-square on the first token)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers
from scipy import stats

from probes import load_family
from probes.errors import TaskError
from probes.models.generation import generate_samples, sample_token

PROMPTS = ["N 1 0 =", "C 0 1 1 = # 1", "D a ="]


@pytest.fixture(scope="module")
def opened(tiny_dir):
    fam = load_family({"base": str(tiny_dir("llama"))})
    with fam.open("base") as model:
        yield model, fam.tokenizer()


def reference(hf, tok, prompt: str, seed: int, budget: int, temperature: float = 1.0) -> str:
    """Sampling one row alone, without a cache: the whole sequence again at every step, the
    row's uniforms from torch.Generator().manual_seed(seed), inverse-CDF over softmax(logits / T)."""
    u = torch.rand(budget, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    ids = tok(prompt, return_tensors="pt").input_ids
    new: list[int] = []
    for t in range(budget):
        with torch.no_grad():
            logits = hf(torch.tensor([ids[0].tolist() + new])).logits[0, -1].double()
        cdf = torch.softmax(logits / temperature, -1).cumsum(-1)
        tok_id = min(int(torch.searchsorted(cdf, u[t] * cdf[-1], right=True)), len(cdf) - 1)
        if tok_id == tok.eos_token_id:
            break
        new.append(tok_id)
    return str(tok.decode(new, skip_special_tokens=True)).strip()


def test_equals_one_at_a_time_uncached_sampling(opened) -> None:
    model, tok = opened
    seeds = [[11, 12, 13, 14], [21, 22, 23, 24], [31, 32, 33, 34]]
    got = generate_samples(model, tok, PROMPTS, seeds=seeds, max_new_tokens=6, temperature=1.3)
    want = [
        [reference(model.original_model, tok, p, s, 6, 1.3) for s in ss]
        for p, ss in zip(PROMPTS, seeds, strict=True)
    ]
    assert got == want
    assert len({c for row in got for c in row}) > 3  # the samples differ: this is sampling


def test_a_row_does_not_depend_on_its_batch(opened) -> None:
    model, tok = opened
    kw = dict(max_new_tokens=6, temperature=1.3)
    alone = generate_samples(model, tok, [PROMPTS[1]], seeds=[[7]], **kw)[0][0]
    mixed = generate_samples(model, tok, PROMPTS[::-1], seeds=[[1, 2], [5, 7, 9], [3]], **kw)
    small = generate_samples(model, tok, PROMPTS, seeds=[[1], [9, 7], [2]], batch_size=1, **kw)
    assert mixed[1][1] == alone and small[1][1] == alone


def test_finish_reasons_and_bad_settings(opened) -> None:
    model, tok = opened
    finish: list[list[str]] = []
    out = generate_samples(model, tok, PROMPTS[:2], seeds=[[1, 2], [3]], max_new_tokens=3, finish=finish)
    assert [len(r) for r in out] == [2, 1] and [len(r) for r in finish] == [2, 1]
    assert all(w in ("stop", "budget") for r in finish for w in r)
    with pytest.raises(TaskError, match="2 lists for 3 prompts"):
        generate_samples(model, tok, PROMPTS, seeds=[[1], [2]])
    with pytest.raises(TaskError, match="temperature must be > 0, got 0"):
        generate_samples(model, tok, PROMPTS[:1], seeds=[[1]], temperature=0)


def _chi2_pvalue(counts: np.ndarray, probs: np.ndarray) -> float:
    """Pearson's chi-square, bins with an expected count under 5 pooled into one."""
    expected = probs * counts.sum()
    big = expected >= 5
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    keep = exp > 0
    return float(stats.chisquare(obs[keep], exp[keep] * obs[keep].sum() / exp[keep].sum()).pvalue)


@pytest.mark.parametrize(("temperature", "top_p"), [(1.0, None), (0.7, 0.8)])
def test_first_token_follows_the_model_distribution(opened, temperature, top_p) -> None:
    model, tok = opened
    prompt, n = PROMPTS[0], 4000
    out = generate_samples(
        model,
        tok,
        [prompt],
        seeds=[list(range(n))],
        max_new_tokens=1,
        temperature=temperature,
        top_p=top_p,
        batch_size=n,
    )[0]
    with torch.no_grad():
        logits = model.original_model(tok(prompt, return_tensors="pt").input_ids).logits[0, -1].double()
    p = torch.softmax(logits / temperature, -1).numpy()
    if top_p is not None:  # the nucleus, written out: most likely tokens until their mass reaches top_p
        order = np.argsort(-p, kind="stable")
        before = np.cumsum(p[order]) - p[order]
        keep = np.zeros_like(p, dtype=bool)
        keep[order[before < top_p]] = True
        p = np.where(keep, p, 0.0) / p[keep].sum()
    # a completion is text: tokens that decode to the same text (the special tokens: "") are one bin
    texts = [str(tok.decode([i], skip_special_tokens=True)).strip() for i in range(len(p))]
    bins = sorted(set(texts))
    probs = np.zeros(len(bins))
    for i, t in enumerate(texts):
        probs[bins.index(t)] += p[i]
    counts = np.array([out.count(b) for b in bins], dtype=float)
    assert counts.sum() == n
    assert _chi2_pvalue(counts, probs) > 1e-3
    if top_p is not None:
        assert counts[probs == 0].sum() == 0 and (probs == 0).any()  # nothing outside the nucleus


def test_sample_token_inverse_cdf_by_hand() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]]))
    for u, want in [(0.0, 0), (0.49, 0), (0.51, 1), (0.79, 1), (0.81, 2), (0.999, 2)]:
        assert int(sample_token(logits, torch.tensor([u]))) == want
    # top_p 0.6: tokens 0 and 1 (mass before token 1 is 0.5 < 0.6), renormalised 0.625 / 0.375
    assert int(sample_token(logits, torch.tensor([0.62]), top_p=0.6)) == 0
    assert int(sample_token(logits, torch.tensor([0.63]), top_p=0.6)) == 1
    assert int(sample_token(logits, torch.tensor([0.999]), top_p=0.6)) == 1


def test_plain_transformers_model_samples_the_same(opened, tiny_dir) -> None:
    model, tok = opened
    hf = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir("llama")).eval()
    kw = dict(seeds=[[4, 5], [6, 7], [8, 9]], max_new_tokens=5)
    assert generate_samples(hf, tok, PROMPTS, **kw) == generate_samples(model, tok, PROMPTS, **kw)


def test_prompt_protocol_renders_prefills_and_stops(opened) -> None:
    """Under a protocol, the prompt is rendered (template, prefill) and a completion is cut at its
    first stop string: the same rows as the rendered text sampled as written, then cut."""
    from probes.models.protocol import PromptProtocol

    model, tok = opened
    proto = PromptProtocol(
        variant="base", template="N {question} = ", prefill="#", stop=("9 0",)
    ).with_tokenizer(tok)
    seeds = [[s for s in range(10 * i, 10 * i + 6)] for i in range(2)]
    kw = dict(max_new_tokens=8, temperature=1.5)
    got = generate_samples(model, tok, ["1 0", "0 1 1"], seeds=seeds, protocol=proto, **kw)
    plain = generate_samples(model, tok, ["N 1 0 = #", "N 0 1 1 = #"], seeds=seeds, **kw)
    assert got == [[c.split("9 0")[0].strip() for c in row] for row in plain]
    assert any("9 0" in c for row in plain for c in row)  # the stop string was met somewhere


@pytest.mark.parametrize("arch", ["gpt2", "gemma2", "olmo2"])
def test_other_architectures_equal_uncached_sampling(arch, tiny_dir) -> None:
    hf = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir(arch)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(tiny_dir(arch))
    seeds = [[3, 4, 5], [6, 7, 8], [9, 10, 11]]
    got = generate_samples(hf, tok, PROMPTS, seeds=seeds, max_new_tokens=5, temperature=1.3)
    assert got == [
        [reference(hf, tok, p, s, 5, 1.3) for s in ss] for p, ss in zip(PROMPTS, seeds, strict=True)
    ]
