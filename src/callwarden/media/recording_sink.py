"""The generic hook through which a bridge's tracks are recorded where the media is.

The media engine knows nothing of how a recording is stored: the composition root gives it a
**sink provider** (an object, or with worker processes an import path ``"package.module:Name"``
naming a class built with no arguments inside each worker). For each ``start_recording`` the
engine asks the provider for a :class:`RecordingSink` given a :class:`RecordingContext`: the
bridge, the caller's ``spec`` (plain values that crossed the command pipe, opaque to media),
the role of each participant, the bridge's sample clock and a way to report trouble.

The sink is a :class:`~callwarden.media.bridge.TrackSink` (called on the event loop every tick
with each participant's own frame; or a :class:`~callwarden.media.bridge.TapSink`, whose bridge
taps every participant in C whatever its topology and hands it whole batches) that can also
pause, resume and stop. ``pause`` takes effect
before it returns: no frame handed over after it belongs to the recording until ``resume``, so
the engine's reply to ``pause_recording`` is the confirmation that nothing more is recorded.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from callwarden.media.bridge import Bridge, TrackSink
from callwarden.media.control import BridgeId, MediaError, RecordingEvent

logger = logging.getLogger(__name__)

RecordingSpec = Mapping[str, object]
"""What the caller of ``start_recording`` passes through to the sink (plain, picklable)."""
RecordingSummary = Mapping[str, object]
"""What a stopped sink hands back to the caller of ``stop_recording`` (plain, picklable)."""


@dataclass(frozen=True, slots=True)
class RecordingContext:
    """What a sink is given when a recording of one bridge starts."""

    bridge_id: str
    spec: RecordingSpec
    #: The role a participant joined with (``"customer"``, ``"operator"``, ``"player"``...);
    #: None once it has left.
    role_of: Callable[[str], str | None]
    #: The bridge's sample clock: the timestamp the next tick's frames will carry.
    sample_clock: Callable[[], int]
    #: Report ``(kind, detail)`` as a RecordingEvent of this bridge; safe from any thread.
    report: Callable[[str, str], None]


class RecordingSink(TrackSink, Protocol):
    """One bridge's recording inside the media process."""

    def pause(self) -> int:
        """Record nothing from now on; returns the sample timestamp the pause starts at."""
        ...

    def resume(self) -> int:
        """Record again; returns the sample timestamp the pause ends at."""
        ...

    async def stop(self) -> RecordingSummary:
        """Finish the recording (every frame written and closed) and describe it."""
        ...


class RecordingSinkProvider(Protocol):
    """Makes sinks; one per engine (so per media worker process)."""

    def open(self, context: RecordingContext) -> RecordingSink: ...

    async def close(self) -> None:
        """Release what the provider holds (threads); sinks are stopped before this."""
        ...


def load_provider(path: str) -> RecordingSinkProvider:
    """Build the provider named ``"package.module:Name"`` (a class taking no arguments)."""
    module_name, separator, attribute = path.partition(":")
    if not separator or not module_name or not attribute:
        raise MediaError(f"recording sink provider {path!r} is not 'package.module:Name'")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise MediaError(f"recording sink provider {path!r} not found: {error}") from None
    provider: RecordingSinkProvider = factory()
    return provider


class BridgeRecordings:
    """The recordings of one engine's bridges: at most one sink per bridge."""

    def __init__(
        self,
        provider: RecordingSinkProvider | None,
        emit: Callable[[RecordingEvent], None],
    ) -> None:
        self._provider = provider
        self._emit = emit
        self._sinks: dict[str, RecordingSink] = {}

    def __contains__(self, bridge_id: object) -> bool:
        return bridge_id in self._sinks

    def start(self, bridge: Bridge, spec: RecordingSpec) -> None:
        """Open a sink for ``bridge`` and tap its tracks into it."""
        if self._provider is None:
            raise MediaError("this media engine has no recording sink provider")
        if bridge.id in self._sinks:
            raise MediaError(f"bridge {bridge.id} is already being recorded")
        loop = asyncio.get_running_loop()
        bridge_id = bridge.id
        members = bridge.members

        def role_of(participant_id: str) -> str | None:
            member = members.get(participant_id)
            return member.role if member is not None else None

        def report(kind: str, detail: str) -> None:
            event = RecordingEvent(BridgeId(bridge_id), kind, detail)
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._emit, event)

        context = RecordingContext(bridge_id, spec, role_of, lambda: bridge.sample_clock, report)
        sink = self._provider.open(context)
        self._sinks[bridge_id] = sink
        bridge.set_track_sink(sink)

    def pause(self, bridge_id: str) -> int:
        return self._sink(bridge_id).pause()

    def resume(self, bridge_id: str) -> int:
        return self._sink(bridge_id).resume()

    async def stop(self, bridge: Bridge) -> RecordingSummary:
        """Untap the bridge and finish its recording."""
        sink = self._sink(bridge.id)
        del self._sinks[bridge.id]
        bridge.set_track_sink(None)
        return await sink.stop()

    def _sink(self, bridge_id: str) -> RecordingSink:
        sink = self._sinks.get(bridge_id)
        if sink is None:
            raise MediaError(f"bridge {bridge_id!r} is not being recorded")
        return sink

    async def close(self) -> None:
        """Stop what is still recording (bridges are closed first) and the provider."""
        if self._sinks:
            logger.warning("%d recordings still open at engine close", len(self._sinks))
        for bridge_id in list(self._sinks):
            sink = self._sinks.pop(bridge_id)
            try:
                await sink.stop()
            except Exception:
                logger.exception("recording of bridge %s did not stop cleanly", bridge_id)
        if self._provider is not None:
            await self._provider.close()
