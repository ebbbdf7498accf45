"""T14: which address a registered phone is reached at when its Contact names a private one.

A REGISTER over UDP without `rport` asks to be reached at its Contact. When that Contact is a
private or shared address (RFC 1918, RFC 6598 carrier-grade NAT, IPv6 unique-local) and is not
the address the REGISTER came from, the phone is behind a NAT that did not tell us: a request
sent to the Contact would go to whatever host holds that address on the node's own network
(an internet phone could point the node at the node's neighbours). Such a binding is rewritten
to the REGISTER's source (address, port and transport), the only place the phone is known to
be reachable; a LAN phone registering from its own private address keeps its Contact.

Contacts that can never be a phone (loopback from another host, unspecified, multicast,
broadcast, link-local, reserved) are refused before this (`registrar.reflected_destination`).
"""

from __future__ import annotations

import ipaddress

from callwarden.sip.addressing import Destination, Source

__all__ = ["PRIVATE_NETWORKS", "reachable_destination"]

PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "fc00::/7",
    )
)


def reachable_destination(destination: Destination, source: Source) -> Destination:
    """`destination` (a binding's, from its Contact or flow), or the REGISTER's source when
    the Contact is a private address other than the source's (see the module's rule)."""
    if destination.connection_id is not None:
        return destination  # the REGISTER's own connection (TCP, TLS)
    try:
        named = _unmapped(ipaddress.ip_address(destination.host.strip("[]")))
    except ValueError:
        return destination  # host names are resolved when used
    if not any(named in network for network in PRIVATE_NETWORKS):
        return destination
    try:
        came_from = _unmapped(ipaddress.ip_address(source.remote_host))
    except ValueError:
        came_from = None
    if came_from == named:
        return destination
    return source.reply_destination()


def _unmapped(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
