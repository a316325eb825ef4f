"""Sweep configs: unknown keys named with the fix, relative paths resolved, digests stable."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from probes import ElicitError
from steering.sweep import SweepConfig, VectorSpec

MINIMAL = {"family": "x", "task": "t", "layers": [0], "alphas": [1.0], "vectors": [{"name": "v"}]}


def test_unknown_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "s.toml").write_text(
        'family = "x"\ntask = "t"\nlayers = [0]\nalphas = [1.0]\nalhpas = [2]\n[[vectors]]\nname = "v"\n'
    )
    with pytest.raises(
        ElicitError, match=r"Unknown key\(s\) \['alhpas'\].*Did you mean 'alphas' for 'alhpas'"
    ):
        SweepConfig.from_toml(tmp_path / "s.toml")


def test_unknown_vector_key_and_missing_name() -> None:
    with pytest.raises(ElicitError, match=r"\['contrats'\] in vectors\[0\] of config.*'contrast'"):
        SweepConfig.from_dict({**MINIMAL, "vectors": [{"name": "v", "contrats": ["a", "b"]}]})
    with pytest.raises(ElicitError, match=r"vectors\[0\] of config needs a name"):
        SweepConfig.from_dict({**MINIMAL, "vectors": [{"variant": "base"}]})


def test_bad_values_are_errors() -> None:
    with pytest.raises(ElicitError, match="Unknown steering position .everywhere.. Valid: .*generated"):
        SweepConfig.from_dict({**MINIMAL, "positions": ["everywhere"]})
    with pytest.raises(ElicitError, match=r"lacks required key\(s\) \['alphas'\]"):
        SweepConfig.from_dict({k: v for k, v in MINIMAL.items() if k != "alphas"})
    with pytest.raises(ElicitError, match="at least one"):
        SweepConfig.from_dict({**MINIMAL, "vectors": []})
    with pytest.raises(ElicitError, match="chunk_size and batch_size must be >= 1"):
        SweepConfig.from_dict({**MINIMAL, "chunk_size": 0})
    with pytest.raises(ElicitError, match="No sweep config at"):
        SweepConfig.from_toml("/nonexistent/sweep.toml")


def test_lists_become_tuples_and_relative_paths_resolve(tmp_path: Path) -> None:
    (tmp_path / "fam").mkdir()
    (tmp_path / "s.toml").write_text(
        textwrap.dedent("""
        family = "fam"
        task = "t"
        layers = [0, 2]
        alphas = [0.0, 1.5]
        out = "rows/sweep.jsonl"
        [[vectors]]
        name = "v"
        contrast = ["a", "b"]
    """)
    )
    cfg = SweepConfig.from_toml(tmp_path / "s.toml")
    assert cfg.layers == (0, 2) and cfg.alphas == (0.0, 1.5)
    assert cfg.vectors == (VectorSpec(name="v", contrast=("a", "b")),)
    assert cfg.out == str(tmp_path / "rows/sweep.jsonl") and cfg.family == str(tmp_path / "fam")


def test_digest_ignores_output_and_batch_size_only() -> None:
    cfg = SweepConfig.from_dict(MINIMAL)
    assert cfg.digest() == dataclasses.replace(cfg, out="elsewhere.jsonl", batch_size=7).digest()
    assert cfg.digest() != dataclasses.replace(cfg, alphas=(2.0,)).digest()
    assert cfg.digest() != dataclasses.replace(cfg, chunk_size=5).digest()
