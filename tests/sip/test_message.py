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


MINIMAL = (
    b"OPTIONS sip:a@b SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP h;branch=z9hG4bK-1\r\n"
    b"From: <sip:a@b>;tag=1\r\n"
    b"To: <sip:a@b>\r\n"
    b"Call-ID: c\r\n"
    b"CSeq: 1 OPTIONS\r\n"
)


def with_headers(*lines: bytes, body: bytes = b"") -> bytes:
    return MINIMAL + b"".join(line + b"\r\n" for line in lines) + b"\r\n" + body


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"", 400, "incomplete header section"),
        (b"\r\n\r\n", 400, "incomplete header section"),
        (MINIMAL[:-2], 400, "incomplete header section"),
        (b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", 400, "missing CSeq"),
        (with_headers(b"Max-Forwards: 256"), 400, "Max-Forwards out of range: '256'"),
        (with_headers(b"Max-Forwards: 1, 2"), 400, "invalid Max-Forwards '1, 2'"),
        (with_headers(b"Max-Forwards: 1", b"Max-Forwards: 2"), 400, "more than one Max-Forwards"),
        (with_headers(b"Call-ID: d"), 400, "more than one Call-ID"),
        (with_headers(b"Contact: *", b"Contact: <sip:x@y>"), 400, "wildcard Contact combined"),
        (with_headers(b"Bad Name: x"), 400, "malformed header name 'Bad Name'"),
        (with_headers(b"NoColon"), 400, "malformed header line 'NoColon'"),
        (with_headers(b": empty name"), 400, "malformed header name ''"),
        (with_headers(b"X: a\rb"), 400, "bare CR or LF"),
        (with_headers(b"X: a\nb"), 400, "bare CR or LF"),
        (with_headers(b"X: \xff"), 400, "header section is not valid UTF-8"),
        (with_headers(b"Content-Length: 5", body=b"abc"), 400, "Content-Length larger"),
        (with_headers(b"Content-Length: +5", body=b"abcde"), 400, "invalid Content-Length"),
        (with_headers(b"l: 1", b"Content-Length: 1", body=b"a"), 400, "more than one Content"),
        (MINIMAL.replace(b"SIP/2.0\r\n", b"SIP/2.1\r\n", 1) + b"\r\n", 505, "unsupported SIP"),
        (MINIMAL.replace(b"SIP/2.0\r\n", b"SIP/2\r\n", 1) + b"\r\n", 400, "malformed SIP version"),
        (MINIMAL.replace(b"OPTIONS sip", b"OPT@ONS sip", 1) + b"\r\n", 400, "malformed method"),
        (MINIMAL.replace(b"sip:a@b", b"sip:a@b?X=y", 1) + b"\r\n", 400, "must not contain head"),
        (b"SIP/2.0 99 Low\r\n" + MINIMAL[25:] + b"\r\n", 400, "invalid status code '99'"),
        (b"SIP/2.0 700 High\r\n" + MINIMAL[25:] + b"\r\n", 400, "invalid status code '700'"),
        (b"SIP/3.0 200 OK\r\n" + MINIMAL[25:] + b"\r\n", 505, "unsupported SIP version"),
        (b"SIP/2.0 2OO OK\r\n" + MINIMAL[25:] + b"\r\n", 400, "invalid status code"),
    ],
)
def test_parse_errors(data: bytes, status: int, message: str) -> None:
    with pytest.raises(
        SipParseError, match=message.replace("+", r"\+").replace("*", r"\*")
    ) as info:
        parse_message(data)
    assert info.value.status == status


def test_oversized_messages_are_513() -> None:
    big_header = with_headers(b"X-Pad: " + b"a" * 65536)
    with pytest.raises(SipParseError, match="header section too large") as info:
        parse_message(big_header)
    assert info.value.status == 513
    no_end = MINIMAL + b"X-Pad: " + b"a" * 65536
    with pytest.raises(SipParseError, match="header section too large") as info:
        parse_message(no_end)
    assert info.value.status == 513
    big_body = b"x" * (1048576 + 1)
    with pytest.raises(SipParseError, match="body too large") as info:
        parse_message(with_headers(b"Content-Length: 1048577", body=big_body))
    assert info.value.status == 513
    with pytest.raises(SipParseError, match="body too large") as info:
        parse_message(with_headers(body=big_body))  # UDP without Content-Length
    assert info.value.status == 513
    with pytest.raises(SipParseError, match="body too large") as info:
        parse_message(with_headers(b"Content-Length: 99999999999"))
    assert info.value.status == 513
    assert len(parse_message(with_headers(body=b"x" * 1048576)).body) == 1048576
    limited = with_headers(b"Content-Length: 11", body=b"hello world")
    with pytest.raises(SipParseError, match="body too large"):
        parse_message(limited, max_body_bytes=10)
    with pytest.raises(SipParseError, match="header section too large"):
        parse_message(limited, max_header_bytes=100)


def test_stream_framer_oversize_is_513() -> None:
    framer = StreamFramer(max_header_bytes=1000, max_body_bytes=10)
    with pytest.raises(SipParseError, match="body too large") as info:
        framer.feed(with_headers(b"Content-Length: 11", body=b"hello world"))
    assert info.value.status == 513
    framer = StreamFramer(max_header_bytes=1000)
    assert framer.feed(b"OPTIONS sip:a@b SIP/2.0\r\n" + b"X: y\r\n" * 100) == []
    with pytest.raises(SipParseError, match="header section too large") as info:
        framer.feed(b"X: y\r\n" * 100)
    assert info.value.status == 513
    with pytest.raises(SipParseError, match="header section too large"):
        framer.feed(b"\r\n")  # the connection stays failed


def test_datagram_whose_headers_end_with_the_datagram_is_accepted() -> None:
    """Liberal (RFC 4475 baddn.dat lacks it): a datagram ending in CRLF without the empty line
    is a header section with no body; it is re-emitted with the empty line."""
    message = parse_message(MINIMAL)
    assert message.body == b""
    assert bytes(message).endswith(b"Content-Length: 0\r\n\r\n")


def test_leading_crlf_and_trailing_octets_are_ignored() -> None:
    message = parse_message(b"\r\n\r\n" + with_headers(b"l: 2", body=b"okNOISE"))
    assert message.body == b"ok"
    assert message.headers.get_all("Content-Length") == ["2"]


def test_datagram_without_content_length_takes_the_rest() -> None:
    message = parse_message(with_headers(body=b"rest\r\n"))
    assert message.body == b"rest\r\n"
    assert message.headers.get("Content-Length") == "6"  # normalised, so bytes() re-parses equal
    assert parse_message(bytes(message)) == message


def test_compact_forms_and_odd_case_are_canonicalised() -> None:
    data = (
        b"OPTIONS sip:a@b SIP/2.0\r\nV: SIP/2.0/UDP h\r\nF: <sip:a@b>;tag=1\r\nT: <sip:a@b>\r\n"
        b"I: c\r\ncseq: 1 OPTIONS\r\nMAX-FORWARDS: 1\r\nK: timer\r\nO: dialog\r\nE: gzip\r\n"
        b'www-authenticate: Digest realm="a", nonce="b"\r\nx-custom-HEADER: 1\r\nS: hi\r\n\r\n'
    )
    message = parse_message(data)
    assert [name for name, _ in message.headers.items()] == [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Max-Forwards",
        "Supported",
        "Event",
        "Content-Encoding",
        "WWW-Authenticate",
        "x-custom-HEADER",
        "Subject",
        "Content-Length",
    ]
    assert message.headers.get("X-Custom-Header") == "1"
    assert message.headers.get("www-authenticate") == 'Digest realm="a", nonce="b"'


def test_multi_valued_headers_respect_quotes_and_brackets() -> None:
    message = parse_message(
        with_headers(
            b'Contact: "Doe, John" <sip:j,k@h;x=a>;q=0.5, <sip:k@h>',
            b"Record-Route: <sip:p1;lr>,<sip:p2;lr>",
            b'Warning: 399 h "a, b", 399 h "c"',
            b"Date: Sat, 13 Nov 2010 23:29:00 GMT",
            b"Supported: , timer,,100rel ,",
        )
    )
    assert message.headers.get_all("Contact") == [
        '"Doe, John" <sip:j,k@h;x=a>;q=0.5',
        "<sip:k@h>",
    ]
    assert message.headers.get_all("Record-Route") == ["<sip:p1;lr>", "<sip:p2;lr>"]
    assert message.headers.get_all("Warning") == ['399 h "a, b"', '399 h "c"']
    assert message.headers.get_all("Date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert message.headers.get_all("Supported") == ["timer", "100rel"]


def test_wildcard_contact_and_lazy_properties() -> None:
    message = parse_message(with_headers(b"Contact: *", b"Expires: 0"))
    assert message.is_wildcard_contact
    assert message.contacts == []
    assert message.expires == 0
    assert message.max_forwards is None
    assert message.content_type is None
    spaced = parse_message(with_headers(b"c: Application / SDP ; charset=utf-8"))
    assert spaced.content_type == "application/sdp"
    plain = parse_message(with_headers())
    assert not plain.is_wildcard_contact
    bad = parse_message(with_headers(b"Expires: soon", b"Content-Type: nonsense"))
    with pytest.raises(SipParseError, match="invalid Expires 'soon'"):
        _ = bad.expires
    with pytest.raises(SipParseError, match="malformed Content-Type 'nonsense'"):
        _ = bad.content_type


def test_property_cache_follows_header_changes() -> None:
    message = parse_message(INVITE)
    assert message.top_via.branch == "z9hG4bK-1"
    message.headers.prepend("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p")
    assert message.top_via.branch == "z9hG4bK-p"
    assert len(message.vias) == 4
    assert message.headers.remove_first("Via") == "SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p"
    assert message.top_via.branch == "z9hG4bK-1"
    message.headers.set("Max-Forwards", "69")
    assert message.max_forwards == 69
    copy = message.headers.copy()
    copy.set("Call-ID", "other")
    assert message.call_id == "call-1@192.0.2.20"
    assert copy != message.headers


def test_a_header_change_drops_only_what_was_parsed_from_that_header() -> None:
    message = parse_message(INVITE)
    parsed_from, parsed_to, parsed_cseq = message.from_, message.to, message.cseq
    message.headers.prepend("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p")
    message.headers.add("X-Extra", "1")
    assert message.top_via.branch == "z9hG4bK-p"
    assert (message.from_, message.to, message.cseq) == (parsed_from, parsed_to, parsed_cseq)
    assert message.from_ is parsed_from and message.to is parsed_to
    message.headers.set("To", "<sip:carol@example.com>;tag=9")
    assert message.to.tag == "9"
    assert message.from_ is parsed_from
    assert message.headers.get_all("Via")[0] == "SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p"
    assert message.headers.remove_first("Via") == "SIP/2.0/UDP proxy.example.com;branch=z9hG4bK-p"
    assert message.headers.get_all("X-Extra") == ["1"]
    message.headers.remove("X-Extra")
    assert "X-Extra" not in message.headers
    assert message.top_via.branch == "z9hG4bK-1"


def test_released_parsed_values_are_parsed_again_on_demand() -> None:
    message = parse_message(INVITE)
    before = (message.from_, message.to, message.cseq, message.top_via, message.contacts)
    wire = bytes(message)
    message.release_parsed()
    assert bytes(message) == wire
    after = (message.from_, message.to, message.cseq, message.top_via, message.contacts)
    assert after == before
    assert after[0] is not before[0]  # parsed afresh: the cached objects were let go
    assert message.headers.get_all("Via") == [str(via) for via in message.vias]


def test_build_request_from_scratch() -> None:
    request = SipRequest(
        "BYE",
        SipUri.parse("sip:bob@192.0.2.4"),
        Headers(
            [
                ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-9"),
                ("Max-Forwards", "70"),
                ("From", "<sip:alice@atlanta.com>;tag=1"),
                ("To", "<sip:bob@biloxi.com>;tag=2"),
                ("Call-ID", "x@y"),
                ("CSeq", "2 BYE"),
            ]
        ),
    )
    assert bytes(request) == (
        b"BYE sip:bob@192.0.2.4 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-9\r\n"
        b"Max-Forwards: 70\r\n"
        b"From: <sip:alice@atlanta.com>;tag=1\r\n"
        b"To: <sip:bob@biloxi.com>;tag=2\r\n"
        b"Call-ID: x@y\r\n"
        b"CSeq: 2 BYE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    request.body = b"abc"
    request.headers.add("Content-Length", "999")  # always rewritten from the body
    assert bytes(request).endswith(b"Content-Length: 3\r\n\r\nabc")


def test_make_response_keeps_existing_to_tag_and_copies_timestamp() -> None:
    request = parse_message(
        with_headers(b"Timestamp: 54.2").replace(b"To: <sip:a@b>", b"To: <sip:a@b>;tag=x")
    )
    assert isinstance(request, SipRequest)
    response = make_response(request, 100, to_tag="ignored")
    assert response.to.tag == "x"
    assert response.headers.get("Timestamp") == "54.2"
    assert make_response(request, 200).headers.get("Timestamp") is None
    assert make_response(request, 488, "Nope").reason == "Nope"
    with pytest.raises(ValueError, match="status code out of range"):
        make_response(request, 99)
    with pytest.raises(ValueError, match="tag is not a token"):
        make_response(parse_message(with_headers()), 200, to_tag="a;b")  # type: ignore[arg-type]


def test_response_reason_cannot_inject_lines() -> None:
    response = SipResponse(200, "OK\r\nVia: evil", Headers())
    assert bytes(response).startswith(b"SIP/2.0 200 OK  Via: evil\r\n")


def test_response_status_line_variants() -> None:
    head = MINIMAL[25:] + b"\r\n"
    assert parse_message(b"SIP/2.0 200\r\n" + head).reason == ""  # type: ignore[union-attr]
    lower = parse_message(b"sip/2.0 180 Ringing\r\n" + head)
    assert isinstance(lower, SipResponse)
    assert bytes(lower).startswith(b"SIP/2.0 180 Ringing\r\n")


def test_request_line_cannot_inject_lines() -> None:
    request = SipRequest("INVITE", SipUri("sip", "a", None, "h\r\nVia: evil"))
    with pytest.raises(ValueError, match="cannot serialize Request-Line"):
        bytes(request)
    with pytest.raises(ValueError, match="cannot serialize Request-Line"):
        bytes(SipRequest("IN VITE", SipUri("sip", "a", None, "h")))
