"""Fuzzing the SIP message layer (Hypothesis): random bytes, mutated RFC 4475 torture messages and
generated messages only ever give SipParseError (SipError for check_request), never another
exception; whatever parses is written back to bytes that parse to an equal message, and every
structured value re-parses from its own text.

Run longer with ``make fuzz`` (the "long" Hypothesis profile of tests/fuzz/conftest.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callwarden.sip.errors import SipError, SipParseError
from callwarden.sip.headers import CSeq, NameAddress, Via
from callwarden.sip.message import (
    SipMessage,
    SipRequest,
    SipResponse,
    StreamFramer,
    make_response,
    parse_message,
)
from callwarden.sip.syntax import quote
from callwarden.sip.uri import SipUri, parse_uri
from callwarden.sip.validation import check_request
from shared_testdata import RFC4475_DIR

CORPUS_DIR = RFC4475_DIR
if not CORPUS_DIR.is_dir():
    pytest.fail(f"RFC 4475 corpus missing: {CORPUS_DIR}", pytrace=False)

SEEDS: list[bytes] = [path.read_bytes() for path in sorted(CORPUS_DIR.glob("*.dat"))] + [
    b"INVITE sip:1002@192.0.2.10 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK-1;rport\r\n"
    b"Max-Forwards: 70\r\nContact: <sip:1001@192.0.2.20:5062>\r\nTo: <sip:1002@192.0.2.10>\r\n"
    b'From: "Alice" <sip:1001@192.0.2.10>;tag=6b8b\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n'
    b"Content-Type: application/sdp\r\nContent-Length: 10\r\n\r\nv=0\r\ns=-\r\n",
]
STRUCTURED_PARSERS: list[Callable[[str], object]] = [
    SipUri.parse,
    parse_uri,
    Via.parse,
    NameAddress.parse,
    CSeq.parse,
]
SIP_ALPHABET = st.sampled_from(list("aZ09:;@<>\"\\,=?&%/ \t.-[]*+!~'`()${}#|^\r\n\x00\x7fé€"))


def exercise(message: SipMessage) -> None:
    """Every lazy property and check either works or raises the typed error."""
    for read in (
        lambda: message.call_id,
        lambda: message.cseq,
        lambda: message.from_,
        lambda: message.to,
        lambda: message.vias,
        lambda: message.top_via,
        lambda: message.contacts,
        lambda: message.is_wildcard_contact,
        lambda: message.max_forwards,
        lambda: message.content_type,
        lambda: message.expires,
        lambda: [str(via) for via in message.vias],
        lambda: [via.rport for via in message.vias],
        lambda: [str(contact) for contact in message.contacts],
    ):
        with contextlib.suppress(SipParseError):
            read()
    if isinstance(message, SipRequest):
        with contextlib.suppress(SipError):
            check_request(message)
        response = make_response(message, 200, to_tag="fuzz")
        answered = parse_message(bytes(response))
        assert bytes(answered) == bytes(response)
        assert (answered.call_id, answered.cseq, answered.to.tag) == (
            message.call_id,
            message.cseq,
            message.to.tag or "fuzz",
        )


def check_datagram(data: bytes) -> None:
    try:
        message = parse_message(data)
    except SipParseError as error:
        assert error.status in (400, 505, 513)
        return
    exercise(message)
    wire = bytes(message)
    again = parse_message(wire)
    assert again == message
    assert bytes(again) == wire
    assert isinstance(again, SipRequest | SipResponse)


def check_stream(data: bytes, cuts: list[int]) -> None:
    framer = StreamFramer()
    frames: list[bytes] = []
    start = 0
    try:
        for cut in [*sorted(cuts), len(data)]:
            frames.extend(framer.feed(data[start:cut]))
            start = cut
    except SipParseError:
        return
    assert len(b"".join(frames)) <= len(data)
    for frame in frames:
        check_datagram(frame)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A corpus message with byte flips, truncations, insertions, deletions and splices."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        operation = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "splice"]))
        position = draw(st.integers(0, len(data)))
        if operation == "flip" and data:
            data[min(position, len(data) - 1)] = draw(st.integers(0, 255))
        elif operation == "truncate":
            del data[position:]
        elif operation == "insert":
            data[position:position] = draw(
                st.sampled_from([b"\r\n", b" ", b",", b";", b'"', b"<", b">", b"\x00", b":", b"%"])
                | st.binary(max_size=8)
            )
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        else:
            other = draw(st.sampled_from(SEEDS))
            data[position:] = other[draw(st.integers(0, len(other))) :]
    return bytes(data)


TEXT_CHARACTERS = st.characters(exclude_categories=["Cs"], exclude_characters="\r\n")
FREE_TEXT = st.text(TEXT_CHARACTERS, max_size=20)
TOKEN_TEXT = st.text("abcXYZ019-.!%*_+`'~", min_size=1, max_size=8)
USER_TEXT = st.text("abc019-_.!~*'()&=+$,;?/ @:%é\x00", min_size=1, max_size=10)
HOST_TEXT = st.sampled_from(["example.com", "192.0.2.1", "[2001:db8::1]", "h-1.example.org"])


@st.composite
def sip_uris(draw: st.DrawFn) -> SipUri:
    return SipUri(
        draw(st.sampled_from(["sip", "sips"])),
        draw(st.none() | USER_TEXT),
        None,
        draw(HOST_TEXT),
        draw(st.none() | st.integers(0, 65535)),
        tuple(draw(st.lists(st.tuples(TOKEN_TEXT, st.none() | USER_TEXT), max_size=3))),
        tuple(draw(st.lists(st.tuples(TOKEN_TEXT, USER_TEXT), max_size=2))),
    )


@st.composite
def generated_requests(draw: st.DrawFn) -> tuple[bytes, str, SipUri, NameAddress, bytes]:
    method = draw(TOKEN_TEXT)
    uri = draw(sip_uris()).without_params()
    uri = SipUri(uri.scheme, uri.user, None, uri.host, uri.port, uri.params, ())
    display = draw(st.none() | st.text(TEXT_CHARACTERS, max_size=12))
    from_ = NameAddress(display, draw(sip_uris()), (("tag", draw(TOKEN_TEXT)),))
    body = draw(st.binary(max_size=64))
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/{draw(TOKEN_TEXT)} {draw(HOST_TEXT)};branch=z9hG4bK{draw(TOKEN_TEXT)}",
        f"From: {from_}",
        f"To: {quote(draw(st.text(TEXT_CHARACTERS, max_size=5)))} <{draw(sip_uris())}>",
        f"Call-ID: {draw(TOKEN_TEXT)}@{draw(HOST_TEXT)}",
        f"CSeq: {draw(st.integers(0, 2**32 - 1))} {method}",
        "X-Extra: " + draw(FREE_TEXT),
    ]
    head = "\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("utf-8", "surrogateescape") + body, method, uri, from_, body


@given(st.binary(max_size=3000))
def test_random_bytes(data: bytes) -> None:
    check_datagram(data)
    check_stream(data, [len(data) // 2])


@given(mutated(), st.lists(st.integers(0, 4000), max_size=4))
def test_mutated_torture_messages(data: bytes, cuts: list[int]) -> None:
    check_datagram(data)
    check_stream(data, [cut for cut in cuts if cut <= len(data)])


@given(st.lists(mutated(), min_size=1, max_size=3))
def test_stream_of_mutated_messages(messages: list[bytes]) -> None:
    stream = b"\r\n".join(messages)
    check_stream(stream, [len(stream) // 3, 2 * len(stream) // 3])


@given(generated_requests())
def test_generated_requests_parse_to_their_parts(
    generated: tuple[bytes, str, SipUri, NameAddress, bytes],
) -> None:
    data, method, uri, from_, body = generated
    message = parse_message(data)
    assert isinstance(message, SipRequest)
    assert (message.method, message.uri, message.body) == (method, uri, body)
    assert message.from_ == from_
    check_datagram(data)


@given(st.sampled_from(STRUCTURED_PARSERS), st.text(SIP_ALPHABET, max_size=60))
def test_structured_parsers_raise_only_parse_errors(
    parser: Callable[[str], object], text: str
) -> None:
    try:
        value = parser(text)
    except SipParseError:
        return
    assert parser(str(value)) == value


@given(st.sampled_from(STRUCTURED_PARSERS), st.text(max_size=60))
def test_structured_parsers_on_any_text(parser: Callable[[str], object], text: str) -> None:
    try:
        value = parser(text)
    except SipParseError:
        return
    assert parser(str(value)) == value


@given(sip_uris())
def test_generated_uris_round_trip(uri: SipUri) -> None:
    assert SipUri.parse(str(uri)) == uri
    assert parse_uri(str(uri)) == uri


FAST_AND_GENERAL: list[tuple[Callable[[str], object], Callable[[str], object]]] = [
    (SipUri.parse, SipUri.parse_general),
    (Via.parse, Via.parse_general),
    (NameAddress.parse, NameAddress.parse_general),
]
EVERYDAY_TEXT = st.sampled_from(
    [
        '"Alice" <sip:alice@atlanta.com>;tag=1928',
        "Bob <sips:bob@[2001:db8::1]:5061;transport=tls>",
        "<sip:+15551234@gw.example.net;user=phone>;expires=60",
        "sip:carol@chicago.com;tag=9",
        "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport",
        "SIP/2.0/TCP host.example.com;received=192.0.2.9",
    ]
)


def outcome(parser: Callable[[str], object], text: str) -> object:
    try:
        return parser(text)
    except SipParseError:
        return SipParseError


@given(st.sampled_from(FAST_AND_GENERAL), EVERYDAY_TEXT, st.integers(0, 60), SIP_ALPHABET)
def test_fast_paths_agree_with_the_general_parsers(
    parsers: tuple[Callable[[str], object], Callable[[str], object]],
    text: str,
    position: int,
    char: str,
) -> None:
    """The fast paths are an optimisation only: same value, or both reject."""
    fast, general = parsers
    mutated_text = text[:position] + char + text[position:]
    for candidate in (text, mutated_text, text[:position], text.replace(" ", char)):
        assert outcome(fast, candidate) == outcome(general, candidate)
