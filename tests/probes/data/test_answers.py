"""Final answers compared as numbers: hand cases from how GSM8K and MATH answers are written."""

from __future__ import annotations

from fractions import Fraction

import pytest

from probes.data.answers import boxed, exact_number, final_answer, has_worked_steps, numbers_equal, to_number


@pytest.mark.parametrize(
    "text,want",
    [
        ("She has 3 + 4 = 7 apples.\n#### 7", "7"),
        ("#### 1,000", "1000"),
        ("The answer is 1,234.", "1234"),
        ("the answer is 18 dollars, not 20", "18"),
        ("answer: -5.", "-5"),
        ("It costs $18 in total", "18"),
        ("It fell to −3 degrees", "-3"),
        ("so x = \\boxed{\\frac{3}{4}}", "3/4"),
        ("first \\boxed{2}, then \\boxed{18}", "18"),
        ("half: 1/2", "1/2"),
        ("so 0.75", "0.75"),
        ("no number here", None),
        ("#### none", None),
    ],
)
def test_final_answer(text: str, want: str | None) -> None:
    assert final_answer(text) == want


def test_to_number_and_equivalence() -> None:
    assert to_number("3/4") == to_number("0.75") == Fraction(3, 4)
    assert to_number("$1,000") == 1000 and to_number("50%") == 50 and to_number("+7") == 7
    assert to_number("1/0") is None and to_number("x") is None and to_number(None) is None
    assert numbers_equal("1,000", "1000.0") and numbers_equal("1/2", "0.5") and not numbers_equal("7", "8")
    assert numbers_equal("x+1", "x+1") and not numbers_equal(None, "7")
    assert exact_number("\\frac{3}{4}") == Fraction(3, 4) and exact_number("x+1") is None


def test_boxed_balances_braces() -> None:
    assert boxed("a \\boxed{\\frac{1}{2}} b") == "\\frac{1}{2}"
    assert boxed("no box") is None and boxed("\\boxed{open") is None


def test_worked_steps_are_not_the_answer_marker() -> None:
    assert not has_worked_steps("#### 7") and not has_worked_steps("7")
    assert has_worked_steps("3 + 4 = 7, so 7. #### 7") and has_worked_steps("2*3 is 6")
