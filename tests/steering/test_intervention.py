"""A steering intervention steers generation exactly like ``apply`` around it, and fails early."""

from __future__ import annotations

import pytest
import torch

from probes import load_family
from probes.errors import ElicitError
from probes.models.generation import generate
from probes.models.tokens import encode
from steering.apply import apply
from steering.intervention import steering_intervention
from steering.vector import SteeringVector

PROMPTS = ["a b c =", "d e f g h =", "i =", "j k ="]


def test_generation_under_the_intervention_equals_apply_around_it(tiny_dir) -> None:
    fam = load_family({"base": str(tiny_dir("llama"))})
    g = torch.Generator().manual_seed(1)
    vec = SteeringVector({0: 3 * torch.randn(64, generator=g), 1: 3 * torch.randn(64, generator=g)})
    with fam.open("base") as model:
        tok = model.tokenizer
        plain = generate(model, tok, PROMPTS, max_new_tokens=6)
        with apply(model, vec, layers=[1], alpha=2.5, positions="match:="):
            wrapped = generate(model, tok, PROMPTS, max_new_tokens=6)
        steer = steering_intervention(vec, layers=[1], alpha=2.5, positions="match:=")
        got = generate(model, tok, PROMPTS, max_new_tokens=6, intervention=steer)
        zero = generate(
            model,
            tok,
            PROMPTS,
            max_new_tokens=6,
            intervention=steering_intervention(vec, layers=1, alpha=0.0, positions="match:="),
        )
        # the hooks live only inside each generate call
        assert all(len(hp.fwd_hooks) == 0 for hp in model.hook_dict.values())
    assert got == wrapped
    assert got != plain  # layer 1 at alpha 2.5 changes at least one completion
    assert zero == plain  # alpha 0 is the unsteered model


def test_forward_under_the_intervention_adds_alpha_times_the_vector(tiny_dir) -> None:
    fam = load_family({"base": str(tiny_dir("llama"))})
    vec = SteeringVector.from_direction(torch.arange(64, dtype=torch.float32) / 64, layer=1)
    with fam.open("base") as model:
        batch = encode(model.tokenizer, PROMPTS[:1])
        ids = batch.input_ids
        _, clean = model.run_with_cache(ids)
        with steering_intervention(vec, alpha=3.0, positions="all")(model, batch):
            _, steered = model.run_with_cache(ids)
    torch.testing.assert_close(
        steered["blocks.1.hook_resid_post"], clean["blocks.1.hook_resid_post"] + 3.0 * vec.directions[1]
    )
    assert torch.equal(steered["blocks.0.hook_resid_post"], clean["blocks.0.hook_resid_post"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layers": [7]}, r"no layer\(s\) \[7\]"),
        ({"positions": "middle"}, "Unknown steering position 'middle'"),
        ({"units": "sigma"}, "Unknown alpha units 'sigma'"),
    ],
)
def test_bad_arguments_fail_when_built(kwargs, match) -> None:
    vec = SteeringVector.from_direction(torch.ones(4), layer=0)
    with pytest.raises(ElicitError, match=match):
        steering_intervention(vec, **kwargs)
