"""One crosscoder per variant, stacked: each equals the crosscoder trained on its own."""

from __future__ import annotations

import pandas as pd
import pytest

from probes import Task, collect_activations, load_family
from probes.dictionaries.crosscoder import (
    CrosscoderError,
    crosscoder_latents,
    crosscoder_summary,
    train_crosscoder,
)
from probes.dictionaries.family_crosscoders import family_crosscoders
from tests.tiny import perturb_checkpoint

TRAIN = {"d_sae": 32, "k": 4, "steps": 40, "batch_size": 32, "lr": 1e-3, "seed": 0}


@pytest.fixture(scope="module")
def acts(tiny_dir, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("famcc")
    base = tiny_dir("llama")
    near = perturb_checkpoint(base, root / "near", scale=0.01, seed=1)
    far = perturb_checkpoint(base, root / "far", scale=0.2, seed=2)
    fam = load_family({"base": str(base), "near": str(near), "far": str(far)})
    recs = [
        {
            "id": f"p{i}",
            "prompt": " ".join("abcdefghij"[(i + j) % 10] for j in range(6)) + " =",
            "answer": "1",
        }
        for i in range(24)
    ]
    return collect_activations(
        fam, Task.from_records("t", recs), "resid_post.1", "all", out=root / "acts", progress=False
    )


def test_each_variant_equals_its_own_crosscoder(acts) -> None:
    got = family_crosscoders(acts, "resid_post.1", "all", **TRAIN)
    assert list(got.crosscoders) == ["near", "far"]  # every stored variant but the base, in store order
    assert list(got.latents["variant"].unique()) == ["near", "far"]
    assert list(got.summary["variant"]) == ["near", "far"] and set(got.summary["base"]) == {"base"}
    for v in ("near", "far"):
        lat = crosscoder_latents(train_crosscoder(acts, "base", v, "resid_post.1", "all", **TRAIN), acts)
        mine = got.latents[got.latents["variant"] == v].drop(columns="variant").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, lat)
        pd.testing.assert_frame_equal(
            got.summary[got.summary["variant"] == v].reset_index(drop=True), crosscoder_summary(lat)
        )
        assert len(mine) == TRAIN["d_sae"]


def test_variants_choose_and_validate(acts) -> None:
    got = family_crosscoders(acts, "resid_post.1", variants=["far"], **TRAIN)
    assert list(got.summary["variant"]) == ["far"]
    with pytest.raises(
        CrosscoderError, match=r"\['sft'\] have no stored activations; stored: \['base', 'near', 'far'\]"
    ):
        family_crosscoders(acts, "resid_post.1", variants=["sft"], **TRAIN)
    with pytest.raises(CrosscoderError, match="needs variants other than the base"):
        family_crosscoders(acts, "resid_post.1", variants=["base"], **TRAIN)
