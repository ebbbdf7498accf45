"""The media engine's command interface: plain values in and out, so it can cross a process.

:class:`MediaControl` is what the telephony layer codes against. :class:`MediaEngine`
(one process) and :class:`MediaWorkerPool` (several worker processes, each owning whole
bridges) both provide it. Everything passed through it is a string, a number, a frozenset or one
of the frozen dataclasses below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NewType, Protocol

from callwarden.media.endpoint import EndpointStats
from callwarden.media.srtp import SrtpKeys

EndpointId = NewType("EndpointId", str)
BridgeId = NewType("BridgeId", str)


class MediaError(ValueError):
    """A media command named something that does not exist or gave an invalid value."""


@dataclass(frozen=True, slots=True)
class MediaConfig:
    """Engine settings. ``ports`` is ``"LOW-HIGH"`` as given by ``--rtp-ports``."""

    host: str = "127.0.0.1"
    ports: str = "20000-29999"
    rtp_timeout: float | None = 60.0
    jitter_frames: int = 2
    rtcp_interval: float = 5.0
    cname: str = "callwarden"
    #: Relay the plain two-party case in C when the extension is built (see media.fastpath).
    fast_path: bool = True
    #: ``"package.module:Name"`` of the recording sink provider built inside the engine's
    #: process (see media.recording_sink); None: ``start_recording`` is refused.
    recording_sinks: str | None = None
    #: Logging level of worker processes (spawned: they do not inherit the node's logging
    #: configuration); None leaves Python's default, warnings only.
    log_level: str | None = None


@dataclass(frozen=True, slots=True)
class LocalMedia:
    """Where an endpoint listens: put ``host`` and ``rtp_port`` into the SDP."""

    endpoint_id: EndpointId
    host: str
    rtp_port: int
    rtcp_port: int


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """A key press received on an endpoint (RFC 4733); ``timestamp`` is the event's RTP time."""

    endpoint_id: EndpointId
    digit: str
    timestamp: int


@dataclass(frozen=True, slots=True)
class RtpTimeoutEvent:
    """An enabled endpoint whose remote should send received nothing for ``seconds``."""

    endpoint_id: EndpointId
    seconds: float


@dataclass(frozen=True, slots=True)
class RecordingEvent:
    """The recording sink of a bridge reports trouble, e.g. ``kind="failed"`` (disk full):
    it has stopped recording; the call's media goes on."""

    bridge_id: BridgeId
    kind: str
    detail: str


MediaEvent = DtmfEvent | RtpTimeoutEvent | RecordingEvent


@dataclass(frozen=True, slots=True)
class EngineStats:
    """Engine-wide counts. ``late_ticks`` counts 20 ms ticks skipped because the loop was busy;
    ``tick_work_max_ms`` is the longest tick since the previous ``engine_stats`` call;
    ``packets_fast_path`` counts RTP packets relayed by the C pump, ``packets_to_python`` those
    it handed to the Python path (both 0 without the pump)."""

    endpoints: int
    bridges: int
    ports_free: int
    ticks: int
    late_ticks: int
    tick_work_max_ms: float
    packets_fast_path: int = 0
    packets_to_python: int = 0


class MediaControl(Protocol):
    """The commands of the media engine (see :class:`callwarden.media.engine.MediaEngine`)."""

    async def create_endpoint(
        self, *, bridge_id: str | None = None, srtp: bool = False
    ) -> LocalMedia: ...

    async def set_remote(
        self,
        endpoint_id: str,
        *,
        host: str,
        port: int,
        payload_type: int,
        encoding: str,
        dtmf_payload_type: int | None = None,
        rtcp_port: int | None = None,
        direction: str = "sendrecv",
        srtp: SrtpKeys | None = None,
    ) -> None: ...

    async def enable(
        self, endpoint_id: str, *, latch: bool = False, latch_host: str | None = None
    ) -> None: ...

    async def set_rtp_timeout(self, endpoint_id: str, seconds: float | None) -> None: ...

    async def close_endpoint(self, endpoint_id: str) -> None: ...

    async def stats(self, endpoint_id: str) -> EndpointStats: ...

    async def engine_stats(self) -> EngineStats: ...

    async def create_bridge(self) -> BridgeId: ...

    async def add_to_bridge(self, bridge_id: str, endpoint_id: str, role: str) -> None: ...

    async def add_tone(
        self,
        bridge_id: str,
        frequencies: Sequence[float],
        *,
        level_dbfs: float = -12.0,
        cadence: tuple[float, float] | None = None,
        role: str = "player",
    ) -> str: ...

    async def add_wav(
        self, bridge_id: str, path: str, *, loop: bool = True, role: str = "player"
    ) -> str: ...

    async def remove_from_bridge(self, bridge_id: str, participant_id: str) -> None: ...

    async def set_hearing(
        self, bridge_id: str, listener_id: str, sources: frozenset[str]
    ) -> None: ...

    async def set_matrix(self, bridge_id: str, matrix: Mapping[str, frozenset[str]]) -> None: ...

    async def set_mode(self, bridge_id: str, mode: str) -> None: ...

    async def hearing(self, bridge_id: str) -> dict[str, frozenset[str]]: ...

    async def close_bridge(self, bridge_id: str) -> None: ...

    async def start_recording(self, bridge_id: str, spec: Mapping[str, object]) -> None:
        """Tap every participant's own track into a sink built where the media runs."""
        ...

    async def pause_recording(self, bridge_id: str) -> int:
        """Record nothing more; the reply confirms it (the pause's sample timestamp)."""
        ...

    async def resume_recording(self, bridge_id: str) -> int: ...

    async def stop_recording(self, bridge_id: str) -> Mapping[str, object]:
        """Finish the recording; returns the sink's summary (plain values)."""
        ...

    def subscribe(self, callback: Callable[[MediaEvent], None]) -> Callable[[], None]: ...

    async def close(self) -> None: ...
