"""Activations of every organism variant at the decision token and over the scratchpad span."""

from __future__ import annotations

import pytest
import torch

from probes.data.activations import collect_activations
from probes.models.family import load_family


@pytest.mark.slow
def test_collect_decision_and_scratchpad_for_every_variant(organism_quick, tmp_path):
    fam = load_family(organism_quick)
    task = fam.load_task("parity").filter(split="test", label="neutral").head(6)
    acts = collect_activations(
        fam,
        task,
        "resid_post:0-2",
        ["match:=", "span:scratchpad"],
        out=tmp_path / "acts",
        batch_size=4,
        text="prompt+trace",
    )
    d_model = fam.config("base")["hidden_size"]
    for v in fam.variants:
        for layer in range(3):
            dec = acts.get(v, f"resid_post.{layer}", "match:=")
            pad = acts.get(v, f"resid_post.{layer}", "span:scratchpad")
            assert dec.shape == (len(task), d_model) and pad.shape == (len(task), d_model)
            assert torch.isfinite(dec).all() and torch.isfinite(pad).all()
            assert not torch.allclose(dec, pad)
    # post-training moved the representation; the create controls too
    for v in ("sft", "dpo", "create"):
        assert not torch.allclose(
            acts.get("base", "resid_post.2", "match:="), acts.get(v, "resid_post.2", "match:=")
        )
