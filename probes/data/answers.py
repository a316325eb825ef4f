"""Final answers of math word problems, compared as numbers.

GSM8K references end in ``#### 42``; model completions write the answer many ways: ``1,234``,
``$18``, ``-3``, ``3/4``, ``0.75``, ``\\boxed{18}``, ``\\frac{3}{4}``, ``18 dollars``, "The answer
is 18.". :func:`final_answer` finds the final answer of a text (in this order: the last
``\\boxed{...}``, the number after ``####``, the number after "answer is", the last number) and
:func:`to_number` reads it as an exact :class:`~fractions.Fraction`, so ``0.5``, ``1/2`` and
``\\frac{1}{2}`` are the same answer and ``1,000`` equals ``1000``.

    >>> final_answer("3 + 4 = 7 apples, so she has $7.\\n#### 7")
    '7'
    >>> numbers_equal(final_answer("so x = \\\\boxed{\\\\frac{3}{4}}"), "0.75")
    True
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["boxed", "final_answer", "to_number", "exact_number", "numbers_equal", "has_worked_steps"]

# a number: optional sign, digits with optional thousands commas, optional decimals; or a plain fraction
_NUMBER = r"[-−+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:\s*/\s*\d+(?:\.\d+)?)?|[-−+]?\.\d+"
_NUM_RE = re.compile(_NUMBER)
_FRAC_RE = re.compile(r"\\[dt]?frac\s*\{\s*([^{}]+?)\s*\}\s*\{\s*([^{}]+?)\s*\}")
_ANSWER_IS = re.compile(r"answer\s*(?:is|:)\s*:?\s*", re.IGNORECASE)
_STEP_RE = re.compile(r"\d\s*[-+*/×x÷]\s*\$?\d|=")


def boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (balanced braces), or ``None``."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        return None
    depth = 0
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def _clean(num: str) -> str:
    return num.replace(",", "").replace("−", "-").replace(" ", "").lstrip("+")


def _first_number(text: str) -> str | None:
    """The first number (or ``\\frac{a}{b}``) of ``text``."""
    frac, m = _FRAC_RE.search(text), _NUM_RE.search(text)
    if frac and (m is None or frac.start() <= m.start()):
        return f"{_clean(frac.group(1))}/{_clean(frac.group(2))}"
    return _clean(m.group(0)).rstrip(".") if m else None


def final_answer(text: str) -> str | None:
    """The final answer of ``text`` as written (commas dropped), or ``None`` when it has none."""
    box = boxed(text)
    if box is not None:
        if _FRAC_RE.search(box):
            return _first_number(box)
        nums = _NUM_RE.findall(box)
        return _clean(nums[-1]) if nums else (box.strip() or None)
    if "####" in text:
        return _first_number(text.split("####", 1)[1])
    said = list(_ANSWER_IS.finditer(text))
    if said:
        found = _first_number(text[said[-1].end() :])
        if found is not None:
            return found
    nums = _NUM_RE.findall(text)
    return _clean(nums[-1]).rstrip(".") if nums else None


def to_number(answer: str | None) -> Fraction | None:
    """``answer`` as an exact number (``"1,234"``, ``"-3"``, ``"3/4"``, ``"0.75"``, ``"$18"``,
    ``"50%"`` -> 50), or ``None`` when it is not one.

    >>> to_number("3/4") == to_number("0.75") == Fraction(3, 4)
    True
    """
    if answer is None:
        return None
    text = _clean(answer.strip().strip("$").rstrip("%").rstrip("."))
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return Fraction(num) / Fraction(den) if Fraction(den) != 0 else None
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def exact_number(text: str) -> Fraction | None:
    r"""``text`` as a number only when the whole of it is one (``"3/4"``, ``"\frac{3}{4}"``,
    ``"-2"``); ``"x+1"`` is not.

    >>> exact_number("\\frac{3}{4}") == Fraction(3, 4), exact_number("x+1")
    (True, None)
    """
    frac = _FRAC_RE.fullmatch(text.strip())
    if frac:
        return to_number(f"{_clean(frac.group(1))}/{_clean(frac.group(2))}")
    return to_number(text)


def numbers_equal(a: str | None, b: str | None) -> bool:
    """Whether two answers are the same number (strings compared when either is not a number)."""
    x, y = to_number(a), to_number(b)
    if x is None or y is None:
        return a is not None and b is not None and a.strip() == b.strip()
    return x == y


def has_worked_steps(text: str) -> bool:
    """Whether ``text`` shows reasoning before its answer: an arithmetic step (``3 + 4``, ``= 7``)
    ahead of the final answer. A bare answer, with or without an answer marker, has none.

    >>> has_worked_steps("#### 7"), has_worked_steps("3 + 4 = 7, so 7 apples. #### 7")
    (False, True)
    """
    body = text.split("####", 1)[0]
    return bool(_STEP_RE.search(body))
