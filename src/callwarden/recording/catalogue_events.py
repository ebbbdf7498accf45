"""Events of the recordings catalogue on the bus.

`RecordingIntegrityAlert` is raised when a recording asked for (played, downloaded) fails its
integrity check: a flipped byte, a moved or foreign chunk, a cut file. It belongs to the
recording's team and operator and needs `live.view` on them, like the recorder's alerts; it
carries no customer number and no audio.
"""

from __future__ import annotations

from dataclasses import dataclass

from callwarden.bus.event import Event
from callwarden.domain.ids import CallId, RecordingId
from callwarden.domain.policy import ResourceKind


@dataclass(frozen=True, kw_only=True)
class RecordingIntegrityAlert(Event):
    kind = "recording.corrupted"
    resource_kind = ResourceKind.RECORDING

    recording_id: RecordingId
    call_id: CallId
    reason: str
    """What failed, as the reader says it (`chunk 7 failed authentication`)."""


CATALOGUE_EVENT_TYPES: tuple[type[Event], ...] = (RecordingIntegrityAlert,)
