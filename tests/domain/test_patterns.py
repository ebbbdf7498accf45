from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callwarden.domain.patterns import (
    DialPattern,
    InvalidDialPattern,
    compile_dial_pattern,
    matches_any,
)

MATCHES = [
    ("0[1-9]XXXXXXXX", "0312345678", True),
    ("0[1-9]XXXXXXXX", "0012345678", False),
    ("0[1-9]XXXXXXXX", "031234567", False),
    ("0[1-9]XXXXXXXX", "03123456789", False),
    ("NXXNXXXXXX", "2125551234", True),
    ("NXXNXXXXXX", "1125551234", False),
    ("NXXNXXXXXX", "2121551234", False),
    ("Z", "0", False),
    ("Z", "1", True),
    ("Z", "9", True),
    ("[135]", "3", True),
    ("[135]", "4", False),
    ("[0-36-8]", "2", True),
    ("[0-36-8]", "5", False),
    ("[0-36-8]", "7", True),
    ("00.", "00", False),
    ("00.", "0049301234", True),
    ("00.", "00x", False),
    ("+49.", "+4930123", True),
    ("+49.", "4930123", False),
    ("1XXX", "1001", True),
    ("*7X", "*72", True),
    ("*7X", "#72", False),
    ("#", "#", True),
    ("X", "٣", False),
    ("1001", "1001", True),
    ("1001", "10010", False),
    ("1001", " 1001", False),
    ("1001", "1001\n", False),
]


@pytest.mark.parametrize(("pattern", "number", "expected"), MATCHES)
def test_pattern_matches_whole_number(pattern: str, number: str, expected: bool) -> None:
    assert DialPattern.parse(pattern).matches(number) is expected


REFUSED = [
    ("", "invalid dial pattern '': it is empty"),
    ("0[1-9", "invalid dial pattern '0[1-9': unclosed '[' at position 2"),
    ("0[]X", "invalid dial pattern '0[]X': empty '[]' at position 2"),
    ("[9-1]", "invalid dial pattern '[9-1]': invalid range '9-1' at position 2"),
    ("[1-]", "invalid dial pattern '[1-]': unfinished range at position 3"),
    (
        "[a]",
        "invalid dial pattern '[a]': 'a' inside '[...]' (only digits and ranges) at position 2",
    ),
    ("0.X", "invalid dial pattern '0.X': '.' before the end at position 2"),
    (".", "invalid dial pattern '.': '.' alone at position 1"),
    ("0x12", "invalid dial pattern '0x12': unexpected character 'x' at position 2"),
    ("1+2", "invalid dial pattern '1+2': unexpected character '+' at position 2"),
    ("_0X.", "invalid dial pattern '_0X.': unexpected character '_' at position 1"),
    ("0X!", "invalid dial pattern '0X!': unexpected character '!' at position 3"),
    ("0|1", "invalid dial pattern '0|1': unexpected character '|' at position 2"),
    ("0(1)", "invalid dial pattern '0(1)': unexpected character '(' at position 2"),
    ("X{3}", "invalid dial pattern 'X{3}': unexpected character '{' at position 2"),
    ("0X ", "invalid dial pattern '0X ': unexpected character ' ' at position 3"),
]


@pytest.mark.parametrize(("pattern", "message"), REFUSED)
def test_invalid_pattern_is_refused_with_its_position(pattern: str, message: str) -> None:
    with pytest.raises(InvalidDialPattern) as caught:
        DialPattern.parse(pattern)
    assert caught.value.message == message
    assert caught.value.error_id == "invalid_dial_pattern"


def test_overlong_pattern_is_refused() -> None:
    with pytest.raises(InvalidDialPattern, match="longer than 64 characters"):
        DialPattern.parse("X" * 65)


def test_compiled_regex_is_anchored_and_has_no_user_repetition() -> None:
    assert compile_dial_pattern("0[1-9]XX.").pattern == "0[123456789][0-9][0-9][0-9]+"


def test_patterns_compare_by_text() -> None:
    assert DialPattern.parse("0X") == DialPattern.parse("0X")
    assert DialPattern.parse("0X") != DialPattern.parse("0N")
    assert str(DialPattern.parse("0X")) == "0X"


def test_empty_allow_list_allows_nothing() -> None:
    assert not matches_any([], "1001")
    assert matches_any([DialPattern.parse("2XXX"), DialPattern.parse("1XXX")], "1001")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789XNZ[]-.+*#xa ()", max_size=20), st.text(max_size=20))
def test_any_text_parses_or_is_refused_with_a_typed_error(pattern: str, number: str) -> None:
    try:
        parsed = DialPattern.parse(pattern)
    except InvalidDialPattern as error:
        assert error.message.startswith("invalid dial pattern")
        return
    if parsed.matches(number):
        assert number and all(char in "0123456789*#+" for char in number)
        assert "+" not in number[1:]
