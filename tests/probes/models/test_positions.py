"""Positions: every kind resolved on a hand-made token list, and the spellings parsed."""

from __future__ import annotations

import pytest

from probes.errors import PositionError
from probes.models.positions import All, Index, Last, Match, Span, parse_position, parse_positions

#        0        1    2     3       4     5    6    7    8     9
TOKS = ["<bos>", "N", "Ġ1", "0", "ĠWait", ",", "=", "#", "▁1", ">"]
SPANS = {"pad": ("#", ">"), "tail": ("=", ""), "gone": ("?", ">")}


def test_each_kind_resolves_to_the_hand_counted_indices() -> None:
    assert Last().resolve(TOKS) == [9]
    assert All().resolve(TOKS) == list(range(10))
    assert Index(2).resolve(TOKS) == [2] and Index(-2).resolve(TOKS) == [8]
    assert Match("=").resolve(TOKS) == [6]
    assert Match("Wait").resolve(TOKS) == [4]  # the BPE space marker is ignored
    assert Match("1").resolve(TOKS) == [2] and Match("1", occurrence=-1).resolve(TOKS) == [8]
    assert Match("Wait", offset=-2, window=3).resolve(TOKS) == [2, 3, 4]
    assert Span("pad").resolve(TOKS, SPANS) == [7, 8, 9]
    assert Span("tail").resolve(TOKS, SPANS) == [6, 7, 8, 9]  # an empty end token: to the end


def test_single_and_keys() -> None:
    assert Last().single and Index(0).single and Match("=").single
    assert not All().single and not Match("=", window=2).single and not Span("x").single
    assert [
        p.key
        for p in (Last(), All(), Index(-1), Match("="), Match("W", -3, 2), Match("W", 0, 1, 1), Span("s"))
    ] == ["last", "all", "-1", "match:=", "match:W:-3:2", "match:W:0:1:1", "span:s"]


def test_spellings_round_trip_through_the_key() -> None:
    for spec in ("last", "all", "-2", "7", "match:=", "match:Wait:-12:4", "match:W:0:1:1", "span:scratchpad"):
        assert parse_position(spec).key == spec
    assert parse_position("match::") == Match(":")  # the token itself may be ':'
    assert parse_position("match:a:b:1:2") == Match("a:b", 1, 2)
    assert parse_position(3) == Index(3) and parse_position(Last()) == Last()
    assert parse_positions("last,match:=") == (Last(), Match("="))
    assert parse_positions(["all", -1]) == (All(), Index(-1))


def test_errors_name_the_position_and_the_fix() -> None:
    with pytest.raises(
        PositionError, match=r"Index 10 is outside a text of 10 tokens; use an index in -10..9"
    ):
        Index(10).resolve(TOKS)
    with pytest.raises(PositionError, match=r"Token '\?' does not occur in the text \(tokens: '<bos>'"):
        Match("?").resolve(TOKS)
    with pytest.raises(
        PositionError, match=r"occurs 2 time\(s\); occurrence 2 does not exist \(valid: -2..1"
    ):
        Match("1", occurrence=2).resolve(TOKS)
    with pytest.raises(PositionError, match="Window 8..10 around '#'"):
        Match("#", offset=1, window=3).resolve(TOKS)
    with pytest.raises(PositionError, match="Match window must be >= 1, got 0"):
        Match("=", window=0)
    with pytest.raises(
        PositionError,
        match=r"Span 'x' is not declared by the task. Declared spans: \['gone', 'pad', 'tail'\]",
    ):
        Span("x").resolve(TOKS, SPANS)
    with pytest.raises(PositionError, match="starts at '\\?', which does not occur.*prompt\\+trace"):
        Span("gone").resolve(TOKS, SPANS)
    with pytest.raises(PositionError, match="empty text"):
        Last().resolve([])
    with pytest.raises(PositionError, match="give both OFFSET and WINDOW"):
        parse_position("match:=:3")
    with pytest.raises(PositionError, match="Unknown position 'first'. Valid: 'last', 'all'"):
        parse_position("first")
