"""Stateless error responses to requests that failed to parse (sans-IO).

RFC 3261 8.2 / RFC 4475: a malformed request is answered with 400 (or 505, 513...) when
enough of it is readable for the sender to match the response - a request line, a Via and a
CSeq - copying Via, From, To, Call-ID and CSeq as they are (8.2.6.2; RFC 4475 3.3.1 wants a
400 even when From, To and Call-ID are missing). Anything less is silently dropped, and so are
responses and ACKs.
"""

from __future__ import annotations

import hashlib

__all__ = ["MAX_SALVAGE_BYTES", "salvage_error_response"]

MAX_SALVAGE_BYTES = 65536
"""Only this much of a broken message is looked at."""

_CANONICAL = {
    "via": "Via",
    "v": "Via",
    "from": "From",
    "f": "From",
    "to": "To",
    "t": "To",
    "call-id": "Call-ID",
    "i": "Call-ID",
    "cseq": "CSeq",
}
_SINGLE = ("From", "To", "Call-ID", "CSeq")
_TOKEN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~")


def _clean(value: str) -> str | None:
    """A header value safe to echo: no control characters besides tab."""
    value = value.strip(" \t")
    if not value or any((ord(char) < 32 and char != "\t") or ord(char) == 127 for char in value):
        return None
    return value


def _header_lines(text: str) -> tuple[str, list[str]] | None:
    """Split into the start line and unfolded header lines (RFC 3261 7.3.1)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        return None
    start = lines[0]
    unfolded: list[str] = []
    for line in lines[1:]:
        if not line.strip():
            break
        if line[0] in " \t" and unfolded:
            unfolded[-1] += " " + line.strip()
        else:
            unfolded.append(line)
    return start, unfolded


def _request_method(start: str) -> str | None:
    """The method of a request line; LWS inside the Request-URI is tolerated (RFC 4475 3.1.2.8)."""
    parts = start.split()
    if len(parts) < 3 or not parts[-1].upper().startswith("SIP/"):
        return None
    method = parts[0]
    if method.upper().startswith("SIP/") or not set(method) <= _TOKEN_CHARS:
        return None
    return method


def salvage_error_response(data: bytes, status: int, reason: str) -> bytes | None:
    """A ``status`` response built from what can be read of ``data``, or None to drop it."""
    head = data[:MAX_SALVAGE_BYTES]
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = head.find(separator)
        if end >= 0:
            head = head[:end]
            break
    split = _header_lines(head.decode("utf-8", "replace"))
    if split is None:
        return None
    start, lines = split
    method = _request_method(start)
    if method is None or method == "ACK":
        return None
    found: dict[str, list[str]] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        canonical = _CANONICAL.get(name.strip(" \t").lower())
        if not colon or canonical is None:
            continue
        cleaned = _clean(value)
        if cleaned is None:
            continue
        found.setdefault(canonical, []).append(cleaned)
    if "Via" not in found or "CSeq" not in found:
        return None
    if "To" in found:
        to = found["To"][0]
        if ";tag=" not in to.lower().replace(" ", ""):
            # deterministic, so a retransmission gets the same tag (RFC 3261 8.2.7)
            tag = hashlib.sha256(head).hexdigest()[:12]
            found["To"] = [f"{to};tag={tag}"]
    safe_reason = _clean(reason) or "Bad Request"
    out = [f"SIP/2.0 {status} {safe_reason}"]
    out.extend(f"Via: {via}" for via in found["Via"])
    out.extend(f"{name}: {found[name][0]}" for name in _SINGLE if name in found)
    out.append("Content-Length: 0")
    return ("\r\n".join(out) + "\r\n\r\n").encode("utf-8")
