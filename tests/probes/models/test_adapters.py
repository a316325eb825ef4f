"""PEFT adapter variants: merged onto the base exactly as peft merges them, cached by content,
read like any checkpoint (activations equal the unmerged PeftModel's)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from probes.errors import FamilyError
from probes.models.adapters import is_adapter, merged_checkpoint


def _lora(base: Path, out: Path, seed: int = 0) -> Path:
    """A LoRA adapter on q/v projections with random (nonzero) B, saved the way peft saves it."""
    from peft import LoraConfig, get_peft_model

    model = transformers.AutoModelForCausalLM.from_pretrained(str(base))
    peft_model = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    peft_model.save_pretrained(str(out))
    return out


def test_an_adapter_variant_is_the_peft_merge(tiny_dir, tmp_path: Path, monkeypatch) -> None:
    from peft import PeftModel

    from probes import collect_activations, load_family

    monkeypatch.setenv("ELICIT_CACHE", str(tmp_path / "cache"))
    base = Path(tiny_dir("llama"))
    adapter = _lora(base, tmp_path / "lora")
    assert is_adapter(adapter) and not is_adapter(base)
    fam = load_family({"base": str(base), "lora": str(adapter)})
    merged = fam.local_path("lora")
    assert merged.parent == tmp_path / "cache" / "merged" and (merged / "config.json").exists()
    # the merged weights are peft's merge_and_unload, bit for bit
    ref_model = PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32), str(adapter)
    )
    want = ref_model.merge_and_unload().state_dict()
    got = transformers.AutoModelForCausalLM.from_pretrained(str(merged)).state_dict()
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    changed = [k for k in want if "q_proj" in k and not torch.equal(want[k], _base_state(base)[k])]
    assert changed  # the adapter moved the q projections
    # built once: a second family reuses the folder
    stamp = (merged / "model.safetensors").stat().st_mtime_ns
    assert load_family({"base": str(base), "lora": str(adapter)}).local_path("lora") == merged
    assert (merged / "model.safetensors").stat().st_mtime_ns == stamp
    # activations of the adapter variant equal the unmerged PeftModel's forward
    fresh = PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(str(base)), str(adapter)
    )
    tok = transformers.AutoTokenizer.from_pretrained(str(base))
    ids = tok(["a b c = 1"], return_tensors="pt").input_ids
    with torch.no_grad():
        hidden = fresh(ids, output_hidden_states=True).hidden_states[1][0, -1]
    acts = collect_activations(fam, ["a b c = 1"], "resid_post:0", "last", variants=["lora"], progress=False)
    torch.testing.assert_close(acts.get("lora", "resid_post.0", "last")[0], hidden, atol=1e-5, rtol=1e-5)
    # a retrained adapter is a new folder, never the stale merge
    _lora(base, adapter, seed=1)
    assert load_family({"base": str(base), "lora": str(adapter)}).local_path("lora") != merged


def test_an_adapter_needs_a_full_base(tiny_dir, tmp_path: Path, monkeypatch) -> None:
    from probes import load_family

    monkeypatch.setenv("ELICIT_CACHE", str(tmp_path / "cache"))
    adapter = _lora(Path(tiny_dir("llama")), tmp_path / "lora")
    with pytest.raises(FamilyError, match="PEFT adapter.*full-checkpoint `base`"):
        load_family({"base": str(adapter)}).local_path("base")
    with pytest.raises(FamilyError, match="Could not load adapter"):
        merged_checkpoint(adapter, tiny_dir("gpt2"), cache=tmp_path / "c2")


def _base_state(base: Path) -> dict[str, torch.Tensor]:
    return transformers.AutoModelForCausalLM.from_pretrained(str(base)).state_dict()
