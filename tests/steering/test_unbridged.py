"""Generation on the Bridge's own transformers modules: the same tokens as the Bridge's path, the
same hooks fired, the Bridge intact afterwards, and any non-residual hook keeps the Bridge's path."""

from __future__ import annotations

import pytest
import torch

from probes import load_family
from probes.models.generation import generate
from probes.models.unbridged import unbridged
from steering import SteeringVector, apply

PROMPTS = ["a b c =", "d e f g h =", "i =", "j k = 1"]


def _bridge_path(model, tok, prompts, **kw):
    """The Bridge's own path, forced: an identity hook on an attention pattern (no equivalent on
    the transformers modules) makes :func:`unbridged` decline."""
    model.add_hook("blocks.0.attn.hook_pattern", lambda x, hook: x)
    try:
        with unbridged(model) as hf:
            assert hf is None
        return generate(model, tok, prompts, **kw)
    finally:
        model.reset_hooks()


@pytest.mark.parametrize("arch", ["llama", "qwen2", "olmo2", "gpt2"])
@pytest.mark.parametrize("positions", ["match:=", "all", "generated"])
def test_steered_tokens_equal_the_bridges(arch, positions, tiny_dir) -> None:
    fam = load_family({"base": str(tiny_dir(arch))})
    torch.manual_seed(3)
    vec = SteeringVector.from_direction(torch.randn(64) * 4, layer=1, site="resid_pre")
    alphas = torch.tensor([0.0, 1.0, 2.5, -2.0])
    with fam.open("base") as model:
        tok = model.tokenizer

        def steer(m, batch):
            return apply(m, vec, alpha=alphas, positions=positions, record_logits=True)

        fast = generate(model, tok, PROMPTS, max_new_tokens=7, intervention=steer)
        slow = _bridge_path(model, tok, PROMPTS, max_new_tokens=7, intervention=steer)
        plain_fast = generate(model, tok, PROMPTS, max_new_tokens=7)
        plain_slow = _bridge_path(model, tok, PROMPTS, max_new_tokens=7)
    assert fast == slow
    assert plain_fast == plain_slow
    assert fast != plain_fast  # the steering reached the fast path
    assert fast[0] == plain_fast[0]  # alpha 0


def test_the_hook_functions_run_with_the_bridges_hook_point_and_record(tiny_dir) -> None:
    from contextlib import ExitStack, contextmanager

    fam = load_family({"base": str(tiny_dir("llama"))})
    vec = SteeringVector.from_direction(torch.ones(64), layer=0)
    records = {}
    with fam.open("base") as model:
        tok = model.tokenizer
        for name, run in (("fast", generate), ("slow", _bridge_path)):
            seen: list[str] = []
            held: dict[str, object] = {}

            @contextmanager
            def steer(m, batch, seen=seen, held=held):
                with ExitStack() as stack:
                    m.add_hook("blocks.1.hook_resid_post", lambda x, hook: seen.append(hook.name))
                    held["rec"] = stack.enter_context(
                        apply(m, vec, alpha=2.0, positions="match:=", record_logits=True)
                    )
                    yield

            run(model, tok, PROMPTS, max_new_tokens=4, intervention=steer)
            model.reset_hooks()
            records[name] = (held["rec"], seen)
    (fast, fast_seen), (slow, slow_seen) = records["fast"], records["slow"]
    assert torch.equal(fast.positions, slow.positions) and fast.positions.tolist() == [1, 1, 1, 1]
    assert fast.calls == slow.calls == 4  # one prompt pass and three cached decode steps
    torch.testing.assert_close(fast.first_logprobs, slow.first_logprobs, rtol=1e-5, atol=1e-5)
    assert fast_seen == slow_seen and set(fast_seen) == {"blocks.1.hook_out"} and len(fast_seen) == 4


def test_the_bridge_is_whole_after_the_block_even_on_error(tiny_dir) -> None:
    fam = load_family({"base": str(tiny_dir("llama"))})
    with fam.open("base") as model:
        ids = model.tokenizer(["a b c ="], return_tensors="pt").input_ids
        before = model(ids).detach()
        modules = [type(m).__name__ for m in model.original_model.modules()]
        with pytest.raises(RuntimeError, match="boom"), unbridged(model) as hf:
            assert type(hf.model.layers[0]).__name__ == "LlamaDecoderLayer"
            raise RuntimeError("boom")
        assert [type(m).__name__ for m in model.original_model.modules()] == modules
        _, cache = model.run_with_cache(ids, names_filter=["blocks.0.attn.hook_pattern"])
        assert cache["blocks.0.attn.hook_pattern"].shape[-1] == ids.shape[1]  # the Bridge's attention again
        assert torch.equal(model(ids).detach(), before)


def test_a_plain_transformers_model_is_not_unbridged(tiny_dir) -> None:
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(tiny_dir("llama"))
    with unbridged(model) as hf:
        assert hf is None
