"""Hook sites: spellings parsed, validated on a model, typos answered with close matches."""

from __future__ import annotations

import pytest

from probes.errors import HookError
from probes.models.family import load_family
from probes.models.hooks import SITES, HookSite, parse_hooks, validate_hooks


def test_names_and_keys() -> None:
    h = HookSite(3, "mlp_out")
    assert h.name == "blocks.3.hook_mlp_out" and h.key == "mlp_out.3"
    assert HookSite(0).site == "resid_post"
    assert [HookSite(1, s).name for s in SITES] == [
        "blocks.1.hook_resid_pre",
        "blocks.1.hook_resid_mid",
        "blocks.1.hook_resid_post",
        "blocks.1.hook_attn_out",
        "blocks.1.hook_mlp_out",
    ]


@pytest.mark.parametrize("spec", ["resid_mid.2", "2.resid_mid", "blocks.2.hook_resid_mid", " resid_mid.2 "])
def test_parse_one_site(spec: str) -> None:
    assert HookSite.parse(spec) == HookSite(2, "resid_mid")


def test_parse_many() -> None:
    r = HookSite(0), HookSite(1), HookSite(2)
    assert parse_hooks("resid_post:0-2") == r
    assert parse_hooks("resid_post:0,2 mlp_out.1") == (HookSite(0), HookSite(2), HookSite(1, "mlp_out"))
    assert parse_hooks("resid_post.0,resid_post.1") == r[:2]
    assert parse_hooks(["resid_post.1", HookSite(0), "resid_post.1"]) == (
        HookSite(1),
        HookSite(0),
    )  # deduplicated
    assert parse_hooks("attn_out:all", n_layers=2) == (HookSite(0, "attn_out"), HookSite(1, "attn_out"))
    assert parse_hooks(HookSite(4)) == (HookSite(4),)


def test_parse_errors_name_the_value_and_suggest() -> None:
    with pytest.raises(HookError, match=r"Unknown hook site 'resid_psot'.*Did you mean \['resid_post'"):
        HookSite.parse("resid_psot.1")
    with pytest.raises(HookError, match=r"Unknown hook site 'mlp'.*Valid sites: \['resid_pre'"):
        HookSite(0, "mlp")
    with pytest.raises(HookError, match="Layer must be >= 0, got -1"):
        HookSite(-1)
    with pytest.raises(HookError, match="Cannot parse hook site 'resid_post'. Write SITE.LAYER"):
        HookSite.parse("resid_post")
    with pytest.raises(HookError, match="Cannot parse layers 'a-b' in 'resid_post:a-b'"):
        parse_hooks("resid_post:a-b")
    with pytest.raises(HookError, match="'all' layers needs the model's layer count"):
        parse_hooks("resid_post:all")
    with pytest.raises(HookError, match="No hook sites in ''"):
        parse_hooks("")


def test_validate_on_a_model(tiny_dir) -> None:
    fam = load_family({"base": str(tiny_dir("llama"))}, check=False)
    with fam.open("base") as model:
        assert validate_hooks(model, [HookSite(1), "blocks.0.hook_mlp_out"]) == [
            "blocks.1.hook_resid_post",
            "blocks.0.hook_mlp_out",
        ]
        with pytest.raises(
            HookError, match=r"'blocks.2.hook_resid_post' does not exist.*has 2 layers \(0..1\)"
        ):
            validate_hooks(model, [HookSite(2)])
        with pytest.raises(HookError, match=r"Close matches: \['blocks.0.hook_resid_post'"):
            validate_hooks(model, ["blocks.0.hook_resid_pots"])


SEQUENTIAL = ("llama", "qwen2", "olmo2", "gemma2", "gpt2")


@pytest.mark.parametrize("arch", [*SEQUENTIAL, "gpt_neox"])
def test_residual_identities_hold_per_architecture(arch: str, tiny_dir, tmp_path) -> None:
    """resid_mid = resid_pre + attn_out and resid_post = resid_mid + mlp_out, at every token.

    TransformerLens#1648: on OLMo 2 the Bridge once took attn_out / mlp_out before the
    post-sublayer norm, so these identities failed silently; OLMo 2 and Gemma 2 (post-norm
    sublayers) are checked here with the rest. GPT-NeoX runs attention and MLP in parallel: it has
    no resid_mid (asking for one is a HookError naming the sites it has), and resid_post =
    resid_pre + attn_out + mlp_out."""
    import torch

    from probes.data.activations import collect_activations

    fam = load_family({"base": str(tiny_dir(arch))})
    sites = ["resid_pre.1", "attn_out.1", "mlp_out.1", "resid_post.1"]
    if arch in SEQUENTIAL:
        sites.append("resid_mid.1")
    acts = collect_activations(fam, ["a b c d", "e f"], sites, "all", out=tmp_path / "a", progress=False)
    g = {s: acts.get_tokens("base", s, "all")[0] for s in sites}
    tol = {"atol": 1e-5, "rtol": 1e-5}
    if arch in SEQUENTIAL:
        torch.testing.assert_close(g["resid_mid.1"], g["resid_pre.1"] + g["attn_out.1"], **tol)
        torch.testing.assert_close(g["resid_post.1"], g["resid_mid.1"] + g["mlp_out.1"], **tol)
    else:
        torch.testing.assert_close(
            g["resid_post.1"], g["resid_pre.1"] + g["attn_out.1"] + g["mlp_out.1"], **tol
        )
        with pytest.raises(HookError, match="resid_mid.*does not exist"):
            collect_activations(fam, ["a b"], "resid_mid.1", "all", progress=False)
    # the identity is not vacuous: the sublayers write something
    assert g["attn_out.1"].abs().max() > 1e-3 and g["mlp_out.1"].abs().max() > 1e-3
