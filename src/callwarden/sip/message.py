"""SIP requests and responses: parsing, serialization and response construction.

``parse_message`` implements RFC 3261 7 (message format) and 18.3 (framing by Content-Length)
and checks the header fields every later layer relies on (8.1.1, 8.2.2): a message that comes back
from it has exactly one well-formed Call-ID, CSeq, From and To, at least one well-formed Via, and
for requests a CSeq method equal to the request method. Everything else is kept raw and parsed on
first access (RFC 4475 robustness: nothing here may raise anything but SipParseError on input).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypeAlias

from callwarden.sip.errors import SipError, SipParseError, reason_phrase
from callwarden.sip.framing import StreamFramer
from callwarden.sip.headermap import HEADER_NAMES, LAZY_LISTS, MULTI_VALUED, Headers, canonical_name
from callwarden.sip.headers import CSeq, NameAddress, Via
from callwarden.sip.syntax import TOKEN, TOKEN_CHARS, parse_uint, split_commas
from callwarden.sip.uri import FAST_SIP_URI_PATTERN, SipUri, Uri, fast_sip_uri, parse_uri

__all__ = [
    "Headers",
    "SipMessage",
    "SipRequest",
    "SipResponse",
    "StreamFramer",
    "make_error_response",
    "make_response",
    "parse_message",
]

DEFAULT_MAX_HEADER_BYTES = 65536
DEFAULT_MAX_BODY_BYTES = 1048576
DEFAULT_MAX_HEADER_FIELDS = 256
"""Header lines a message may have: a real request has a few dozen; 10,000 `Via` lines fit in
64 KB and would each become an entry (RFC 3261 21.5.14 513, SECURITY-NOTES T3)."""

_FOLD = re.compile(r"[ \t]*\r\n[ \t]+")
_VERSION = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_MAX_UINT32 = 2**32 - 1
_FAST_REQUEST_LINE = re.compile(f"([{TOKEN_CHARS}]+) {FAST_SIP_URI_PATTERN} SIP/2\\.0")


def _single(headers: Headers, key: str, name: str) -> str:
    values = headers.values_of(key)
    if len(values) != 1:
        raise SipParseError(f"missing {name}" if not values else f"more than one {name}")
    return values[0]


def _optional_single(headers: Headers, key: str, name: str) -> str | None:
    values = headers.values_of(key)
    if len(values) > 1:
        raise SipParseError(f"more than one {name}")
    return values[0] if values else None


def _call_id(headers: Headers) -> str:
    value = _single(headers, "call-id", "Call-ID")
    if not value or any(char in value for char in " \t"):
        raise SipParseError(f"malformed Call-ID {value[:60]!r}")
    return value


def _cseq(headers: Headers) -> CSeq:
    return CSeq.parse(_single(headers, "cseq", "CSeq"))


def _from(headers: Headers) -> NameAddress:
    return NameAddress.parse(_single(headers, "from", "From"))


def _to(headers: Headers) -> NameAddress:
    return NameAddress.parse(_single(headers, "to", "To"))


def _vias(headers: Headers) -> tuple[Via, ...]:
    values = headers.values_of("via")
    if not values:
        raise SipParseError("missing Via")
    return tuple([Via.parse(value) for value in values])


def _contacts(headers: Headers) -> tuple[NameAddress, ...] | None:
    """The Contact values; None for the wildcard ``*`` (RFC 3261 10.2.2)."""
    values = headers.values_of("contact")
    if len(values) == 1 and values[0] == "*":
        return None
    if "*" in values:
        raise SipParseError("wildcard Contact combined with other values")
    return tuple([NameAddress.parse(value) for value in values])


def _max_forwards(headers: Headers) -> int | None:
    value = _optional_single(headers, "max-forwards", "Max-Forwards")
    return None if value is None else parse_uint(value, "Max-Forwards", 255)


def _content_type(headers: Headers) -> str | None:
    value = _optional_single(headers, "content-type", "Content-Type")
    if value is None:
        return None
    kind, slash, subtype = value.partition(";")[0].lower().partition("/")
    kind, subtype = kind.strip(" \t"), subtype.strip(" \t")  # SLASH = SWS "/" SWS
    if not slash or TOKEN.fullmatch(kind) is None or TOKEN.fullmatch(subtype) is None:
        raise SipParseError(f"malformed Content-Type {value[:60]!r}")
    return f"{kind}/{subtype}"


def _expires(headers: Headers) -> int | None:
    value = _optional_single(headers, "expires", "Expires")
    return None if value is None else parse_uint(value, "Expires", _MAX_UINT32)


class _MessageFields:
    """The header-derived properties common to requests and responses (parsed lazily, cached)."""

    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str:
        """Call-ID (RFC 3261 20.8)."""
        return self.headers.cached("call-id", _call_id)

    @property
    def cseq(self) -> CSeq:
        """CSeq (RFC 3261 20.16)."""
        return self.headers.cached("cseq", _cseq)

    @property
    def from_(self) -> NameAddress:
        """From (RFC 3261 20.20)."""
        return self.headers.cached("from", _from)

    @property
    def to(self) -> NameAddress:
        """To (RFC 3261 20.39)."""
        return self.headers.cached("to", _to)

    @property
    def vias(self) -> list[Via]:
        """Every Via value, top first (RFC 3261 20.42)."""
        return list(self.headers.cached("via", _vias))

    @property
    def top_via(self) -> Via:
        """The topmost Via."""
        return self.headers.cached("via", _vias)[0]

    @property
    def contacts(self) -> list[NameAddress]:
        """Contact values (RFC 3261 20.10); empty when absent or for the wildcard ``*``."""
        contacts = self.headers.cached("contact", _contacts)
        return [] if contacts is None else list(contacts)

    @property
    def is_wildcard_contact(self) -> bool:
        """True for ``Contact: *`` (RFC 3261 10.2.2: remove all bindings)."""
        return self.headers.cached("contact", _contacts) is None

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards (RFC 3261 20.22), 0-255; None when absent."""
        return self.headers.cached("max-forwards", _max_forwards)

    @property
    def content_type(self) -> str | None:
        """The media type of Content-Type (RFC 3261 20.15), lower-cased, without parameters
        (``application/sdp``); None when absent. Raw value: ``headers.get("Content-Type")``."""
        return self.headers.cached("content-type", _content_type)

    @property
    def expires(self) -> int | None:
        """Expires (RFC 3261 20.19) in seconds; None when absent."""
        return self.headers.cached("expires", _expires)

    def release_parsed(self) -> None:
        """Drop the parsed header values (see :meth:`Headers.release_parsed`); nothing changes
        but the memory held until they are read again."""
        self.headers.release_parsed()

    def _serialize(self, start_line: str) -> bytes:
        lines = [start_line]
        length_written = False
        for key, name, value in self.headers.entries():
            if key == "content-length":
                if length_written:
                    continue
                length_written = True
                value = str(len(self.body))
            lines.append(f"{name}: {value}")
        if not length_written:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body


@dataclass(eq=True)
class SipRequest(_MessageFields):
    """A SIP request (RFC 3261 7.1)."""

    method: str
    uri: Uri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __bytes__(self) -> bytes:
        """Wire form: CRLF line endings, one line per header value, correct Content-Length."""
        line = f"{self.method} {self.uri} SIP/2.0"
        if "\r" in line or "\n" in line or TOKEN.fullmatch(self.method) is None:
            raise ValueError(f"cannot serialize Request-Line {line[:80]!r}")
        return self._serialize(line)


@dataclass(eq=True)
class SipResponse(_MessageFields):
    """A SIP response (RFC 3261 7.2)."""

    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def __bytes__(self) -> bytes:
        """Wire form: CRLF line endings, one line per header value, correct Content-Length."""
        reason = self.reason.replace("\r", " ").replace("\n", " ")
        return self._serialize(f"SIP/2.0 {self.status} {reason}")


SipMessage: TypeAlias = SipRequest | SipResponse


def _check_version(version: str) -> None:
    if version == "SIP/2.0":
        return
    if _VERSION.fullmatch(version) is None:
        raise SipParseError(f"malformed SIP version {version[:20]!r}")
    if version.upper() != "SIP/2.0":
        raise SipParseError(f"unsupported SIP version {version[:20]!r}", 505)


def _parse_start_line(line: str) -> tuple[str, Uri] | tuple[int, str]:
    """Request-Line (RFC 3261 7.1) or Status-Line (7.2). Several SP between the elements of a
    Request-Line are tolerated (RFC 4475 3.1.2.9/3.1.2.10); serialization writes single SP."""
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        _check_version(version)
        code, _, reason = rest.partition(" ")
        if len(code) != 3 or not code.isascii() or not code.isdigit() or code[0] not in "123456":
            raise SipParseError(f"invalid status code {code[:20]!r}")
        return int(code), reason
    fast = _FAST_REQUEST_LINE.fullmatch(line)
    if fast is not None:
        method, *uri_groups = fast.groups()
        fast_uri = fast_sip_uri(*uri_groups)
        if fast_uri is not None:
            return method, fast_uri
    parts = line.split(" ")
    if len(parts) != 3:
        parts = [part for part in parts if part]
        if len(parts) != 3:
            raise SipParseError("malformed Request-Line")
    method, uri_text, version = parts
    _check_version(version)
    if TOKEN.fullmatch(method) is None:
        raise SipParseError(f"malformed method {method[:40]!r}")
    uri = parse_uri(uri_text)
    if isinstance(uri, SipUri) and uri.headers:
        # RFC 3261 19.1.1 table 1: no headers in a Request-URI (RFC 4475 3.1.2.11).
        raise SipParseError("Request-URI must not contain headers")
    return method, uri


def _slow_name(name: str) -> tuple[str, str]:
    try:
        return canonical_name(name.rstrip(" \t"))
    except ValueError:
        raise SipParseError(f"malformed header name {name[:60]!r}") from None


def _header_entries(
    lines: list[str],
) -> tuple[list[tuple[str, str, str]], dict[str, list[str]], bool]:
    """Header lines (unfolded) to ``(key, name, value)`` entries, the key -> values index, and
    whether token lists were left unsplit for Headers to split when read."""
    unsplit = False
    entries: list[tuple[str, str, str]] = []
    index: dict[str, list[str]] = {}
    names = HEADER_NAMES
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"malformed header line {line[:60]!r}")
        entry = names.get(name)
        key, spelling = entry if entry is not None else _slow_name(name)
        value = value.strip(" \t")
        values = index.get(key)
        if values is None:
            values = index[key] = []
        if "," in value and key in MULTI_VALUED:
            if key in LAZY_LISTS and '"' not in value and "<" not in value:
                entries.append((key, spelling, value))  # split when read (Headers)
                values.append(value)
                unsplit = True
                continue
            items = split_commas(value)
            entries.extend([(key, spelling, item) for item in items])
            values.extend(items)
        else:
            entries.append((key, spelling, value))
            values.append(value)
    return entries, index, unsplit


def _split_head(data: bytes, max_header_bytes: int) -> tuple[str, int]:
    """Header section text (without the blank line) and the offset of the body."""
    start = 0
    while data.startswith(b"\r\n", start):  # RFC 3261 7.5: ignore CRLFs before the start line
        start += 2
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        if len(data) - start > max_header_bytes:
            raise SipParseError("header section too large", 513)
        if not data.endswith(b"\r\n") or len(data) - start < 3:
            raise SipParseError("incomplete header section")
        # A datagram whose last header line lacks the empty line: headers end with the datagram.
        end = len(data) - 2
        body_start = len(data)
    else:
        body_start = end + 4
    if end - start > max_header_bytes:
        raise SipParseError("header section too large", 513)
    try:
        text = data[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("header section is not valid UTF-8") from None
    return text, body_start


def _body(
    data: bytes,
    entries: list[tuple[str, str, str]],
    index: dict[str, list[str]],
    body_start: int,
    max_body_bytes: int,
) -> bytes:
    lengths = index.get("content-length")
    if lengths is None:
        body = data[body_start:]  # datagram without Content-Length: the rest (RFC 3261 18.3)
        if len(body) > max_body_bytes:
            raise SipParseError("body too large", 513)
        entries.append(("content-length", "Content-Length", str(len(body))))
        index["content-length"] = [str(len(body))]
        return body
    if len(lengths) > 1:
        raise SipParseError("more than one Content-Length")
    length = _content_length(lengths[0], max_body_bytes)
    if body_start + length > len(data):
        raise SipParseError("Content-Length larger than the message")
    canonical = str(length)
    if canonical != lengths[0]:
        lengths[0] = canonical
        position = next(i for i, entry in enumerate(entries) if entry[0] == "content-length")
        entries[position] = ("content-length", "Content-Length", canonical)
    return data[body_start : body_start + length]


def _content_length(text: str, max_body_bytes: int) -> int:
    """Content-Length (RFC 3261 20.14): ``1*DIGIT``; over ``max_body_bytes`` is 513."""
    if not text.isdigit() or not text.isascii():
        raise SipParseError(f"invalid Content-Length {text[:20]!r}")
    digits = text.lstrip("0")
    if len(digits) > len(str(max_body_bytes)) or int(text) > max_body_bytes:
        raise SipParseError("body too large", 513)
    return int(text)


def parse_message(
    data: bytes,
    *,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_header_fields: int = DEFAULT_MAX_HEADER_FIELDS,
) -> SipMessage:
    """Parse one complete message (one datagram, or one frame from :class:`StreamFramer`).

    Octets after the Content-Length body are ignored (RFC 4475 3.1.1.8). Raises SipParseError with
    status 400 (malformed), 505 (SIP version other than 2.0) or 513 (over the size limits, or
    more than ``max_header_fields`` header lines).
    """
    text, body_start = _split_head(data, max_header_bytes)
    if "\r\n " in text or "\r\n\t" in text:
        text = _FOLD.sub(" ", text)  # RFC 3261 7.3.1: unfold continuation lines
    line_breaks = text.count("\r\n")
    if text.count("\r") != line_breaks or text.count("\n") != line_breaks:
        raise SipParseError("bare CR or LF in header section")
    if line_breaks > max_header_fields:
        raise SipParseError(f"more than {max_header_fields} header fields", 513)
    lines = text.split("\r\n")
    start_line = _parse_start_line(lines[0])
    entries, index, unsplit = _header_entries(lines[1:])
    body = _body(data, entries, index, body_start, max_body_bytes)
    headers = Headers.from_entries(entries, index, unsplit=unsplit)
    message: SipMessage
    if isinstance(start_line[0], int):
        message = SipResponse(start_line[0], str(start_line[1]), headers, body)
    else:
        method, uri = start_line
        message = SipRequest(method, uri, headers, body)
    _check_mandatory(message)
    return message


def _check_mandatory(message: SipMessage) -> None:
    """RFC 3261 8.1.1 / 8.2.2: the header fields every layer relies on are present and sane.

    The parsed values land in the header cache, so the properties cost nothing afterwards.
    A request is checked whole (RFC 4475: a server answers a malformed one with 400). Of a
    response, what matching and dialogs need is checked at once (Via, CSeq, Call-ID, To); its
    From and Contact are parsed when read: no layer reads a response's From, and Contact only
    for a dialog-creating response, where a malformed one still raises SipParseError."""
    headers = message.headers
    cseq = headers.cached("cseq", _cseq)
    request = isinstance(message, SipRequest)
    if isinstance(message, SipRequest):
        if cseq.method != message.method:
            raise SipParseError("CSeq method does not match the request method")
        headers.cached("max-forwards", _max_forwards)
    headers.cached("via", _vias)
    headers.cached("call-id", _call_id)
    if request:
        headers.cached("from", _from)
    else:
        _single(headers, "from", "From")
    headers.cached("to", _to)
    if request:
        headers.cached("contact", _contacts)


def make_response(
    request: SipRequest, status: int, reason: str | None = None, *, to_tag: str | None = None
) -> SipResponse:
    """A response to ``request`` (RFC 3261 8.2.6): Via (all, in order), From, To (with ``to_tag``
    added unless the To already has a tag), Call-ID and CSeq copied; Timestamp for 100 (8.2.6.1).
    """
    if not 100 <= status <= 699:
        raise ValueError(f"status code out of range: {status}")
    source = request.headers
    entries: list[tuple[str, str, str]] = [entry for entry in source.entries() if entry[0] == "via"]
    entries.append(("from", "From", _single(source, "from", "From")))
    to_value = _single(source, "to", "To")
    if to_tag is not None and request.to.tag is None:
        if TOKEN.fullmatch(to_tag) is None:
            raise ValueError(f"tag is not a token: {to_tag!r}")
        to_value = f"{to_value};tag={to_tag}"
    entries.append(("to", "To", to_value))
    entries.append(("call-id", "Call-ID", _single(source, "call-id", "Call-ID")))
    entries.append(("cseq", "CSeq", _single(source, "cseq", "CSeq")))
    if status == 100:
        timestamp = source.get("Timestamp")
        if timestamp is not None:
            entries.append(("timestamp", "Timestamp", timestamp))
    headers = Headers.from_entries(entries)
    return SipResponse(status, reason if reason is not None else reason_phrase(status), headers)


def make_error_response(
    request: SipRequest, error: SipError, *, to_tag: str | None = None
) -> SipResponse:
    """The response ``error`` stands for (RFC 3261 8.2), with the header fields it carries."""
    response = make_response(request, error.status, error.reason, to_tag=to_tag)
    for name, value in error.headers:
        response.headers.add(name, value)
    return response
