"""A small per-source jitter buffer for the mixer: reorder by sequence number, play 20 ms frames.

Packets are held by sequence number; playout starts once ``depth`` packets are waiting (1-3
frames: 20-60 ms), then one frame leaves per tick. A missing packet whose successors are already
there is counted lost and its frame is silence; an empty buffer is an underrun and playout waits
for ``depth`` packets again (the source paused, or is slower than our clock). More than
``max_depth`` waiting packets (a burst, or a source faster than our clock) drops the oldest back
to ``depth``. Payloads of other sizes than one frame (ptime 10 or 30 ms) are re-cut into frames.

:data:`JitterBuffer` is the C type of the extension ``_fastpath`` when it is built (the same
algorithm and attributes, in ``csrc/jitter.c``: the pump pushes into it without a Python call
and a pop is one C call), else :class:`PyJitterBuffer`, this module's reference implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING


class PyJitterBuffer:
    """Reorder and pace one source's G.711 payloads into frames of ``frame_bytes`` bytes."""

    __slots__ = (
        "_newest",
        "_next",
        "_packets",
        "_pending",
        "_playing",
        "depth",
        "frame_bytes",
        "late",
        "lost",
        "max_depth",
        "overflowed",
    )

    def __init__(self, depth: int = 2, max_depth: int = 6, frame_bytes: int = 160) -> None:
        if not 1 <= depth <= max_depth:
            raise ValueError(f"jitter buffer depth {depth} must be 1..max_depth ({max_depth})")
        self.depth = depth
        self.max_depth = max_depth
        self.frame_bytes = frame_bytes
        self._packets: dict[int, bytes] = {}
        self._playing = False
        self._next = 0
        self._newest = 0
        self._pending = b""
        self.lost = 0
        self.late = 0
        self.overflowed = 0

    def __len__(self) -> int:
        return len(self._packets)

    def push(self, sequence_number: int, payload: bytes) -> None:
        """Add a packet; one that arrives after its turn was played is counted late and dropped."""
        packets = self._packets
        if self._playing and ((sequence_number - self._next) & 0xFFFF) >= 0x8000:
            self.late += 1
            return
        if not packets or ((sequence_number - self._newest) & 0xFFFF) < 0x8000:
            self._newest = sequence_number
        packets[sequence_number] = payload
        if len(packets) > self.max_depth:
            self._drop_to_depth()

    def _oldest(self) -> int:
        newest = self._newest
        return (newest - max((newest - seq) & 0xFFFF for seq in self._packets)) & 0xFFFF

    def _drop_to_depth(self) -> None:
        packets = self._packets
        while len(packets) > self.depth:
            del packets[self._oldest()]
            self.overflowed += 1
        if self._playing:
            self._next = self._oldest()

    def _take(self) -> bytes | None:
        packets = self._packets
        if not self._playing:
            if len(packets) < self.depth:
                return None
            self._playing = True
            self._next = self._oldest()
        payload = packets.pop(self._next, None)
        self._next = (self._next + 1) & 0xFFFF
        if payload is None:
            if packets:
                self.lost += 1
            else:
                self._playing = False
                self._pending = b""
        return payload

    def pop(self) -> bytes | None:
        """The next frame, or None when this tick has nothing from the source (silence)."""
        frame_bytes = self.frame_bytes
        if not self._pending:
            payload = self._take()
            if payload is None or len(payload) == frame_bytes:
                return payload
            self._pending = payload
        while len(self._pending) < frame_bytes:
            payload = self._take()
            if payload is None:
                return None
            self._pending += payload
        frame = self._pending[:frame_bytes]
        self._pending = self._pending[frame_bytes:]
        return frame


if TYPE_CHECKING:
    JitterBuffer = PyJitterBuffer
else:
    try:
        from callwarden.media._fastpath import JitterBuffer
    except ImportError:  # the extension is not built
        JitterBuffer = PyJitterBuffer
