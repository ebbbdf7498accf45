"""The events the recorder publishes on the bus while calls are recorded.

Each belongs to the call's team and its operator (`user_id`), and needs `live.view` on it: a
supervisor sees their teams' recordings start, pause, resume, stop and fail; an operator sees
those of their own calls. `RecordingFailed` is the alert: recording stopped (disk full, a pause
that could not be confirmed, a writer error) while the call went on. No event carries a
customer's number or a DTMF digit.
"""

from __future__ import annotations

from dataclasses import dataclass

from callwarden.bus.event import Event
from callwarden.domain.ids import CallId, RecordingId
from callwarden.domain.policy import ResourceKind

__all__ = [
    "CAPTURE_EVENT_TYPES",
    "CaptureEvent",
    "RecordingFailed",
    "RecordingPaused",
    "RecordingResumed",
    "RecordingStarted",
    "RecordingStopped",
]


@dataclass(frozen=True, kw_only=True)
class CaptureEvent(Event):
    resource_kind = ResourceKind.RECORDING

    recording_id: RecordingId
    call_id: CallId


@dataclass(frozen=True, kw_only=True)
class RecordingStarted(CaptureEvent):
    kind = "recording.started"


@dataclass(frozen=True, kw_only=True)
class RecordingPaused(CaptureEvent):
    """Confirmed by the recorder: nothing is recorded from `at` until the resume."""

    kind = "recording.paused"
    by: str
    """Who paused: `operator`, `supervisor`, `api` or `dtmf`."""


@dataclass(frozen=True, kw_only=True)
class RecordingResumed(CaptureEvent):
    kind = "recording.resumed"
    by: str
    """Who resumed: as for a pause, or `timeout` / `call_end`."""


@dataclass(frozen=True, kw_only=True)
class RecordingStopped(CaptureEvent):
    kind = "recording.stopped"
    status: str
    duration_seconds: float


@dataclass(frozen=True, kw_only=True)
class RecordingFailed(CaptureEvent):
    """The alert: recording stopped for `reason` while the call goes on."""

    kind = "recording.failed"
    reason: str


CAPTURE_EVENT_TYPES: tuple[type[Event], ...] = (
    RecordingStarted,
    RecordingPaused,
    RecordingResumed,
    RecordingStopped,
    RecordingFailed,
)
