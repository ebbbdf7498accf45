"""Live recordings in the web tests: the recording control of the routes under
`/api/v1/calls/{call_id}/recording` over a real media engine (bridges with a 440 Hz customer
tone and an 880 Hz operator tone, the real capture, sealed files in a temporary directory),
the real recorder over the web tests' database, directory and audit writer.

One live call per team, recorded on demand (policy `on_demand`: nothing is in the catalogue
until someone starts it, so the recordings tests' catalogue holds only their own recordings):
`north`'s is `operator`'s (the matrix's operator starts their own call's recording; the
supervisor of north does from the supervision door) and `south`'s is `stranger`'s (not found to
everyone in north). `start_recording(team)` records one as its operator would.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from callwarden.bus.protocol import EventBus
from callwarden.domain.cdr import CallDirection
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId
from callwarden.domain.models import RecordingPolicy
from callwarden.media.control import MediaConfig
from callwarden.media.engine import MediaEngine
from callwarden.recording.capture import CaptureProvider
from callwarden.recording.keyring import FileKeyRing
from callwarden.recording.numbers import SealedNumbers
from callwarden.recording.recorder import Recorder, RecorderSettings
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.storage import LocalStorage
from callwarden.security.audit_model import AuditEvent
from callwarden.telephony.recording_control import RecordingControl, RecordingControlSettings
from web.recording_support import SECRET

CALLS = {
    "north": ("operator", "north-live@198.51.100.7"),
    "south": ("stranger", "south-live@198.51.100.7"),
}
"""Each team's recorded call: its operator and Call-ID."""


class _ManualClock:
    """The control's monotonic clock and pause timers: the web tests never move it."""

    def now(self) -> float:
        return 0.0

    def call_later(self, delay: float, callback: Callable[[], object], /) -> _Never:
        return _Never()


class _Never:
    def cancel(self) -> None:
        return None


@dataclass
class LiveRecordingWorld:
    engine: MediaEngine
    recorder: Recorder
    control: RecordingControl
    keys: FileKeyRing
    storage: LocalStorage
    call_ids: dict[str, str] = field(default_factory=dict)
    _directory: tempfile.TemporaryDirectory[str] | None = None

    async def start(self, snapshot: DirectorySnapshot) -> None:
        """The engine's ticker, and each team's call connected (recording from the start)."""
        await self.engine.start()
        for team, (username, call_id) in CALLS.items():
            operator = snapshot.user_by_username(username)
            assert operator is not None
            bridge = await self.engine.create_bridge()
            await self.engine.add_tone(bridge, [440.0], role="customer")
            await self.engine.add_tone(bridge, [880.0], role="operator")
            await self.control.call_connected(
                call_id=CallId(call_id),
                bridge_id=bridge,
                policy=RecordingPolicy.ON_DEMAND,
                direction=CallDirection.INBOUND,
                operator_id=operator.id,
                operator_endpoint=None,
                team_id=operator.team_id,
                caller_number="+4930123456",
            )
            self.call_ids[team] = call_id

    async def start_recording(self, team: str, snapshot: DirectorySnapshot) -> str:
        """Start the recording of `team`'s call as its operator; the recording id."""
        username, call_id = CALLS[team]
        operator = snapshot.user_by_username(username)
        assert operator is not None
        principal = snapshot.principal_for(operator)
        return (await self.control.start(CallId(call_id), principal)).recording_id

    async def close(self) -> None:
        await self.control.close()
        await self.recorder.close()
        await self.engine.close()
        if self._directory is not None:
            self._directory.cleanup()


def build_live_recording(
    sessions: sessionmaker[Session],
    directory: Callable[[], DirectorySnapshot],
    audit: Callable[[AuditEvent], object],
    bus: EventBus,
    now: Callable[[], datetime],
    *,
    engine_type: type[MediaEngine] = MediaEngine,
    pause_confirm_seconds: float = 1.0,
) -> LiveRecordingWorld:
    temporary = tempfile.TemporaryDirectory(prefix="cw-live-recordings-")
    root = Path(temporary.name)
    engine = engine_type(MediaConfig(ports="47780-47789"), recording_sinks=CaptureProvider())
    keys = FileKeyRing(root / "keys")
    storage = LocalStorage(root / "recordings")
    recorder = Recorder(
        media=engine,
        sessions=sessions,
        numbers=SealedNumbers(SECRET),
        keys=keys,
        storage=storage,
        signing_key=NodeSigningKey.generate(),
        settings=RecorderSettings(pause_confirm_seconds=pause_confirm_seconds),
        wall_clock=now,
        bus=bus,
    )
    control = RecordingControl(
        recorder=recorder,
        media=engine,
        directory=directory,
        settings=RecordingControlSettings(),
        clock=_ManualClock(),
        audit=audit,
        # No monitoring log: the live WebSocket tests count the bus's subscribers.
    )
    world = LiveRecordingWorld(engine, recorder, control, keys, storage)
    world._directory = temporary
    return world
