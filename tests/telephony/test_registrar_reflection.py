"""T14 (reflection): a REGISTER may not make the node send calls to a loopback address (unless
the phone is on this host), nor to unspecified, multicast, broadcast or link-local addresses;
LAN phones at private addresses and phones behind NAT (rport) register as ever."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from callwarden.sip.addressing import Source
from callwarden.sip.clock import FakeClock
from callwarden.sip.message import SipRequest
from callwarden.telephony.registrar import Registrar

RequestFactory = Callable[..., SipRequest]
INTERNET = Source("UDP", "203.0.113.5", 40000, "192.0.2.1", 5060)
LOCAL = Source("UDP", "127.0.0.1", 40000, "127.0.0.1", 5060)
PLAIN_VIA = "SIP/2.0/UDP 203.0.113.5:40000;branch=z9hG4bK-1"
RPORT_VIA = "SIP/2.0/UDP 203.0.113.5:40000;branch=z9hG4bK-1;rport"


def register(
    registrar: Registrar, build: RequestFactory, contact: str, source: Source, via: str
) -> int:
    request = build("REGISTER", via=via, extra=(f"Contact: <{contact}>",))
    return registrar.register(request, source, "alice").status


@pytest.mark.parametrize(
    "contact",
    [
        "sip:alice@127.0.0.1:5060",
        "sip:alice@127.9.9.9",
        "sip:alice@[::1]:5060",
        "sip:alice@0.0.0.0:5060",
        "sip:alice@224.0.0.1",
        "sip:alice@255.255.255.255",
        "sip:alice@169.254.1.1",
    ],
)
def test_contacts_that_reflect_are_refused_and_leave_no_binding(
    clock: FakeClock, build_request: RequestFactory, contact: str
) -> None:
    registrar = Registrar(clock)
    assert register(registrar, build_request, contact, INTERNET, PLAIN_VIA) == 403
    assert registrar.bindings("alice") == []


@pytest.mark.parametrize(
    ("contact", "source", "via"),
    [
        ("sip:alice@192.168.1.20:5060", INTERNET, PLAIN_VIA),  # a LAN phone
        ("sip:alice@10.0.0.7", INTERNET, PLAIN_VIA),
        ("sip:alice@127.0.0.1:5060", INTERNET, RPORT_VIA),  # rport: reached at its source
        ("sip:alice@127.0.0.1:5070", LOCAL, PLAIN_VIA),  # a phone on this very host
        ("sip:alice@phone.example", INTERNET, PLAIN_VIA),  # names are resolved when used
    ],
)
def test_ordinary_contacts_still_register(
    clock: FakeClock, build_request: RequestFactory, contact: str, source: Source, via: str
) -> None:
    registrar = Registrar(clock)
    assert register(registrar, build_request, contact, source, via) == 200
    assert len(registrar.bindings("alice")) == 1
