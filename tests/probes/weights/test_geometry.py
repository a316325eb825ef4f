"""Weight geometry tables (probes.weights.geometry, probes.models.checkpoint): planted updates are recovered.

Each measure is checked on an update whose answer is known by construction, and against
a plain-torch (or scipy) reference written here. Checkpoints are seeded tensors written
to small safetensors folders, plus the tiny random archs of tests/tiny.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import save_file

from probes.models.checkpoint import CheckpointError, classify_param, open_checkpoint, pair_checkpoints
from probes.models.family import load_family
from probes.weights.alignment import load_directions
from probes.weights.geometry import (
    summarize_weight_diff,
    update_cosine,
    update_cosine_paths,
    weight_diff,
    weight_diff_paths,
)
from probes.weights.measures import SVDSettings, WeightDiffError, angle_noise_floor, principal_angles
from tests.tiny import ARCHS, make_checkpoint, perturb_checkpoint

D, F = 48, 96  # d_model, MLP width of the planted checkpoints
DOWN = "model.layers.0.mlp.down_proj.weight"  # [d_model, F]: a residual writer
Q = "model.layers.0.self_attn.q_proj.weight"  # [d_model, d_model]: not a residual writer


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def write_ckpt(folder: Path, tensors: dict[str, torch.Tensor], **shard: int) -> Path:
    """A minimal checkpoint folder: config.json + model.safetensors (no tokenizer needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": D}))
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(folder / "model.safetensors"))
    return folder


def base_tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    g = _gen(seed)
    return {
        "model.embed_tokens.weight": torch.randn(40, D, generator=g),
        Q: torch.randn(D, D, generator=g),
        DOWN: torch.randn(D, F, generator=g),
        "model.layers.0.input_layernorm.weight": torch.ones(D),
        "model.norm.weight": torch.ones(D),
    }


def planted(tmp_path: Path, updates: dict[str, torch.Tensor], seed: int = 0) -> tuple[Path, Path]:
    """Base checkpoint and a tuned one = base + the given updates (other tensors unchanged)."""
    base = base_tensors(seed)
    tuned = {k: v + updates[k] if k in updates else v.clone() for k, v in base.items()}
    return write_ckpt(tmp_path / "base", base), write_ckpt(tmp_path / "tuned", tuned)


def row(df: pd.DataFrame, name: str) -> pd.Series:
    return df.set_index("name").loc[name]


def orthonormal(n: int, r: int, seed: int) -> torch.Tensor:
    return torch.linalg.qr(torch.randn(n, r, generator=_gen(seed)))[0]


# ------------------------------------------------------------------ planted updates
def test_bf16_sparsity_numerical_rank_and_spectrum_matched_null(tmp_path: Path) -> None:
    # a rank-3 update inside the base's top-4 output/input subspaces of DOWN, small enough that
    # most entries round back to their bf16 base value
    base = base_tensors()
    U, _, Vh = torch.linalg.svd(base[DOWN], full_matrices=False)
    delta = (U[:, :3] * torch.tensor([0.05, 0.03, 0.02])) @ Vh[:3]
    b, t = planted(tmp_path, {DOWN: delta})
    got = row(weight_diff_paths(b, t, ks=(4,)), DOWN)
    tuned = base[DOWN] + delta
    want_bf16 = float((base[DOWN].bfloat16() != tuned.bfloat16()).float().mean())
    assert got["updated@bf16"] == pytest.approx(want_bf16)
    assert got["sparsity@bf16"] == pytest.approx(1 - want_bf16)
    assert got["updated@0"] == 1.0 > got["updated@bf16"]  # float32 counts every entry
    assert got["numerical_rank"] == 3 and got["numerical_rank_share"] == pytest.approx(3 / D)
    assert got["overlap@4"] == pytest.approx(1.0, abs=1e-4)
    # the null has this update's spectrum and random directions: overlap near sqrt(16/(D*F))
    assert got["null_overlap@4"] < 0.3
    assert math.isfinite(got["null_angle_out_mean@4"]) and math.isfinite(got["null_updated@bf16"])
    # untouched matrices have rank 0 and no null
    q = row(weight_diff_paths(b, t, ks=(4,)), Q)
    assert q["numerical_rank"] == 0 and math.isnan(q["null_overlap@4"]) and q["updated@bf16"] == 0.0
    # the null is seeded: the same table twice
    again = row(weight_diff_paths(b, t, ks=(4,)), DOWN)
    assert again["null_overlap@4"] == got["null_overlap@4"]


@pytest.mark.parametrize("r", [1, 3, 8])
def test_rank_r_update_has_stable_rank_r(tmp_path: Path, r: int) -> None:
    delta = 0.1 * orthonormal(D, r, 1) @ orthonormal(F, r, 2).T  # r equal singular values
    b, t = planted(tmp_path, {DOWN: delta})
    got = row(weight_diff_paths(b, t), DOWN)
    assert got["stable_rank"] == pytest.approx(r, rel=1e-4)
    assert got["delta_sv"][:r] == pytest.approx([0.1] * r, rel=1e-4)
    assert max(got["delta_sv"][r:], default=0.0) < 1e-5
    assert got["delta_fro"] == pytest.approx(0.1 * math.sqrt(r), rel=1e-4)
    ref_w = base_tensors()[DOWN]
    assert got["rel_norm"] == pytest.approx(0.1 * math.sqrt(r) / float(ref_w.norm()), rel=1e-4)
    assert got["svd_method"] == "full"


def test_stable_rank_matches_reference_for_unequal_spectrum(tmp_path: Path) -> None:
    s = torch.tensor([1.0, 0.5, 0.25])
    delta = orthonormal(D, 3, 3) @ torch.diag(s) @ orthonormal(F, 3, 4).T
    b, t = planted(tmp_path, {DOWN: delta})
    got = row(weight_diff_paths(b, t), DOWN)
    assert got["stable_rank"] == pytest.approx(float((s**2).sum() / s[0] ** 2), rel=1e-4)


@pytest.mark.parametrize("k", [1, 4, 16])
def test_update_inside_principal_subspace_has_overlap_one_and_outside_zero(tmp_path: Path, k: int) -> None:
    W = base_tensors()[DOWN]
    U, _, Vh = torch.linalg.svd(W, full_matrices=False)
    Uk, Vk = U[:, :k], Vh[:k].T
    A = torch.randn(k, k, generator=_gen(5))
    inside = 0.05 * Uk @ A @ Vk.T
    B = torch.randn(D, F, generator=_gen(6))
    outside = 0.05 * (torch.eye(D) - Uk @ Uk.T) @ B @ (torch.eye(F) - Vk @ Vk.T)

    b, t = planted(tmp_path / "in", {DOWN: inside})
    got_in = row(weight_diff_paths(b, t), DOWN)
    assert got_in[f"overlap@{k}"] == pytest.approx(1.0, abs=1e-4)

    b, t = planted(tmp_path / "out", {DOWN: outside})
    got_out = row(weight_diff_paths(b, t), DOWN)
    assert got_out[f"overlap@{k}"] == pytest.approx(0.0, abs=1e-4)


def test_sparse_update_gives_planted_sparsity(tmp_path: Path) -> None:
    n = D * F
    perm = torch.randperm(n, generator=_gen(7))
    big, tiny = perm[: n // 10], perm[n // 10 : 3 * n // 10]  # 10% clear changes, 20% tiny ones
    delta = torch.zeros(n)
    delta[big] = 0.01 * torch.sign(torch.randn(len(big), generator=_gen(8)))
    delta[tiny] = 1e-6  # survives float32 rounding of weights up to |w| ~ 8
    b, t = planted(tmp_path, {DOWN: delta.view(D, F)})
    df = weight_diff_paths(b, t, tols=(0.0, 1e-5, 1e-3))
    got = row(df, DOWN)
    assert got["updated@0"] == pytest.approx((len(big) + len(tiny)) / n)
    assert got["updated@1e-05"] == pytest.approx(len(big) / n)
    assert got["updated@0.001"] == pytest.approx(len(big) / n)
    assert got["sparsity@0.001"] == pytest.approx(1 - len(big) / n)
    # untouched parameters are exactly unchanged
    assert row(df, Q)["updated@0"] == 0.0
    assert row(df, Q)["delta_fro"] == 0.0
    assert math.isnan(row(df, Q)["stable_rank"])


def test_alignment_with_planted_direction_beats_random_null(tmp_path: Path) -> None:
    d = torch.randn(D, generator=_gen(9))
    d_unit = d / d.norm()
    other = torch.randn(D, generator=_gen(10))
    other = other - (other @ d_unit) * d_unit  # orthogonal to the planted direction
    v = torch.randn(F, generator=_gen(11))
    delta = 0.2 * torch.outer(d_unit, v / v.norm())  # writes only along d
    emb = "model.embed_tokens.weight"
    b, t = planted(
        tmp_path,
        {
            DOWN: delta,
            Q: 0.1 * torch.randn(D, D, generator=_gen(12)),
            emb: 0.1 * torch.randn(40, D, generator=_gen(29)),
        },
    )
    before = d.clone()
    df = weight_diff_paths(b, t, directions={"planted": d, "orthogonal": other})
    assert torch.equal(d, before)  # the caller's tensor is not normalized in place
    got = row(df, DOWN)
    assert got["align:planted"] == pytest.approx(1.0, abs=1e-5)
    assert got["align:orthogonal"] == pytest.approx(0.0, abs=1e-5)
    # rank-1 update in D dims: random unit r gives |r . d|, mean about sqrt(2 / (pi D))
    assert got["align_null_mean"] == pytest.approx(math.sqrt(2 / (math.pi * D)), rel=0.15)
    assert got["align_null_p95"] < 0.35
    # only residual writers are aligned
    assert math.isnan(row(df, Q)["align:planted"])
    assert 0 < row(df, emb)["align:planted"] < 1  # embeddings write to the residual stream too


def test_principal_angles_detect_rotation_of_top_subspace(tmp_path: Path) -> None:
    W = base_tensors()[DOWN]
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    # scale the spectrum: subspaces stay put
    scaled = U @ torch.diag(S * 1.1) @ Vh
    # swap the top left singular vector with the 6th: the top-1 output subspace turns by 90 deg
    U2 = U.clone()
    U2[:, [0, 5]] = U[:, [5, 0]]
    rotated = U2 @ torch.diag(S) @ Vh
    b, t = planted(tmp_path / "s", {DOWN: scaled - W})
    got = row(weight_diff_paths(b, t), DOWN)
    for k in (1, 4, 16):
        assert got[f"angle_out_max@{k}"] == pytest.approx(0.0, abs=0.1)
        assert got[f"angle_in_max@{k}"] == pytest.approx(0.0, abs=0.1)
    b, t = planted(tmp_path / "r", {DOWN: rotated - W})
    got = row(weight_diff_paths(b, t), DOWN)
    assert got["angle_out_at_floor@1"] == 0.0 and got["angle_out_at_floor@16"] == 1.0
    assert got["angle_out_max@1"] == pytest.approx(90.0, abs=0.1)
    assert got["angle_out_max@4"] == pytest.approx(90.0, abs=0.1)
    assert got["angle_out_mean@4"] == pytest.approx(90.0 / 4, abs=0.1)
    assert got["angle_out_max@16"] == pytest.approx(0.0, abs=0.1)  # 6th vector is inside the top 16
    assert got["angle_in_max@1"] == pytest.approx(0.0, abs=0.1)


def test_lowrank_table_states_method_and_recovers_planted_rank(tmp_path: Path) -> None:
    delta = 0.1 * orthonormal(D, 2, 20) @ orthonormal(F, 2, 21).T
    b, t = planted(tmp_path, {DOWN: delta})
    df = weight_diff_paths(b, t, svd=SVDSettings(method="lowrank"))
    got = row(df, DOWN)
    assert got["svd_method"].startswith("lowrank(")
    assert got["stable_rank"] == pytest.approx(2.0, rel=1e-3)
    assert df.attrs["svd"]["method"] == "lowrank"


def test_identical_checkpoints_give_zero_update(tmp_path: Path) -> None:
    b = write_ckpt(tmp_path / "b", base_tensors())
    df = weight_diff_paths(b, b)
    assert (df["delta_fro"] == 0).all()
    assert (df["sparsity@0"] == 1.0).all()
    assert df["stable_rank"].isna().all()
    # an identical copy: every angle is at its float noise floor, flagged
    mats = df[df["angle_out_floor"].notna()]
    assert set(mats["name"]) == {"model.embed_tokens.weight", Q, DOWN}
    for side in ("out", "in"):
        for k in (1, 4, 16):
            assert (mats[f"angle_{side}_mean@{k}"] <= mats[f"angle_{side}_floor"]).all()
            assert (mats[f"angle_{side}_at_floor@{k}"] == 1.0).all()
    assert row(df, DOWN)["angle_out_floor"] == pytest.approx(angle_noise_floor(D))
    assert row(df, DOWN)["angle_in_floor"] == pytest.approx(angle_noise_floor(F))


@pytest.mark.parametrize(("m", "n"), [(128, 512), (576, 576), (576, 1536), (1536, 576)])
def test_angle_noise_floor_covers_the_angles_of_one_subspace_computed_twice(m: int, n: int) -> None:
    """The angle between a float32 SVD basis and itself, and between it and the float64 SVD's
    (the same subspace, computed twice), stays under the floor; a 1-degree turn is above it."""
    W = torch.randn(m, n, generator=_gen(m + n)) / n**0.5
    U = torch.linalg.svd(W, full_matrices=False)[0]
    U64 = torch.linalg.svd(W.double(), full_matrices=False)[0].float()
    floor = angle_noise_floor(m)
    # delta = 2 sqrt(m) eps (the inner products and the bases' loss of orthonormality), angle sqrt(2 delta)
    assert floor == pytest.approx(
        math.degrees(math.sqrt(2 * 2 * math.sqrt(m) * torch.finfo(torch.float32).eps))
    )
    for k in (1, 4, 16):
        assert float(principal_angles(U[:, :k], U[:, :k]).max()) <= floor
        assert float(principal_angles(U[:, :k], U64[:, :k]).max()) <= floor
    turn = math.radians(1.0)
    turned = math.cos(turn) * U[:, :1] + math.sin(turn) * U[:, 1:2]
    assert float(principal_angles(U[:, :1], turned)[0]) == pytest.approx(1.0, abs=0.01) and floor < 1.0
    assert angle_noise_floor(m, torch.float64) < 1e-4 * floor
    with pytest.raises(WeightDiffError, match="dim >= 1"):
        angle_noise_floor(0)


# ------------------------------------------------------------------ update cosine
def test_update_cosine_of_same_opposite_and_orthogonal_updates(tmp_path: Path) -> None:
    base = base_tensors()
    A = torch.randn(D, F, generator=_gen(22))
    Bo = torch.randn(D, F, generator=_gen(23))
    Bo = Bo - (Bo * A).sum() / (A * A).sum() * A  # Frobenius-orthogonal to A
    write_ckpt(tmp_path / "base", base)
    for name, upd in {"a": A, "same": 2 * A, "neg": -A, "orth": Bo}.items():
        write_ckpt(tmp_path / name, {k: v + upd if k == DOWN else v for k, v in base.items()})
    for other, expected in {"same": 1.0, "neg": -1.0, "orth": 0.0}.items():
        df = update_cosine_paths(tmp_path / "base", tmp_path / "a", tmp_path / other, labels=("a", other))
        got = row(df, DOWN)
        assert got["cosine"] == pytest.approx(expected, abs=1e-5)
        assert got["delta_fro_a"] == pytest.approx(float(A.norm()), rel=1e-5)
        assert math.isnan(row(df, Q)["cosine"])  # no update at all


# ------------------------------------------------------------------ names, archs, streaming
EXPECTED = {
    "llama": {"q", "k", "v", "o", "gate", "up", "down", "embed", "unembed", "norm"},
    "qwen2": {"q", "k", "v", "o", "gate", "up", "down", "embed", "norm"},
    "olmo2": {"q", "k", "v", "o", "gate", "up", "down", "embed", "unembed", "norm"},
    "gemma2": {"q", "k", "v", "o", "gate", "up", "down", "embed", "norm"},
    "gpt2": {"qkv", "o", "up", "down", "embed", "pos_embed", "norm"},
    "gpt_neox": {"qkv", "o", "up", "down", "embed", "unembed", "norm"},
}


@pytest.mark.parametrize("arch", ARCHS)
def test_every_tiny_arch_maps_to_layer_and_component(tiny_dir, tmp_path: Path, arch: str) -> None:
    path = tiny_dir(arch)
    ckpt = open_checkpoint(path)
    roles = [classify_param(n) for n in ckpt.names]
    assert [r.name for r in roles if r.component == "unknown"] == []
    assert {r.component for r in roles} == EXPECTED[arch]
    assert {r.layer for r in roles if r.layer is not None} == {0, 1}
    block = [r for r in roles if r.layer is not None and r.component != "norm"]
    assert len({(r.layer, r.component, r.kind) for r in block}) == len(block)

    tuned = perturb_checkpoint(path, tmp_path / "tuned", scale=0.01, seed=1)
    df = weight_diff_paths(path, tuned)
    assert set(df["name"]) == set(ckpt.names)
    assert (df["delta_fro"] > 0).all()
    assert df.loc[df["base_fro"] > 0, "rel_norm"].notna().all()  # zero-initialized biases give NaN
    d = 64
    shapes = {
        (r.component, r.kind): tuple(s)
        for r, s in zip(map(classify_param, df["name"]), df["shape"], strict=True)
    }
    # every matrix is [out, in]: residual writers output d_model, embeddings included
    assert shapes[("o", "weight")][0] == d
    assert shapes[("down", "weight")][0] == d
    assert shapes[("embed", "weight")][0] == d
    assert shapes[("up", "weight")][1] == d
    if arch == "gpt2":  # Conv1D stores [in, out]
        assert shapes[("qkv", "weight")] == (3 * d, d)
        assert shapes[("up", "weight")] == (4 * d, d)
        assert shapes[("down", "weight")] == (d, 4 * d)
    tied = [n for n in df.attrs["pairing"]["notes"] if "tied" in n]
    assert bool(tied) == (arch in ("qwen2", "gemma2", "gpt2"))


def test_gpt2_conv1d_orientation_matches_the_linear_map(tiny_dir) -> None:
    import transformers

    path = tiny_dir("gpt2")
    model = transformers.AutoModelForCausalLM.from_pretrained(path)
    conv = model.transformer.h[0].mlp.c_fc
    x = torch.randn(3, 64, generator=_gen(24))
    pairing = pair_checkpoints({"a": path, "b": path})
    name = "transformer.h.0.mlp.c_fc.weight"
    ((_, tensors),) = list(pairing.stream([name]))
    with torch.no_grad():
        assert torch.allclose(conv(x) - conv.bias, x @ tensors["a"].T, atol=1e-5)


def test_unknown_and_unpaired_names_are_listed_not_dropped(tmp_path: Path) -> None:
    base = base_tensors()
    base["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.arange(8.0)
    base["vision_tower.patch.weight"] = torch.randn(4, 4, generator=_gen(25))
    base["only.in.base"] = torch.zeros(3)
    tuned = {k: v + 0.01 for k, v in base.items() if k != "only.in.base"}
    tuned["only.in.tuned"] = torch.zeros(2)
    tuned["model.norm.weight"] = torch.ones(D + 1)  # shape changed
    b, t = write_ckpt(tmp_path / "b", base), write_ckpt(tmp_path / "t", tuned)
    pairing = pair_checkpoints({"base": b, "tuned": t})
    assert set(pairing.unknown) == {
        "model.layers.0.self_attn.rotary_emb.inv_freq",
        "vision_tower.patch.weight",
    }
    assert pairing.missing["tuned"] == ("only.in.base",)
    assert pairing.extra["tuned"] == ("only.in.tuned",)
    assert dict(pairing.shape_mismatch) == {"model.norm.weight": {"base": (D,), "tuned": (D + 1,)}}
    df = weight_diff_paths(b, t)
    unknown_rows = df[df["component"] == "unknown"]
    assert set(unknown_rows["name"]) == set(pairing.unknown)  # measured, not dropped
    assert df.attrs["pairing"]["unknown"] == list(pairing.unknown)
    assert df.attrs["pairing"]["shape_mismatch"] == {"model.norm.weight": {"base": [D], "tuned": [D + 1]}}


def test_sharded_and_unsharded_checkpoints_give_identical_tables(tmp_path: Path) -> None:
    single = make_checkpoint("llama", tmp_path / "single", seed=3)
    sharded = make_checkpoint("llama", tmp_path / "sharded", seed=3, max_shard_size="20KB")
    assert (sharded / "model.safetensors.index.json").exists()
    assert len(list(sharded.glob("*.safetensors"))) > 3
    tuned = perturb_checkpoint(single, tmp_path / "tuned", scale=0.02, seed=4)
    dirs = {"u": torch.randn(64, generator=_gen(26))}
    for svd in (SVDSettings(), SVDSettings(method="lowrank")):
        a = weight_diff_paths(single, tuned, directions=dirs, svd=svd)
        b = weight_diff_paths(sharded, tuned, directions=dirs, svd=svd)
        pd.testing.assert_frame_equal(a, b)
    # sharded tuned side too
    tuned_sharded = tmp_path / "tuned_sharded"
    import transformers

    transformers.AutoModelForCausalLM.from_pretrained(tuned).save_pretrained(
        tuned_sharded, max_shard_size="20KB"
    )
    pd.testing.assert_frame_equal(weight_diff_paths(single, tuned), weight_diff_paths(sharded, tuned_sharded))


def test_stream_keeps_no_file_mapped_and_reads_one_parameter_at_a_time(tiny_dir) -> None:
    path = tiny_dir("llama")
    pairing = pair_checkpoints({"a": path, "b": path})
    seen = 0
    for role, tensors in pairing.stream():
        assert set(tensors) == {"a", "b"}
        assert torch.equal(tensors["a"], tensors["b"])
        assert tensors["a"].dtype == torch.float32
        seen += 1
        assert role.name == pairing.shared[seen - 1]
    assert seen == len(pairing.shared)
    del tensors  # safetensors tensors view the file's memory map; freeing them unmaps it
    maps = Path("/proc/self/maps").read_text() if Path("/proc/self/maps").exists() else ""
    assert str(path / "model.safetensors") not in maps


# ------------------------------------------------------------------ family, CLI, errors
def _family(tmp_path: Path) -> Path:
    base = make_checkpoint("llama", tmp_path / "base", seed=5)
    perturb_checkpoint(base, tmp_path / "sft", scale=0.02, seed=6)
    perturb_checkpoint(base, tmp_path / "dpo", scale=0.02, seed=7)
    toml = tmp_path / "family.toml"
    toml.write_text(
        'name = "tiny"\n[variants.base]\npath = "base"\n[variants.sft]\npath = "sft"\n'
        '[variants.dpo]\npath = "dpo"\n'
    )
    return toml


def test_family_api_matches_paths_api(tmp_path: Path) -> None:
    fam = load_family(_family(tmp_path), check=False)
    df = weight_diff(fam, "sft")
    ref = weight_diff_paths(tmp_path / "base", tmp_path / "sft")
    pd.testing.assert_frame_equal(df, ref)
    assert df.attrs["variant"] == "sft"
    cos = update_cosine(fam, "sft", "dpo")
    assert cos["cosine"].abs().max() < 0.2  # independent random nudges
    summary = summarize_weight_diff(df, "component")
    assert summary["delta_share"].sum() == pytest.approx(1.0)
    assert set(summary["component"]) == set(df["component"])
    with pytest.raises(WeightDiffError, match="three distinct"):
        update_cosine(fam, "sft", "sft")


def test_cli_writes_table_summary_and_cosine(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from steering.cli import app

    toml = _family(tmp_path)
    dirs = tmp_path / "dirs.safetensors"
    save_file(
        {"careful": torch.randn(64, generator=_gen(27)), "sae": torch.randn(3, 64, generator=_gen(28))},
        str(dirs),
    )
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "weights",
            "--family",
            str(toml),
            "--variant",
            "sft",
            "--out",
            str(out),
            "--against",
            "dpo",
            "--directions",
            str(dirs),
        ],
    )
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out / "weights_sft.parquet")
    assert {"align:careful", "align:sae/2", "align_null_p95", "overlap@16", "svd_method"} <= set(df.columns)
    summary = json.loads((out / "weights_sft.json").read_text())
    assert summary["svd_methods"] == {
        "full": int((df["svd_method"] == "full").sum()),
        "none (not a matrix)": int((df["svd_method"] != "full").sum()),
    }
    assert (out / "update_cosine_sft_vs_dpo.parquet").exists()
    assert "update_cosine" in summary

    bad = CliRunner().invoke(app, ["weights", "--family", str(toml), "--variant", "rl", "--out", str(out)])
    assert bad.exit_code == 2 and "no variant 'rl'" in bad.output


def test_errors_name_the_bad_value(tmp_path: Path) -> None:
    b, t = planted(tmp_path, {DOWN: torch.zeros(D, F)})
    with pytest.raises(WeightDiffError, match="d_model=48"):
        weight_diff_paths(b, t, directions={"wrong": torch.randn(10)})
    with pytest.raises(WeightDiffError, match="zero"):
        weight_diff_paths(b, t, directions=torch.zeros(2, D))
    with pytest.raises(WeightDiffError, match="ks must be positive"):
        weight_diff_paths(b, t, ks=(0,))
    with pytest.raises(WeightDiffError, match="tols"):
        weight_diff_paths(b, t, tols=(-1.0,))
    with pytest.raises(WeightDiffError, match="method"):
        SVDSettings(method="fast")
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"not unpickled")
    with pytest.raises(CheckpointError, match="never unpickles"):
        open_checkpoint(pickled)
    sharded = make_checkpoint("llama", tmp_path / "sh", seed=0, max_shard_size="20KB")
    next(sharded.glob("model-*.safetensors")).unlink()
    with pytest.raises(CheckpointError, match="not in the folder"):
        open_checkpoint(sharded)
    with pytest.raises(CheckpointError, match="at least two"):
        pair_checkpoints({"base": b})
    bad = tmp_path / "bad.safetensors"
    save_file({"x": torch.zeros(2, 2, 2)}, str(bad))
    with pytest.raises(WeightDiffError, match="Tensor\\[n, d_model\\]"):
        load_directions(bad)


def test_streaming_memory_stays_near_a_few_tensors(tmp_path: Path) -> None:
    """A fast version of benchmarks/weights_memory.py: the child's peak RSS above an
    interpreter that only imports the kit is a few tensors, well under two whole models."""
    import os
    import subprocess
    import sys

    if not Path("/proc/self/status").exists():
        pytest.skip("reads the child's VmHWM from /proc (Linux only)")
    g = _gen(30)
    n, size = 12, 2048  # two models = 403 MB
    names = [f"model.layers.{i}.self_attn.o_proj.weight" for i in range(n)]
    base = {name: 0.02 * torch.randn(size, size, generator=g) for name in names}
    write_ckpt(tmp_path / "base", base)
    write_ckpt(
        tmp_path / "tuned", {k: v + 1e-3 * torch.randn(size, size, generator=g) for k, v in base.items()}
    )
    del base
    (tmp_path / "family.toml").write_text(
        '[variants.base]\npath = "base"\n[variants.tuned]\npath = "tuned"\n'
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

    def peak_rss(code: str) -> int:
        # The child reports its own VmHWM: getrusage(RUSAGE_CHILDREN) would count this
        # (large) pytest process, whose memory the child shares until exec.
        report = "\nimport re; print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])"
        proc = subprocess.run([sys.executable, "-c", code + report], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return int(proc.stdout.strip().splitlines()[-1]) * 1024

    # the baseline imports what the weights command imports (probes loads its modules lazily)
    baseline = peak_rss(
        "import probes, probes.weights, probes.models.family, steering.cli, pandas, pyarrow.parquet"
    )
    run = peak_rss(
        "from steering.cli import app; app(['weights', '--family', "
        f"{str(tmp_path / 'family.toml')!r}, '--variant', 'tuned', '--out', {str(tmp_path / 'out')!r}], "
        "standalone_mode=False)"
    )
    tensor = 4 * size * size
    two_models = 2 * n * tensor
    assert (tmp_path / "out" / "weights_tuned.parquet").exists()
    print(
        f"peak RSS {run / 1e6:.0f} MB, import-only {baseline / 1e6:.0f} MB, two models {two_models / 1e6:.0f} MB"
    )
    # streaming adds a few tensors (three live 16.8 MB matrices + SVD / table overhead),
    # not a model: well under a third of the two models' 403 MB
    assert run - baseline < two_models / 3, (run - baseline) / 1e6


def test_a_shared_base_spectrum_cache_changes_no_value(tmp_path: Path) -> None:
    """Two variants of one base with one base_spectra dict: the same tables as without it, and
    the base's top triplets are stored once per matrix (the second variant reads them)."""
    W = base_tensors()[DOWN]
    U, S, Vh = torch.linalg.svd(W, full_matrices=False)
    U2 = U.clone()
    U2[:, [0, 5]] = U[:, [5, 0]]
    b, t1 = planted(tmp_path / "a", {DOWN: U2 @ torch.diag(S) @ Vh - W})
    _, t2 = planted(tmp_path / "c", {DOWN: 0.1 * orthonormal(D, 2, 20) @ orthonormal(F, 2, 21).T})
    cache: dict = {}
    with_cache = [weight_diff_paths(b, t, base_spectra=cache) for t in (t1, t2)]
    plain = [weight_diff_paths(b, t) for t in (t1, t2)]
    for got, want in zip(with_cache, plain, strict=True):
        pd.testing.assert_frame_equal(got, want)
    assert DOWN in cache and cache[DOWN].U.shape[1] == 16  # top q = max(ks, n_sv) columns only
    torch.testing.assert_close(cache[DOWN].S, S[:16])
