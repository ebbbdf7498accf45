"""Hostile SIP input at the parser (SECURITY-NOTES T3, T4, T5): limits answered 513 or 400 in
bounded time, duplicated headers refused (CVE-2018-14767, CVE-2020-27507), out-of-range
integers refused, never a negative length or an exception other than SipParseError."""

from __future__ import annotations

import time

import pytest

from callwarden.sip.errors import SipParseError
from callwarden.sip.message import SipRequest, parse_message

PARSE_BUDGET_S = 0.05

BASE = (
    "INVITE sip:1001@pbx.example SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
    "Max-Forwards: 70",
    "From: <sip:alice@pbx.example>;tag=1",
    "To: <sip:1001@pbx.example>",
    "Call-ID: c1@192.0.2.1",
    "CSeq: 1 INVITE",
)


def request(*extra: str, replace: dict[str, str] | None = None, length: str = "0") -> bytes:
    lines = [
        (replace or {}).get(line.split(":", 1)[0], line) if ":" in line[:20] else line
        for line in BASE
    ]
    return "\r\n".join([*lines, *extra, f"Content-Length: {length}", "", ""]).encode()


def parse_error(data: bytes) -> SipParseError:
    """Parse `data` within the time budget; the SipParseError it raises."""
    started = time.perf_counter()
    with pytest.raises(SipParseError) as raised:
        parse_message(data)
    elapsed = time.perf_counter() - started
    assert elapsed < PARSE_BUDGET_S, f"took {elapsed * 1000:.1f} ms"
    return raised.value


@pytest.mark.parametrize(
    ("name", "data", "status"),
    [
        ("2 MB header block", request("X-Padding: " + "a" * 2_000_000), 513),
        (
            "10,000 Via lines",
            request(*["Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKv"] * 10_000),
            513,
        ),
        ("300 Via lines within 64 KB", request(*["Via: SIP/2.0/UDP h;branch=z9hG4bKv"] * 300), 513),
        (
            "64 KB Request-URI",
            request(replace={"INVITE sip": "INVITE sip:" + "1" * 65_536 + "@pbx.example SIP/2.0"}),
            513,
        ),
        ("body over 1 MB announced", request(length="2000000"), 513),
    ],
)
def test_limits_are_513_in_bounded_time(name: str, data: bytes, status: int) -> None:
    assert parse_error(data).status == status, name


def test_a_thousand_parameters_on_one_header_parse_in_bounded_time() -> None:
    params = "".join(f";p{n}={n}" for n in range(1000))
    data = request(replace={"To": f"To: <sip:1001@pbx.example>{params}"})
    started = time.perf_counter()
    message = parse_message(data)
    assert isinstance(message, SipRequest)
    assert message.to.tag is None
    assert time.perf_counter() - started < PARSE_BUDGET_S


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (("To: <sip:1001@pbx.example>;tag=",), "more than one To"),
        (("Call-ID: other@192.0.2.66",), "more than one Call-ID"),
        (("CSeq: 2 INVITE",), "more than one CSeq"),
        (("From: <sip:mallory@pbx.example>;tag=2",), "more than one From"),
        (("Content-Length: 5",), "more than one Content-Length"),
    ],
)
def test_duplicated_headers_are_400(extra: tuple[str, ...], reason: str) -> None:
    error = parse_error(request(*extra))
    assert (error.status, str(error)) == (400, reason)


@pytest.mark.parametrize(
    ("replace", "length", "reason"),
    [
        ({"CSeq": "CSeq: 4294967296 INVITE"}, "0", "CSeq number out of range"),
        ({"CSeq": "CSeq: 10000000000000000000000 INVITE"}, "0", "invalid CSeq number"),
        ({}, "-1", "invalid Content-Length"),
        ({"Max-Forwards": "Max-Forwards: 300"}, "0", "Max-Forwards out of range"),
    ],
)
def test_out_of_range_integers_are_400(replace: dict[str, str], length: str, reason: str) -> None:
    error = parse_error(request(replace=replace, length=length))
    assert error.status == 400 and str(error).startswith(reason)


def test_a_huge_expires_is_refused_when_read() -> None:
    message = parse_message(request("Expires: 1" + "0" * 100))
    assert isinstance(message, SipRequest)
    with pytest.raises(SipParseError, match="invalid Expires"):
        _ = message.expires


def test_a_status_code_of_four_billion_is_refused() -> None:
    response = (
        b"SIP/2.0 4294967301 Huge\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert parse_error(response).status == 400
