"""The one unknown-key check: names every unknown key, the valid ones and the close matches."""

from __future__ import annotations

import pytest

from probes.errors import ElicitError, FamilyError
from probes.models.config_keys import check_keys


def test_known_keys_pass() -> None:
    check_keys({"a": 1, "b": 2}, ["a", "b", "c"], "t")
    check_keys([], [], "t")


def test_unknown_keys_are_named_with_suggestions() -> None:
    with pytest.raises(ElicitError) as err:
        check_keys({"path": 1, "revison": 2, "zzz": 3}, {"path", "revision"}, "variant 'sft' of f.toml")
    assert str(err.value) == (
        "Unknown key(s) ['revison', 'zzz'] in variant 'sft' of f.toml. Valid keys: ['path', 'revision']. "
        "Did you mean 'revision' for 'revison'? Remove or rename the unknown key(s)."
    )


def test_the_error_class_and_word_are_the_callers() -> None:
    with pytest.raises(
        FamilyError, match=r"^Unknown setting\(s\) \['x'\] in here. Valid settings: \['y'\]. Remove"
    ):
        check_keys(["x"], ["y"], "here", error=FamilyError, what="setting")
