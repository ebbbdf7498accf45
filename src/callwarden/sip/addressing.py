"""Where SIP messages come from and where they go (sans-IO).

:class:`Source` describes the hop a message arrived on, :class:`Destination` the hop a message
is sent to. :func:`response_destination` applies RFC 3261 18.2.2 with RFC 3581 (symmetric
response routing) and :func:`uri_destination` the static subset of RFC 3263 (numeric or
already-resolvable host, explicit or default port, transport from the URI).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from callwarden.sip.headers import Via
from callwarden.sip.uri import SipUri

__all__ = [
    "DEFAULT_PORTS",
    "Destination",
    "Source",
    "TransportName",
    "default_port",
    "is_reliable",
    "normalize_transport",
    "response_destination",
    "same_host",
    "uri_destination",
]

TransportName = Literal["UDP", "TCP", "TLS"]

DEFAULT_PORTS: dict[str, int] = {"UDP": 5060, "TCP": 5060, "TLS": 5061}


@dataclass(frozen=True, slots=True)
class Source:
    """The hop a message arrived on (RFC 3261 18.2.1)."""

    transport: TransportName
    remote_host: str
    remote_port: int
    local_host: str
    local_port: int
    connection_id: int | None = None

    def reply_destination(self) -> Destination:
        """Straight back to where the message came from (same connection for TCP/TLS)."""
        return Destination(self.transport, self.remote_host, self.remote_port, self.connection_id)


@dataclass(frozen=True, slots=True)
class Destination:
    """The hop a message is sent to.

    For TCP and TLS, ``connection_id`` names an existing connection to prefer; when it is
    gone the transport connects (or reuses a connection) to ``host``:``port``.
    """

    transport: TransportName
    host: str
    port: int
    connection_id: int | None = None


def is_reliable(transport: str) -> bool:
    """True for stream transports (RFC 3261 17: no retransmission timers over them)."""
    return transport != "UDP"


def default_port(transport: str) -> int:
    """5061 for TLS, 5060 otherwise (RFC 3261 19.1.2)."""
    return 5061 if transport == "TLS" else 5060


def normalize_transport(text: str) -> TransportName:
    """Map a Via transport or ``transport=`` URI parameter to UDP, TCP or TLS.

    Raises ValueError for transports this stack does not speak (SCTP, WS...).
    """
    upper = text.upper()
    if upper == "UDP":
        return "UDP"
    if upper == "TCP":
        return "TCP"
    if upper == "TLS":
        return "TLS"
    raise ValueError(f"unsupported transport {text!r}")


def _bare_host(host: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.lower()


def same_host(first: str, second: str) -> bool:
    """Compare two hosts, ignoring case and IPv6 brackets."""
    return first == second or _bare_host(first) == _bare_host(second)


def response_destination(source: Source, via: Via) -> Destination:
    """Where to send responses to a request that arrived from ``source`` (RFC 3261 18.2.2).

    ``via`` is the request's top Via after the receiving transport added ``received`` and
    filled ``rport`` (RFC 3261 18.2.1, RFC 3581 4).

    - Reliable transports: the connection the request came on, falling back to the
      ``received`` address and the sent-by port.
    - ``maddr`` present: that address, sent-by port.
    - UDP with ``rport``: symmetric, the source address and port (RFC 3581 4).
    - UDP otherwise: the ``received`` address (or sent-by host) and the sent-by port.
    """
    transport = source.transport
    sent_by_port = via.port if via.port is not None else default_port(transport)
    if transport != "UDP":
        host = via.received or source.remote_host
        return Destination(transport, host, sent_by_port, source.connection_id)
    maddr = _via_param(via, "maddr")
    if maddr:
        return Destination("UDP", maddr, sent_by_port)
    if via.has_rport:
        return Destination("UDP", source.remote_host, source.remote_port)
    return Destination("UDP", via.received or via.host, sent_by_port)


def _via_param(via: Via, name: str) -> str | None:
    for key, value in via.params:
        if key.lower() == name:
            return value
    return None


def uri_destination(uri: SipUri, *, default_transport: TransportName = "UDP") -> Destination:
    """The next hop for a request to ``uri``, static part of RFC 3263 4.

    ``maddr`` overrides the host; ``transport=`` chooses the transport (``sips`` means TLS);
    the port defaults per transport. Host names are not resolved here: the transport does.
    """
    transport: TransportName = default_transport
    transport_param = uri.param("transport")
    if uri.scheme == "sips":
        transport = "TLS"
    elif transport_param is not None:
        try:
            transport = normalize_transport(transport_param)
        except ValueError:
            transport = default_transport
    host = uri.param("maddr") or uri.host
    port = uri.port if uri.port is not None else default_port(transport)
    return Destination(transport, _bare_host(host), port)
