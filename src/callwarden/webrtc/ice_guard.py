"""DTLS only from ICE-validated addresses.

aioice authenticates every STUN request with the ICE password (401 otherwise) but hands any
other datagram that reaches a local candidate's socket to the DTLS transport, whatever its
source. `guard_connection` wraps each local socket's protocol so that a non-STUN datagram is
accepted only from the remote address of a candidate pair whose connectivity check succeeded
(RFC 8445 7.2.5.3: the valid list); everything else is dropped and counted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aioice import Connection, stun
from aioice.ice import CandidatePair

__all__ = ["DtlsSourceGuard"]

logger = logging.getLogger(__name__)


def _is_stun(data: bytes) -> bool:
    try:
        stun.parse_message(data)
    except ValueError:
        return False
    return True


class DtlsSourceGuard:
    """Installed on one aioice `Connection` after its candidates are gathered."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.dropped = 0
        self._guarded: set[int] = set()

    def install(self) -> int:
        """Wrap every local socket of the connection (again after new ones); returns how many
        are guarded."""
        for protocol in self._connection._protocols:
            if id(protocol) in self._guarded:
                continue
            self._guarded.add(id(protocol))
            original: Callable[[bytes | str, tuple[Any, ...]], None] = protocol.datagram_received
            protocol.datagram_received = self._filter(original)  # type: ignore[method-assign,assignment]
        return len(self._guarded)

    def validated(self, address: tuple[Any, ...]) -> bool:
        pairs: list[CandidatePair] = self._connection._check_list
        remote = (address[0], address[1])
        return any(
            pair.state == CandidatePair.State.SUCCEEDED and pair.remote_addr == remote
            for pair in pairs
        )

    def _filter(
        self, original: Callable[[bytes | str, tuple[Any, ...]], None]
    ) -> Callable[[bytes | str, tuple[Any, ...]], None]:
        def datagram_received(data: bytes | str, addr: tuple[Any, ...]) -> None:
            if isinstance(data, bytes) and not _is_stun(data) and not self.validated(addr):
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 100 == 0:
                    logger.warning(
                        "dropped %d non-STUN datagram(s) from unvalidated %s:%s",
                        self.dropped,
                        addr[0],
                        addr[1],
                    )
                return
            original(data, addr)

        return datagram_received
