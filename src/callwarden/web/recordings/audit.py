"""The recording package's audit port, implemented over the audit log's writer.

`callwarden.recording` may not import `callwarden.security`: its purge and deletions hand an
`AuditRecord` to an `AuditPort`, and this adapter (built by the composition root, and by the
web routes) turns it into an `AuditEvent` of the hash-chained log.
"""

from __future__ import annotations

from callwarden.recording.purge import AuditRecord
from callwarden.security.audit import AuditActor, AuditEvent, AuditOutcome
from callwarden.web.services import AuditSink


class RecordingAuditPort:
    """`AuditPort` of `callwarden.recording.purge`: appends through the node's audit writer."""

    def __init__(self, sink: AuditSink) -> None:
        self._sink = sink

    async def record(self, entry: AuditRecord) -> None:
        actor = (
            AuditActor.system()
            if entry.actor_user_id is None
            else AuditActor.user(entry.actor_user_id, entry.actor_name)
        )
        await self._sink.append(
            AuditEvent(
                action=entry.action,
                actor=actor,
                outcome=AuditOutcome.SUCCESS,
                object_kind="recording",
                object_id=entry.object_id,
                reason=entry.reason,
                details=entry.details,
            )
        )
