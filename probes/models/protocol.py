"""Prompt protocols: how one variant is asked a question (chat template, system prompt, BOS,
stop strings, assistant prefill, k-shot exemplars), and which tokens of the prompt are the
question's.

A family file gives each variant an optional ``[variants.NAME.prompt]`` table (keys in
:data:`PROMPT_KEYS`; docs/design.md, "Prompt protocols")::

    [variants.sft.prompt]
    chat_template = true                  # tokenizer.apply_chat_template(..., add_generation_prompt=True)
    system = "You are a careful solver."  # optional system message
    stop = ["<|endoftext|>"]              # a completion ends at the first stop string
    prefill = "<think>\\n"                 # the start of the assistant's turn, written by the kit

    [variants.base.prompt]
    template = "Question: {question}\\nAnswer:"
    stop = ["\\n\\nQuestion:"]
    shots = 4                             # CoT exemplars from the task's train split

A variant without a table has no protocol: its prompts go to the model exactly as written
(the organism's case, byte for byte what the kit did before protocols existed).

    >>> p = PromptProtocol(template="Question: {question}\\nAnswer:", prefill=" Let's see.")
    >>> p.render("1 + 1 = ?")
    "Question: 1 + 1 = ?\\nAnswer: Let's see."
    >>> r = p.rendered("1 + 1 = ?")
    >>> r.text[slice(*r.question)]
    '1 + 1 = ?'

Every token of an encoded prompt carries a *role* (:data:`ROLES`): ``template`` (text the
protocol wrote: chat markup, the system prompt, exemplars, BOS), ``question`` (the task's
prompt text), ``prefill`` and ``completion`` (a teacher-forced trace). Positions read the
roles (``question_end``, ``question`` in :mod:`probes.models.positions`), so analyses can
exclude template tokens.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from probes.errors import FamilyError, TaskError
from probes.models.config_keys import check_keys
from probes.models.tokens import Batch, check_rows, pad_rows, pad_token_id

__all__ = [
    "PromptProtocol",
    "Rendered",
    "Encoded",
    "ROLES",
    "PROMPT_KEYS",
    "attach_protocol",
    "protocol_of",
    "joined",
]

#: The role of each prompt token: written by the protocol, the question, the prefill, a trace
#: (``unknown`` where a slow tokenizer gives no character offsets).
ROLES = ("template", "question", "prefill", "completion", "unknown")
#: Keys of a ``[variants.NAME.prompt]`` table.
PROMPT_KEYS = (
    "chat_template",
    "system",
    "template",
    "bos",
    "stop",
    "prefill",
    "shots",
    "shots_task",
    "shot_answer",
    "shot_separator",
)
_BOS_POLICIES = ("auto", True, False)
QUESTION = "{question}"


def joined(head: str, tail: str) -> str:
    """``head`` then ``tail``, with one space between unless ``head`` is empty or ends in
    whitespace (a prompt ending in ``"\\n"`` or a chat turn is continued directly).

    >>> joined("N 1 0 =", "#"), joined("<|assistant|>\\n", "#"), joined("", "#")
    ('N 1 0 = #', '<|assistant|>\\n#', '#')
    """
    if not head or head[-1].isspace():
        return head + tail
    return head + " " + tail


@dataclass(frozen=True)
class Rendered:
    """A rendered prompt and the character spans ``[start, end)`` of its question and prefill
    (``(-1, -1)`` when the question cannot be found in the text a chat template wrote)."""

    text: str
    question: tuple[int, int]
    prefill: tuple[int, int]


@dataclass(frozen=True)
class Encoded:
    """Token ids of rendered prompts (no padding), their token strings and per-token roles."""

    ids: tuple[tuple[int, ...], ...]
    tokens: tuple[tuple[str, ...], ...]
    roles: tuple[tuple[str, ...], ...]

    def batch(self, pad_id: int, *, padding_side: str = "right", device: str | torch.device = "cpu") -> Batch:
        """The rows as one padded :class:`~probes.models.tokens.Batch`."""
        input_ids, mask = pad_rows([list(r) for r in self.ids], pad_id, side=padding_side)
        return Batch(
            input_ids.to(device), mask.to(device), tuple(len(r) for r in self.ids), self.tokens, padding_side
        )


@dataclass(frozen=True)
class PromptProtocol:
    """How a variant is asked: see the module docstring and docs/design.md, "Prompt protocols".

    Attributes:
        variant: the variant's name (for messages).
        chat_template: render through the tokenizer's chat template (user turn = ``template``
            with the question, then the generation prompt).
        system: a system message (chat), or a line block before the prompt (plain text).
        template: the user text around the question; must contain ``{question}`` once.
        bos: ``"auto"``: one BOS when the tokenizer puts one before plain text by default (a BOS
            the chat template writes counts; never two); ``True``: always exactly one;
            ``False``: the kit adds none.
        stop: a completion ends at the first of these strings (cut before it).
        prefill: text after the prompt (after the assistant turn starts) that the model continues.
        shots: how many worked exemplars precede the question (``exemplars``, from the task's
            train split; ``0`` = zero-shot).
        shot_answer: an exemplar's answer, with ``{trace}`` and ``{answer}`` filled in.
        shot_separator: between plain-text exemplars and the question.
        exemplars: ``(question, answer text)`` pairs, filled by the family from the train split.
        tokenizer: the variant's own tokenizer (its vocabulary, chat template and EOS).
        eos_ids: ids that end a completion: the tokenizer's EOS and the checkpoint's
            ``generation_config.json`` ``eos_token_id`` values.
    """

    variant: str = ""
    chat_template: bool = False
    system: str | None = None
    template: str = QUESTION
    bos: str | bool = "auto"
    stop: tuple[str, ...] = ()
    prefill: str = ""
    shots: int = 0
    shots_task: str | None = None
    shot_answer: str = "{trace}\nThe answer is {answer}."
    shot_separator: str = "\n\n"
    exemplars: tuple[tuple[str, str], ...] = ()
    tokenizer: Any = field(default=None, compare=False, repr=False)
    eos_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        where = f"the prompt protocol of variant {self.variant!r}"
        texts = {"template": self.template, "prefill": self.prefill, "shot_answer": self.shot_answer}
        texts |= {
            "shot_separator": self.shot_separator,
            "system": self.system or "",
            "shots_task": self.shots_task or "",
        }
        wrong = {k: v for k, v in texts.items() if not isinstance(v, str)}
        if wrong or not isinstance(self.chat_template, bool):
            raise FamilyError(
                f"In {where}, {sorted(wrong) or ['chat_template']} must be text (chat_template: true or false); "
                f"got {wrong or {'chat_template': self.chat_template}}."
            )
        if self.template.count(QUESTION) != 1:
            raise FamilyError(
                f"template {self.template!r} in {where} must contain {QUESTION} exactly once (where the "
                'question goes), e.g. template = "Question: {question}\\nAnswer:".'
            )
        if self.bos not in _BOS_POLICIES:
            raise FamilyError(f"bos = {self.bos!r} in {where} is not one of 'auto', true, false.")
        if not isinstance(self.shots, int) or self.shots < 0:
            raise FamilyError(f"shots = {self.shots!r} in {where} must be an integer >= 0 (0 = zero-shot).")
        if len(self.exemplars) < self.shots and self.exemplars:
            raise FamilyError(
                f"{where} asks for shots = {self.shots} but only {len(self.exemplars)} exemplars were given."
            )
        bad = [s for s in self.stop if not isinstance(s, str) or not s]
        if bad:
            raise FamilyError(
                f"stop = {list(self.stop)!r} in {where}: every stop string must be non-empty text."
            )
        if (
            self.chat_template
            and self.tokenizer is not None
            and not getattr(self.tokenizer, "chat_template", None)
        ):
            raise FamilyError(
                f"Variant {self.variant!r} asks for chat_template = true, but its tokenizer "
                f"({getattr(self.tokenizer, 'name_or_path', '?')!r}) has no chat template. Use a checkpoint "
                "whose tokenizer_config.json carries one (or set tokenizer.chat_template and save it), or "
                f'set chat_template = false with a plain template = "..." in [variants.{self.variant}.prompt].'
            )

    # ---- construction ------------------------------------------------------------------
    @classmethod
    def from_table(
        cls,
        variant: str,
        table: Mapping[str, Any],
        *,
        tokenizer: Any = None,
        eos_ids: Sequence[int] = (),
        exemplars: Sequence[tuple[str, str]] = (),
        where: str = "",
    ) -> PromptProtocol:
        """A protocol from a ``[variants.NAME.prompt]`` table (unknown keys are errors)."""
        check_keys(table, PROMPT_KEYS, where or f"[variants.{variant}.prompt]", error=FamilyError)
        kw = dict(table)
        if isinstance(kw.get("stop"), str):
            kw["stop"] = (kw["stop"],)
        if "stop" in kw:
            kw["stop"] = tuple(kw["stop"])
        shots = kw.get("shots", 0)
        return cls(
            variant=variant,
            tokenizer=tokenizer,
            eos_ids=tuple(dict.fromkeys(int(i) for i in eos_ids)),
            exemplars=tuple(exemplars)[:shots] if isinstance(shots, int) else (),
            **kw,
        )

    def with_tokenizer(self, tokenizer: Any) -> PromptProtocol:
        """The same protocol over ``tokenizer`` (its EOS becomes the stop id when none is set)."""
        eos = self.eos_ids or ((int(tokenizer.eos_token_id),) if tokenizer.eos_token_id is not None else ())
        return replace(self, tokenizer=tokenizer, eos_ids=eos)

    @property
    def plain(self) -> bool:
        """True when the protocol sends the question as written (no template, no extras)."""
        return (
            not self.chat_template
            and self.template == QUESTION
            and not self.system
            and not self.prefill
            and not self.shots
            and self.bos == "auto"
        )

    def settings(self) -> dict[str, Any]:
        """The protocol's settings (what :meth:`digest` hashes), chat template text included."""
        out: dict[str, Any] = {
            "chat_template": self.chat_template,
            "system": self.system,
            "template": self.template,
            "bos": self.bos,
            "stop": list(self.stop),
            "prefill": self.prefill,
            "shots": self.shots,
            "exemplars": [list(e) for e in self.exemplars],
            "eos_ids": list(self.eos_ids),
        }
        if self.chat_template and self.tokenizer is not None:
            out["template_text"] = str(self.tokenizer.chat_template)
        return out

    def digest(self) -> str:
        """A short hash of :meth:`settings`: caches keyed on it are keyed on how prompts are written."""
        text = json.dumps(self.settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    # ---- rendering ---------------------------------------------------------------------
    def _user(self, question: str) -> str:
        return self.template.replace(QUESTION, question)

    def rendered(self, question: str) -> Rendered:
        """The prompt text for ``question`` with the spans of the question and the prefill."""
        if self.chat_template:
            text = self._chat_text(question)
        else:
            parts = [self.system + "\n\n"] if self.system else []
            parts += [joined(self._user(q), a) + self.shot_separator for q, a in self.exemplars[: self.shots]]
            text = "".join(parts) + self._user(question)
        q_span = _find_question(text, question)
        return Rendered(text + self.prefill, q_span, (len(text), len(text) + len(self.prefill)))

    def render(self, question: str) -> str:
        """The prompt text the model continues: template, exemplars, question, prefill."""
        return self.rendered(question).text

    def _chat_text(self, question: str) -> str:
        tok = self._need_tokenizer("render a chat template")
        if not getattr(tok, "chat_template", None):
            raise FamilyError(
                f"Variant {self.variant!r} asks for chat_template = true, but its tokenizer has no chat "
                "template. Set chat_template = false (with a plain template), or use a tokenizer that has one."
            )
        messages: list[dict[str, str]] = [{"role": "system", "content": self.system}] if self.system else []
        for q, a in self.exemplars[: self.shots]:
            messages += [{"role": "user", "content": self._user(q)}, {"role": "assistant", "content": a}]
        messages.append({"role": "user", "content": self._user(question)})
        return str(tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))

    def _need_tokenizer(self, what: str) -> Any:
        if self.tokenizer is None:
            raise FamilyError(
                f"The prompt protocol of variant {self.variant!r} has no tokenizer to {what}; build it "
                "through family.protocol(variant) or PromptProtocol(...).with_tokenizer(tok)."
            )
        return self.tokenizer

    # ---- tokenising --------------------------------------------------------------------
    def encode(self, questions: Sequence[str], suffixes: Sequence[str] | None = None) -> Encoded:
        """Token ids (with the BOS policy), token strings and roles of each rendered question,
        followed by its suffix (a prefix forced by the caller, or a teacher-forced trace)."""
        if isinstance(questions, str):
            raise TaskError(
                f"encode takes a list of questions, got one string {questions[:40]!r}; pass [question]."
            )
        tok = self._need_tokenizer("tokenise")
        rows, toks, roles = [], [], []
        adds = None if self.plain else _adds_bos(tok)
        for i, q in enumerate(questions):
            r = self.rendered(q)
            suffix = suffixes[i] if suffixes is not None else ""
            text = joined(r.text, suffix) if suffix else r.text
            spans = {"question": r.question, "prefill": r.prefill, "completion": (len(r.text), len(text))}
            # a plain protocol tokenises exactly as probes.models.tokens.encode does; a slow
            # tokenizer gives no character offsets, so its tokens' roles are "unknown"
            fast = bool(getattr(tok, "is_fast", False))
            enc = tok(text, add_special_tokens=self.plain, return_offsets_mapping=fast)
            ids = list(enc["input_ids"])
            offs = [tuple(o) for o in enc["offset_mapping"]] if fast else [(-1, -1)] * len(ids)
            if not self.plain:
                ids, offs = self._with_bos(tok, ids, offs, adds)
            rows.append(tuple(ids))
            toks.append(tuple(tok.convert_ids_to_tokens(ids)))
            roles.append(tuple(_role(o, spans) for o in offs))
        return Encoded(tuple(rows), tuple(toks), tuple(roles))

    def _with_bos(
        self, tok: Any, ids: list[int], offs: list[tuple[int, int]], adds: int | None
    ) -> tuple[list[int], list[tuple[int, int]]]:
        bos = tok.bos_token_id
        want = self.bos is True or (self.bos == "auto" and adds is not None)
        if self.bos is True and bos is None:
            raise FamilyError(
                f"Variant {self.variant!r} sets bos = true but its tokenizer has no BOS token; set bos = "
                '"auto" or false.'
            )
        if want and bos is not None and ids[:1] != [bos]:
            return [int(bos), *ids], [(0, 0), *offs]
        return ids, offs

    def batch(
        self,
        questions: Sequence[str],
        *,
        suffixes: Sequence[str] | None = None,
        padding_side: str = "right",
        device: str | torch.device = "cpu",
        max_length: int | None = None,
        ids: Sequence[str] | None = None,
    ) -> tuple[Batch, Encoded]:
        """A padded batch of the rendered questions (length checked like :func:`~probes.models.tokens.encode`)."""
        enc = self.encode(questions, suffixes)
        what = f" of variant {self.variant!r}, rendered,"
        check_rows(
            enc.ids, ids=ids, max_length=max_length, what=what, fix="Shorten the prompt, template or shots."
        )
        return enc.batch(pad_token_id(self.tokenizer), padding_side=padding_side, device=device), enc

    # ---- completions -------------------------------------------------------------------
    def stop_ids(self) -> tuple[int, ...]:
        """Ids that end a completion: the EOS ids and every stop string that is one token."""
        tok = self.tokenizer
        out = list(self.eos_ids)
        for s in self.stop:
            i = tok.convert_tokens_to_ids(s) if tok is not None else None
            if isinstance(i, int) and i != tok.unk_token_id and tok.convert_ids_to_tokens(i) == s:
                out.append(i)
        return tuple(dict.fromkeys(out))

    def text_stops(self) -> tuple[str, ...]:
        """Stop strings that are not single tokens (matched on the decoded text)."""
        tok = self.tokenizer
        singles = {tok.convert_ids_to_tokens(i) for i in self.stop_ids()} if tok is not None else set()
        return tuple(s for s in self.stop if s not in singles)

    def cut(self, text: str) -> tuple[str, bool]:
        """``text`` cut before its first stop string, and whether one occurred."""
        hits = [k for k in (text.find(s) for s in self.text_stops()) if k >= 0]
        if not hits:
            return text, False
        return text[: min(hits)], True


def _find_question(text: str, question: str) -> tuple[int, int]:
    """The span of the question in the rendered text: its last occurrence (exemplars come first;
    a chat template may have trimmed it), ``(-1, -1)`` when it does not occur."""
    for q in (question, question.strip()):
        k = text.rfind(q) if q else -1
        if k >= 0:
            return k, k + len(q)
    return -1, -1


def _role(offset: tuple[int, int], spans: Mapping[str, tuple[int, int]]) -> str:
    s, e = offset
    if s < 0:
        return "unknown"
    if e <= s:
        return "template"  # a special token the tokenizer added (BOS), or one the kit prepended
    for name in ("completion", "prefill", "question"):
        lo, hi = spans[name]
        if lo < hi and s < hi and e > lo:
            return name
    return "template"


def _adds_bos(tok: Any) -> int | None:
    """The BOS id the tokenizer puts before plain text by default, else ``None``."""
    bos = tok.bos_token_id
    if bos is None:
        return None
    with_special = tok("a", add_special_tokens=True)["input_ids"]
    without = tok("a", add_special_tokens=False)["input_ids"]
    return int(bos) if with_special[:1] == [bos] and without[:1] != [bos] else None


# ---- a model opened from a family carries its variant's protocol ---------------------------
_ATTACHED: weakref.WeakKeyDictionary[Any, PromptProtocol] = weakref.WeakKeyDictionary()


def attach_protocol(model: Any, protocol: PromptProtocol | None) -> None:
    """Mark ``model`` (what :meth:`ModelFamily.open` yields) as asked through ``protocol``."""
    if protocol is None:
        _ATTACHED.pop(model, None)
    else:
        _ATTACHED[model] = protocol


def protocol_of(model: Any) -> PromptProtocol | None:
    """The protocol ``model`` was opened with (``None``: prompts go in as written)."""
    try:
        return _ATTACHED.get(model)
    except TypeError:  # an unhashable or non-weakref-able object: no protocol
        return None
