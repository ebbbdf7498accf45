"""Golden tests for callwarden.sip.message: parsing, serialization, responses, framing."""

from __future__ import annotations

import pytest

from callwarden.sip.errors import SipError, SipParseError
from callwarden.sip.headers import CSeq, NameAddress, Via
from callwarden.sip.message import (
    Headers,
    SipRequest,
    SipResponse,
    StreamFramer,
    make_error_response,
    make_response,
    parse_message,
)
from callwarden.sip.uri import SipUri

SDP = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
    b"m=audio 8000 RTP/AVP 0\r\n"
)

INVITE = (
    b"INVITE sip:1002@192.0.2.10 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK-1;rport\r\n"
    b"v: SIP/2.0/UDP 192.0.2.30;branch=z9hG4bK-2,"
    b" SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bK-3\r\n"
    b"Max-Forwards: 70\r\n"
    b"m: <sip:1001@192.0.2.20:5062;transport=udp>\r\n"
    b"t: <sip:1002@192.0.2.10>\r\n"
    b'f: "Alice \\"A\\"" <sip:1001@192.0.2.10>;tag=6b8b4567\r\n'
    b"i: call-1@192.0.2.20\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Allow: INVITE, ACK,BYE\r\n"
    b"c: application/sdp\r\n"
    b'Authorization: Digest username="alice", realm="x"\r\n'
    b"l: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)

CANONICAL_INVITE = (
    b"INVITE sip:1002@192.0.2.10 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK-1;rport\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.30;branch=z9hG4bK-2\r\n"
    b"Via: SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bK-3\r\n"
    b"Max-Forwards: 70\r\n"
    b"Contact: <sip:1001@192.0.2.20:5062;transport=udp>\r\n"
    b"To: <sip:1002@192.0.2.10>\r\n"
    b'From: "Alice \\"A\\"" <sip:1001@192.0.2.10>;tag=6b8b4567\r\n'
    b"Call-ID: call-1@192.0.2.20\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Allow: INVITE\r\n"
    b"Allow: ACK\r\n"
    b"Allow: BYE\r\n"
    b"Content-Type: application/sdp\r\n"
    b'Authorization: Digest username="alice", realm="x"\r\n'
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)


def test_parse_request_fields() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, SipRequest)
    assert request.method == "INVITE"
    assert request.uri == SipUri("sip", "1002", None, "192.0.2.10")
    assert request.call_id == "call-1@192.0.2.20"
    assert request.cseq == CSeq(1, "INVITE")
    assert request.from_.display_name == 'Alice "A"'
    assert request.from_.tag == "6b8b4567"
    assert request.to.tag is None
    assert [via.branch for via in request.vias] == ["z9hG4bK-1", "z9hG4bK-2", "z9hG4bK-3"]
    assert request.top_via == Via(
        "UDP", "192.0.2.20", 5062, (("branch", "z9hG4bK-1"), ("rport", None))
    )
    assert request.vias[2].host == "[2001:db8::1]"
    assert request.contacts == [
        NameAddress(None, SipUri("sip", "1001", None, "192.0.2.20", 5062, (("transport", "udp"),)))
    ]
    assert request.max_forwards == 70
    assert request.content_type == "application/sdp"
    assert request.expires is None
    assert request.headers.get_all("Allow") == ["INVITE", "ACK", "BYE"]
    assert request.headers.get("authorization") == 'Digest username="alice", realm="x"'
    assert request.body == SDP


def test_serialization_is_canonical_and_reparses_equal() -> None:
    request = parse_message(INVITE)
    assert bytes(request) == CANONICAL_INVITE
    assert parse_message(bytes(request)) == request


def test_parse_response() -> None:
    data = (
        b"SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK-1\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 7 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    response = parse_message(data)
    assert isinstance(response, SipResponse)
    assert (response.status, response.reason) == (180, "Ringing")
    assert response.to.tag == "2"
    assert bytes(response) == data


def test_make_response_copies_rfc3261_8_2_6_headers() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, SipRequest)
    response = make_response(request, 180, to_tag="as8d7")
    assert bytes(response) == (
        b"SIP/2.0 180 Ringing\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.20:5062;branch=z9hG4bK-1;rport\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.30;branch=z9hG4bK-2\r\n"
        b"Via: SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bK-3\r\n"
        b'From: "Alice \\"A\\"" <sip:1001@192.0.2.10>;tag=6b8b4567\r\n'
        b"To: <sip:1002@192.0.2.10>;tag=as8d7\r\n"
        b"Call-ID: call-1@192.0.2.20\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )


def test_make_error_response_carries_error_headers() -> None:
    request = parse_message(INVITE)
    assert isinstance(request, SipRequest)
    error = SipError("no", 415, headers=(("Accept", "application/sdp"),))
    response = make_error_response(request, error)
    assert (response.status, response.reason) == (415, "Unsupported Media Type")
    assert response.headers.get("Accept") == "application/sdp"


def test_stream_framer_splits_messages_and_skips_keepalives() -> None:
    framer = StreamFramer()
    stream = b"\r\n\r\n" + INVITE + b"\r\n" + INVITE
    assert framer.feed(stream[:10]) == []
    assert framer.feed(stream[10:200]) == []
    assert framer.feed(stream[200:]) == [INVITE, INVITE]


def test_stream_framer_requires_content_length() -> None:
    framer = StreamFramer()
    with pytest.raises(SipParseError, match="missing Content-Length"):
        framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h\r\n\r\n")


def test_headers_multimap() -> None:
    headers = Headers([("v", "SIP/2.0/UDP a, SIP/2.0/UDP b"), ("X-Thing", "1,2")])
    headers.prepend("Via", "SIP/2.0/UDP c")
    assert headers.get_all("via") == ["SIP/2.0/UDP c", "SIP/2.0/UDP a", "SIP/2.0/UDP b"]
    assert headers.get("x-thing") == "1,2"
    headers.set("Via", "SIP/2.0/UDP d")
    assert headers.items() == [("Via", "SIP/2.0/UDP d"), ("X-Thing", "1,2")]
    headers.remove("x-THING")
    assert "X-Thing" not in headers
    assert "Via" in headers
    with pytest.raises(ValueError, match="CR or LF"):
        headers.add("Subject", "a\r\nVia: evil")
