"""RTP/RTCP port pairs from a configured range (RFC 3550 11: RTP on an even port, RTCP on +1).

Ports are handed out round-robin: a released pair goes to the back of the queue, so a port
is not reused while stray packets of the call that just ended may still be arriving.
"""

from __future__ import annotations

from collections import deque


class PortsExhaustedError(RuntimeError):
    """Every port pair of the range is in use."""


class PortRange:
    """An inclusive ``low-high`` port range; the pairs are the even ports p with p+1 <= high."""

    __slots__ = ("high", "low")

    def __init__(self, low: int, high: int) -> None:
        if not 1 <= low <= high <= 65535:
            raise ValueError(f"invalid port range {low}-{high}")
        first = low + (low & 1)
        if first + 1 > high:
            raise ValueError(f"port range {low}-{high} holds no even/odd pair")
        self.low = low
        self.high = high

    @classmethod
    def parse(cls, text: str) -> PortRange:
        """Parse ``"LOW-HIGH"`` as given by ``--rtp-ports``."""
        low_text, separator, high_text = text.partition("-")
        if not separator or not low_text.strip().isdigit() or not high_text.strip().isdigit():
            raise ValueError(f"port range must be LOW-HIGH, not {text!r}")
        return cls(int(low_text), int(high_text))

    def pairs(self) -> range:
        first = self.low + (self.low & 1)
        return range(first, self.high, 2)


class PortAllocator:
    """Allocate and release RTP ports (even; the RTCP port is the next one)."""

    __slots__ = ("_free", "_in_use", "range")

    def __init__(self, port_range: PortRange) -> None:
        self.range = port_range
        self._free: deque[int] = deque(port_range.pairs())
        self._in_use: set[int] = set()

    @property
    def available(self) -> int:
        return len(self._free)

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    def allocate(self) -> int:
        """Return a free even RTP port; its RTCP port is the value + 1."""
        if not self._free:
            raise PortsExhaustedError(
                f"all {len(self._in_use)} RTP port pairs of {self.range.low}-{self.range.high}"
                " are in use"
            )
        port = self._free.popleft()
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        """Give a pair back; releasing a port that is not allocated raises ValueError."""
        if port not in self._in_use:
            raise ValueError(f"port {port} is not allocated")
        self._in_use.remove(port)
        self._free.append(port)
