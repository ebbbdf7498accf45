"""SDP session descriptions (RFC 8866), sans-IO: the data model, the parser and the serializer.

``SessionDescription.parse(data)`` turns a body into dataclasses, ``bytes(description)`` writes it
back. Lines are written in the order of RFC 8866 5 (session: v o s i u e p c b t r z k a; media:
m i c b k a); within a media description the attributes come as ``rtpmap``/``fmtp`` per format
(in m= line order), then ``ptime``, ``crypto``, the other attributes in their original order and
last the direction. A description in that order round-trips byte for byte; any other parses to
the same value. Every malformed line raises :class:`SdpParseError` naming the line. The
offer/answer model built on these classes is in :mod:`callwarden.sip.sdp`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, NamedTuple

from callwarden.sip.errors import SipParseError

MAX_SDP_BYTES = 65536
"""Largest SDP body accepted (64 KiB); anything longer is rejected before it is decoded."""

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
_DIRECTIONS: MappingProxyType[str, Direction] = MappingProxyType(
    {"sendrecv": "sendrecv", "sendonly": "sendonly", "recvonly": "recvonly", "inactive": "inactive"}
)

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_PROTO_RE = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+(?:/[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+)*")
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9.])?(?:/[0-9]{1,5}){0,2}")
_LONG_NUMBER_RE = re.compile(r"[0-9]{1,20}")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_SMALL_NUMBER_RE = re.compile(r"[0-9]{1,3}")
_CLOCK_RE = re.compile(r"[0-9]{1,9}")
_BANDWIDTH_RE = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+:[0-9]{1,20}")

_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # tab is allowed in text fields
_SESSION_ONLY_TYPES = frozenset("vosuepztr")
_KNOWN_TYPES = frozenset("vosiuepcbtrzkam")
_LINE_ORDER = "iuepbzk"  # where the kept lines go (RFC 8866 5); lines keep their order per type


def packed_ip_address(text: str) -> bytes | None:
    """The address as 4 (IPv4) or 16 (IPv6) bytes when ``text`` is an IP address literal as
    ``ipaddress.ip_address`` reads it, else None.

    ``socket.inet_pton`` (a pure conversion) takes a microsecond where ``ipaddress`` takes
    several, and every call parses and writes several addresses; only a scoped IPv6 address
    (``fe80::1%eth0``), which inet_pton refuses, goes the slow way."""
    family = socket.AF_INET6 if ":" in text else socket.AF_INET
    try:
        return socket.inet_pton(family, text)
    except (OSError, ValueError):
        if "%" not in text:
            return None
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        return None


class SdpParseError(SipParseError):
    """Malformed SDP (RFC 8866 5, 9): the request carrying it gets 400 Bad Request."""


class RtpMap(NamedTuple):
    """``a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]`` (RFC 8866 6.6)."""

    encoding: str
    clock_rate: int
    channels: int | None = None

    def __str__(self) -> str:
        text = f"{self.encoding}/{self.clock_rate}"
        return text if self.channels is None else f"{text}/{self.channels}"


STATIC_PAYLOAD_TYPES = MappingProxyType(
    {  # RFC 3551 6, table 4: audio payload types usable without an rtpmap
        0: RtpMap("PCMU", 8000),
        3: RtpMap("GSM", 8000),
        4: RtpMap("G723", 8000),
        5: RtpMap("DVI4", 8000),
        6: RtpMap("DVI4", 16000),
        7: RtpMap("LPC", 8000),
        8: RtpMap("PCMA", 8000),
        9: RtpMap("G722", 8000),
        10: RtpMap("L16", 44100, 2),
        11: RtpMap("L16", 44100),
        12: RtpMap("QCELP", 8000),
        13: RtpMap("CN", 8000),
        14: RtpMap("MPA", 90000),
        15: RtpMap("G728", 8000),
        16: RtpMap("DVI4", 11025),
        17: RtpMap("DVI4", 22050),
        18: RtpMap("G729", 8000),
    }
)


@dataclass(frozen=True)
class Connection:
    """``c=IN <IP4|IP6> <address>`` (RFC 8866 5.7); ``address`` keeps a multicast TTL as written."""

    address: str
    address_type: str = "IP4"

    def __str__(self) -> str:
        return f"IN {self.address_type} {self.address}"

    @classmethod
    def for_address(cls, address: str) -> Connection:
        return cls(address, "IP6" if ":" in address else "IP4")

    @property
    def is_hold_address(self) -> bool:
        """RFC 3264 8.4: ``c=0.0.0.0`` is the RFC 2543 way of putting a stream on hold."""
        packed = packed_ip_address(self.address)
        return packed is not None and not any(packed)


@dataclass(frozen=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> IN <addrtype> <address>`` (RFC 8866 5.2)."""

    username: str
    session_id: int
    session_version: int
    address: str
    address_type: str = "IP4"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"IN {self.address_type} {self.address}"
        )


@dataclass
class MediaDescription:
    """One ``m=`` section (RFC 8866 5.14) with the attributes callwarden interprets.

    ``formats`` holds RTP payload types; for a non-RTP transport the format tokens are in
    ``other_formats`` instead. ``direction`` is the effective one: when the section has no
    direction attribute it is inherited from the session (or ``sendrecv``) and
    ``direction_explicit`` is false.
    """

    media: str
    port: int
    proto: str
    formats: list[int] = field(default_factory=list)
    other_formats: list[str] = field(default_factory=list)
    port_count: int | None = None
    connection: Connection | None = None
    rtpmap: dict[int, RtpMap] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    direction: Direction = "sendrecv"
    direction_explicit: bool = True
    ptime: int | None = None
    crypto: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_rtp(self) -> bool:
        return "RTP/" in self.proto.upper()

    def payload_map(self, payload_type: int) -> RtpMap | None:
        """The codec behind ``payload_type``: its rtpmap, else the RFC 3551 static assignment."""
        return self.rtpmap.get(payload_type) or STATIC_PAYLOAD_TYPES.get(payload_type)

    def lines(self, session_direction: Direction | None) -> Iterator[str]:
        port = str(self.port) if self.port_count is None else f"{self.port}/{self.port_count}"
        formats = [str(pt) for pt in self.formats] + self.other_formats
        yield f"m={self.media} {port} {self.proto} {' '.join(formats)}"
        yield from _typed_lines(self.other_lines, "i")
        if self.connection is not None:
            yield f"c={self.connection}"
        yield from _typed_lines(self.other_lines, "bk")
        for pt in [*self.formats, *(pt for pt in self.rtpmap if pt not in self.formats)]:
            if pt in self.rtpmap:
                yield f"a=rtpmap:{pt} {self.rtpmap[pt]}"
            if pt in self.fmtp:
                yield f"a=fmtp:{pt} {self.fmtp[pt]}"
        for pt, parameters in self.fmtp.items():
            if pt not in self.formats and pt not in self.rtpmap:
                yield f"a=fmtp:{pt} {parameters}"
        if self.ptime is not None:
            yield f"a=ptime:{self.ptime}"
        yield from (f"a=crypto:{value}" for value in self.crypto)
        yield from _attribute_lines(self.attributes)
        if self.direction_explicit or self.direction != (session_direction or "sendrecv"):
            yield f"a={self.direction}"


@dataclass
class SessionDescription:
    """An SDP body (RFC 8866 5): the session-level lines and the media descriptions.

    ``timing`` keeps the ``t=``/``r=`` lines, ``other_lines`` the i/u/e/p/b/z/k lines and
    ``attributes`` the session-level attributes other than the direction, all in order.
    """

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    timing: list[tuple[str, str]] = field(default_factory=lambda: [("t", "0 0")])
    direction: Direction | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other_lines: list[tuple[str, str]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)

    @classmethod
    def parse(cls, data: bytes) -> SessionDescription:
        """Parse an SDP body (RFC 8866 5, 9); raises :class:`SdpParseError` naming the bad line."""
        return _Parser(_split_lines(data)).parse()

    def lines(self) -> Iterator[str]:
        yield "v=0"
        yield f"o={self.origin}"
        yield f"s={self.session_name}"
        yield from _typed_lines(self.other_lines, "iuep")
        if self.connection is not None:
            yield f"c={self.connection}"
        yield from _typed_lines(self.other_lines, "b")
        yield from (f"{kind}={value}" for kind, value in self.timing)
        yield from _typed_lines(self.other_lines, "zk")
        yield from _attribute_lines(self.attributes)
        if self.direction is not None:
            yield f"a={self.direction}"
        for media in self.media:
            yield from media.lines(self.direction)

    def __bytes__(self) -> bytes:
        return "".join(line + "\r\n" for line in self.lines()).encode("utf-8")


def _typed_lines(lines: list[tuple[str, str]], kinds: str) -> Iterator[str]:
    return (f"{kind}={value}" for kind, value in lines if kind in kinds)


def _attribute_lines(attributes: list[tuple[str, str | None]]) -> Iterator[str]:
    return (f"a={name}" if value is None else f"a={name}:{value}" for name, value in attributes)


# --------------------------------------------------------------------------- parsing


def _split_lines(data: bytes) -> list[tuple[int, str, str]]:
    """Split into (line number, type, value); RFC 8866 5 also allows a bare LF as line end."""
    if len(data) > MAX_SDP_BYTES:
        raise SdpParseError(f"SDP body larger than {MAX_SDP_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SdpParseError("SDP body is not valid UTF-8") from None
    raw_lines = text.split("\n")
    while raw_lines and raw_lines[-1] in ("", "\r"):
        raw_lines.pop()
    if not raw_lines:
        raise SdpParseError("SDP body is empty")
    result = []
    # One search over the whole body; only a body that has a control character (the line ends
    # aside) is searched line by line, to name the line.
    check_lines = _CONTROL_RE.search(text.replace("\r\n", "").replace("\n", "")) is not None
    for number, raw in enumerate(raw_lines, start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if check_lines and _CONTROL_RE.search(line):
            raise SdpParseError(f"control character in SDP (line {number})")
        if len(line) < 2 or line[1] != "=" or not "a" <= line[0] <= "z":
            raise SdpParseError(f"expected '<type>=<value>' (line {number})")
        if line[0] not in _KNOWN_TYPES:
            raise SdpParseError(f"unknown line type '{line[0]}=' (line {number})")
        result.append((number, line[0], line[2:]))
    return result


class _Parser:
    """One pass over the lines of RFC 8866 5 (session section, then media sections)."""

    def __init__(self, lines: list[tuple[int, str, str]]) -> None:
        self.lines = lines
        self.number = 0

    def fail(self, message: str) -> SdpParseError:
        return SdpParseError(f"{message} (line {self.number})")

    def parse(self) -> SessionDescription:
        origin, session_name = self._header()
        session = SessionDescription(origin=origin, session_name=session_name, timing=[])
        media: MediaDescription | None = None
        for number, kind, value in self.lines[3:]:
            self.number = number
            if kind == "m":
                media = self._media_line(value)
                session.media.append(media)
            elif media is None:
                self._session_line(session, kind, value)
            elif kind in _SESSION_ONLY_TYPES:
                raise self.fail(f"{kind}= line not allowed in a media description")
            else:
                self._media_line_detail(media, kind, value)
        if not session.timing:
            raise SdpParseError("missing t= line")
        session.other_lines.sort(key=lambda line: _LINE_ORDER.index(line[0]))
        for media in session.media:
            media.other_lines.sort(key=lambda line: _LINE_ORDER.index(line[0]))
            if not media.direction_explicit:
                media.direction = session.direction or "sendrecv"
            if media.connection is None and session.connection is None:
                raise SdpParseError(f"m={media.media} section has no c= line at any level")
        return session

    def _header(self) -> tuple[Origin, str]:
        """RFC 8866 5: the description starts with exactly v=0, o=, s= in that order."""
        for position, expected in enumerate("vos"):
            if position >= len(self.lines) or self.lines[position][1] != expected:
                raise SdpParseError(f"line {position + 1} must be the {expected}= line")
        self.number = 1
        if self.lines[0][2] != "0":
            raise self.fail("v= line: unsupported version")
        self.number = 2
        origin = self._origin(self.lines[1][2])
        return origin, self.lines[2][2]

    def _origin(self, value: str) -> Origin:
        parts = value.split(" ")
        if len(parts) != 6 or not all(parts):
            raise self.fail("o= line: expected 6 fields separated by single spaces")
        username, session_id, session_version, network_type, address_type, address = parts
        if not _LONG_NUMBER_RE.fullmatch(session_id):
            raise self.fail("o= line: session id not a number")
        if not _LONG_NUMBER_RE.fullmatch(session_version):
            raise self.fail("o= line: session version not a number")
        self._check_address("o=", network_type, address_type, address)
        return Origin(username, int(session_id), int(session_version), address, address_type)

    def _connection(self, value: str) -> Connection:
        parts = value.split(" ")
        if len(parts) != 3 or not all(parts):
            raise self.fail("c= line: expected '<nettype> <addrtype> <address>'")
        self._check_address("c=", *parts)
        return Connection(parts[2], parts[1])

    def _check_address(self, line: str, network_type: str, address_type: str, address: str) -> None:
        if network_type != "IN":
            raise self.fail(f"{line} line: unsupported network type")
        if address_type not in ("IP4", "IP6"):
            raise self.fail(f"{line} line: unsupported address type")
        host = address.split("/", 1)[0]
        packed = packed_ip_address(host)
        if packed is None:
            if not _HOST_RE.fullmatch(address) or ":" in address:
                raise self.fail(f"{line} line: address is not an IP address or host name")
            return
        if len(packed) != (4 if address_type == "IP4" else 16):
            raise self.fail(f"{line} line: address does not match the address type")

    def _timing(self, value: str) -> None:
        parts = value.split(" ")
        if len(parts) != 2:
            raise self.fail("t= line: expected '<start time> <stop time>'")
        if not all(_LONG_NUMBER_RE.fullmatch(part) for part in parts):
            raise self.fail("t= line: time not a number")

    def _bandwidth(self, value: str) -> None:
        if not _BANDWIDTH_RE.fullmatch(value):
            raise self.fail("b= line: expected '<bwtype>:<bandwidth>'")

    def _attribute(self, value: str) -> tuple[str, str | None]:
        name, separator, attribute_value = value.partition(":")
        if not _TOKEN_RE.fullmatch(name):
            raise self.fail("a= line: attribute name is not a token")
        return name, attribute_value if separator else None

    def _direction(self, name: str, value: str | None) -> Direction | None:
        direction = _DIRECTIONS.get(name)
        if direction is not None and value is not None:
            raise self.fail(f"a={name} line: takes no value")
        return direction

    def _session_line(self, session: SessionDescription, kind: str, value: str) -> None:
        if kind in "vos":
            raise self.fail(f"{kind}= line: more than one")
        if kind == "c":
            if session.connection is not None:
                raise self.fail("c= line: more than one at session level")
            session.connection = self._connection(value)
        elif kind == "t":
            self._timing(value)
            session.timing.append((kind, value))
        elif kind == "r":
            if not session.timing:
                raise self.fail("r= line: before any t= line")
            session.timing.append((kind, value))
        elif kind == "a":
            name, attribute_value = self._attribute(value)
            direction = self._direction(name, attribute_value)
            if direction is None:
                session.attributes.append((name, attribute_value))
            elif session.direction is not None:
                raise self.fail("a= line: more than one direction attribute")
            else:
                session.direction = direction
        else:
            if kind == "b":
                self._bandwidth(value)
            session.other_lines.append((kind, value))

    def _media_line(self, value: str) -> MediaDescription:
        """``m=<media> <port>[/<number of ports>] <proto> <fmt> ...`` (RFC 8866 5.14)."""
        parts = value.split()
        if len(parts) < 4:
            raise self.fail("m= line: expected '<media> <port> <proto> <format> ...'")
        media_type, port_text, proto, *formats = parts
        if not _TOKEN_RE.fullmatch(media_type):
            raise self.fail("m= line: media type is not a token")
        port_text, slash, count_text = port_text.partition("/")
        if not _PORT_RE.fullmatch(port_text):
            raise self.fail("m= line: port not a number")
        if int(port_text) > 65535:
            raise self.fail("m= line: port out of range")
        if slash and (not _SMALL_NUMBER_RE.fullmatch(count_text) or int(count_text) == 0):
            raise self.fail("m= line: number of ports not a positive number")
        if not _PROTO_RE.fullmatch(proto):
            raise self.fail("m= line: transport protocol is not a token")
        media = MediaDescription(
            media_type,
            int(port_text),
            proto,
            port_count=int(count_text) if slash else None,
            direction_explicit=False,
        )
        if media.is_rtp:
            media.formats = [self._payload_type("m= line", text) for text in formats]
            if len(set(media.formats)) != len(media.formats):
                raise self.fail("m= line: payload type listed twice")
        elif not all(_TOKEN_RE.fullmatch(text) for text in formats):
            raise self.fail("m= line: format is not a token")
        else:
            media.other_formats = formats
        return media

    def _payload_type(self, line: str, text: str) -> int:
        if not _SMALL_NUMBER_RE.fullmatch(text):
            raise self.fail(f"{line}: payload type not a number")
        if int(text) > 127:
            raise self.fail(f"{line}: payload type out of range")
        return int(text)

    def _media_line_detail(self, media: MediaDescription, kind: str, value: str) -> None:
        if kind == "c":
            if media.connection is not None:
                raise self.fail("c= line: more than one in a media description")
            media.connection = self._connection(value)
            return
        if kind != "a":
            if kind == "b":
                self._bandwidth(value)
            media.other_lines.append((kind, value))
            return
        name, attribute_value = self._attribute(value)
        direction = self._direction(name, attribute_value)
        if direction is not None:
            if media.direction_explicit:
                raise self.fail("a= line: more than one direction attribute")
            media.direction, media.direction_explicit = direction, True
        elif name == "ptime":
            media.ptime = self._ptime(media, attribute_value)
        elif name == "crypto":
            if not attribute_value:
                raise self.fail("a=crypto line: missing value")
            media.crypto.append(attribute_value)
        elif name == "rtpmap" and media.is_rtp:
            payload_type, rtpmap = self._rtpmap(attribute_value)
            if payload_type in media.rtpmap:
                raise self.fail(f"a=rtpmap line: payload type {payload_type} mapped twice")
            media.rtpmap[payload_type] = rtpmap
        elif name == "fmtp" and media.is_rtp:
            format_text, separator, parameters = (attribute_value or "").partition(" ")
            if not separator or not parameters.strip():
                raise self.fail("a=fmtp line: expected '<format> <parameters>'")
            number = self._payload_type("a=fmtp line", format_text)
            if number in media.fmtp:
                raise self.fail(f"a=fmtp line: payload type {number} has two fmtp lines")
            media.fmtp[number] = parameters
        else:
            media.attributes.append((name, attribute_value))

    def _ptime(self, media: MediaDescription, value: str | None) -> int:
        if media.ptime is not None:
            raise self.fail("a=ptime line: more than one")
        if value is None or not _SMALL_NUMBER_RE.fullmatch(value) or int(value) == 0:
            raise self.fail("a=ptime line: not a positive integer of milliseconds")
        return int(value)

    def _rtpmap(self, value: str | None) -> tuple[int, RtpMap]:
        """``a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`` (RFC 8866 6.6)."""
        payload_type, separator, mapping = (value or "").partition(" ")
        number = self._payload_type("a=rtpmap line", payload_type)
        fields = mapping.split("/")
        if not separator or len(fields) not in (2, 3) or not _TOKEN_RE.fullmatch(fields[0]):
            raise self.fail("a=rtpmap line: expected '<encoding>/<clock rate>'")
        if not _CLOCK_RE.fullmatch(fields[1]) or int(fields[1]) == 0:
            raise self.fail("a=rtpmap line: clock rate not a positive number")
        channels = None
        if len(fields) == 3:
            if not _SMALL_NUMBER_RE.fullmatch(fields[2]) or int(fields[2]) == 0:
                raise self.fail("a=rtpmap line: channels not a positive number")
            channels = int(fields[2])
        return number, RtpMap(fields[0], int(fields[1]), channels)
