"""Families: TOML and mapping specs, the checks on variants, loading and freeing a variant."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
import torch

from probes.errors import FamilyError, TaskError
from probes.models.family import layer_count, load_family, resolve_checkpoint
from tests.tiny import make_checkpoint, make_tokenizer, perturb_checkpoint


def _toml(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


def test_mapping_and_variant_order(tiny_dir) -> None:
    base = str(tiny_dir("llama"))
    fam = load_family({"sft": base, "base": base, "rl": {"path": base, "revision": "r1"}}, check=False)
    assert fam.variants == ["base", "sft", "rl"]  # base first, then in the given order
    assert fam.spec("rl").revision == "r1" and fam.revision("rl") == "r1"
    assert fam.revision("base").startswith("local:") and fam.revision("base") == fam.revision("sft")
    assert fam.layer_count() == 2 and fam.config("base")["hidden_size"] == 64
    with pytest.raises(
        FamilyError, match=r"no variant 'stf'.*Variants: \['base', 'sft', 'rl'\]. Did you mean 'sft'\?"
    ):
        fam.spec("stf")


def test_layer_count_reads_both_spellings() -> None:
    assert layer_count({"num_hidden_layers": 4, "n_layer": 9}) == 4
    assert layer_count({"n_layer": 12}) == 12
    assert layer_count({"num_hidden_layers": None}) == 0 and layer_count({}) == 0


def test_family_file_and_hub_revision_spec(tiny_dir, tmp_path: Path) -> None:
    base = tiny_dir("llama")
    perturb_checkpoint(base, tmp_path / "sft")
    (tmp_path / "family.toml").write_text(
        textwrap.dedent(f"""
        name = "toy"
        [variants.base]
        path = "{base}"
        [variants.sft]
        path = "sft"
        task = "t"
        [tasks.t]
        path = "t.jsonl"
        scorer = "gsm8k"
        [battery]
        max_dev = 4
    """)
    )
    (tmp_path / "t.jsonl").write_text(
        json.dumps({"id": "q", "prompt": "a b =", "answer": "x y #### 42"}) + "\n"
    )
    fam = load_family(tmp_path)
    assert fam.variants == ["base", "sft"] and fam.name == "toy" and fam.root == tmp_path.resolve()
    assert fam.specs["sft"].source == str((tmp_path / "sft").resolve())  # relative to the file's folder
    assert fam.settings == {"battery": {"max_dev": 4}}
    t = fam.load_task(fam.task_name("sft") or "")
    assert t.answers == ("42",) and t.examples[0].trace == "x y"
    with pytest.raises(FamilyError, match=r"declares no task 'u'. Declared: \['t'\]"):
        fam.load_task("u")


def test_toml_errors_name_the_key(tiny_dir, tmp_path: Path) -> None:
    base = tiny_dir("llama")
    bad = _toml(tmp_path / "bad.toml", '[variants.base]\npath = "x"\nrevsion = "main"\n')
    with pytest.raises(
        FamilyError,
        match=r"Unknown key\(s\) \['revsion'\] in variant 'base'.*Did you mean 'revision' for 'revsion'\?",
    ):
        load_family(bad)
    top = _toml(tmp_path / "top.toml", f'nmae = "x"\n[variants.base]\npath = "{base}"\n')
    with pytest.raises(
        FamilyError, match=r"Unknown key\(s\) \['nmae'\] in .*top.toml.*Did you mean 'name' for 'nmae'\?"
    ):
        load_family(top)
    nopath = _toml(tmp_path / "nopath.toml", '[variants.base]\nrevision = "main"\n')
    with pytest.raises(FamilyError, match="Variant 'base' in .* has no 'path'"):
        load_family(nopath)
    notask = _toml(tmp_path / "notask.toml", f'[variants.base]\npath = "{base}"\ntask = "gsm"\n')
    with pytest.raises(FamilyError, match=r"names task 'gsm', which the \[tasks\] table .* Declared: \[\]"):
        load_family(notask)
    broken = _toml(tmp_path / "broken.toml", "[variants.base\n")
    with pytest.raises(FamilyError, match="is not valid TOML"):
        load_family(broken)
    with pytest.raises(FamilyError, match="names no variants"):
        load_family(_toml(tmp_path / "empty.toml", 'name = "e"\n'))
    with pytest.raises(FamilyError, match=r"must be a path/hub id or a table with 'path', got int"):
        load_family({"base": 3})  # type: ignore[dict-item]
    # a task table's unknown setting is named when the task is loaded
    (tmp_path / "t.jsonl").write_text(json.dumps({"prompt": "a", "answer": "b"}) + "\n")
    fam = load_family(
        _toml(
            tmp_path / "ok.toml",
            f"""
        [variants.base]
        path = "{base}"
        [tasks.t]
        path = "t.jsonl"
        scorre = "exact"
    """,
        ),
        check=False,
    )
    with pytest.raises(
        TaskError, match=r"Unknown setting\(s\) \['scorre'\].*Did you mean 'scorer' for 'scorre'\?"
    ):
        fam.load_task("t")


def test_variants_must_share_the_architecture_and_the_vocabulary(tiny_dir, tmp_path: Path) -> None:
    base = tiny_dir("llama")
    with pytest.raises(FamilyError, match="model_type"):
        load_family({"base": str(base), "sft": str(tiny_dir("qwen2"))})
    small = make_checkpoint("llama", tmp_path / "small", d_model=32)
    with pytest.raises(FamilyError, match="hidden_size: base=64 vs sft=32"):
        load_family({"base": str(base), "sft": str(small)})
    # same config, a tokenizer with one extra token: the message names it
    odd = tmp_path / "oddtok"
    make_checkpoint("llama", odd, tokenizer=make_tokenizer(extra=["zzz"]))
    cfg = json.loads((odd / "config.json").read_text())
    cfg["vocab_size"] = json.loads((base / "config.json").read_text())["vocab_size"]
    (odd / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(
        FamilyError,
        match=r"vocabulary incompatible with 'base'.*only in base: \[\]; only in sft and not added tokens: \['zzz'\]",
    ):
        load_family({"base": str(base), "sft": str(odd)})
    load_family({"base": str(base), "sft": str(odd)}, check=False)  # check=False skips it
    # a chat variant that only ADDS special tokens (and a larger embedding) is a fine-tune of the base
    chat_tok = make_tokenizer()
    chat_tok.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>"]})
    chat = make_checkpoint("llama", tmp_path / "chat", tokenizer=chat_tok)
    assert json.loads((chat / "config.json").read_text())["vocab_size"] == cfg["vocab_size"] + 2
    fam = load_family({"base": str(base), "sft": str(chat)})
    assert fam.tokenizer("sft").convert_tokens_to_ids("<|user|>") == cfg["vocab_size"]
    # ... but not the other way round: the base's tokens must all be there, at their ids
    with pytest.raises(FamilyError, match=r"only in base: \['<\|assistant\|>', '<\|user\|>'\]"):
        load_family({"base": str(chat), "sft": str(base)})
    with pytest.raises(FamilyError, match="no variant named 'base'"):
        load_family({"sft": str(base)})


def test_checkpoint_resolution_errors_and_no_environment_writes(tmp_path: Path) -> None:
    before = dict(os.environ)
    with pytest.raises(FamilyError, match="HF_HUB_OFFLINE"):
        load_family({"base": "nobody/not-a-model"})
    assert dict(os.environ) == before  # the kit reads the environment, never writes it
    (tmp_path / "noconfig").mkdir()
    with pytest.raises(FamilyError, match="has no config.json"):
        resolve_checkpoint(str(tmp_path / "noconfig"))
    with pytest.raises(FamilyError, match="looks like a local path but does not exist"):
        resolve_checkpoint("./not/here")


def test_open_frees_weights_on_exit(tiny_dir) -> None:
    """One variant in memory at a time: every weight is released when the block exits."""
    import weakref

    fam = load_family({"base": str(tiny_dir("llama"))}, check=False)
    with fam.open("base") as model:
        refs = [weakref.ref(t) for t in [*model.parameters(), *model.buffers()]]
        assert len(refs) > 5 and all(r() is not None for r in refs)
        with torch.no_grad():  # (a grad graph would hold the weights, as it would anywhere)
            logits = model(torch.tensor([[1, 5, 6]]))
        assert torch.isfinite(logits).all()
    assert [r() for r in refs if r() is not None] == []
    with pytest.raises(AttributeError):
        model(torch.tensor([[1, 5, 6]]))  # a model kept past the block fails loudly, not silently
