"""Dial patterns: the Asterisk-style number patterns of outbound allow-lists and trunk routes.

Syntax (one pattern matches a whole dialled number, never a part of it):

- `0`-`9`, `*`, `#`: that character; `+` is allowed as the first character only (E.164)
- `X`: any digit 0-9; `N`: 2-9; `Z`: 1-9
- `[...]`: one digit from a set of digits and ranges, e.g. `[1-9]`, `[135]`, `[0-36-8]`
- `.`: one or more further digits; only as the last character

Anything else is refused with an `InvalidDialPattern` naming the position at fault. A pattern
compiles to an anchored regular expression with no repetition but the final `.`, so matching
is linear in the number's length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from callwarden.domain.errors import ValidationFailed

MAX_PATTERN_LENGTH = 64

_CLASSES = {"X": "[0-9]", "N": "[2-9]", "Z": "[1-9]"}
_LITERALS = frozenset("0123456789*#")


class InvalidDialPattern(ValidationFailed):
    """A dial pattern that does not follow the syntax above."""

    default_error_id = "invalid_dial_pattern"


def _refuse(text: str, position: int, problem: str) -> InvalidDialPattern:
    return InvalidDialPattern(
        f"invalid dial pattern {text!r}: {problem} at position {position + 1}",
        details={"pattern": text, "position": position + 1},
    )


def _compile_set(text: str, start: int) -> tuple[str, int]:
    """Compile the `[...]` starting at `start`; return the regex class and the index after `]`."""
    end = text.find("]", start + 1)
    if end == -1:
        raise _refuse(text, start, "unclosed '['")
    body = text[start + 1 : end]
    if not body:
        raise _refuse(text, start, "empty '[]'")
    position = 0
    digits: list[str] = []
    while position < len(body):
        here = start + 1 + position
        char = body[position]
        if not char.isdigit() or not char.isascii():
            raise _refuse(text, here, f"{char!r} inside '[...]' (only digits and ranges)")
        if position + 1 < len(body) and body[position + 1] == "-":
            if position + 2 >= len(body):
                raise _refuse(text, here + 1, "unfinished range")
            upper = body[position + 2]
            if not upper.isdigit() or not upper.isascii() or upper < char:
                raise _refuse(text, here, f"invalid range '{char}-{upper}'")
            digits.extend(str(digit) for digit in range(int(char), int(upper) + 1))
            position += 3
        else:
            digits.append(char)
            position += 1
    return "[" + "".join(sorted(set(digits))) + "]", end + 1


def compile_dial_pattern(text: str) -> re.Pattern[str]:
    """Compile `text` to an anchored regular expression, or raise `InvalidDialPattern`."""
    if not text:
        raise InvalidDialPattern("invalid dial pattern '': it is empty", details={"pattern": text})
    if len(text) > MAX_PATTERN_LENGTH:
        raise InvalidDialPattern(
            f"invalid dial pattern {text[:20]!r}...: longer than {MAX_PATTERN_LENGTH} characters",
            details={"pattern": text},
        )
    parts: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char in _LITERALS:
            parts.append(re.escape(char))
        elif char == "+" and index == 0:
            parts.append(r"\+")
        elif char in _CLASSES:
            parts.append(_CLASSES[char])
        elif char == "[":
            regex_class, index = _compile_set(text, index)
            parts.append(regex_class)
            continue
        elif char == ".":
            if index != len(text) - 1:
                raise _refuse(text, index, "'.' before the end")
            if index == 0:
                raise _refuse(text, index, "'.' alone")
            parts.append("[0-9]+")
        else:
            raise _refuse(text, index, f"unexpected character {char!r}")
        index += 1
    return re.compile("".join(parts))


@dataclass(frozen=True)
class DialPattern:
    """A validated dial pattern; two patterns are equal when their texts are."""

    text: str
    regex: re.Pattern[str] = field(compare=False, repr=False)

    @classmethod
    def parse(cls, text: str) -> DialPattern:
        return cls(text=text, regex=compile_dial_pattern(text))

    def matches(self, number: str) -> bool:
        """Whether the whole of `number` matches this pattern."""
        return self.regex.fullmatch(number) is not None

    def __str__(self) -> str:
        return self.text


def matches_any(patterns: Iterable[DialPattern], number: str) -> bool:
    """Whether any of `patterns` matches `number`; an empty list allows nothing."""
    return any(pattern.matches(number) for pattern in patterns)
