"""Tasks: the scorers on hand-written completions, JSONL round trip, filters, hash stability."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from probes.data.tasks import SCORERS, Example, Score, Task, parse_gsm8k_answer, register_scorer
from probes.errors import TaskError

RECS = [
    {"id": "a", "prompt": "1 + 1 =", "answer": "2", "label": "careful", "split": "train", "meta": {"k": 1}},
    {"id": "b", "prompt": "2 + 2 =", "answer": "4", "label": "direct", "split": "dev", "trace": "# 2 2 >"},
    {"id": "c", "prompt": "3 + 3 =", "answer": "6", "label": "careful", "split": "test"},
]


@pytest.mark.parametrize(
    ("scorer", "completion", "answer", "fmt", "want"),
    [
        ("exact", "2 apples", "2", None, Score(True, "2", False)),
        ("exact", " 3", "2", None, Score(False, "3", False)),
        ("exact", "# 2", "2", "#", Score(False, "#", True)),
        ("exact", "", "2", None, Score(False, None, False)),
        ("gsm8k", "3 + 4 = 7 #### 7", "#### 7", None, Score(True, "7", True)),
        ("gsm8k", "so 1,234.", "1234", None, Score(True, "1234", False)),
        ("gsm8k", "The answer is 5", "6", "The answer", Score(False, "5", True)),
        ("scratchpad", "# 1 0 1 > 0", "0", "#", Score(True, "0", True)),
        ("scratchpad", "# 1 0 1", "0", "#", Score(False, None, True)),
        ("scratchpad", "1 extra", "1", None, Score(True, "1", False)),
        ("scratchpad", "# 1 > 1", "0", None, Score(False, "1", True)),
    ],
)
def test_scorers_on_hand_written_completions(
    scorer: str, completion: str, answer: str, fmt: str | None, want: Score
) -> None:
    assert SCORERS[scorer](completion, answer, fmt) == want


def test_parse_gsm8k_answer() -> None:
    assert parse_gsm8k_answer("x #### -3.5") == "-3.5"
    assert parse_gsm8k_answer("#### none") is None and parse_gsm8k_answer("no digits") is None


def test_jsonl_round_trip_and_settings(tmp_path: Path) -> None:
    t = Task.from_records(
        "toy", RECS, scorer="scratchpad", format_prefix="#", spans={"pad": ["#", ">"]}, max_new_tokens=7
    )
    path = t.to_jsonl(tmp_path / "sub" / "t.jsonl")
    back = Task.from_jsonl(path, **t.settings())
    assert back.name == "t" and back.examples == t.examples and back.hash == t.hash
    assert back.spans == {"pad": ("#", ">")} and back.max_new_tokens == 7
    assert t.examples[0].meta == (("k", "1"),) and t.examples[1].trace == "# 2 2 >"
    assert json.loads(path.read_text().splitlines()[0]) == {
        "id": "a",
        "prompt": "1 + 1 =",
        "answer": "2",
        "label": "careful",
        "split": "train",
        "meta": {"k": "1"},
    }


def test_gsm8k_answers_split_into_trace_and_number() -> None:
    t = Task.from_records(
        "g", [{"question": "Q?", "answer": "3 + 4 = 7\n#### 7"}], scorer="gsm8k", prompt_field="question"
    )
    assert t.examples[0] == Example(id="0", prompt="Q?", answer="7", trace="3 + 4 = 7")


def test_hash_is_stable_and_covers_the_content() -> None:
    t = Task.from_records("toy", RECS)
    assert t.hash == Task.from_records("other name", RECS).hash  # the name is not content
    # the documented payload, hashed here by hand; and pinned: a change invalidates every cached store
    payload = {
        "examples": [
            [
                r["id"],
                r["prompt"],
                r["answer"],
                r["label"],
                r["split"],
                r.get("trace"),
                [[str(k), str(v)] for k, v in r.get("meta", {}).items()],
            ]
            for r in RECS
        ],
        "scorer": "exact",
        "format_prefix": None,
        "spans": {},
    }
    assert t.hash == hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    assert t.hash == "4bd028ddf513a0d8"
    assert Task.from_records("toy", RECS, scorer="gsm8k").hash != t.hash
    assert Task.from_records("toy", RECS[:2]).hash != t.hash
    assert Task.from_records("toy", RECS, spans={"s": ["a"]}).hash != t.hash


def test_filter_head_and_views() -> None:
    t = Task.from_records("toy", RECS)
    assert t.filter(split=["dev", "test"]).ids == ("b", "c")
    assert t.filter(label="careful", split="test").ids == ("c",)
    assert t.filter(ids=["a", "zz"]).ids == ("a",) and t.head(2).ids == ("a", "b")
    assert t.labels == ("careful", "direct", "careful") and t.answers == ("2", "4", "6")
    with pytest.raises(TaskError, match=r"left no examples. Splits present: \['dev', 'test', 'train'\]"):
        t.filter(split="val")


def test_errors_name_the_value_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="no examples"):
        Task.from_records("empty", [])
    with pytest.raises(TaskError, match="duplicate example id 'a'"):
        Task.from_records("d", [RECS[0], RECS[0]])
    with pytest.raises(TaskError, match=r"Unknown scorer 'gsm'.*Did you mean 'gsm8k'\?"):
        Task.from_records("s", RECS, scorer="gsm")
    with pytest.raises(TaskError, match=r"Record 0 of records lacks 'prompt' or 'answer' \(keys: \['q'\]\)"):
        Task.from_records("r", [{"q": 1}])
    with pytest.raises(TaskError, match="does not exist. Check the path"):
        Task.from_jsonl(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a", "answer": "b"}\n{oops\n')
    with pytest.raises(TaskError, match="bad.jsonl:2 is not valid JSON"):
        Task.from_jsonl(tmp_path / "bad.jsonl")
    with pytest.raises(
        TaskError, match=r"Unknown setting\(s\) \['scorr'\].*Did you mean 'scorer' for 'scorr'"
    ):
        Task.from_jsonl(tmp_path / "bad.jsonl", scorr="exact")
    with pytest.raises(TaskError, match="needs a non-empty name and a callable"):
        register_scorer("x", "not callable")  # type: ignore[arg-type]


def test_register_scorer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SCORERS, "upper", lambda c, a, f: Score(c.strip().upper() == a, c.strip(), False))
    t = Task.from_records("u", [{"prompt": "p", "answer": "YES"}], scorer="upper")
    assert t.score(" yes ", "YES").correct and not t.score("no", "YES").correct
    register_scorer("tmp-scorer", SCORERS["exact"])
    assert SCORERS.pop("tmp-scorer") is SCORERS["exact"]


def test_gsm8k_scorer_compares_numbers_and_detects_steps() -> None:
    g = SCORERS["gsm8k"]
    assert g("3 + 4 = 7 apples. #### 7", "work\n#### 7", None) == Score(True, "7", True)
    assert g("#### 7", "#### 7", None) == Score(True, "7", False)  # the marker alone is no reasoning
    assert g("The answer is $1,000.", "#### 1000", None).correct
    assert g("so it is 1/2", "#### 0.5", None).correct and not g("#### 8", "#### 7", None).correct
    assert g("Let's think. 7", "#### 7", "Let's think.").used_format


def test_math_scorer_boxed_numbers_and_latex() -> None:
    m = SCORERS["math"]
    assert m("so \\boxed{\\dfrac{1}{2}}", "The answer is \\boxed{\\frac12}", None).correct
    assert m("\\boxed{0.5}", "\\boxed{\\frac{1}{2}}", None).correct
    assert (
        m("\\boxed{x + 1}", "\\boxed{x+1}", None).correct
        and not m("\\boxed{x+2}", "\\boxed{x+1}", None).correct
    )
    assert m("no box: 7", "\\boxed{7}", None) == Score(False, None, False)


def test_from_hf_reads_local_dataset_folders(tmp_path: Path) -> None:
    """Task.from_hf through datasets.load_dataset: a folder of data files and a save_to_disk folder;
    GSM8K's preset scores numbers and names its forced format; a missing split is a TaskError."""
    import datasets

    folder = tmp_path / "gsm8k"
    folder.mkdir()
    rows = [
        {"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = 7\n#### 7"},
        {"question": "Half of 1,000?", "answer": "1000 / 2 = 500\n#### 500"},
        {"question": "Ten minus twelve?", "answer": "10 - 12 = -2\n#### -2"},
    ]
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = Task.gsm8k(folder)
    assert t.name == "gsm8k" and len(t) == 3 and t.format_prefix == "Let's think step by step."
    assert [e.answer for e in t.examples] == ["7", "500", "-2"] and {e.split for e in t.examples} == {"test"}
    assert t.examples[0].prompt == rows[0]["question"] and t.examples[1].id == "test-1"
    assert t.score("so the answer is 1,000 / 2 = 500.", "500").correct
    assert not t.score("#### 501", "500").correct
    assert len(Task.gsm8k(folder, limit=2)) == 2
    # a save_to_disk folder, another split name, the kit split given
    saved = tmp_path / "saved"
    datasets.Dataset.from_list([{"problem": "What is $1+1$?", "solution": "$\\boxed{2}$"}]).save_to_disk(
        str(saved)
    )
    m = Task.math(saved, kit_split="dev")
    assert m.examples[0].split == "dev" and m.score("so \\boxed{2}", m.examples[0].answer).correct
    with pytest.raises(TaskError, match="split 'train'.*local folder"):
        Task.gsm8k(folder, split="train")
    with pytest.raises(TaskError, match="lacks 'question' or 'answer_text'"):
        Task.from_hf(folder, prompt_field="question", answer_field="answer_text")


def test_a_family_task_can_be_a_dataset(tmp_path: Path, tiny_dir) -> None:
    """[tasks.X] dataset = "FOLDER" (relative to the family file) loads through Task.from_hf."""
    from probes.models.family import load_family

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test.jsonl").write_text(json.dumps({"question": "1+1?", "answer": "#### 2"}) + "\n")
    (tmp_path / "fam.toml").write_text(
        f'[variants.base]\npath = "{tiny_dir("llama")}"\n\n'
        '[tasks.gsm8k]\ndataset = "data"\nsplit = "test"\nscorer = "gsm8k"\nprompt_field = "question"\n'
    )
    t = load_family(tmp_path / "fam.toml").load_task("gsm8k")
    assert t.name == "gsm8k" and t.examples[0].answer == "2" and t.examples[0].split == "test"
