"""Settings, counters and errors shared by the SIP transport and its connection pool."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TransportConfig", "TransportError", "TransportStats"]


class TransportError(OSError):
    """A message could not be sent (no listener for that transport, buffer overflow...)."""


@dataclass(frozen=True, slots=True)
class TransportConfig:
    """Limits and timeouts of a ``SipTransport`` and its connections."""

    max_header_bytes: int = 65536
    max_body_bytes: int = 1_048_576
    max_header_fields: int = 256
    max_connections_per_host: int = 32
    max_connections: int = 10_000
    idle_timeout: float = 300.0
    connect_timeout: float = 5.0
    max_write_buffer: int = 4 * 1_048_576
    udp_buffer_bytes: int | None = None


@dataclass(slots=True)
class TransportStats:
    """Counters for monitoring; every drop is counted somewhere."""

    received: int = 0
    rejected_unparseable: int = 0
    dropped_unparseable: int = 0
    dropped_responses: int = 0
    user_errors: int = 0
    framing_errors: int = 0
    connections_refused: int = 0
    connections_idle_closed: int = 0
    send_errors: int = 0
    filtered: int = 0
    filtered_sends: int = 0
