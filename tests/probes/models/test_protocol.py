"""Prompt protocols: rendering (template, system, exemplars, chat template, prefill), the BOS
policy, token roles and question positions, stop strings and the budget count in generation,
and the family file's ``[variants.NAME.prompt]`` tables (errors that name the variant and the fix)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from tokenizers import processors

from probes.data.activations import collect_activations
from probes.data.tasks import Task
from probes.errors import FamilyError, TaskError
from probes.models.family import load_family
from probes.models.generation import generate
from probes.models.positions import Last, Question, QuestionEnd
from probes.models.protocol import PromptProtocol, protocol_of
from tests.tiny import CHAT_TEMPLATE, CHAT_TOKENS, make_chat_tokenizer, make_checkpoint, make_tokenizer

QUESTIONS = ["a + b = ?", "c d e = ?", "f = ?"]


@pytest.fixture(scope="module")
def chat_family(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """base: a plain tokenizer; sft: the same vocabulary plus chat markers and a chat template
    (both embeddings sized for the chat vocabulary, as real chat fine-tunes pad them)."""
    root = tmp_path_factory.mktemp("chat")
    size = len(make_chat_tokenizer())
    make_checkpoint("llama", root / "base", seed=0, tokenizer=make_tokenizer(), vocab_size=size)
    make_checkpoint("llama", root / "sft", seed=1, tokenizer=make_chat_tokenizer())
    make_checkpoint("llama", root / "nochat", seed=2, tokenizer=make_tokenizer(), vocab_size=size)
    return root


def _family_file(root: Path, sft_prompt: str, extra: str = "") -> Path:
    path = root / "family.toml"
    path.write_text(
        f'name = "chat"\n[variants.base]\npath = "base"\n[variants.sft]\npath = "sft"\n'
        f"[variants.sft.prompt]\n{sft_prompt}\n{extra}"
    )
    return path


def test_plain_rendering_system_exemplars_and_prefill() -> None:
    p = PromptProtocol(
        "base",
        template="Q: {question} A:",
        system="Solve.",
        prefill=" #",
        shots=1,
        exemplars=(("1 + 1", "2"),),
    )
    r = p.rendered("2 + 2")
    assert r.text == "Solve.\n\nQ: 1 + 1 A: 2\n\nQ: 2 + 2 A: #" == p.render("2 + 2")
    assert r.text[slice(*r.question)] == "2 + 2" and r.question[0] == r.text.rindex(
        "2 + 2"
    )  # not the exemplar
    assert r.text[slice(*r.prefill)] == " #" and r.prefill[1] == len(r.text)
    assert PromptProtocol().render("N 1 0 =") == "N 1 0 =" and PromptProtocol().plain
    with pytest.raises(
        FamilyError, match=r"template 'Q:' in the prompt protocol of variant 'x' must contain \{question\}"
    ):
        PromptProtocol("x", template="Q:")
    with pytest.raises(FamilyError, match="bos = 'yes'.*not one of 'auto', true, false"):
        PromptProtocol("x", bos="yes")
    with pytest.raises(FamilyError, match=r"\['prefill'\] must be text.*got \{'prefill': 3\}"):
        PromptProtocol.from_table("x", {"prefill": 3})
    with pytest.raises(
        FamilyError, match=r"shots = 'two' in the prompt protocol of variant 'x' must be an integer"
    ):
        PromptProtocol.from_table("x", {"shots": "two"})


def test_chat_template_saved_with_the_tokenizer_renders_system_shots_and_prefill(tmp_path: Path) -> None:
    make_chat_tokenizer().save_pretrained(tmp_path)
    tok = transformers.AutoTokenizer.from_pretrained(tmp_path)  # the template came back from disk
    p = PromptProtocol(
        "sft", chat_template=True, system="be careful", prefill="#", shots=1, exemplars=(("b = ?", "c"),)
    ).with_tokenizer(tok)
    want = (
        "<bos><|system|>\nbe careful\n<|user|>\nb = ?\n<|assistant|>\nc\n<|end|>\n"
        "<|user|>\na + b = ?\n<|assistant|>\n#"
    )
    assert p.render("a + b = ?") == want
    enc = p.encode(["a + b = ?"])
    toks, roles = enc.tokens[0], enc.roles[0]
    assert toks[:2] == ("<bos>", "<|system|>") and toks.count("<bos>") == 1  # the template's BOS, once
    assert [t for t, r in zip(toks, roles, strict=True) if r == "question"] == ["a", "+", "b", "=", "?"]
    assert [t for t, r in zip(toks, roles, strict=True) if r == "prefill"] == ["#"]
    assert toks[5:8] == ("b", "=", "?") and roles[5:8] == ("template",) * 3  # the exemplar is template
    q = list(range(len(toks) - 7, len(toks) - 2))  # a + b = ? sit before "<|assistant|>" "#"
    assert QuestionEnd().resolve(toks, roles=roles) == [q[-1]] and Question().resolve(toks, roles=roles) == q
    assert Last().resolve(toks) == [len(toks) - 1]  # the prefill: the token the answer is predicted from


@pytest.mark.parametrize(
    ("template", "bos", "n_bos"),
    [
        (CHAT_TEMPLATE, "auto", 1),  # the template writes it: never a second one
        (CHAT_TEMPLATE, True, 1),
        (CHAT_TEMPLATE.replace("{{ bos_token }}", ""), "auto", 1),  # the tokenizer adds one to plain text
        (CHAT_TEMPLATE.replace("{{ bos_token }}", ""), False, 0),
        (CHAT_TEMPLATE.replace("{{ bos_token }}", ""), True, 1),
    ],
)
def test_bos_policy_on_chat_templates(template: str, bos: str | bool, n_bos: int) -> None:
    p = PromptProtocol("sft", chat_template=True, bos=bos).with_tokenizer(make_chat_tokenizer(template))
    toks = p.encode(["a = ?"]).tokens[0]
    assert toks.count("<bos>") == n_bos and (n_bos == 0 or toks[0] == "<bos>")


def test_bos_policy_follows_a_tokenizer_that_adds_none() -> None:
    tok = make_tokenizer()
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B")
    assert tok("a")["input_ids"] == [tok.convert_tokens_to_ids("a")]  # Qwen-style: no BOS by default
    auto = PromptProtocol("base", template="{question} =").with_tokenizer(tok)
    assert auto.encode(["a"]).tokens[0] == ("a", "=")
    forced = PromptProtocol("base", template="{question} =", bos=True).with_tokenizer(tok)
    assert forced.encode(["a"]).tokens[0] == ("<bos>", "a", "=")
    # a rendered prompt over the context is named, with its variant
    with pytest.raises(
        TaskError,
        match=r"Prompt 'q1' of variant 'base', rendered, is 2 tokens long, over the model's context of 1",
    ):
        auto.batch(["a"], ids=["q1"], max_length=1)
    with pytest.raises(
        TaskError, match=r"encode takes a list of questions, got one string 'a'; pass \[question\]"
    ):
        auto.encode("a")
    # the plain protocol tokenises exactly as the kit always did
    assert PromptProtocol().with_tokenizer(make_tokenizer()).encode(["a b"]).ids[0] == tuple(
        make_tokenizer()("a b")["input_ids"]
    )


@pytest.fixture(scope="module")
def hf(tiny_dir):
    folder = tiny_dir("llama")
    return transformers.AutoModelForCausalLM.from_pretrained(folder).eval(), make_tokenizer(), folder


def test_prefill_is_part_of_the_prompt_the_model_continues(hf) -> None:
    model, tok, _ = hf
    p = PromptProtocol("base", template="{question} =", prefill=" # a").with_tokenizer(tok)
    got = generate(model, tok, ["a b", "c"], max_new_tokens=6, protocol=p)
    assert got == generate(model, tok, ["a b = # a", "c = # a"], max_new_tokens=6)
    assert any(got)  # real continuations


def test_stop_strings_cut_each_row_and_the_budget_rows_are_counted(hf, tiny_dir) -> None:
    model, tok, folder = hf
    prompts = ["a b c =", "d e =", "f ="]
    raw = generate(model, tok, prompts, max_new_tokens=8, stop_ids=())
    words = [r.split() for r in raw]
    assert all(len(w) == 8 for w in words)  # no EOS in 8 tokens: every row ran to the budget
    one = words[0][2]  # a single-token stop string: it also ends generation (a stop id)
    two = " ".join(words[1][3:5])  # two tokens: cut on the decoded text
    p = PromptProtocol("x", stop=(one, two)).with_tokenizer(tok)
    assert p.stop_ids() == (tok.eos_token_id, tok.convert_tokens_to_ids(one)) and p.text_stops() == (two,)

    def want(w: list[str]) -> str:
        text = " ".join(w)
        cuts = [k for k in (text.find(one) if one in w else -1, text.find(two)) if k >= 0]
        return text[: min(cuts)].strip() if cuts else text

    expected = [want(w) for w in words]
    assert expected[0] == " ".join(words[0][: words[0].index(one)]) and expected[1] != raw[1]
    fam = load_family({"base": str(folder)}, check=False)
    with fam.open("base") as bridge:
        for m in (model, bridge):
            finish: list[str] = []
            got = generate(m, tok, prompts, max_new_tokens=8, protocol=p, finish=finish)
            assert got == expected
            assert finish == ["stop" if e != r else "budget" for e, r in zip(expected, raw, strict=True)]
            assert finish.count("budget") == sum(e == r for e, r in zip(expected, raw, strict=True))


def test_eos_ids_of_the_generation_config_end_completions(chat_family: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(chat_family / "base", tmp_path / "base")
    shutil.copytree(chat_family / "sft", tmp_path / "sft")
    (tmp_path / "sft" / "generation_config.json").write_text(json.dumps({"eos_token_id": [2, 60]}))
    fam = load_family(_family_file(tmp_path, "chat_template = true"))
    p = fam.protocol("sft")
    assert p is not None and p.eos_ids == (2, 60) and 60 in p.stop_ids()
    assert fam.tokenizer("sft").convert_ids_to_tokens(60) == "<|end|>"


def test_family_prompt_tables_revision_and_open(chat_family: Path) -> None:
    fam = load_family(
        _family_file(chat_family, 'chat_template = true\nsystem = "be careful"\nstop = ["= ="]')
    )
    assert fam.protocol("base") is None  # no table: prompts as written
    p = fam.protocol("sft")
    assert p is not None and p.chat_template and p.system == "be careful" and p.stop == ("= =",)
    assert p.tokenizer.chat_template == CHAT_TEMPLATE and p.eos_ids == (2,)
    assert fam.revision("base").startswith("local:") and "+prompt:" not in fam.revision("base")
    assert fam.revision("sft") == fam.revision("sft").split("+")[0] + "+prompt:" + p.digest()
    other = load_family(_family_file(chat_family, "chat_template = true"))
    assert other.revision("sft").split("+")[0] == fam.revision("sft").split("+")[0]
    assert other.revision("sft") != fam.revision("sft")  # another protocol: other caches
    with fam.open("sft") as model:
        assert protocol_of(model) is p
        # the model is asked through its protocol, with the variant's own tokenizer (the one
        # passed is ignored): the same as the rendered text sent as written
        got = generate(model, fam.tokenizer("base"), QUESTIONS, max_new_tokens=5)
        rendered = [p.render(q) for q in QUESTIONS]
        as_written = PromptProtocol("sft", bos=False).with_tokenizer(p.tokenizer)
        assert got == [
            c.split("= =")[0].strip()
            for c in generate(model, p.tokenizer, rendered, max_new_tokens=5, protocol=as_written)
        ]
    assert protocol_of(model) is None


def test_cot_decoding_branches_from_the_rendered_prompt(chat_family: Path) -> None:
    from probes.decoding.cot_decoding import cot_decode

    fam = load_family(_family_file(chat_family, "chat_template = true"))
    p = fam.protocol("sft")
    assert p is not None
    task = Task.from_records("t", [{"id": "a", "prompt": QUESTIONS[0], "answer": "1"}], max_new_tokens=3)
    with fam.open("sft") as model:
        paths = cot_decode(model, fam.tokenizer("base"), task, variant="sft", k=2, answer_marker=None)
        with torch.no_grad():
            logits = model(torch.tensor([p.encode([QUESTIONS[0]]).ids[0]]))[0, -1]
    top = torch.topk(torch.softmax(logits.float(), -1), 2)
    want = p.tokenizer.convert_ids_to_tokens(top.indices.tolist())
    assert list(paths.sort_values("branch").first_token) == want  # branched after "<|assistant|>"


def test_prompt_table_errors_name_the_variant_and_the_fix(chat_family: Path) -> None:
    with pytest.raises(
        FamilyError, match=r"Unknown key\(s\) \['chat_templte'\].*Did you mean 'chat_template'"
    ):
        load_family(_family_file(chat_family, "chat_templte = true"))
    with pytest.raises(FamilyError, match="must contain \\{question\\} exactly once"):
        load_family(_family_file(chat_family, 'template = "no slot"'))
    # a chat template the tokenizer lacks: named at load, before any model is opened
    path = (
        _family_file(chat_family, "chat_template = true")
        .read_text()
        .replace('path = "sft"', 'path = "nochat"')
    )
    (chat_family / "family.toml").write_text(path)
    with pytest.raises(
        FamilyError,
        match=r"Variant 'sft' asks for chat_template = true, but its tokenizer .* has no chat template.*chat_template = false",
    ):
        load_family(chat_family / "family.toml")
    with pytest.raises(FamilyError, match=r"shots = 2 but names no task"):
        load_family(_family_file(chat_family, "shots = 2"))


def test_shots_come_from_the_train_split_of_the_task(chat_family: Path) -> None:
    recs = [
        {"id": f"q{i}", "question": f"{i} + {i} = ?", "answer": f"{i} + {i} #### {2 * i}", "split": s}
        for i, s in enumerate(["test", "train", "dev", "train", "train"])
    ]
    (chat_family / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    tasks = '[tasks.qa]\npath = "qa.jsonl"\nscorer = "gsm8k"\nprompt_field = "question"\n'
    fam = load_family(
        _family_file(
            chat_family, 'template = "{question} =:"\nshots = 2\nshot_answer = "{trace} so {answer}"', tasks
        )
    )
    p = fam.protocol("sft")
    assert p is not None and p.exemplars == (("1 + 1 = ?", "1 + 1 so 2"), ("3 + 3 = ?", "3 + 3 so 6"))
    assert p.render("0 + 0 = ?") == "1 + 1 = ? =: 1 + 1 so 2\n\n3 + 3 = ? =: 3 + 3 so 6\n\n0 + 0 = ? =:"
    with pytest.raises(FamilyError, match=r"shots = 4 from task 'qa', whose train split has 3"):
        load_family(_family_file(chat_family, "shots = 4", tasks))


def _block_outputs(folder: Path, ids: tuple[int, ...]) -> list[torch.Tensor]:
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    got: list[torch.Tensor] = []
    hooks = [
        b.register_forward_hook(lambda m, i, o: got.append(o[0] if isinstance(o, tuple) else o))
        for b in model.model.layers
    ]
    with torch.no_grad():
        model(torch.tensor([ids]))
    for h in hooks:
        h.remove()
    return [g[0] if g.dim() == 3 else g for g in got]


def test_collection_reads_each_variant_through_its_protocol(chat_family: Path, tmp_path: Path) -> None:
    fam = load_family(_family_file(chat_family, "chat_template = true"))
    task = Task.from_prompts(QUESTIONS)
    acts = collect_activations(
        fam, task, "resid_post:0-1", ["last", "question_end"], out=tmp_path / "a", progress=False
    )
    assert acts.meta["protocols"]["base"] == "as written" and acts.meta["prompts"] == "variant"
    p = fam.protocol("sft")
    assert p is not None
    for i, q in enumerate(QUESTIONS):
        sft_ids = p.encode([q]).ids[0]
        ref = _block_outputs(chat_family / "sft", sft_ids)
        torch.testing.assert_close(acts.get("sft", "resid_post.0", "last")[i], ref[0][-1], atol=1e-5, rtol=0)
        # question_end: "?" sits before "\n<|assistant|>\n" (one token, the marker)
        torch.testing.assert_close(
            acts.get("sft", "resid_post.1", "question_end")[i], ref[1][-2], atol=1e-5, rtol=0
        )
        base_ids = tuple(make_tokenizer()(q)["input_ids"])
        ref_b = _block_outputs(chat_family / "base", base_ids)
        torch.testing.assert_close(
            acts.get("base", "resid_post.1", "last")[i], ref_b[1][-1], atol=1e-5, rtol=0
        )
        torch.testing.assert_close(
            acts.get("base", "resid_post.1", "question_end")[i], ref_b[1][-1], atol=1e-5, rtol=0
        )
    # prompts="base": every variant reads the base's tokens (aligned rows)
    aligned = collect_activations(
        fam, task, "resid_post.1", "all", out=tmp_path / "b", prompts="base", progress=False
    )
    rows_b, own_b = aligned.get_tokens("base", "resid_post.1", "all")
    rows_s, own_s = aligned.get_tokens("sft", "resid_post.1", "all")
    assert torch.equal(own_b, own_s) and len(own_b) == sum(
        len(make_tokenizer()(q)["input_ids"]) for q in QUESTIONS
    )
    ref_s = _block_outputs(chat_family / "sft", tuple(make_tokenizer()(QUESTIONS[0])["input_ids"]))
    torch.testing.assert_close(rows_s[own_s == 0], ref_s[1], atol=1e-5, rtol=0)


def test_hub_ids_map_to_a_local_checkpoints_folder(chat_family: Path, tmp_path: Path, monkeypatch) -> None:
    import shutil

    shutil.copytree(chat_family / "base", tmp_path / "hub" / "org" / "tiny-base")
    (tmp_path / "fam.toml").write_text('name = "x"\n[variants.base]\npath = "org/tiny-base"\n')
    with pytest.raises(FamilyError, match=r"checkpoints=ROOT"):  # offline, not cached: the fix is named
        load_family(tmp_path / "fam.toml")
    fam = load_family(tmp_path / "fam.toml", checkpoints=tmp_path / "hub")
    assert fam.local_path("base") == (tmp_path / "hub" / "org" / "tiny-base").resolve()
    monkeypatch.setenv("ELICIT_CHECKPOINTS", str(tmp_path / "hub"))
    assert load_family(tmp_path / "fam.toml").local_path("base") == fam.local_path("base")
    with pytest.raises(FamilyError, match=r"checkpoints='/nope' .* is not a folder"):
        load_family(tmp_path / "fam.toml", checkpoints="/nope")
    assert CHAT_TOKENS[1] == "<|user|>"
