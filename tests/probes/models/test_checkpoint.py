"""Checkpoint streaming: headers read without tensor bytes, names -> roles, shards paired."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from probes.models.checkpoint import (
    CheckpointError,
    classify_param,
    open_checkpoint,
    pair_checkpoints,
    safetensors_header,
)


def _write(folder: Path, tensors: dict[str, torch.Tensor], name: str = "model.safetensors") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / name), metadata={"format": "pt"})
    return folder


def test_header_bytes_and_fields(tmp_path: Path) -> None:
    path = (
        _write(tmp_path / "c", {"a": torch.zeros(2, 3), "b": torch.ones(4, dtype=torch.bfloat16)})
        / "model.safetensors"
    )
    raw, header = safetensors_header(path)
    data = path.read_bytes()
    assert data[: len(raw)] == raw and int.from_bytes(raw[:8], "little") == len(raw) - 8
    assert header["__metadata__"] == {"format": "pt"}
    assert header["a"]["shape"] == [2, 3] and header["a"]["dtype"] == "F32"
    assert header["b"]["dtype"] == "BF16"
    # the data offsets cover the bytes after the header exactly
    assert sorted(tuple(v["data_offsets"]) for k, v in header.items() if k != "__metadata__") == [
        (0, 24),
        (24, 32),
    ]
    assert len(data) - len(raw) == 32


def test_header_errors(tmp_path: Path) -> None:
    (tmp_path / "short.safetensors").write_bytes(b"\x01\x02")
    with pytest.raises(CheckpointError, match="shorter than 8 bytes"):
        safetensors_header(tmp_path / "short.safetensors")
    (tmp_path / "bad.safetensors").write_bytes((5).to_bytes(8, "little") + b"{nope")
    with pytest.raises(CheckpointError, match="corrupt safetensors header"):
        safetensors_header(tmp_path / "bad.safetensors")


@pytest.mark.parametrize(
    ("name", "layer", "component", "transposed"),
    [
        ("model.layers.3.self_attn.q_proj.weight", 3, "q", False),
        ("model.layers.0.mlp.down_proj.weight", 0, "down", False),
        ("model.layers.1.post_attention_layernorm.weight", 1, "norm", False),
        ("transformer.h.2.attn.c_attn.weight", 2, "qkv", True),
        ("transformer.h.2.attn.c_attn.bias", 2, "qkv", False),
        ("gpt_neox.layers.4.attention.dense.weight", 4, "o", False),
        ("model.embed_tokens.weight", None, "embed", True),
        ("transformer.wpe.weight", None, "pos_embed", True),
        ("lm_head.weight", None, "unembed", False),
        ("model.norm.weight", None, "norm", False),
        ("rotary_emb.inv_freq", None, "unknown", False),
    ],
)
def test_classify_param(name: str, layer: int | None, component: str, transposed: bool) -> None:
    role = classify_param(name)
    assert (role.layer, role.component, role.transposed) == (layer, component, transposed)
    w = torch.arange(6.0).reshape(2, 3)
    assert role.orient(w).shape == ((3, 2) if transposed else (2, 3))


def test_sharded_checkpoint_is_indexed_by_its_index_file(tmp_path: Path) -> None:
    folder = tmp_path / "sharded"
    _write(folder, {"model.layers.0.mlp.up_proj.weight": torch.ones(4, 2)}, "a.safetensors")
    _write(folder, {"model.layers.1.mlp.up_proj.weight": torch.full((4, 2), 2.0)}, "b.safetensors")
    (folder / "model.safetensors.index.json").write_text(
        json.dumps(
            {
                "weight_map": {
                    "model.layers.0.mlp.up_proj.weight": "a.safetensors",
                    "model.layers.1.mlp.up_proj.weight": "b.safetensors",
                }
            }
        )
    )
    ck = open_checkpoint(folder)
    assert ck.files["model.layers.1.mlp.up_proj.weight"].name == "b.safetensors"
    assert ck.n_params == 16 and ck.dtypes["model.layers.0.mlp.up_proj.weight"] == "F32"
    assert torch.equal(ck.read("model.layers.1.mlp.up_proj.weight"), torch.full((4, 2), 2.0))
    with pytest.raises(CheckpointError, match="is not in checkpoint"):
        ck.read("nope")
    (folder / "b.safetensors").unlink()
    with pytest.raises(
        CheckpointError, match=r"names shard\(s\) \['b.safetensors'\] that are not in the folder"
    ):
        open_checkpoint(folder)


def test_pickles_are_refused_and_pairing_lists_what_does_not_pair(tmp_path: Path) -> None:
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="pickled weights .*never unpickles"):
        open_checkpoint(tmp_path / "pickled")
    a = _write(
        tmp_path / "a",
        {
            "model.embed_tokens.weight": torch.zeros(5, 2),
            "model.layers.0.mlp.up_proj.weight": torch.zeros(4, 2),
            "extra_a.weight": torch.zeros(1),
        },
    )
    b = _write(
        tmp_path / "b",
        {
            "model.embed_tokens.weight": torch.ones(5, 2),
            "model.layers.0.mlp.up_proj.weight": torch.zeros(3, 2),
        },
    )
    p = pair_checkpoints({"base": a, "sft": b})
    assert p.shared == ("model.embed_tokens.weight",)
    assert p.missing == {"sft": ("extra_a.weight",)} and p.extra == {"sft": ()}
    assert p.shape_mismatch == {"model.layers.0.mlp.up_proj.weight": {"base": (4, 2), "sft": (3, 2)}}
    assert any("tied to the token embedding" in n for n in p.notes)
    ((role, tensors),) = list(p.stream())
    assert role.component == "embed" and tensors["sft"].shape == (2, 5)  # [out, in]: [d_model, vocab]
    with pytest.raises(CheckpointError, match="at least two checkpoints"):
        pair_checkpoints({"base": a})
