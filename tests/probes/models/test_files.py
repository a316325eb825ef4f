"""Weight files: the safetensors header, and a content digest that tracks content, not mtimes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from probes.errors import CheckpointError
from probes.models.files import content_digest, safetensors_header


def _write(folder: Path, w: torch.Tensor, metadata: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"w": w, "b": torch.ones(7)}, str(folder / "model.safetensors"), metadata=metadata)
    return folder


def test_header_reads_no_tensor_bytes_and_rejects_junk(tmp_path: Path) -> None:
    _write(tmp_path / "a", torch.zeros(300, 300))
    raw, header = safetensors_header(tmp_path / "a" / "model.safetensors")
    assert header["w"]["shape"] == [300, 300] and len(raw) < 1000
    (tmp_path / "junk.safetensors").write_bytes(b"abc")
    with pytest.raises(CheckpointError, match="shorter than 8 bytes"):
        safetensors_header(tmp_path / "junk.safetensors")


def test_digest_follows_content(tmp_path: Path) -> None:
    w = torch.randn(512, 512, generator=torch.Generator().manual_seed(0))
    a = content_digest(_write(tmp_path / "a", w))
    # a copy, a touched file and reordered metadata keep the digest
    shutil.copytree(tmp_path / "a", tmp_path / "copy")
    assert content_digest(tmp_path / "copy") == a
    os.utime(tmp_path / "a" / "model.safetensors", (1, 1))
    assert content_digest(tmp_path / "a") == a
    assert content_digest(_write(tmp_path / "m1", w, {"x": "1", "format": "pt"})) == content_digest(
        _write(tmp_path / "m2", w, {"format": "pt", "x": "1"})
    )
    # a "retrained" tensor of the same shape and dtype (same size, same header) changes it
    assert content_digest(_write(tmp_path / "b", w + 1e-3)) != a
    # a change in one value only inside a sampled block changes it too
    t = load_file(str(tmp_path / "a" / "model.safetensors"))
    t["w"][0, 0] += 1.0
    (tmp_path / "c").mkdir()
    save_file(t, str(tmp_path / "c" / "model.safetensors"))
    assert content_digest(tmp_path / "c") != a
