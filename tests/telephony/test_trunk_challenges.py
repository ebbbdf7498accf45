"""T13: the credentials of a trunk answer only that trunk's realm when one is configured, and
the answer is the one authenticated retry of the INVITE (`telephony/outbound.py`)."""

from __future__ import annotations

import logging
import re

import pytest

from callwarden.config import ConfigError, load_settings
from callwarden.sip.digest import parse_credentials
from callwarden.sip.digest_headers import DigestCredentials
from callwarden.sip.message import SipRequest, SipResponse, make_response, parse_message
from callwarden.telephony.outbound import authenticated_retry

INVITE = (
    b"INVITE sip:0312345678@198.51.100.20 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKout1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:0312345678@198.51.100.20>\r\n"
    b"From: <sip:1001@192.0.2.1>;tag=b2b1\r\n"
    b"Call-ID: out-1@192.0.2.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: <sip:b2bua@192.0.2.1>\r\n"
    b"Content-Length: 0\r\n\r\n"
)
CREDENTIALS = ("callwarden-out", "trunk-secret-1")


def invite() -> SipRequest:
    message = parse_message(INVITE)
    assert isinstance(message, SipRequest)
    return message


def challenge(status: int, *realms: str) -> SipResponse:
    response = make_response(invite(), status, to_tag="carrier1")
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    for n, realm in enumerate(realms):
        response.headers.add(name, f'Digest realm="{realm}", nonce="n{n}", qop="auth"')
    return response


def answered_realm(retry: SipRequest | None, status: int) -> str:
    assert retry is not None
    name = "Authorization" if status == 401 else "Proxy-Authorization"
    credentials = parse_credentials(retry.headers.get(name) or "")
    assert isinstance(credentials, DigestCredentials)
    assert credentials.username == "callwarden-out"
    return credentials.realm


@pytest.mark.parametrize("status", [401, 407])
def test_the_configured_realm_is_answered_among_others(status: int) -> None:
    response = challenge(status, "evil.example", "sip.carrier.example")
    retry = authenticated_retry(invite(), response, CREDENTIALS, realm="sip.carrier.example")
    assert answered_realm(retry, status) == "sip.carrier.example"
    assert retry is not None and retry.cseq.number == 2


@pytest.mark.parametrize("status", [401, 407])
def test_another_realm_is_not_answered_and_says_why(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    response = challenge(status, "evil.example")
    with caplog.at_level(logging.WARNING, logger="callwarden.telephony.outbound"):
        retry = authenticated_retry(invite(), response, CREDENTIALS, realm="sip.carrier.example")
    assert retry is None
    assert (
        f"{status} challenge to call out-1@192.0.2.1 not answered: realms ['evil.example'] "
        "offered, the trunk's realm is 'sip.carrier.example'"
    ) in caplog.text


def test_without_a_configured_realm_the_challenged_one_is_answered() -> None:
    response = challenge(401, "whatever.example")
    assert answered_realm(authenticated_retry(invite(), response, CREDENTIALS), 401) == (
        "whatever.example"
    )


def test_an_unusable_challenge_is_logged_as_such(caplog: pytest.LogCaptureFixture) -> None:
    response = make_response(invite(), 401, to_tag="carrier1")
    response.headers.add("WWW-Authenticate", 'Basic realm="x"')
    response.headers.add("WWW-Authenticate", "Digest garbage")
    with caplog.at_level(logging.WARNING, logger="callwarden.telephony.outbound"):
        assert authenticated_retry(invite(), response, CREDENTIALS) is None
    assert "realms ['?', '?'] offered, none usable" in caplog.text


def test_trunk_realms_are_read_from_the_settings() -> None:
    environ = {"CALLWARDEN_TRUNK_REALMS": "carrier: sip.carrier.example, backup:b.example"}
    settings = load_settings(environ=environ)
    assert settings.trunk_realm_by_name == {
        "carrier": "sip.carrier.example",
        "backup": "b.example",
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("carrier", "a trunk name, ':' and its realm"),
        ("carrier:", "a trunk name, ':' and its realm"),
        (":sip.carrier.example", "a trunk name, ':' and its realm"),
        ('carrier:a"b', "a trunk name, ':' and its realm"),
        ("carrier:a,carrier:b", "trunk 'carrier' is given a realm twice"),
    ],
)
def test_malformed_trunk_realms_are_refused(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings(environ={"CALLWARDEN_TRUNK_REALMS": value})
