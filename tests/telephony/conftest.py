"""Shared pieces of the telephony unit tests: a small call center as a directory snapshot, a
fake clock, and golden SIP requests (built as bytes, then parsed by the real parser).

The directory:

- roles: `operator` may dial national numbers (`0[1-9]XXXXXXXX`) and directory enquiries
  (`118XXX`), `supervisor` those and international ones (`00.`), `auditor` nothing at all;
- users: alice 1001 (operator), bob 1002 (supervisor), carol 1003 (operator, disabled),
  dave 1004 (auditor), erin (operator, no extension); every one has SIP credentials for
  realm `callwarden`, password `<username>-secret`;
- queue billing 5000;
- trunks in name order: `archive` (disabled), `carrier` (192.0.2.10: national and international
  out, several inbound numbers), `partner` (192.0.2.11: directory enquiries `118XXX` out, one
  inbound number).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import QueueId, RoleId, TeamId, TrunkId, UserId
from callwarden.domain.models import (
    InboundNumber,
    Queue,
    Role,
    SipCredentials,
    Team,
    Trunk,
    User,
)
from callwarden.domain.patterns import DialPattern
from callwarden.sip.clock import FakeClock
from callwarden.sip.digest import compute_ha1
from callwarden.sip.message import SipRequest, parse_message

REALM = "callwarden"
NATIONAL = "0[1-9]XXXXXXXX"
INTERNATIONAL = "00."
DIRECTORY_ENQUIRIES = "118XXX"


def password_of(username: str) -> str:
    return f"{username}-secret"


def _credentials(username: str) -> SipCredentials:
    password = password_of(username)
    return SipCredentials(
        realm=REALM,
        ha1_md5=compute_ha1(username, REALM, password, "MD5"),
        ha1_sha256=compute_ha1(username, REALM, password, "SHA-256"),
    )


def _patterns(*texts: str) -> tuple[DialPattern, ...]:
    return tuple(DialPattern.parse(text) for text in texts)


def _user(
    user_id: int, username: str, role: int, extension: str | None, *, enabled: bool = True
) -> User:
    return User(
        id=UserId(user_id),
        username=username,
        display_name=username.title(),
        role_id=RoleId(role),
        team_id=TeamId(1),
        extension=extension,
        enabled=enabled,
        sip=_credentials(username),
    )


def build_directory() -> DirectorySnapshot:
    operator = Role(
        id=RoleId(1), name="operator", outbound_patterns=_patterns(NATIONAL, DIRECTORY_ENQUIRIES)
    )
    supervisor = Role(
        id=RoleId(2),
        name="supervisor",
        outbound_patterns=_patterns(NATIONAL, INTERNATIONAL, DIRECTORY_ENQUIRIES),
    )
    auditor = Role(id=RoleId(3), name="auditor")
    return DirectorySnapshot(
        teams=[Team(id=TeamId(1), name="support", display_name="Support")],
        roles=[operator, supervisor, auditor],
        users=[
            _user(1, "alice", 1, "1001"),
            _user(2, "bob", 2, "1002"),
            _user(3, "carol", 1, "1003", enabled=False),
            _user(4, "dave", 3, "1004"),
            _user(5, "erin", 1, None),
        ],
        trunks=[
            Trunk(
                id=TrunkId(1),
                name="carrier",
                host="192.0.2.10",
                inbound_numbers=(
                    InboundNumber("0312345678", "5000"),
                    InboundNumber("0312345601", "1001"),
                    InboundNumber("0312345603", "1003"),
                    InboundNumber("0312345699", "7777"),
                    InboundNumber("1002"),
                    InboundNumber("0312345000"),
                ),
                outbound_patterns=_patterns(NATIONAL, INTERNATIONAL),
            ),
            Trunk(
                id=TrunkId(2),
                name="partner",
                host="192.0.2.11",
                inbound_numbers=(InboundNumber("0498765432", "1002"),),
                outbound_patterns=_patterns(DIRECTORY_ENQUIRIES),
            ),
            Trunk(
                id=TrunkId(3),
                name="archive",
                host="192.0.2.12",
                inbound_numbers=(InboundNumber("0312340000", "1001"),),
                outbound_patterns=_patterns(NATIONAL, DIRECTORY_ENQUIRIES),
                enabled=False,
            ),
        ],
        queues=[
            Queue(
                id=QueueId(1),
                name="billing",
                display_name="Billing",
                number="5000",
                team_id=TeamId(1),
            )
        ],
    )


@pytest.fixture
def directory() -> DirectorySnapshot:
    return build_directory()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=1000.0)


RequestFactory = Callable[..., SipRequest]


def sip_request(
    method: str,
    uri: str = "sip:pbx.example",
    *,
    user: str = "alice",
    to_user: str | None = None,
    call_id: str = "call-1@192.168.1.20",
    cseq: int = 1,
    via: str = "SIP/2.0/UDP 192.168.1.20:5060;branch=z9hG4bK-1;rport",
    extra: tuple[str, ...] = (),
) -> SipRequest:
    """Build a request as wire bytes (one header per line, CRLF) and parse it.

    `extra` are further header lines, written as given (Contact, Expires, Authorization...).
    """
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: {via}",
        "Max-Forwards: 70",
        f"From: <sip:{user}@pbx.example>;tag=from-{user}",
        f"To: <sip:{to_user or user}@pbx.example>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        *extra,
        "Content-Length: 0",
        "",
        "",
    ]
    message = parse_message("\r\n".join(lines).encode("utf-8"))
    assert isinstance(message, SipRequest)
    return message


@pytest.fixture
def build_request() -> RequestFactory:
    """`sip_request` as a fixture, so test modules need not import from conftest."""
    return sip_request
