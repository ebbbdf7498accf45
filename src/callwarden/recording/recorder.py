"""The recorder: starts, pauses, resumes and stops the recording of a call's bridge.

It runs on the node's event loop and commands the media engine, where the audio is captured
and sealed (`callwarden.recording.capture`, inside the media worker owning the bridge). For
each recording it makes a data key, wraps it with the key ring, creates the catalogue row,
and sends the unwrapped key to the media process with ``start_recording`` (a local pipe; the
key is never written unwrapped). Database work and key wrapping run in a thread
(``asyncio.to_thread``), never on the loop.

Pause is **fail closed**: the media engine's reply to ``pause_recording`` is the confirmation
that no frame after it is recorded; if it does not come within ``pause_confirm_seconds`` (or
fails), the recording is stopped and a `RecordingFailed` alert goes on the bus.

On stop the summary comes back from the media process; the manifest is sealed (by the
injected ``seal_manifest``) and the row closed, COMPLETE, or INCOMPLETE when the recording
failed on the way (what was written before stays playable).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from callwarden.bus.protocol import EventBus
from callwarden.domain.cdr import CallDirection
from callwarden.domain.ids import CallId, QueueId, RecordingId, TeamId, UserId
from callwarden.media.control import MediaControl, MediaError, MediaEvent, RecordingEvent
from callwarden.recording.capture import DEFAULT_TRACKS, SAMPLE_RATE, SealSpec
from callwarden.recording.capture_events import (
    CaptureEvent,
    RecordingFailed,
    RecordingPaused,
    RecordingResumed,
    RecordingStarted,
    RecordingStopped,
)
from callwarden.recording.keyring import KeyEncryptionService, new_data_key
from callwarden.recording.manifest import seal_manifest
from callwarden.recording.models import NewRecording, Recording, RecordingStatus
from callwarden.recording.numbers import NumberProtector
from callwarden.recording.recovery import RecoveryServices, recover_recording
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.storage import RecordingStorage, recording_storage_key
from callwarden.store.database import WRITE_TRANSACTION

logger = logging.getLogger(__name__)

SessionFactory = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    pause_confirm_seconds: float = 1.0
    stop_seconds: float = 15.0


@dataclass(frozen=True, kw_only=True)
class CallFacts:
    """What the catalogue keeps about the recorded call."""

    call_id: CallId
    direction: CallDirection
    queue_id: QueueId | None = None
    team_id: TeamId | None = None
    operator_id: UserId | None = None
    caller_number: str | None = None


@dataclass(eq=False)
class ActiveRecording:
    """A recording in progress (owned by the recorder; read by the call's control)."""

    recording_id: RecordingId
    bridge_id: str
    facts: CallFacts
    started_at: datetime
    storage_key: str
    data_key: bytes = field(repr=False)
    paused: bool = False
    stopped: bool = False
    failure: str | None = None
    pauses: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    monitoring_sessions: list[dict[str, object]] = field(default_factory=list)


def call_metadata(active: ActiveRecording, ended_at: datetime | None) -> dict[str, object]:
    """The call as the manifest states it (no customer number: the manifest travels)."""
    facts = active.facts
    return {
        "call_id": str(facts.call_id),
        "direction": facts.direction.value,
        "queue_id": facts.queue_id,
        "team_id": facts.team_id,
        "operator_id": facts.operator_id,
        "started_at": active.started_at.isoformat(),
        "ended_at": ended_at.isoformat() if ended_at is not None else None,
        "failure": active.failure,
    }


class Recorder:
    """Recordings of this node's calls. ``close()`` stops those still running."""

    def __init__(
        self,
        *,
        media: MediaControl,
        sessions: SessionFactory,
        numbers: NumberProtector,
        keys: KeyEncryptionService,
        storage: RecordingStorage,
        signing_key: NodeSigningKey,
        settings: RecorderSettings,
        wall_clock: Callable[[], datetime],
        bus: EventBus | None = None,
        node_id: str | None = None,
    ) -> None:
        self._node_id = node_id  # on each row: whose start-up recovery closes it
        self._media = media
        self._sessions = sessions
        self._numbers = numbers
        self._keys = keys
        self._storage = storage
        self._signing_key = signing_key
        self.settings = settings
        self._now = wall_clock
        self._bus = bus
        self._active: dict[str, ActiveRecording] = {}
        self._unsubscribe = media.subscribe(self._on_media_event)

    def now(self) -> datetime:
        """The recorder's wall clock (what recordings' times are stated in)."""
        return self._now()

    @property
    def active(self) -> Mapping[str, ActiveRecording]:
        """Recordings in progress by bridge id."""
        return self._active

    # --- start ------------------------------------------------------------------------------

    async def start(self, bridge_id: str, facts: CallFacts) -> ActiveRecording | None:
        """Record ``bridge_id``; None (and an alert) when it cannot start: the call goes on.

        The media starts recording before the catalogue row is written (the insert can take a
        while on a busy database; the recording should start with the conversation)."""
        recording_id = RecordingId(secrets.token_hex(16))
        started_at = self._now()
        key = recording_storage_key(recording_id, started_at)
        try:
            data_key, path, new = await asyncio.to_thread(
                self._prepare, recording_id, facts, key, started_at
            )
        except Exception as error:
            logger.exception("call %s: recording could not start", facts.call_id)
            self._alert(recording_id, facts, f"could not start: {type(error).__name__}")
            return None
        active = ActiveRecording(recording_id, bridge_id, facts, started_at, key, data_key)
        try:
            spec = SealSpec(recording_id, str(path), data_key)
            await self._media.start_recording(bridge_id, spec.to_plain())
        except MediaError as error:
            self._alert(recording_id, facts, f"media refused: {error}")
            return None
        try:
            await asyncio.to_thread(self._insert, new)
        except Exception as error:
            logger.exception("call %s: recording %s not catalogued", facts.call_id, recording_id)
            with contextlib.suppress(MediaError):
                await self._media.stop_recording(bridge_id)
            self._alert(recording_id, facts, f"not catalogued: {type(error).__name__}")
            return None
        self._active[bridge_id] = active
        logger.info("call %s: recording %s started", facts.call_id, recording_id)
        self._publish(RecordingStarted, active)
        return active

    def _prepare(
        self, recording_id: RecordingId, facts: CallFacts, key: str, started_at: datetime
    ) -> tuple[bytes, Path, NewRecording]:
        """A data key wrapped by the key ring, the file's local path, the catalogue row."""
        path = self._storage.path_for_writing(key)
        data_key = new_data_key()
        wrapped = self._keys.wrap(data_key, recording_id)
        new = NewRecording(
            recording_id=recording_id,
            call_id=facts.call_id,
            direction=facts.direction,
            started_at=started_at,
            storage_key=key,
            kek_id=wrapped.key_id,
            wrapped_key=wrapped.blob,
            queue_id=facts.queue_id,
            team_id=facts.team_id,
            operator_id=facts.operator_id,
            caller_number=facts.caller_number,
            node_id=self._node_id,
        )
        return data_key, path, new

    def _insert(self, new: NewRecording) -> None:
        with self._sessions() as session, session.begin():
            session.connection(execution_options=WRITE_TRANSACTION)
            RecordingRepository(session, self._numbers).create(new)

    # --- pause / resume ------------------------------------------------------------------------

    async def pause(self, active: ActiveRecording, *, by: str) -> bool:
        """Pause, confirmed by the media process; False if not confirmed (recording stopped)."""
        if active.stopped:
            return False
        if active.paused:
            return True
        try:
            async with asyncio.timeout(self.settings.pause_confirm_seconds):
                await self._media.pause_recording(active.bridge_id)
        except (TimeoutError, MediaError) as error:
            reason = "pause not confirmed" + (f": {error}" if str(error) else "")
            logger.error("recording %s: %s; stopping it", active.recording_id, reason)
            active.failure = reason
            await self.stop(active)
            return False
        at = self._now()
        active.paused = True
        active.pauses.append((at, None))
        await self._in_thread(lambda repo: repo.pause_started(active.recording_id, at))
        self._publish(RecordingPaused, active, by=by)
        return True

    async def resume(self, active: ActiveRecording, *, by: str) -> None:
        if active.stopped or not active.paused:
            return
        try:
            await self._media.resume_recording(active.bridge_id)
        except MediaError as error:
            active.failure = f"resume failed: {error}"
            await self.stop(active)
            return
        await self._resumed(active, by)

    async def _resumed(self, active: ActiveRecording, by: str) -> None:
        at = self._now()
        active.paused = False
        active.pauses[-1] = (active.pauses[-1][0], at)
        await self._in_thread(lambda repo: repo.pause_ended(active.recording_id, at))
        self._publish(RecordingResumed, active, by=by)

    # --- stop ---------------------------------------------------------------------------------

    async def stop(
        self,
        active: ActiveRecording,
        *,
        monitoring_sessions: Sequence[Mapping[str, object]] = (),
    ) -> Recording | None:
        """Finish the recording (a pause ends with it), seal the manifest, close the row.

        ``monitoring_sessions`` (who monitored the call, when, in which modes: see
        `callwarden.telephony.recording_control.monitoring_entries`) go into the manifest; any
        marks the recording monitored."""
        if active.stopped:
            return None
        active.stopped = True
        active.monitoring_sessions = [dict(entry) for entry in monitoring_sessions]
        self._active.pop(active.bridge_id, None)
        try:
            async with asyncio.timeout(self.settings.stop_seconds):
                summary = await self._media.stop_recording(active.bridge_id)
        except (TimeoutError, MediaError) as error:
            await self._give_up(active, active.failure or f"stop failed: {error!r}")
            return None
        if summary.get("failed"):
            active.failure = active.failure or str(summary.get("failure"))
        if active.paused:
            await self._resumed(active, "call_end")
        try:
            recording = await asyncio.to_thread(self._close_row, active, summary)
        except Exception:
            logger.exception("recording %s: closing it failed", active.recording_id)
            self._alert(active.recording_id, active.facts, "closing the recording failed")
            return None
        if active.failure is not None:
            self._alert(active.recording_id, active.facts, active.failure)
        self._publish(
            RecordingStopped,
            active,
            status=recording.status.value,
            duration_seconds=(recording.duration_ms or 0) / 1000.0,
        )
        return recording

    def _close_row(self, active: ActiveRecording, summary: Mapping[str, object]) -> Recording:
        """Seal the manifest over what was written, then close the catalogue row with its
        digest (blocking: called in a thread)."""
        samples = summary.get("samples")
        duration_ms = int(samples) * 1000 // SAMPLE_RATE if isinstance(samples, int) else 0
        status = RecordingStatus.COMPLETE if active.failure is None else RecordingStatus.INCOMPLETE
        writer = summary.get("writer")
        size = writer.get("file_bytes") if isinstance(writer, Mapping) else None
        ended_at = self._now()
        digest: str | None = None
        if isinstance(writer, Mapping) and writer:
            try:
                digest = self._manifest(active, summary, ended_at)
            except OSError as error:  # e.g. the disk is full: the row is closed all the same
                logger.error("recording %s: no manifest: %s", active.recording_id, error)
                active.failure = active.failure or f"manifest not written: {error.strerror}"
                status = RecordingStatus.INCOMPLETE
        participants = summary.get("participants")
        monitored = bool(active.monitoring_sessions) or (
            isinstance(participants, list)
            and any(isinstance(p, Mapping) and p.get("role") == "supervisor" for p in participants)
        )
        with self._sessions() as session, session.begin():
            session.connection(execution_options=WRITE_TRANSACTION)
            repository = RecordingRepository(session, self._numbers)
            if monitored:  # a supervisor's track: searchable as "was monitored"
                repository.mark_monitored(active.recording_id)
            return repository.close(
                active.recording_id,
                status=status,
                ended_at=ended_at,
                duration_ms=duration_ms,
                manifest_digest=digest,
                size_bytes=size if isinstance(size, int) else None,
            )

    def _manifest(
        self, active: ActiveRecording, summary: Mapping[str, object], ended_at: datetime
    ) -> str:
        """Sign and store the manifest beside the sealed file; its body's SHA-256."""
        participants = summary.get("participants")
        signed = seal_manifest(
            self._storage.path_for_writing(active.storage_key),
            active.recording_id,
            active.data_key,
            self._signing_key,
            sealed_at=ended_at,
            call=call_metadata(active, ended_at),
            participants=participants if isinstance(participants, list) else (),
            monitoring_sessions=active.monitoring_sessions,
        )
        self._storage.commit(active.storage_key)  # an object store: file and manifest go up
        return hashlib.sha256(signed.body).hexdigest()

    async def _give_up(self, active: ActiveRecording, reason: str) -> None:
        """The media side cannot finish it (its worker is gone or stuck): close what the file
        holds as crash recovery does (INCOMPLETE, or FAILED if nothing is readable)."""
        active.stopped = True
        active.failure = reason
        self._active.pop(active.bridge_id, None)
        services = RecoveryServices(
            self._sessions, self._numbers, self._keys, self._storage, self._signing_key, self._now
        )
        try:
            await asyncio.to_thread(recover_recording, services, active.recording_id)
        except Exception:
            logger.exception("recording %s: closing it after the media failed", active.recording_id)
        self._alert(active.recording_id, active.facts, reason)

    # --- events -------------------------------------------------------------------------------

    def _on_media_event(self, event: MediaEvent) -> None:
        if not isinstance(event, RecordingEvent) or event.kind != "failed":
            return
        active = self._active.get(event.bridge_id)
        if active is not None and active.failure is None:
            active.failure = event.detail
            self._alert(active.recording_id, active.facts, event.detail)

    def _alert(self, recording_id: RecordingId, facts: CallFacts, reason: str) -> None:
        logger.error("call %s: recording %s failed: %s", facts.call_id, recording_id, reason)
        if self._bus is not None:
            self._bus.publish(
                RecordingFailed(
                    at=self._now(),
                    team_id=facts.team_id,
                    user_id=facts.operator_id,
                    recording_id=recording_id,
                    call_id=facts.call_id,
                    reason=reason[:200],
                )
            )

    def _publish(self, kind: type[CaptureEvent], active: ActiveRecording, **values: object) -> None:
        if self._bus is None:
            return
        facts = active.facts
        self._bus.publish(
            kind(
                at=self._now(),
                team_id=facts.team_id,
                user_id=facts.operator_id,
                recording_id=active.recording_id,
                call_id=facts.call_id,
                **values,
            )
        )

    async def _in_thread(self, work: Callable[[RecordingRepository], object]) -> None:
        def run() -> None:
            # Reads then writes (the open pause): on SQLite the write lock is taken at BEGIN,
            # so a concurrent writer (the audit log) makes it wait, not fail "locked".
            with self._sessions() as session, session.begin():
                session.connection(execution_options=WRITE_TRANSACTION)
                work(RecordingRepository(session, self._numbers))

        await asyncio.to_thread(run)

    async def close(self) -> None:
        """Stop every recording still running (calls end before the recorder closes)."""
        self._unsubscribe()
        for active in list(self._active.values()):
            await self.stop(active)


__all__ = ["DEFAULT_TRACKS", "ActiveRecording", "CallFacts", "Recorder", "RecorderSettings"]
