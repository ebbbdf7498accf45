"""Table tests for callwarden.sip.validation.check_request (RFC 3261 8.2.2 - 8.2.3)."""

from __future__ import annotations

import pytest

from callwarden.sip.errors import BadExtensionError, SipError
from callwarden.sip.message import SipRequest, parse_message
from callwarden.sip.validation import check_request


def build(
    method: str = "INVITE",
    uri: str = "sip:bob@biloxi.com",
    headers: tuple[str, ...] = (),
    body: bytes = b"",
) -> SipRequest:
    data = (
        f"{method} {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"
        "Max-Forwards: 70\r\n"
        "To: <sip:bob@biloxi.com>\r\n"
        "From: <sip:alice@atlanta.com>;tag=1928301774\r\n"
        "Call-ID: a84b4c76e66710\r\n"
        f"CSeq: 314159 {method}\r\n"
        + "".join(f"{header}\r\n" for header in headers)
        + f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    request = parse_message(data)
    assert isinstance(request, SipRequest)
    return request


SDP = b"v=0\r\n"


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (build(), None),
        (build(body=SDP, headers=("Content-Type: application/sdp",)), None),
        (build(body=SDP, headers=("Content-Type: Application/SDP; charset=utf-8",)), None),
        (build(uri="tel:+15551234"), 416),
        (build(uri="sips:bob@biloxi.com"), None),
        (build(headers=("Require: 100rel",)), 420),
        (build(headers=("Proxy-Require: sec-agree",)), 420),
        (build(headers=("Supported: 100rel, timer",)), None),
        (build("CANCEL", headers=("Require: foo",)), None),
        (build("ACK", headers=("Require: foo",)), None),
        (build(body=SDP, headers=("Content-Type: text/plain",)), 415),
        (build(body=SDP), 400),
        (
            build(body=SDP, headers=("Content-Type: application/sdp", "Content-Encoding: gzip")),
            415,
        ),
        (
            build(
                body=SDP,
                headers=("Content-Type: application/sdp", "Content-Encoding: identity"),
            ),
            None,
        ),
        (build("UPDATE", body=SDP, headers=("Content-Type: text/plain",)), 415),
        (build("MESSAGE", body=b"hi", headers=("Content-Type: text/plain",)), None),
        (build("INFO", body=b"x", headers=("Content-Type: application/dtmf-relay",)), None),
        (build(headers=("Accept: text/nobodyKnowsThis",)), 406),
        (build(headers=("Accept: text/html, application/sdp;level=1",)), None),
        (build(headers=("Accept: application/*",)), None),
        (build(headers=("Accept: */*",)), None),
        (build("OPTIONS", headers=("Accept: text/nobodyKnowsThis",)), None),
        # Order of RFC 3261 8.2: scheme before extensions before content.
        (build(uri="tel:1", headers=("Require: x",), body=SDP), 416),
        (build(headers=("Require: x", "Content-Type: text/plain"), body=SDP), 420),
    ],
)
def test_check_request_status(request_: SipRequest, status: int | None) -> None:
    if status is None:
        check_request(request_)
        return
    with pytest.raises(SipError) as info:
        check_request(request_)
    assert info.value.status == status


def test_bad_extension_lists_unknown_tags_once() -> None:
    request = build(headers=("Require: timer, foo, 100rel", "Proxy-Require: foo, bar"))
    with pytest.raises(BadExtensionError) as info:
        check_request(request, supported_extensions=frozenset({"timer", "100rel"}))
    assert info.value.unsupported == ("foo", "bar")
    assert info.value.headers == (("Unsupported", "foo"), ("Unsupported", "bar"))
    assert (info.value.status, info.value.reason) == (420, "Bad Extension")


def test_unsupported_media_type_lists_accept() -> None:
    request = build(body=SDP, headers=("Content-Type: text/plain",))
    with pytest.raises(SipError) as info:
        check_request(
            request, supported_content_types=frozenset({"application/sdp", "multipart/mixed"})
        )
    assert info.value.headers == (("Accept", "application/sdp"), ("Accept", "multipart/mixed"))
    assert str(info.value) == "unsupported Content-Type 'text/plain'"


def test_configured_scheme_and_content_type_are_accepted() -> None:
    check_request(build(uri="tel:+15551234"), supported_schemes=frozenset({"sip", "tel"}))
    check_request(
        build(body=b"--b--", headers=("Content-Type: multipart/mixed;boundary=b",)),
        supported_content_types=frozenset({"application/sdp", "multipart/mixed"}),
    )
