"""Where to send requests to a SIP peer we heard from (RFC 3581, RFC 5626 in spirit).

A phone behind home NAT is reached at the address its requests came from: over UDP when it
asked for symmetric routing (`rport`), over TCP/TLS on the same connection. Otherwise (a trunk,
a phone on a routed network) at the address in its Contact.
"""

from __future__ import annotations

from callwarden.sip.addressing import Destination, Source, uri_destination
from callwarden.sip.uri import SipUri, Uri


def flow_destination(contact: Uri | None, source: Source, *, symmetric: bool) -> Destination:
    """The destination for requests to the peer that sent us a request from `source`."""
    if source.transport != "UDP":
        return Destination(
            source.transport, source.remote_host, source.remote_port, source.connection_id
        )
    if symmetric or not isinstance(contact, SipUri):
        return Destination("UDP", source.remote_host, source.remote_port)
    return uri_destination(contact)
