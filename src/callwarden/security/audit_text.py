"""Text and details as they enter the audit log: encoded, so a log viewer cannot be tricked.

A username typed by an attacker ("alice\\r\\n2026-01-01 admin login ok", ANSI escapes that
repaint a terminal, a right-to-left override that reverses what follows) must show up in the
log as what it was, not as what it pretends to be. Every text field of an entry and every
string (key or value) inside its details is encoded before it is stored, by these rules:

- a backslash becomes two backslashes, so encoded text can always be read back unambiguously;
- a character of Unicode category Cc (C0 and C1 controls, DEL), Cf (format characters: the
  bidirectional overrides and isolates, zero-width characters, tags), Cs (lone surrogates),
  Zl or Zp (U+2028, U+2029) becomes `\\uXXXX` (four lowercase hex digits) or, above U+FFFF,
  `\\UXXXXXXXX` (eight);
- text longer than its field's limit is cut, and `\\…` (a backslash and U+2026, which no
  encoded text can otherwise contain) marks the cut. The limit counts encoded characters.

The hash of an entry covers the encoded text, so verifying an entry never re-encodes anything
and does not depend on the Unicode version of the Python that verifies.

Details are JSON objects of strings, integers, finite floats, booleans, nulls, lists and
objects. Values under a key that names a secret (password, secret, token, ha1, totp, recovery)
are replaced by `"[redacted]"`: before/after snapshots of a user must never carry a hash.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from callwarden.domain.errors import JsonValue, ValidationFailed

ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
TRUNCATION_MARK = "\\\u2026"
REDACTED = "[redacted]"
SECRET_KEY_MARKERS = ("password", "secret", "token", "ha1", "totp", "recovery")

MAX_DETAILS_KEY_LENGTH = 128
MAX_DETAILS_STRING_LENGTH = 4096
MAX_DETAILS_DEPTH = 8
MAX_DETAILS_BYTES = 65_536


def _encode_character(character: str) -> str:
    if character == "\\":
        return "\\\\"
    if unicodedata.category(character) not in ESCAPED_CATEGORIES:
        return character
    code = ord(character)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def encode_text(text: str, limit: int) -> str:
    """`text` encoded as described above and cut to at most `limit` characters."""
    if limit < len(TRUNCATION_MARK):
        raise ValueError(f"limit {limit} is too small for the truncation mark")
    pieces: list[str] = []
    length = 0
    for position, character in enumerate(text):
        piece = _encode_character(character)
        if length + len(piece) > limit:
            return _cut(pieces, length, limit)
        pieces.append(piece)
        length += len(piece)
        if length == limit and position + 1 < len(text):
            return _cut(pieces, length, limit)
    return "".join(pieces)


def _cut(pieces: list[str], length: int, limit: int) -> str:
    """Drop whole encoded pieces until the mark fits (an escape is never cut in half)."""
    while pieces and length + len(TRUNCATION_MARK) > limit:
        length -= len(pieces.pop())
    return "".join(pieces) + TRUNCATION_MARK


def encode_optional(text: str | None, limit: int) -> str | None:
    return None if text is None else encode_text(text, limit)


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in SECRET_KEY_MARKERS)


def _invalid(path: str, message: str) -> ValidationFailed:
    return ValidationFailed(
        f"audit details {path}: {message}",
        error_id="audit_details_invalid",
        details={"field": "details", "path": path},
    )


def _encode_value(value: object, path: str, depth: int) -> JsonValue:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _invalid(path, "numbers must be finite")
        return value
    if isinstance(value, str):
        return encode_text(value, MAX_DETAILS_STRING_LENGTH)
    if depth >= MAX_DETAILS_DEPTH:
        raise _invalid(path, f"nested deeper than {MAX_DETAILS_DEPTH} levels")
    if isinstance(value, Mapping):
        return _encode_object(value, path, depth + 1)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [
            _encode_value(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)
        ]
    raise _invalid(path, f"{type(value).__name__} is not a JSON value")


def _encode_object(value: Mapping[Any, object], path: str, depth: int) -> dict[str, JsonValue]:
    encoded: dict[str, JsonValue] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise _invalid(path, f"key {key!r} is not a string")
        encoded_key = encode_text(key, MAX_DETAILS_KEY_LENGTH)
        if encoded_key in encoded:
            raise _invalid(path, f"two keys encode to {encoded_key!r}")
        child = f"{path}.{encoded_key}"
        if item is not None and _is_secret_key(key):
            encoded[encoded_key] = REDACTED
        else:
            encoded[encoded_key] = _encode_value(item, child, depth)
    return encoded


def encode_details(details: Mapping[str, object]) -> dict[str, JsonValue]:
    """Details as stored: strings encoded, secrets redacted, size and depth bounded."""
    encoded = _encode_object(details, "$", 0)
    size = len(json.dumps(encoded, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_DETAILS_BYTES:
        raise _invalid("$", f"{size} bytes is over the limit of {MAX_DETAILS_BYTES}")
    return encoded
