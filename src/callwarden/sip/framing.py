"""Message framing on stream transports (RFC 3261 18.3): Content-Length delimits each message.

Sans-IO: feed the bytes received on a TCP/TLS connection, get back complete message byte strings
for :func:`callwarden.sip.message.parse_message`. Framing errors are unrecoverable - the caller
closes the connection (RFC 4475 3.1.2.3, 3.3.9).
"""

from __future__ import annotations

import re

from callwarden.sip.errors import SipParseError

_FOLD = re.compile(rb"[ \t]*\r\n[ \t]+")
_HEADER_END = b"\r\n\r\n"


def _content_length(head: bytes, max_body_bytes: int) -> int:
    """The single Content-Length of a header section (compact form ``l`` included)."""
    if b"\r\n " in head or b"\r\n\t" in head:
        head = _FOLD.sub(b" ", head)
    values: list[bytes] = []
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.rstrip(b" \t").lower() in (b"content-length", b"l"):
            values.append(value.strip(b" \t"))
    if not values:
        raise SipParseError("missing Content-Length on a stream transport")
    if len(values) > 1:
        raise SipParseError("more than one Content-Length")
    value = values[0]
    if not value.isdigit():
        raise SipParseError(f"invalid Content-Length {value[:20]!r}")
    if len(value.lstrip(b"0")) > len(str(max_body_bytes)) or int(value) > max_body_bytes:
        raise SipParseError("body too large", 513)
    return int(value)


class StreamFramer:
    """Splits a SIP byte stream into messages; CRLF keep-alives (RFC 5626 4.4.1) are skipped.

    When a framing error follows complete messages in the same data, ``feed`` returns those
    messages and records the error in :attr:`error` (the caller handles them, then closes);
    otherwise it raises. After an error the stream is unusable: every later call raises.
    """

    def __init__(self, max_header_bytes: int = 65536, max_body_bytes: int = 1048576) -> None:
        self._max_header_bytes = max_header_bytes
        self._max_body_bytes = max_body_bytes
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer known not to contain the header end
        self._frame_length: int | None = None
        self._error: SipParseError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the messages they complete, in order."""
        if self._error is not None:
            raise SipParseError(str(self._error), self._error.status)
        self._buffer += data
        messages: list[bytes] = []
        try:
            while (message := self._next()) is not None:
                messages.append(message)
        except SipParseError as error:
            self._error = error
            self._buffer.clear()
            if not messages:
                raise
        return messages

    @property
    def error(self) -> SipParseError | None:
        """The framing error that made the stream unusable, if any."""
        return self._error

    def _next(self) -> bytes | None:
        buffer = self._buffer
        if self._frame_length is None:
            skip = 0
            while buffer.startswith(b"\r\n", skip):
                skip += 2
            if skip:
                del buffer[:skip]
                self._scanned = 0
            if not buffer:
                return None
            end = buffer.find(_HEADER_END, max(0, self._scanned - 3))
            if end < 0:
                self._scanned = len(buffer)
                if len(buffer) > self._max_header_bytes + 3:
                    raise SipParseError("header section too large", 513)
                return None
            if end > self._max_header_bytes:
                raise SipParseError("header section too large", 513)
            length = _content_length(bytes(buffer[:end]), self._max_body_bytes)
            self._frame_length = end + 4 + length
        if len(buffer) < self._frame_length:
            return None
        message = bytes(buffer[: self._frame_length])
        del buffer[: self._frame_length]
        self._frame_length = None
        self._scanned = 0
        return message
