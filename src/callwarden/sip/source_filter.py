"""What the transport asks about a message's source before and after parsing it.

A :class:`SourceFilter` (the application's per-source guard: rate limits, bans) is consulted
for every received message *before* it is parsed, so a banned source costs one dictionary
lookup and no parsing, and is told of every message that could not be parsed, so garbage
counts against its sender; nothing is sent to a banned address. The transport works without
one (``None``): everything is admitted.
"""

from __future__ import annotations

from typing import Protocol

from callwarden.sip.addressing import Source

__all__ = ["SourceFilter"]


class SourceFilter(Protocol):
    def admits(self, source: Source) -> bool:
        """False: drop the message unread (a banned source)."""
        ...

    def on_malformed(self, source: Source) -> None:
        """A message from `source` could not be parsed (answered 400/513 or dropped)."""
        ...

    def may_send_to(self, host: str) -> bool:
        """False: send nothing to `host` (banned: not even retransmissions of answers given
        before the ban, which would make the node an amplifier toward a spoofed address)."""
        ...
