"""MediaEngine: the one interface the telephony layer uses for media.

A small command-style API with plain values (strings, numbers, frozen dataclasses), every
command a coroutine, so the engine can later live behind a process boundary unchanged. It owns
the port allocator, the endpoints, the bridges and the single loop-wide 20 ms ticker that
drives all bridges (one timer for the whole engine, not one per bridge).

Events (DTMF digits, RTP timeouts, recording failures) go to callbacks registered with
:meth:`MediaEngine.subscribe`. Recordings are sinks made by a provider given at construction
(see :mod:`callwarden.media.recording_sink`): the engine never knows how they are stored.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from callwarden.media.bridge import Bridge, BridgeError, TrackSink
from callwarden.media.clock import Clock, SystemClock
from callwarden.media.control import (
    BridgeId,
    DtmfEvent,
    EndpointId,
    EngineStats,
    LocalMedia,
    MediaConfig,
    MediaError,
    MediaEvent,
    RtpTimeoutEvent,
)
from callwarden.media.dtmf import DtmfDigit
from callwarden.media.endpoint import Direction, EndpointError, EndpointStats, RtpEndpoint
from callwarden.media.fastpath import AVAILABLE as FAST_PATH_AVAILABLE
from callwarden.media.fastpath import PacketPump
from callwarden.media.g711 import Encoding
from callwarden.media.matrix import Mode
from callwarden.media.mixer import Mixer
from callwarden.media.player import PcmSource, ToneSource, load_wav
from callwarden.media.ports import PortAllocator, PortRange, PortsExhaustedError
from callwarden.media.recording_sink import (
    BridgeRecordings,
    RecordingSinkProvider,
    RecordingSpec,
    RecordingSummary,
    load_provider,
)
from callwarden.media.srtp import SrtpEndpoint, SrtpKeys

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.020
_HOUSEKEEPING_TICKS = 50
_BIND_ATTEMPTS = 16


class MediaEngine:
    """RTP endpoints, bridges and the ticker. Use ``async with MediaEngine(config) as engine``.

    Tests pass a fake ``clock`` and never :meth:`start` the ticker; they call :meth:`tick`.
    """

    def __init__(
        self,
        config: MediaConfig,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        id_prefix: str = "",
        recording_sinks: RecordingSinkProvider | None = None,
    ) -> None:
        self.config = config
        self._prefix = id_prefix
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._rng = rng if rng is not None else random.SystemRandom()
        self._ports = PortAllocator(PortRange.parse(config.ports))
        self._endpoints: dict[EndpointId, RtpEndpoint] = {}
        self._membership: dict[EndpointId, BridgeId] = {}
        self._bridges: dict[BridgeId, Bridge] = {}
        self._mixer = Mixer()
        self._subscribers: list[Callable[[MediaEvent], None]] = []
        self._ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_tick = 0.0
        self._late_ticks = 0
        self._housekeeping_round: list[EndpointId] | None = None
        self._tick_work_max = 0.0
        self._pump: PacketPump | None = None
        self._closed = False
        if recording_sinks is None and config.recording_sinks is not None:
            recording_sinks = load_provider(config.recording_sinks)
        self._recordings = BridgeRecordings(recording_sinks, self._emit)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    # --- ticker -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the 20 ms ticker on the running loop."""
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._next_tick = loop.time() + TICK_SECONDS
        self._timer = loop.call_at(self._next_tick, self._on_timer)

    def _on_timer(self) -> None:
        loop = self._loop
        if loop is None or self._closed:
            return
        started = time.perf_counter()
        try:
            self.tick()
        except Exception:  # a bug in one tick must not stop the media of every call
            logger.exception("media tick failed")
        self._tick_work_max = max(self._tick_work_max, time.perf_counter() - started)
        self._next_tick += TICK_SECONDS
        now = loop.time()
        if now - self._next_tick > 3 * TICK_SECONDS:
            skipped = int((now - self._next_tick) / TICK_SECONDS)
            self._late_ticks += skipped
            self._next_tick += skipped * TICK_SECONDS
        self._timer = loop.call_at(self._next_tick, self._on_timer)

    def tick(self) -> None:
        """One 20 ms step of every bridge; RTCP and timeouts of 1/50 of the endpoints.

        Each endpoint's housekeeping runs once a second, spread over the ticks so no tick
        builds hundreds of RTCP reports at once (that would delay every relayed packet).
        """
        now = self._clock.monotonic()
        self._mixer.tick(now)
        phase = self._mixer.ticks % _HOUSEKEEPING_TICKS
        if phase == 0 or self._housekeeping_round is None:
            self._housekeeping_round = list(self._endpoints)
        self._housekeeping(self._housekeeping_round[phase::_HOUSEKEEPING_TICKS], now)

    def _housekeeping(self, endpoint_ids: list[EndpointId], now: float) -> None:
        for endpoint_id in endpoint_ids:
            endpoint = self._endpoints.get(endpoint_id)
            if endpoint is not None and endpoint.housekeeping(now):
                logger.info("endpoint %s: no RTP for %s s", endpoint_id, endpoint.timeout)
                self._emit(RtpTimeoutEvent(endpoint_id, endpoint.timeout or 0.0))

    # --- events -------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[MediaEvent], None]) -> Callable[[], None]:
        """Receive every :data:`MediaEvent`; returns the function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def _emit(self, event: MediaEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:  # the event itself is not logged: it may carry a DTMF digit
                logger.exception("media event subscriber failed on a %s", type(event).__name__)

    def _on_dtmf(self, endpoint_id: str, digit: DtmfDigit) -> None:
        self._emit(DtmfEvent(EndpointId(endpoint_id), digit.digit, digit.timestamp))

    # --- endpoints ----------------------------------------------------------------------------

    async def create_endpoint(
        self, *, bridge_id: str | None = None, srtp: bool = False
    ) -> LocalMedia:
        """Allocate a port pair and bind an endpoint to it (raises PortsExhaustedError).

        ``bridge_id`` names the bridge the endpoint is for: one engine process ignores it
        beyond checking it exists; a worker pool creates the endpoint in that bridge's worker.
        ``srtp``: an :class:`~callwarden.media.srtp.SrtpEndpoint` (Python path), whose keys
        come with ``set_remote``.
        """
        if bridge_id is not None:
            self._bridge(bridge_id)
        loop = asyncio.get_running_loop()
        if self._pump is None and self.config.fast_path and FAST_PATH_AVAILABLE:
            self._pump = PacketPump(loop)
        endpoint_id = EndpointId(f"{self._prefix}e{next(self._ids)}")
        for _ in range(_BIND_ATTEMPTS):
            port = self._ports.allocate()
            endpoint = (SrtpEndpoint if srtp else RtpEndpoint)(
                endpoint_id,
                clock=self._clock,
                rng=self._rng,
                cname=self.config.cname.encode(),
                on_dtmf=self._on_dtmf,
                rtcp_interval=self.config.rtcp_interval,
            )
            try:
                await endpoint.open(loop, self.config.host, port, self._pump)
            except OSError as error:
                logger.warning("RTP ports %d/%d unavailable: %s", port, port + 1, error)
                self._ports.release(port)
                continue
            endpoint.timeout = self.config.rtp_timeout
            self._endpoints[endpoint_id] = endpoint
            return LocalMedia(endpoint_id, self.config.host, port, port + 1)
        raise PortsExhaustedError(f"no bindable RTP port pair after {_BIND_ATTEMPTS} attempts")

    def _endpoint(self, endpoint_id: str) -> RtpEndpoint:
        endpoint = self._endpoints.get(EndpointId(endpoint_id))
        if endpoint is None:
            raise MediaError(f"no endpoint {endpoint_id!r}")
        return endpoint

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
    ) -> None:
        """Apply the remote SDP of a leg (address, codec, telephone-event type, direction, and
        for an endpoint created with ``srtp`` its keys: None there means plain RTP)."""
        endpoint = self._endpoint(endpoint_id)
        if srtp is not None and not isinstance(endpoint, SrtpEndpoint):
            raise MediaError(f"endpoint {endpoint_id} was not created for SRTP")
        try:
            context = endpoint.context_for(srtp) if isinstance(endpoint, SrtpEndpoint) else None
            endpoint.set_remote(
                host,
                port,
                payload_type=payload_type,
                encoding=Encoding.from_name(encoding),
                dtmf_payload_type=dtmf_payload_type,
                rtcp_port=rtcp_port,
                direction=Direction(direction),
            )
        except ValueError as error:
            raise MediaError(str(error)) from None
        if isinstance(endpoint, SrtpEndpoint):
            endpoint.srtp = context
        bridge_id = self._membership.get(EndpointId(endpoint_id))
        if bridge_id is not None:
            self._bridges[bridge_id].rebuild()

    async def enable(
        self,
        endpoint_id: str,
        *,
        latch: bool = False,
        latch_host: str | None = None,
    ) -> None:
        """The leg is answered: relay its media; ``latch`` for remotes behind NAT."""
        try:
            self._endpoint(endpoint_id).enable(latch=latch, latch_host=latch_host)
        except EndpointError as error:
            raise MediaError(str(error)) from None

    async def set_rtp_timeout(self, endpoint_id: str, seconds: float | None) -> None:
        """Change (or with None disable) the no-RTP timeout of one endpoint."""
        self._endpoint(endpoint_id).timeout = seconds

    async def close_endpoint(self, endpoint_id: str) -> None:
        endpoint = self._endpoint(endpoint_id)
        bridge_id = self._membership.get(EndpointId(endpoint_id))
        if bridge_id is not None:
            await self.remove_from_bridge(bridge_id, endpoint_id)
        del self._endpoints[EndpointId(endpoint_id)]
        endpoint.close()
        try:
            async with asyncio.timeout(1.0):
                await endpoint.wait_closed()
        finally:
            self._ports.release(endpoint.local_port)

    async def stats(self, endpoint_id: str) -> EndpointStats:
        return self._endpoint(endpoint_id).stats()

    async def engine_stats(self) -> EngineStats:
        """Counts; ``tick_work_max_ms`` is the longest tick since the previous call."""
        tick_work_max, self._tick_work_max = self._tick_work_max, 0.0
        pumped = self._pump.stats() if self._pump is not None else None
        return EngineStats(
            endpoints=len(self._endpoints),
            bridges=len(self._bridges),
            ports_free=self._ports.available,
            ticks=self._mixer.ticks,
            late_ticks=self._late_ticks,
            tick_work_max_ms=tick_work_max * 1000.0,
            packets_fast_path=pumped.relayed if pumped is not None else 0,
            packets_to_python=pumped.to_python if pumped is not None else 0,
        )

    # --- bridges ------------------------------------------------------------------------------

    async def create_bridge(self) -> BridgeId:
        bridge_id = BridgeId(f"{self._prefix}b{next(self._ids)}")
        bridge = Bridge(bridge_id, jitter_depth=self.config.jitter_frames)
        self._bridges[bridge_id] = bridge
        self._mixer.add(bridge)
        return bridge_id

    def _bridge(self, bridge_id: str) -> Bridge:
        bridge = self._bridges.get(BridgeId(bridge_id))
        if bridge is None:
            raise MediaError(f"no bridge {bridge_id!r}")
        return bridge

    async def add_to_bridge(self, bridge_id: str, endpoint_id: str, role: str) -> None:
        """Add an endpoint as a participant (its id is the endpoint id) with a role."""
        bridge = self._bridge(bridge_id)
        endpoint = self._endpoint(endpoint_id)
        current = self._membership.get(EndpointId(endpoint_id))
        if current is not None:
            raise MediaError(f"endpoint {endpoint_id} is already in bridge {current}")
        try:
            member = bridge.add(endpoint_id, role, stream=endpoint.stream)
        except BridgeError as error:
            raise MediaError(str(error)) from None
        endpoint.attach(member)
        self._membership[EndpointId(endpoint_id)] = BridgeId(bridge_id)

    async def add_tone(
        self,
        bridge_id: str,
        frequencies: Sequence[float],
        *,
        level_dbfs: float = -12.0,
        cadence: tuple[float, float] | None = None,
        role: str = "player",
    ) -> str:
        """Add a tone player; returns its participant id (give it hearing with set_hearing)."""
        return self._add_source(
            bridge_id, role, ToneSource(frequencies, level_dbfs=level_dbfs, cadence=cadence)
        )

    async def add_wav(
        self, bridge_id: str, path: str, *, loop: bool = True, role: str = "player"
    ) -> str:
        """Add a player of a mono 16-bit 8 kHz WAV file; returns its participant id."""
        samples = await asyncio.to_thread(load_wav, Path(path))
        return self._add_source(bridge_id, role, PcmSource(samples, loop=loop))

    def _add_source(self, bridge_id: str, role: str, source: ToneSource | PcmSource) -> str:
        bridge = self._bridge(bridge_id)
        participant_id = f"{self._prefix}p{next(self._ids)}"
        bridge.add(participant_id, role, frame_source=source)
        return participant_id

    async def remove_from_bridge(self, bridge_id: str, participant_id: str) -> None:
        bridge = self._bridge(bridge_id)
        try:
            bridge.remove(participant_id)
        except BridgeError as error:
            raise MediaError(str(error)) from None
        if self._membership.pop(EndpointId(participant_id), None) is not None:
            self._endpoints[EndpointId(participant_id)].attach(None)

    async def set_hearing(self, bridge_id: str, listener_id: str, sources: frozenset[str]) -> None:
        """What one listener hears (the bridge leaves its preset mode)."""
        try:
            self._bridge(bridge_id).set_hearing(listener_id, sources)
        except BridgeError as error:
            raise MediaError(str(error)) from None

    async def set_matrix(self, bridge_id: str, matrix: Mapping[str, frozenset[str]]) -> None:
        """Replace the whole hearing matrix; participants it does not name hear nothing."""
        try:
            self._bridge(bridge_id).set_matrix(matrix)
        except BridgeError as error:
            raise MediaError(str(error)) from None

    async def set_mode(self, bridge_id: str, mode: str) -> None:
        """Apply a preset: normal, listen, whisper, barge or takeover (by participant roles)."""
        try:
            preset = Mode(mode)
        except ValueError:
            raise MediaError(f"unknown hearing mode {mode!r}") from None
        self._bridge(bridge_id).apply(preset)

    async def hearing(self, bridge_id: str) -> dict[str, frozenset[str]]:
        """The current matrix of a bridge."""
        bridge = self._bridge(bridge_id)
        return {pid: bridge.hearing(pid) for pid in bridge.members}

    def set_track_sink(self, bridge_id: str, sink: TrackSink | None) -> None:
        """Deliver each participant's own track to ``sink`` (in-process only: the recorder)."""
        self._bridge(bridge_id).set_track_sink(sink)

    async def start_recording(self, bridge_id: str, spec: RecordingSpec) -> None:
        """Tap each participant's own track into a sink from the recording sink provider."""
        self._recordings.start(self._bridge(bridge_id), spec)

    async def pause_recording(self, bridge_id: str) -> int:
        """Record nothing from the next tick; returns the sample timestamp of the pause."""
        self._bridge(bridge_id)
        return self._recordings.pause(bridge_id)

    async def resume_recording(self, bridge_id: str) -> int:
        self._bridge(bridge_id)
        return self._recordings.resume(bridge_id)

    async def stop_recording(self, bridge_id: str) -> RecordingSummary:
        """Untap the bridge and finish its recording; returns the sink's summary."""
        return await self._recordings.stop(self._bridge(bridge_id))

    async def close_bridge(self, bridge_id: str) -> None:
        bridge = self._bridge(bridge_id)
        if bridge_id in self._recordings:  # the call ended without stopping it: finish it
            await self._recordings.stop(bridge)
        for participant_id in list(bridge.members):
            await self.remove_from_bridge(bridge_id, participant_id)
        self._mixer.discard(bridge_id)
        del self._bridges[BridgeId(bridge_id)]

    async def close(self) -> None:
        """Stop the ticker, close every endpoint (RTCP BYE) and forget every bridge."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for bridge_id in list(self._bridges):
            await self.close_bridge(bridge_id)
        for endpoint_id in list(self._endpoints):
            await self.close_endpoint(endpoint_id)
        await self._recordings.close()
        if self._pump is not None:
            pumped = self._pump.stats()
            logger.info(
                "media engine closed: %d RTP packets relayed in C, %d by Python, %d dropped in C",
                pumped.relayed,
                pumped.to_python,
                pumped.dropped,
            )
            self._pump.close()
            self._pump = None
