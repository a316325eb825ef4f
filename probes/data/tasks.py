"""Tasks: prompts with stable ids, reference answers, a scorer, contrast labels and spans.

    >>> t = Task.from_records("toy", [{"id": "a", "prompt": "1+1=", "answer": "2"}])
    >>> t.score("2 apples", "2").correct
    True
    >>> len(t), t.ids
    (1, ('a',))

A task's identity is a content hash (:attr:`Task.hash`) over its examples, scorer and
spans, so cached activations and sweep rows can be matched to the exact data.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from probes.data.answers import boxed, exact_number, final_answer, has_worked_steps, numbers_equal
from probes.errors import TaskError
from probes.models.config_keys import check_keys

__all__ = ["Example", "Score", "Task", "SCORERS", "as_task", "register_scorer", "parse_gsm8k_answer"]


@dataclass(frozen=True)
class Score:
    """The scorer's reading of one completion."""

    correct: bool
    parsed: str | None
    used_format: bool


@dataclass(frozen=True)
class Example:
    """One prompt. ``trace`` is an optional reference reasoning completion (teacher forcing)."""

    id: str
    prompt: str
    answer: str
    label: str | None = None
    split: str | None = None
    trace: str | None = None
    meta: tuple[tuple[str, str], ...] = ()


def parse_gsm8k_answer(text: str) -> str | None:
    """The final answer of a GSM8K-style text (see :func:`probes.data.answers.final_answer`):
    the last ``\\boxed{}``, else the number after ``####``, else after "answer is", else the last number.

    >>> parse_gsm8k_answer("She has 3 + 4 = 7 apples.\\n#### 7")
    '7'
    >>> parse_gsm8k_answer("The answer is 1,234.")
    '1234'
    """
    return final_answer(text)


def _score_exact(completion: str, answer: str, fmt: str | None) -> Score:
    words = completion.strip().split()
    parsed = words[0] if words else None
    used = fmt is not None and bool(fmt.strip()) and completion.strip().startswith(fmt.strip())
    return Score(parsed == answer.strip(), parsed, used)


def _score_gsm8k(completion: str, answer: str, fmt: str | None) -> Score:
    """Numeric equivalence of the final answers (commas, ``$``, signs, fractions, ``\\boxed{}``);
    the reasoning format is the task's prefix when it has one, else worked arithmetic steps
    (never the ``####`` answer marker, which a bare answer also carries)."""
    parsed = final_answer(completion)
    used = fmt.strip() in completion if fmt and fmt.strip() else has_worked_steps(completion)
    return Score(parsed is not None and numbers_equal(parsed, final_answer(answer)), parsed, used)


def _normal_math(ans: str) -> str:
    """A MATH answer normalised for string comparison (spacing, ``\\left``/``\\right``, ``\\!``, ``$``, ``dfrac``)."""
    out = ans.strip().strip("$").replace("\\left", "").replace("\\right", "").replace("\\!", "")
    out = (
        out.replace("dfrac", "frac").replace("tfrac", "frac").replace("^\\circ", "").replace("^{\\circ}", "")
    )
    out = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", out)  # \frac12 -> \frac{1}{2}
    return re.sub(r"\s+", "", out).rstrip(".")


def _score_math(completion: str, answer: str, fmt: str | None) -> Score:
    """MATH (Hendrycks et al. 2021): the last ``\\boxed{}`` of the completion against the
    reference's (or the reference itself); equal as numbers when both are, else as normalised
    LaTeX strings."""
    parsed = boxed(completion)
    ref = boxed(answer)
    ref = answer if ref is None else ref
    used = fmt.strip() in completion if fmt and fmt.strip() else has_worked_steps(completion)
    if parsed is None:
        return Score(False, None, used)
    x, y = exact_number(_normal_math(parsed)), exact_number(_normal_math(ref))
    same = x == y if x is not None and y is not None else _normal_math(parsed) == _normal_math(ref)
    return Score(same, parsed, used)


def _score_scratchpad(completion: str, answer: str, fmt: str | None) -> Score:
    """Completions are either a direct answer (first word) or ``FMT ... > answer``."""
    text = completion.strip()
    fmt = (fmt or "#").strip()
    if text.startswith(fmt):
        if ">" not in text:
            return Score(False, None, True)
        tail = text.split(">", 1)[1].split()
        parsed = tail[0] if tail else None
        return Score(parsed == answer.strip(), parsed, True)
    words = text.split()
    parsed = words[0] if words else None
    return Score(parsed == answer.strip(), parsed, False)


def _score_unscored(completion: str, answer: str, fmt: str | None) -> Score:
    raise TaskError(
        "This task was built from plain prompts (Task.from_prompts, or a list of strings passed where a "
        "Task goes) and has no reference answers, so its completions cannot be scored. Build it with "
        "Task.from_records([{'prompt': ..., 'answer': ...}], scorer=...) or Task.from_jsonl to score."
    )


ScorerFn = Callable[[str, str, "str | None"], Score]

#: Built-in scorers by name. ``exact``: first word equals the answer; ``gsm8k``: the final
#: numbers equal (:mod:`probes.data.answers`); ``math``: the last ``\\boxed{}`` equal as a number
#: or as normalised LaTeX; ``scratchpad``: a direct answer or ``# ... > answer``.
SCORERS: dict[str, ScorerFn] = {
    "exact": _score_exact,
    "gsm8k": _score_gsm8k,
    "math": _score_math,
    "scratchpad": _score_scratchpad,
    "unscored": _score_unscored,
}


def as_task(task: Task | str | Iterable[str], *, name: str = "prompts") -> Task:
    """``task`` itself, or :meth:`Task.from_prompts` of a prompt or a list of prompts: what every
    function that takes a Task accepts."""
    if isinstance(task, Task):
        return task
    if isinstance(task, Mapping) or not isinstance(task, str | Iterable):
        raise TaskError(
            f"Expected a Task, a prompt or a list of prompts, got {type(task).__name__}. "
            "Build a Task with Task.from_records / Task.from_jsonl, or pass a list of str."
        )
    return Task.from_prompts(task, name=name)


def register_scorer(name: str, fn: ScorerFn) -> None:
    """Register a scorer ``fn(completion, answer, format_prefix) -> Score`` under ``name``."""
    if not isinstance(name, str) or not name or not callable(fn):
        raise TaskError(
            f"register_scorer needs a non-empty name and a callable fn(completion, answer, format_prefix) "
            f"-> Score; got name={name!r}, fn of type {type(fn).__name__}."
        )
    SCORERS[name] = fn


_TASK_KEYS = {"scorer", "format_prefix", "spans", "max_new_tokens", "prompt_field", "answer_field"}


@dataclass(frozen=True)
class Task:
    """Prompts with ids, reference answers and a scorer.

    Attributes:
        name: label used in provenance.
        examples: the prompts (ids unique).
        scorer: a key of :data:`SCORERS`.
        format_prefix: text that starts the reasoning format; prefilling it "forces" the format.
        spans: named spans ``name -> (start_token, end_token)``; a span covers the tokens from the
            first ``start_token`` to the next ``end_token`` inclusive (``end_token`` may be ``""``
            meaning the end of the text).
        max_new_tokens: generation budget for a completion.
    """

    name: str
    examples: tuple[Example, ...]
    scorer: str = "exact"
    format_prefix: str | None = None
    spans: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    max_new_tokens: int = 32

    def __post_init__(self) -> None:
        if not self.examples:
            raise TaskError(
                f"Task {self.name!r} has no examples. Give at least one prompt (check the file path "
                "and any split/label filter)."
            )
        seen: set[str] = set()
        for ex in self.examples:
            if ex.id in seen:
                raise TaskError(f"Task {self.name!r} has duplicate example id {ex.id!r}; ids must be unique.")
            seen.add(ex.id)
        if self.scorer not in SCORERS:
            close = difflib.get_close_matches(self.scorer, list(SCORERS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise TaskError(
                f"Unknown scorer {self.scorer!r} for task {self.name!r}. Valid scorers: {sorted(SCORERS)}.{hint} "
                "(Or register one with probes.data.tasks.register_scorer.)"
            )

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(e.id for e in self.examples)

    @property
    def prompts(self) -> tuple[str, ...]:
        return tuple(e.prompt for e in self.examples)

    @property
    def answers(self) -> tuple[str, ...]:
        return tuple(e.answer for e in self.examples)

    @property
    def labels(self) -> tuple[str | None, ...]:
        return tuple(e.label for e in self.examples)

    @property
    def hash(self) -> str:
        """Content hash over examples, scorer, format and spans (not the name)."""
        payload = json.dumps(
            {
                "examples": [
                    [e.id, e.prompt, e.answer, e.label, e.split, e.trace, list(e.meta)] for e in self.examples
                ],
                "scorer": self.scorer,
                "format_prefix": self.format_prefix,
                "spans": {k: list(v) for k, v in sorted(self.spans.items())},
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def score(self, completion: str, answer: str) -> Score:
        """Score one completion against ``answer`` with this task's scorer."""
        return SCORERS[self.scorer](completion, answer, self.format_prefix)

    def filter(
        self,
        *,
        split: str | Sequence[str] | None = None,
        label: str | Sequence[str] | None = None,
        ids: Iterable[str] | None = None,
        name: str | None = None,
    ) -> Task:
        """A new task with the examples that match every given criterion."""
        splits = {split} if isinstance(split, str) else set(split) if split is not None else None
        labels = {label} if isinstance(label, str) else set(label) if label is not None else None
        idset = set(ids) if ids is not None else None
        kept = tuple(
            e
            for e in self.examples
            if (splits is None or e.split in splits)
            and (labels is None or e.label in labels)
            and (idset is None or e.id in idset)
        )
        if not kept:
            have_s = sorted({str(e.split) for e in self.examples})
            have_l = sorted({str(e.label) for e in self.examples})
            raise TaskError(
                f"Filtering task {self.name!r} by split={split!r}, label={label!r} left no examples. "
                f"Splits present: {have_s}; labels present: {have_l}."
            )
        return replace(self, examples=kept, name=name or self.name)

    def head(self, n: int) -> Task:
        """The first ``n`` examples."""
        return replace(self, examples=self.examples[:n])

    def with_examples(self, examples: Sequence[Example], name: str | None = None) -> Task:
        return replace(self, examples=tuple(examples), name=name or self.name)

    # ---- I/O -----------------------------------------------------------------------
    def to_records(self) -> list[dict[str, Any]]:
        out = []
        for e in self.examples:
            rec: dict[str, Any] = {"id": e.id, "prompt": e.prompt, "answer": e.answer}
            for k in ("label", "split", "trace"):
                if getattr(e, k) is not None:
                    rec[k] = getattr(e, k)
            if e.meta:
                rec["meta"] = dict(e.meta)
            out.append(rec)
        return out

    def to_jsonl(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as fh:
            for rec in self.to_records():
                fh.write(json.dumps(rec) + "\n")
        return path

    def settings(self) -> dict[str, Any]:
        """Task-level settings as stored in a family file's ``[tasks]`` table."""
        out: dict[str, Any] = {"scorer": self.scorer, "max_new_tokens": self.max_new_tokens}
        if self.format_prefix is not None:
            out["format_prefix"] = self.format_prefix
        if self.spans:
            out["spans"] = {k: list(v) for k, v in self.spans.items()}
        return out

    @classmethod
    def from_prompts(
        cls, prompts: str | Iterable[str], *, name: str = "prompts", max_new_tokens: int = 32
    ) -> Task:
        """A task of plain prompts without answers (ids ``p0, p1, ...``), for collecting
        activations, steering or generating; scoring it is an error that says so.

        >>> Task.from_prompts(["2 + 2 =", "The capital of France is"]).ids
        ('p0', 'p1')
        """
        items = [prompts] if isinstance(prompts, str) else list(prompts)
        bad = [(i, type(p).__name__) for i, p in enumerate(items) if not isinstance(p, str)]
        if bad:
            raise TaskError(
                f"Plain prompts must be strings; item(s) {bad[:5]} are not. Pass a list of str or a Task."
            )
        examples = tuple(Example(id=f"p{i}", prompt=p, answer="") for i, p in enumerate(items))
        return cls(name, examples, scorer="unscored", max_new_tokens=max_new_tokens)

    @classmethod
    def from_records(
        cls,
        name: str,
        records: Iterable[Mapping[str, Any]],
        *,
        scorer: str = "exact",
        format_prefix: str | None = None,
        spans: Mapping[str, Sequence[str]] | None = None,
        max_new_tokens: int = 32,
        prompt_field: str = "prompt",
        answer_field: str = "answer",
        where: str = "records",
    ) -> Task:
        """Build a task from dicts with ``prompt`` and ``answer`` (and optional ``id``,
        ``label``, ``split``, ``trace``, ``meta``). With ``scorer="gsm8k"`` an answer such as
        ``"... #### 42"`` is split into the trace and the final answer ``"42"``."""
        examples = []
        for i, rec in enumerate(records):
            if prompt_field not in rec or answer_field not in rec:
                raise TaskError(
                    f"Record {i} of {where} lacks {prompt_field!r} or {answer_field!r} (keys: {sorted(rec)}). "
                    "Pass prompt_field=/answer_field= (on the command line: --prompt-field / --answer-field; "
                    "in a family file's task table: prompt_field / answer_field) to name the fields of your data."
                )
            answer = str(rec[answer_field])
            trace = rec.get("trace")
            if scorer == "gsm8k" and "####" in answer:
                trace = trace if trace is not None else answer.split("####", 1)[0].strip()
                answer = parse_gsm8k_answer(answer) or answer
            meta = rec.get("meta") or {}
            examples.append(
                Example(
                    id=str(rec.get("id", i)),
                    prompt=str(rec[prompt_field]),
                    answer=answer,
                    label=rec.get("label"),
                    split=rec.get("split"),
                    trace=trace,
                    meta=tuple(sorted((str(k), str(v)) for k, v in meta.items())),
                )
            )
        span_map = {k: (str(v[0]), str(v[1]) if len(v) > 1 else "") for k, v in (spans or {}).items()}
        return cls(
            name,
            tuple(examples),
            scorer=scorer,
            format_prefix=format_prefix,
            spans=span_map,
            max_new_tokens=max_new_tokens,
        )

    @classmethod
    def from_hf(
        cls,
        path: str | Path,
        *,
        split: str = "test",
        config: str | None = None,
        name: str | None = None,
        limit: int | None = None,
        kit_split: str | None = None,
        **settings: Any,
    ) -> Task:
        """A task from a dataset through ``datasets.load_dataset``: a local folder of data files
        (``test.jsonl``, ``train.parquet``, ...), a folder written by ``Dataset.save_to_disk``, or a
        hub id already in the local Hugging Face cache (offline, nothing is downloaded when
        ``HF_HUB_OFFLINE=1``).

        ``split`` is the dataset's split; each example's kit split (``train`` / ``dev`` / ``test``,
        what the battery filters on) is ``kit_split`` or the dataset split's name (``validation``
        becomes ``dev``). ``limit`` keeps the first rows. Settings as for :meth:`from_jsonl`
        (``prompt_field``, ``answer_field``, ``scorer``, ...); :meth:`gsm8k` and :meth:`math` set
        them for those datasets.
        """
        check_keys(
            settings, _TASK_KEYS, f"the settings of dataset {str(path)!r}", error=TaskError, what="setting"
        )
        ds = _load_hf(path, split, config)
        rows = ds.select(range(min(limit, len(ds)))) if limit is not None else ds
        where = f"dataset {str(path)!r} (split {split!r})"
        mine = kit_split or {"validation": "dev", "valid": "dev"}.get(split, split)
        records = [
            {**dict(r), "id": str(r.get("id", f"{split}-{i}")), "split": r.get("split") or mine}
            for i, r in enumerate(rows)
        ]
        return cls.from_records(name or Path(str(path)).name, records, where=where, **settings)

    @classmethod
    def gsm8k(cls, path: str | Path = "openai/gsm8k", *, split: str = "test", **kw: Any) -> Task:
        """GSM8K (``question``, ``answer`` with ``#### N``): numeric-equivalence scoring, the
        worked-steps format detector, the CoT prefill "Let's think step by step." as its forced
        format. ``path``: a local copy or the cached hub id (config ``main``)."""
        kw.setdefault("config", "main" if str(path) == "openai/gsm8k" else None)
        return cls._preset(path, split, "gsm8k", ("question", "answer", "gsm8k", 384), kw)

    @classmethod
    def math(cls, path: str | Path = "HuggingFaceH4/MATH-500", *, split: str = "test", **kw: Any) -> Task:
        """MATH (``problem``, ``solution`` with a final ``\\boxed{}``): the last boxed answers
        compared as numbers or normalised LaTeX; forced format "Let's think step by step."."""
        return cls._preset(path, split, "math", ("problem", "solution", "math", 512), kw)

    @classmethod
    def _preset(
        cls, path: str | Path, split: str, name: str, fields: tuple[str, str, str, int], kw: dict[str, Any]
    ) -> Task:
        """A built-in dataset: (prompt field, answer field, scorer, budget); ``kw`` overrides any."""
        prompt_field, answer_field, scorer, budget = fields
        settings: dict[str, Any] = {
            "prompt_field": prompt_field,
            "answer_field": answer_field,
            "scorer": scorer,
            "max_new_tokens": budget,
            "format_prefix": "Let's think step by step.",
            **kw,
        }
        return cls.from_hf(path, split=split, name=settings.pop("name", name), **settings)

    @classmethod
    def from_jsonl(cls, path: str | Path, *, name: str | None = None, **settings: Any) -> Task:
        """Load a task from a JSONL file, one example per line.

        Settings (``scorer``, ``format_prefix``, ``spans``, ``max_new_tokens``, ``prompt_field``,
        ``answer_field``) are keyword arguments; unknown settings are errors.
        """
        path = Path(path)
        check_keys(
            settings, _TASK_KEYS, f"the settings of task {str(path)!r}", error=TaskError, what="setting"
        )
        if not path.exists():
            raise TaskError(
                f"Task file {str(path)!r} does not exist. Check the path (a family file's task paths are "
                "relative to the family file's folder)."
            )
        records = []
        with open(path) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise TaskError(f"{path}:{lineno} is not valid JSON: {err}") from err
        return cls.from_records(name or path.stem, records, where=str(path), **settings)


def _load_hf(path: str | Path, split: str, config: str | None) -> Any:
    """One split of a dataset (local folder, ``save_to_disk`` folder, or cached hub id)."""
    import datasets

    local = Path(str(path)).expanduser()
    try:
        if local.is_dir() and (local / "dataset_info.json").exists() and (local / "state.json").exists():
            return datasets.load_from_disk(str(local))
        if local.is_dir() and (local / "dataset_dict.json").exists():
            return datasets.load_from_disk(str(local))[split]
        return datasets.load_dataset(str(local) if local.exists() else str(path), config, split=split)
    except (FileNotFoundError, ValueError, ConnectionError, KeyError) as err:
        raise TaskError(
            f"Could not load split {split!r} of dataset {str(path)!r}{f' (config {config!r})' if config else ''}: "
            f"{err}. Pass a local folder of data files (e.g. test.jsonl), a save_to_disk folder, or a hub id "
            "already in the local Hugging Face cache (HF_HUB_OFFLINE=1 never downloads)."
        ) from err
