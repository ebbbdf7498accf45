"""T14: a Contact naming a private address other than the REGISTER's source is reached at the
source instead (the phone is behind a NAT that did not say so); a LAN phone registering from
its own private address keeps it; addresses that are never a phone are refused (403)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from callwarden.sip.addressing import Destination, Source
from callwarden.sip.clock import FakeClock
from callwarden.sip.message import SipRequest
from callwarden.telephony.contact_address import reachable_destination
from callwarden.telephony.registrar import Registrar

RequestFactory = Callable[..., SipRequest]
INTERNET = Source("UDP", "203.0.113.5", 40000, "192.0.2.1", 5060)
LAN = Source("UDP", "192.168.1.20", 5060, "192.168.1.2", 5060)
PLAIN_VIA = "SIP/2.0/UDP 203.0.113.5:40000;branch=z9hG4bK-1"


def bound_at(registrar: Registrar, build: RequestFactory, contact: str, source: Source) -> object:
    request = build("REGISTER", via=PLAIN_VIA, extra=(f"Contact: <{contact}>",))
    response = registrar.register(request, source, "alice")
    if response.status != 200:
        return response.status
    [binding] = registrar.bindings("alice")
    return binding.destination


@pytest.mark.parametrize(
    "contact",
    [
        "sip:alice@192.168.1.20:5060",
        "sip:alice@10.0.0.7",
        "sip:alice@172.16.5.5:5062",
        "sip:alice@172.31.255.254",
        "sip:alice@100.64.0.9",  # carrier-grade NAT (RFC 6598)
        "sip:alice@[fd00::20]:5060",  # IPv6 unique-local
        "sip:alice@[::ffff:10.0.0.7]",
    ],
)
def test_a_private_contact_from_the_internet_is_reached_at_the_source(
    clock: FakeClock, build_request: RequestFactory, contact: str
) -> None:
    registrar = Registrar(clock)
    assert bound_at(registrar, build_request, contact, INTERNET) == Destination(
        "UDP", "203.0.113.5", 40000
    )


def test_a_lan_phone_registering_from_its_own_address_keeps_its_contact(
    clock: FakeClock, build_request: RequestFactory
) -> None:
    registrar = Registrar(clock)
    contact = "sip:alice@192.168.1.20:5062"  # its SIP port, not the port it sent from
    assert bound_at(registrar, build_request, contact, LAN) == Destination(
        "UDP", "192.168.1.20", 5062
    )


@pytest.mark.parametrize(
    "contact",
    [
        "sip:alice@198.51.100.7:5060",  # public: its own business where it is reached
        "sip:alice@172.32.0.1",  # just outside 172.16.0.0/12
        "sip:alice@100.128.0.1",  # just outside 100.64.0.0/10
        "sip:alice@phone.example",  # names are resolved when used
    ],
)
def test_public_contacts_and_names_are_kept(
    clock: FakeClock, build_request: RequestFactory, contact: str
) -> None:
    registrar = Registrar(clock)
    destination = bound_at(registrar, build_request, contact, INTERNET)
    assert isinstance(destination, Destination)
    assert destination.host != "203.0.113.5"


@pytest.mark.parametrize(
    "contact",
    [
        "sip:alice@[::ffff:127.0.0.1]:5060",  # loopback written as IPv4-mapped IPv6
        "sip:alice@[::ffff:224.0.0.1]",
        "sip:alice@240.0.0.1",  # reserved (RFC 1112 class E)
        "sip:alice@[fe80::1]",
        "sip:alice@[ff02::1]",
    ],
)
def test_more_addresses_that_are_never_a_phone_are_refused(
    clock: FakeClock, build_request: RequestFactory, contact: str
) -> None:
    registrar = Registrar(clock)
    assert bound_at(registrar, build_request, contact, INTERNET) == 403
    assert registrar.bindings("alice") == []


def test_connection_flows_and_rport_are_left_alone() -> None:
    tcp = Source("TCP", "203.0.113.5", 40001, "192.0.2.1", 5060, 9)
    flow = Destination("TCP", "203.0.113.5", 40001, 9)
    assert reachable_destination(flow, tcp) == flow
    symmetric = Destination("UDP", "203.0.113.5", 40000)
    assert reachable_destination(symmetric, INTERNET) == symmetric


def test_a_lan_phone_cannot_point_the_node_at_another_lan_host(
    clock: FakeClock, build_request: RequestFactory
) -> None:
    registrar = Registrar(clock)
    assert bound_at(registrar, build_request, "sip:alice@192.168.1.1:5060", LAN) == Destination(
        "UDP", "192.168.1.20", 5060
    )
