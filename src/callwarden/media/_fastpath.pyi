"""Types of the C extension ``callwarden.media._fastpath`` (built from ``csrc/`` by the package's
build). The core classes hold the fields that Python code and the pump share; the Python classes
of the engine subclass them. See :mod:`callwarden.media.fastpath`."""

from collections.abc import Callable, Sequence
from typing import Any, Final

BATCH: Final[int]

class StreamCore:
    ssrc: int
    sequence_number: int
    timestamp: int
    payload_type: int
    clock_rate: int
    frame_samples: int
    packets: int
    octets: int
    _seq_offset: int
    _ts_offset: int
    sending: bool
    fd: int
    _source: object | None
    last_send: float | None
    address: tuple[str, int] | None

class ReceptionCore:
    clock_rate: int
    ssrc: int | None
    base_seq: int
    max_seq: int
    cycles: int
    received: int
    _bad_seq: int
    _received_prior: int
    _expected_prior: int
    _last_timestamp: int
    _last_sr: int
    _last_arrival: float
    _jitter: float
    _last_sr_arrival: float

class EndpointCore:
    enabled: bool
    _fixed: bool
    _latch: bool
    _payload_type: int
    packets_in: int
    bytes_in: int
    dropped_foreign: int
    dropped_early: int
    dropped_malformed: int
    last_receive: float | None
    _peer_key: tuple[Any, ...] | None
    _now: Callable[[], float]
    reception: ReceptionCore
    sink: object

class MemberCore:
    last_active: float
    fast_listeners: Sequence[StreamCore]
    buffer: object

class Pump:
    relayed: Final[int]
    to_python: Final[int]
    dropped: Final[int]
    batches: Final[int]
    send_errors: Final[int]
    sockets: Final[int]
    def add(self, fd: int, endpoint: EndpointCore, /) -> None: ...
    def remove(self, fd: int, /) -> None: ...
    def run(self) -> None: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...

class JitterBuffer:
    depth: Final[int]
    max_depth: Final[int]
    frame_bytes: Final[int]
    late: int
    lost: int
    overflowed: int
    def __init__(self, depth: int = 2, max_depth: int = 6, frame_bytes: int = 160) -> None: ...
    def __len__(self) -> int: ...
    def push(self, sequence_number: int, payload: bytes, /) -> None: ...
    def pop(self) -> bytes | None: ...

class Tap:
    """One recorded participant's µ-law track, gathered in C each tick (see tap_frames).

    A buffer tap (an RTP leg) pops its jitter buffer in ``tap_frames`` and keeps the payload as
    ``frame`` for the mixer; a fed tap (``buffer`` None: a player) is given its frame with
    ``feed``."""

    buffer: Final[JitterBuffer | None]
    participant_id: Final[str]
    frame: Final[bytes | None]
    table: Final[bytes | None]
    clock: Final[int]
    frames: Final[int]
    count: Final[int]
    owner: Callable[[Tap], None] | None
    recording: bool
    capacity: int
    def __init__(
        self,
        buffer: JitterBuffer | None,
        participant_id: str,
        clock: int,
        capacity: int,
        table: bytes | None = None,
    ) -> None: ...
    def take(self) -> tuple[int, bytes] | None: ...
    def feed(self, codes: bytes | None, /) -> bool: ...

def tap_frames(taps: list[Tap], /) -> list[Tap] | None: ...
