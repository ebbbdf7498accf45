"""The "encrypted only" media policy: its decisions for REGISTER, INVITE and call targets."""

from __future__ import annotations

import logging

import pytest

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import RoleId, TeamId, UserId
from callwarden.domain.models import Role, Team, User
from callwarden.sip.addressing import Destination, Source, TransportName
from callwarden.sip.uri import SipUri
from callwarden.telephony.media_policy import MediaPolicy, PolicyRefusal
from callwarden.telephony.monitoring_policy import phone_targets
from callwarden.telephony.registrar import Binding

OPERATOR, SUPERVISOR, AUDITOR = RoleId(1), RoleId(2), RoleId(3)
HOME, OFFICE, HOME_NIGHTS = TeamId(1), TeamId(2), TeamId(3)

DIRECTORY = DirectorySnapshot(
    teams=[
        Team(id=HOME, name="home", display_name="Home"),
        Team(id=OFFICE, name="office", display_name="Office"),
        Team(id=HOME_NIGHTS, name="nights", display_name="Nights", parent_id=HOME),
    ],
    roles=[
        Role(id=OPERATOR, name="operator"),
        Role(id=SUPERVISOR, name="supervisor"),
        Role(id=AUDITOR, name="auditor"),
    ],
)


def user(role: RoleId, team: TeamId | None = None, name: str = "alice") -> User:
    return User(id=UserId(7), username=name, display_name=name, role_id=role, team_id=team)


def source(transport: TransportName) -> Source:
    return Source(transport, "198.51.100.7", 5061, "203.0.113.5", 5061)


def offer(proto: str, port: int = 4000) -> bytes:
    return (
        "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n"
        f"m=audio {port} {proto} 0\r\n"
    ).encode()


POLICY = MediaPolicy.of(roles=["operator", "supervisor"], teams=["home"])


@pytest.mark.parametrize(
    ("who", "why"),
    [
        (user(OPERATOR), "role operator"),
        (user(SUPERVISOR, OFFICE), "role supervisor"),
        (user(AUDITOR, HOME), "team home"),
        (user(AUDITOR, HOME_NIGHTS), "team home"),  # a sub-team of an encrypted team
        (user(AUDITOR, OFFICE), None),
        (user(AUDITOR), None),
    ],
)
def test_who_must_encrypt_by_role_or_team(who: User, why: str | None) -> None:
    assert POLICY.why_encrypted(who, DIRECTORY) == why
    assert POLICY.requires_srtp(who, DIRECTORY) is (why is not None)
    assert MediaPolicy().why_encrypted(who, DIRECTORY) is None  # the default policy: nobody


def test_trunks_may_use_plain_rtp() -> None:
    assert not POLICY.requires_srtp(None, DIRECTORY)


@pytest.mark.parametrize("transport", ["UDP", "TCP"])
def test_register_over_udp_or_tcp_is_403_and_logged(
    transport: TransportName, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="callwarden.telephony.media_policy"):
        refusal = POLICY.check_register(user(OPERATOR), source(transport), DIRECTORY)
    assert refusal == PolicyRefusal(
        403,
        "TLS Required",
        f"REGISTER of alice from 198.51.100.7 over {transport}: "
        "the media policy for role operator requires TLS and SRTP",
    )
    assert refusal.why in caplog.text


def test_register_over_tls_and_others_over_anything_pass() -> None:
    assert POLICY.check_register(user(OPERATOR), source("TLS"), DIRECTORY) is None
    assert POLICY.check_register(user(AUDITOR, OFFICE), source("UDP"), DIRECTORY) is None


@pytest.mark.parametrize(
    ("transport", "body", "expected"),
    [
        ("TLS", offer("RTP/SAVP"), None),
        (
            "TLS",
            offer("RTP/AVP"),
            (488, "SRTP Required", "offers plain RTP: the media policy for role operator"),
        ),
        (
            "TLS",
            offer("RTP/SAVP", port=0) + b"m=audio 4002 RTP/AVP 0\r\n",
            (488, "SRTP Required", "offers plain RTP"),
        ),
        ("UDP", offer("RTP/SAVP"), (403, "TLS Required", "over UDP: the media policy")),
        ("TCP", offer("RTP/AVP"), (403, "TLS Required", "over TCP: the media policy")),
        ("TLS", b"not sdp", None),  # left to the call: 400 Bad SDP
    ],
)
def test_invites_from_a_user_who_must_encrypt(
    transport: TransportName, body: bytes, expected: tuple[int, str, str] | None
) -> None:
    refusal = POLICY.check_invite(user(OPERATOR), source(transport), body, DIRECTORY)
    if expected is None:
        assert refusal is None
    else:
        assert refusal is not None
        assert (refusal.status, refusal.reason) == expected[:2]
        assert expected[2] in refusal.why and "INVITE from alice at 198.51.100.7" in refusal.why


def test_invites_from_others_are_not_judged() -> None:
    body = offer("RTP/AVP")
    assert POLICY.check_invite(user(AUDITOR, OFFICE), source("UDP"), body, DIRECTORY) is None


def test_only_tls_phones_of_a_user_who_must_encrypt_are_called() -> None:
    assert POLICY.may_reach(user(OPERATOR), "TLS", DIRECTORY)
    assert not POLICY.may_reach(user(OPERATOR), "UDP", DIRECTORY)
    assert not POLICY.may_reach(user(OPERATOR), "TCP", DIRECTORY)
    assert POLICY.may_reach(user(AUDITOR, OFFICE), "UDP", DIRECTORY)


def test_a_supervisor_who_must_encrypt_gets_monitoring_audio_only_on_tls_phones() -> None:
    def binding(transport: TransportName, port: int) -> Binding:
        uri = SipUri("sip", "sam", None, "198.51.100.7", port, (), ())
        return Binding(uri, Destination(transport, "198.51.100.7", port), 3600.0, "c", 1)

    phones = [binding("UDP", 5060), binding("TLS", 5061), binding("TCP", 5062)]
    sam = user(SUPERVISOR, OFFICE, name="sam")
    targets = phone_targets(
        lambda _name: phones,
        "203.0.113.5",
        encrypted=lambda who: POLICY.requires_srtp(who, DIRECTORY),
    )(sam)
    assert [(t.destination.transport, t.srtp) for t in targets] == [("TLS", True)]
    everyone = phone_targets(lambda _name: phones, "203.0.113.5")(sam)
    assert [(t.destination.transport, t.srtp) for t in everyone] == [
        ("UDP", False),
        ("TLS", False),
        ("TCP", False),
    ]
