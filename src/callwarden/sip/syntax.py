"""Lexical building blocks of the SIP grammar (RFC 3261 25.1) shared by the parsers.

Every scanner here is linear in its input: regular expressions are single character classes or
alternations of disjoint classes, so a hostile header cannot trigger backtracking blow-ups.
"""

from __future__ import annotations

import re

from callwarden.sip.errors import SipParseError

Params = tuple[tuple[str, str | None], ...]

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = r"A-Za-z0-9\-.!%*_+`'~"  # noqa: S105 - a character class, not a secret
TOKEN = re.compile(f"[{TOKEN_CHARS}]+")
# gen-value = token / host / quoted-string (host adds ":" "[" "]" for IPv6 literals)
_GEN_VALUE = re.compile(f"[{TOKEN_CHARS}:\\[\\]]+")
_QUOTED_SPECIAL = re.compile(r'["\\]')
_COMMA_SPECIAL = re.compile(r'[",<]')
_PARAM_SPECIAL = re.compile(r'[";]')
_LWS = " \t"


def is_token(text: str) -> bool:
    """True when ``text`` is a non-empty RFC 3261 token."""
    return TOKEN.fullmatch(text) is not None


def skip_quoted(text: str, start: int) -> int:
    """Index just past the quoted-string opening at ``text[start]`` (RFC 3261 25.1 quoted-pair)."""
    position = start + 1
    while True:
        match = _QUOTED_SPECIAL.search(text, position)
        if match is None:
            raise SipParseError("unterminated quoted string")
        index = match.start()
        if text[index] == "\\":
            if index + 1 >= len(text):
                raise SipParseError("unterminated quoted string")
            position = index + 2
        else:
            return index + 1


def unquote(quoted: str) -> str:
    """Content of a quoted-string (with its quotes) with every quoted-pair resolved."""
    inner = quoted[1:-1]
    if "\\" not in inner:
        return inner
    out: list[str] = []
    index = 0
    while index < len(inner):
        char = inner[index]
        if char == "\\" and index + 1 < len(inner):
            out.append(inner[index + 1])
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def quote(text: str) -> str:
    """A quoted-string for ``text``: '"' and '\\' and control characters become quoted-pairs;
    CR and LF (which no quoted-pair may carry) become spaces so nothing can end a header line."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out: list[str] = ['"']
    for char in text:
        if char in "\r\n":
            out.append(" ")
        elif char in '"\\' or ord(char) < 0x20 or ord(char) == 0x7F:
            out.append("\\" + char)
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def split_commas(text: str) -> list[str]:
    """Split a header value at top-level commas (not inside quotes or <>), dropping empty items."""
    if '"' not in text and "<" not in text:
        parts = [part.strip(_LWS) for part in text.split(",")]
        return [part for part in parts if part] if "" in parts else parts
    items: list[str] = []
    start = 0
    position = 0
    while True:
        match = _COMMA_SPECIAL.search(text, position)
        if match is None:
            break
        index = match.start()
        char = text[index]
        if char == '"':
            position = skip_quoted(text, index)
        elif char == "<":
            close = text.find(">", index)
            if close < 0:
                raise SipParseError("unterminated '<' in header value")
            position = close + 1
        else:
            items.append(text[start:index])
            start = position = index + 1
    items.append(text[start:])
    return [item for item in (part.strip(_LWS) for part in items) if item]


def split_params(text: str) -> list[str]:
    """Split ``text`` at top-level ';' (not inside quoted strings). Empty items are kept."""
    if '"' not in text:
        return text.split(";")
    items: list[str] = []
    start = 0
    position = 0
    while True:
        match = _PARAM_SPECIAL.search(text, position)
        if match is None:
            break
        index = match.start()
        if text[index] == '"':
            position = skip_quoted(text, index)
        else:
            items.append(text[start:index])
            start = position = index + 1
    items.append(text[start:])
    return items


def parse_generic_params(items: list[str]) -> Params:
    """Parse ``generic-param`` items (RFC 3261 25.1: token [EQUAL gen-value]), LWS allowed around
    '='. Values are kept as written (a quoted-string keeps its quotes); names keep their case."""
    params: list[tuple[str, str | None]] = []
    for item in items:
        name, equal, value = item.partition("=")
        name = name.strip(_LWS)
        if TOKEN.fullmatch(name) is None:
            raise SipParseError(f"malformed parameter {item.strip(_LWS)!r}")
        if not equal:
            params.append((name, None))
            continue
        value = value.strip(_LWS)
        if value.startswith('"'):
            if skip_quoted(value, 0) != len(value):
                raise SipParseError(f"malformed value of parameter {name!r}")
        elif _GEN_VALUE.fullmatch(value) is None:
            raise SipParseError(f"malformed value of parameter {name!r}")
        params.append((name, value))
    return tuple(params)


_SIMPLE_PARAMS = re.compile(f"(?:;[{TOKEN_CHARS}]+(?:=[{TOKEN_CHARS}:\\[\\]]+)?)+")


def parse_param_text(text: str) -> Params:
    """Parse ``*( SEMI generic-param )`` given the text from the first ';' (or ``""``).

    The common shape (no LWS, no quoted values) is validated by one regular expression and split
    directly; anything else goes through :func:`parse_generic_params`."""
    if not text:
        return ()
    if _SIMPLE_PARAMS.fullmatch(text) is not None:
        return tuple(
            [
                (name, value if equal else None)
                for name, equal, value in [item.partition("=") for item in text[1:].split(";")]
            ]
        )
    stripped = text.lstrip(_LWS)
    if not stripped.startswith(";"):
        raise SipParseError(f"unexpected text before parameters: {text[:40]!r}")
    return parse_generic_params(split_params(stripped[1:]))


def find_param(params: Params, name: str) -> tuple[bool, str | None]:
    """(present, value) of the parameter ``name`` (case-insensitive, RFC 3261 7.3.1)."""
    lowered = name.lower()
    for key, value in params:
        if key.lower() == lowered:
            return True, value
    return False, None


def replace_params(params: Params, changes: dict[str, str | None]) -> Params:
    """``params`` with each name in ``changes`` set (replaced in place, or appended)."""
    result = list(params)
    for name, value in changes.items():
        lowered = name.lower()
        for index, (key, _) in enumerate(result):
            if key.lower() == lowered:
                result[index] = (key, value)
                break
        else:
            result.append((name, value))
    return tuple(result)


def remove_params(params: Params, names: tuple[str, ...]) -> Params:
    """``params`` without the parameters named (case-insensitive)."""
    lowered = {name.lower() for name in names}
    return tuple((key, value) for key, value in params if key.lower() not in lowered)


def format_params(params: Params) -> str:
    """``;name=value;flag`` text for ``params``."""
    return "".join(f";{key}" if value is None else f";{key}={value}" for key, value in params)


def parse_uint(text: str, what: str, maximum: int) -> int:
    """A decimal integer of at most ``maximum`` (RFC 3261 25.1 ``1*DIGIT``), else SipParseError."""
    # Bound the digit count before int() so hostile input cannot cost quadratic time.
    if text.isdigit() and text.isascii() and (len(text) < 10 or len(text.lstrip("0")) <= 10):
        value = int(text)
        if value <= maximum:
            return value
        raise SipParseError(f"{what} out of range: {text[:40]!r}")
    raise SipParseError(f"invalid {what} {text[:40]!r}")
