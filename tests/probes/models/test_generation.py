"""The kit's one generate: against a hand-written greedy loop, on both model kinds, with
prefill, length grouping, stop ids, decoding, interventions and seeds."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
import transformers

from probes.errors import TaskError
from probes.models.family import load_family
from probes.models.generation import _plan, generate

PROMPTS = ["a b c d =", "e =", "f g h i j k l =", "m n =", "o p =", "q ="]


@pytest.fixture(scope="module")
def hf(tiny_dir):
    folder = tiny_dir("llama")
    return (
        transformers.AutoModelForCausalLM.from_pretrained(folder).eval(),
        transformers.AutoTokenizer.from_pretrained(folder),
        folder,
    )


def reference_greedy(model, tok, prompt: str, n: int) -> list[int]:
    """One unpadded prompt, argmax token by token, no cache; stops after eos (not kept)."""
    ids = tok(prompt, return_tensors="pt").input_ids
    new: list[int] = []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(model(ids).logits[0, -1].argmax())
            if nxt == tok.eos_token_id:
                break
            new.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)
    return new


def test_greedy_equals_the_hand_written_loop(hf) -> None:
    model, tok, _ = hf
    want = [tok.decode(reference_greedy(model, tok, p, 8), skip_special_tokens=True).strip() for p in PROMPTS]
    assert sum(len(w.split()) for w in want) > 3 * len(PROMPTS)  # real continuations, not empty strings
    assert generate(model, tok, PROMPTS, max_new_tokens=8, batch_size=4) == want  # left-padded batches
    assert generate(model, tok, PROMPTS, max_new_tokens=8, group_by_length=True) == want  # unpadded batches
    assert generate(model, tok, PROMPTS, max_new_tokens=8, use_cache=False, batch_size=1) == want


def test_the_bridge_and_transformers_give_the_same_completions(hf) -> None:
    model, tok, folder = hf
    fam = load_family({"base": str(folder)}, check=False)
    seen: list[int] = []

    def count(m, batch):
        @contextmanager
        def ctx():
            seen.append(batch.input_ids.shape[0])
            yield

        return ctx()

    with fam.open("base") as bridge:
        got = generate(bridge, tok, PROMPTS, max_new_tokens=8, batch_size=4, intervention=count)
    assert got == generate(model, tok, PROMPTS, max_new_tokens=8, batch_size=4)
    assert seen == [4, 2]  # the intervention wraps each batched call


def test_prefix_stop_ids_and_decode(hf) -> None:
    model, tok, _ = hf
    plain = generate(model, tok, [p + " #" for p in PROMPTS], max_new_tokens=6)
    forced = generate(model, tok, PROMPTS, max_new_tokens=6, prefix=" # ")
    assert forced == [("# " + c).strip() for c in plain]
    raw = generate(
        model, tok, PROMPTS, max_new_tokens=6, stop_ids=(), decode=lambda ids: "|".join(map(str, ids))
    )
    assert all(len(r.split("|")) == 6 for r in raw)  # no stop id: all six ids, decoded by the callable
    first = [int(r.split("|")[0]) for r in raw]
    cut = generate(
        model, tok, PROMPTS, max_new_tokens=6, stop_ids=set(first), decode=lambda ids: "|".join(map(str, ids))
    )
    assert cut == [""] * len(PROMPTS)  # each continuation ends before its first (stop) id


def test_plan_groups_by_token_length_in_order_of_first_appearance(hf) -> None:
    _, tok, _ = hf
    texts = ["a b", "c", "d e", "f", "g h", "i j k"]
    assert _plan(tok, texts, 2, group_by_length=False) == [[0, 1], [2, 3], [4, 5]]
    assert _plan(tok, texts, 2, group_by_length=True) == [[0, 2], [4], [1, 3], [5]]


def test_seeded_sampling_is_reproducible_and_leaves_the_rng_alone(hf) -> None:
    model, tok, _ = hf
    kw = dict(max_new_tokens=8, do_sample=True, temperature=1.5, batch_size=3)
    torch.manual_seed(1234)
    state = torch.random.get_rng_state()
    a = generate(model, tok, PROMPTS, seed=7, **kw)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's RNG is untouched
    assert generate(model, tok, PROMPTS, seed=7, **kw) == a
    assert generate(model, tok, PROMPTS, seed=8, **kw) != a
    # seed s means: the global RNG seeded with s, then the batches drawn in order
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        ref = []
        for b0 in range(0, len(PROMPTS), 3):
            tok.padding_side = "left"
            enc = tok(PROMPTS[b0 : b0 + 3], return_tensors="pt", padding=True)
            out = model.generate(
                **enc,
                max_new_tokens=8,
                do_sample=True,
                temperature=1.5,
                top_k=None,
                top_p=None,
                pad_token_id=tok.pad_token_id,
                eos_token_id=tok.eos_token_id,
            )
            for row in out[:, enc.input_ids.shape[1] :].tolist():
                row = row[: row.index(tok.eos_token_id)] if tok.eos_token_id in row else row
                ref.append(tok.decode(row, skip_special_tokens=True).strip())
    assert a == ref


def test_errors_name_the_bad_value(hf) -> None:
    model, tok, _ = hf
    with pytest.raises(TaskError, match="max_new_tokens must be >= 1, got 0"):
        generate(model, tok, PROMPTS, max_new_tokens=0)
    with pytest.raises(TaskError, match="batch_size must be >= 1, got 0"):
        generate(model, tok, PROMPTS, batch_size=0)
