"""Where requests to a peer go, from where its request came (RFC 3581, RFC 3263 static)."""

from __future__ import annotations

import pytest

from callwarden.sip.addressing import Destination, Source
from callwarden.sip.uri import Uri, parse_uri
from callwarden.telephony.flows import flow_destination

UDP = Source("UDP", "203.0.113.5", 40000, "192.0.2.1", 5060)
TCP = Source("TCP", "203.0.113.5", 51000, "192.0.2.1", 5060, connection_id=7)
TLS = Source("TLS", "203.0.113.6", 52000, "192.0.2.1", 5061, connection_id=8)


@pytest.mark.parametrize(
    ("contact", "source", "symmetric", "destination"),
    [
        # UDP, symmetric (rport): back to the source, whatever the Contact says
        ("sip:alice@192.168.1.20:5062", UDP, True, Destination("UDP", "203.0.113.5", 40000)),
        (
            "sip:alice@192.168.1.20;transport=tcp",
            UDP,
            True,
            Destination("UDP", "203.0.113.5", 40000),
        ),
        (None, UDP, True, Destination("UDP", "203.0.113.5", 40000)),
        # UDP without rport: the Contact, per RFC 3263's static rules
        ("sip:alice@192.168.1.20:5062", UDP, False, Destination("UDP", "192.168.1.20", 5062)),
        ("sip:alice@192.168.1.20", UDP, False, Destination("UDP", "192.168.1.20", 5060)),
        ("sip:alice@PHONE.example", UDP, False, Destination("UDP", "phone.example", 5060)),
        ("sip:alice@[2001:db8::20]:5070", UDP, False, Destination("UDP", "2001:db8::20", 5070)),
        (
            "sip:alice@192.168.1.20;transport=tcp",
            UDP,
            False,
            Destination("TCP", "192.168.1.20", 5060),
        ),
        ("sips:alice@192.168.1.20", UDP, False, Destination("TLS", "192.168.1.20", 5061)),
        (
            "sip:alice@192.168.1.20;maddr=192.0.2.99",
            UDP,
            False,
            Destination("UDP", "192.0.2.99", 5060),
        ),
        # UDP without rport and without a usable Contact: the source after all
        (None, UDP, False, Destination("UDP", "203.0.113.5", 40000)),
        ("tel:+15551234567", UDP, False, Destination("UDP", "203.0.113.5", 40000)),
        # stream transports: the connection the request came on, rport or not
        ("sip:alice@192.168.1.20:5062", TCP, False, Destination("TCP", "203.0.113.5", 51000, 7)),
        ("sip:alice@192.168.1.20:5062", TCP, True, Destination("TCP", "203.0.113.5", 51000, 7)),
        (None, TCP, False, Destination("TCP", "203.0.113.5", 51000, 7)),
        ("sips:alice@192.168.1.20", TLS, False, Destination("TLS", "203.0.113.6", 52000, 8)),
    ],
)
def test_flow_destination(
    contact: str | None, source: Source, symmetric: bool, destination: Destination
) -> None:
    uri: Uri | None = None if contact is None else parse_uri(contact)
    assert flow_destination(uri, source, symmetric=symmetric) == destination
