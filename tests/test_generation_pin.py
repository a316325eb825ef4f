"""Guards the transformers pin: 5.24 silently breaks TransformerBridge KV-cached generation.

If the `transformers<5.24` pin in pyproject.toml is ever lifted, these tests compare the
Bridge's cached generation with uncached generation and with plain `transformers`
generation on a left-padded batch; a silent cache regression makes them differ.
"""

from __future__ import annotations

from importlib.metadata import version

import pytest
import torch
import transformers
from packaging.version import Version

from probes import load_family
from probes.models.generation import generate

PROMPTS = ["a b c d =", "e =", "f g h i j k l =", "m n ="]


def test_pins_in_force() -> None:
    assert Version(version("transformers")) < Version("5.24"), (
        "transformers>=5.24 breaks Bridge cached generation"
    )
    assert Version(version("transformer-lens")).release[:2] == (3, 9)
    assert Version(torch.__version__.split("+")[0]) == Version("2.13.0")


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_bridge_cached_generation_matches_uncached_and_transformers(arch: str, tiny_dir) -> None:
    folder = tiny_dir(arch)
    fam = load_family({"base": str(folder)})
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    tok.padding_side = "left"
    enc = tok(PROMPTS, return_tensors="pt", padding=True)
    with torch.no_grad():
        ref = hf.generate(
            **enc, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id, eos_token_id=None
        )
    ref_new = ref[:, enc.input_ids.shape[1] :]
    with fam.open("base") as model:
        with torch.no_grad():
            cached = model.generate(
                enc.input_ids,
                attention_mask=enc.attention_mask,
                max_new_tokens=12,
                do_sample=False,
                stop_at_eos=False,
                use_past_kv_cache=True,
                return_type="tokens",
                verbose=False,
            )
            uncached = model.generate(
                enc.input_ids,
                attention_mask=enc.attention_mask,
                max_new_tokens=12,
                do_sample=False,
                stop_at_eos=False,
                use_past_kv_cache=False,
                return_type="tokens",
                verbose=False,
            )
        ours = generate(model, model.tokenizer, PROMPTS, max_new_tokens=12)
        ours_uncached = generate(model, model.tokenizer, PROMPTS, max_new_tokens=12, use_cache=False)
    assert torch.equal(cached[:, enc.input_ids.shape[1] :], uncached[:, enc.input_ids.shape[1] :])
    assert torch.equal(cached[:, enc.input_ids.shape[1] :], ref_new)
    # the kit's generate (left-padded, cut before the first eos) decodes exactly transformers'
    # continuations, cut the same way; none is empty, so the comparison says something
    eos = tok.eos_token_id
    cut = [row[: row.index(eos)] if eos in row else row for row in ref_new.tolist()]
    expected = [tok.decode(row, skip_special_tokens=True).strip() for row in cut]
    assert all(len(e.split()) >= 3 for e in expected), expected
    assert ours == expected, (ours, expected)
    assert ours_uncached == ours
