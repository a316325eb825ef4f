"""Token positions: which tokens of a prompt an activation is read at (or a vector is added to).

Positions are resolved on the *unpadded* token sequence of one text, so left and right
padding give the same rows. Spellings accepted by :func:`parse_position`:

    >>> parse_position("last"), parse_position("all"), parse_position("-2")
    (Last(), All(), Index(index=-2))
    >>> parse_position("match:=")
    Match(token='=', offset=0, window=1, occurrence=0)
    >>> parse_position("match:Wait:-12:4")   # the 4 tokens starting 12 before the first `Wait`
    Match(token='Wait', offset=-12, window=4, occurrence=0)
    >>> parse_position("span:scratchpad")
    Span(name='scratchpad')
    >>> Match("=").resolve(["N", "1", "0", "=", "#"])
    [3]

On a prompt rendered by a prompt protocol (:mod:`probes.models.protocol`: chat template,
exemplars, prefill), ``last`` is the last token of the *rendered* prompt: the token the first
answer token is predicted from, in every variant. ``question_end`` is the last token of the
question itself and ``question`` every question token (template tokens excluded):

    >>> toks = ["<bos>", "Q:", "1", "+", "A:"]
    >>> roles = ["template", "template", "question", "question", "template"]
    >>> QuestionEnd().resolve(toks, roles=roles), Question().resolve(toks, roles=roles), Last().resolve(toks)
    ([3], [2, 3], [4])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from probes.errors import PositionError

__all__ = [
    "Position",
    "Last",
    "All",
    "Index",
    "Match",
    "Span",
    "QuestionEnd",
    "Question",
    "parse_position",
    "parse_positions",
]


class Position(ABC):
    """Base class: ``resolve(tokens, spans) -> list of indices`` into ``tokens``."""

    @property
    @abstractmethod
    def key(self) -> str:
        """Stable short name used in files and tables."""

    @property
    def single(self) -> bool:
        """True when the position always resolves to exactly one token."""
        return False

    @property
    def needs_roles(self) -> bool:
        """True when resolving reads the tokens' roles (which tokens are the question's)."""
        return False

    @abstractmethod
    def resolve(
        self,
        tokens: Sequence[str],
        spans: Mapping[str, tuple[str, str]] | None = None,
        roles: Sequence[str] | None = None,
    ) -> list[int]:
        """Indices into ``tokens`` (raises PositionError when the position does not exist).

        ``roles`` (one per token, :data:`probes.models.protocol.ROLES`) say which tokens are the
        question's; only :class:`QuestionEnd` and :class:`Question` read them."""


@dataclass(frozen=True)
class Last(Position):
    """The last token of the text (for a prompt: the token the next one is predicted from)."""

    @property
    def key(self) -> str:
        return "last"

    @property
    def single(self) -> bool:
        return True

    def resolve(
        self,
        tokens: Sequence[str],
        spans: Mapping[str, tuple[str, str]] | None = None,
        roles: Sequence[str] | None = None,
    ) -> list[int]:
        if not tokens:
            raise PositionError("Cannot take the last token of an empty text.")
        return [len(tokens) - 1]


@dataclass(frozen=True)
class All(Position):
    """Every token."""

    @property
    def key(self) -> str:
        return "all"

    def resolve(
        self,
        tokens: Sequence[str],
        spans: Mapping[str, tuple[str, str]] | None = None,
        roles: Sequence[str] | None = None,
    ) -> list[int]:
        return list(range(len(tokens)))


@dataclass(frozen=True)
class Index(Position):
    """A fixed index; negative counts from the end."""

    index: int

    @property
    def key(self) -> str:
        return str(self.index)

    @property
    def single(self) -> bool:
        return True

    def resolve(
        self,
        tokens: Sequence[str],
        spans: Mapping[str, tuple[str, str]] | None = None,
        roles: Sequence[str] | None = None,
    ) -> list[int]:
        n = len(tokens)
        i = self.index + n if self.index < 0 else self.index
        if not 0 <= i < n:
            raise PositionError(
                f"Index {self.index} is outside a text of {n} tokens; use an index in {-n}..{n - 1} "
                "(or 'last'), or filter out the short prompts."
            )
        return [i]


def _same(tok: str, target: str) -> bool:
    return tok.strip().lstrip("Ġ▁") == target.strip()


@dataclass(frozen=True)
class Match(Position):
    """``window`` tokens starting ``offset`` tokens from the ``occurrence``-th match of ``token``.

    ``occurrence=-1`` takes the last match. Token text is compared without surrounding
    whitespace (and BPE space markers), so ``"Wait"`` matches ``" Wait"``.
    """

    token: str
    offset: int = 0
    window: int = 1
    occurrence: int = 0

    def __post_init__(self) -> None:
        if self.window < 1:
            raise PositionError(
                f"Match window must be >= 1, got {self.window} (token {self.token!r}); write "
                "match:TOKEN:OFFSET:WINDOW with WINDOW >= 1."
            )

    @property
    def key(self) -> str:
        key = f"match:{self.token}"
        if self.offset or self.window != 1 or self.occurrence:
            key += f":{self.offset}:{self.window}"
        if self.occurrence:
            key += f":{self.occurrence}"
        return key

    @property
    def single(self) -> bool:
        return self.window == 1

    def resolve(
        self,
        tokens: Sequence[str],
        spans: Mapping[str, tuple[str, str]] | None = None,
        roles: Sequence[str] | None = None,
    ) -> list[int]:
        hits = [i for i, t in enumerate(tokens) if _same(t, self.token)]
        if not hits:
            preview = " ".join(repr(t) for t in tokens[:20])
            raise PositionError(
                f"Token {self.token!r} does not occur in the text (tokens: {preview}{' ...' if len(tokens) > 20 else ''})."
                " Check the spelling or use a position that exists in every prompt."
            )
        try:
            anchor = hits[self.occurrence]
        except IndexError:
            raise PositionError(
                f"Token {self.token!r} occurs {len(hits)} time(s); occurrence {self.occurrence} does not exist "
                f"(valid: {-len(hits)}..{len(hits) - 1}, -1 for the last)."
            ) from None
        start = anchor + self.offset
        idx = list(range(start, start + self.window))
        if idx[0] < 0 or idx[-1] >= len(tokens):
            raise PositionError(
                f"Window {idx[0]}..{idx[-1]} around {self.token!r} (at {anchor}) falls outside the text "
                f"of {len(tokens)} tokens."
            )
        return idx


@dataclass(frozen=True)
class Span(Position):
    """A named span declared by the task (``task.spans[name] = (start_token, end_token)``)."""

    name: str

    @property
    def key(self) -> str:
        return f"span:{self.name}"

    def resolve(
        self,
        tokens: Sequence[str],
        spans: Mapping[str, tuple[str, str]] | None = None,
        roles: Sequence[str] | None = None,
    ) -> list[int]:
        if not spans or self.name not in spans:
            raise PositionError(
                f"Span {self.name!r} is not declared by the task. Declared spans: {sorted(spans or {})}."
            )
        start_tok, end_tok = spans[self.name]
        starts = [i for i, t in enumerate(tokens) if _same(t, start_tok)]
        if not starts:
            raise PositionError(
                f"Span {self.name!r} starts at {start_tok!r}, which does not occur in the text. If the span "
                "lies in the reasoning, collect with text='prompt+trace'."
            )
        s = starts[0]
        if not end_tok:
            return list(range(s, len(tokens)))
        ends = [i for i, t in enumerate(tokens) if i > s and _same(t, end_tok)]
        e = ends[0] if ends else len(tokens) - 1
        return list(range(s, e + 1))


def _question_rows(tokens: Sequence[str], roles: Sequence[str] | None, key: str) -> list[int]:
    if roles is None or len(roles) != len(tokens) or "unknown" in roles:
        raise PositionError(
            f"Position {key!r} needs the role of every prompt token (which tokens are the question's); "
            "those come from a prompt protocol over a fast tokenizer (collect_activations gives them). "
            "Use 'last' or 'match:TOKEN' instead, or a fast tokenizer."
        )
    rows = [i for i, r in enumerate(roles) if r == "question"]
    if not rows:
        raise PositionError(
            f"Position {key!r}: no token of the prompt is the question's (the chat template did not "
            "write the question text verbatim). Use 'last' or 'match:TOKEN' instead."
        )
    return rows


@dataclass(frozen=True)
class QuestionEnd(Position):
    """The last token of the question inside the rendered prompt (before the assistant turn,
    exemplars and prefill): the same content token in every variant, whatever its template."""

    @property
    def key(self) -> str:
        return "question_end"

    @property
    def single(self) -> bool:
        return True

    @property
    def needs_roles(self) -> bool:
        return True

    def resolve(
        self,
        tokens: Sequence[str],
        spans: Mapping[str, tuple[str, str]] | None = None,
        roles: Sequence[str] | None = None,
    ) -> list[int]:
        return [_question_rows(tokens, roles, self.key)[-1]]


@dataclass(frozen=True)
class Question(Position):
    """Every token of the question (template, exemplar and prefill tokens excluded)."""

    @property
    def key(self) -> str:
        return "question"

    @property
    def needs_roles(self) -> bool:
        return True

    def resolve(
        self,
        tokens: Sequence[str],
        spans: Mapping[str, tuple[str, str]] | None = None,
        roles: Sequence[str] | None = None,
    ) -> list[int]:
        return _question_rows(tokens, roles, self.key)


def parse_position(spec: str | int | Position) -> Position:
    """Parse ``last``, ``all``, an integer, ``match:TOKEN[:OFFSET:WINDOW[:OCCURRENCE]]``, ``span:NAME``,
    ``question_end`` or ``question``."""
    if isinstance(spec, Position):
        return spec
    if isinstance(spec, int):
        return Index(spec)
    s = str(spec).strip()
    if s == "last":
        return Last()
    if s == "all":
        return All()
    if s == "question_end":
        return QuestionEnd()
    if s == "question":
        return Question()
    if s.lstrip("-").isdigit():
        return Index(int(s))
    if s.startswith("span:") and len(s) > 5:
        return Span(s[5:])
    if s.startswith("match:") and len(s) > 6:
        body = s[6:]
        # the token itself may be ':'; split from the right on numeric fields only
        parts = body.split(":")
        nums: list[int] = []
        while len(parts) > 1 and parts[-1].lstrip("-").isdigit() and len(nums) < 3:
            nums.insert(0, int(parts.pop()))
        token = ":".join(parts)
        if len(nums) == 1:
            raise PositionError(f"Position {s!r}: give both OFFSET and WINDOW (match:TOKEN:OFFSET:WINDOW).")
        offset, window, occ = (nums + [0, 1, 0][len(nums) :])[:3] if nums else (0, 1, 0)
        return Match(token, offset, window, occ)
    raise PositionError(
        f"Unknown position {spec!r}. Valid: 'last', 'all', an integer index, "
        "'match:TOKEN[:OFFSET:WINDOW]' (e.g. 'match:=' or 'match:Wait:-12:4'), 'span:NAME', "
        "'question_end' or 'question'."
    )


def parse_positions(spec: str | int | Position | Sequence[str | int | Position]) -> tuple[Position, ...]:
    """Parse one position or a comma-separated / list of positions."""
    if isinstance(spec, str) and "," in spec:
        return tuple(parse_position(p) for p in spec.split(","))
    if isinstance(spec, str | int | Position):
        return (parse_position(spec),)
    return tuple(parse_position(p) for p in spec)
