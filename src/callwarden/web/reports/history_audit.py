"""The ACD history's retention, audited: `HistoryPurge` (from `callwarden.acd.retention`, which
does not know the audit log) as an entry of the hash-chained log, `acd_history.purge` by the
system, with the cutoff, the retention in days and how many events go."""

from __future__ import annotations

from callwarden.acd.retention import HistoryPurge
from callwarden.security.audit import AuditActor, AuditEvent, AuditOutcome
from callwarden.web.services import AuditSink

PURGE_ACTION = "acd_history.purge"


class HistoryPurgeAudit:
    """The `audit` of `HistoryRetention`: appends through the node's (or the CLI's) writer."""

    def __init__(self, sink: AuditSink) -> None:
        self._sink = sink

    async def __call__(self, purge: HistoryPurge) -> None:
        await self._sink.append(
            AuditEvent(
                action=PURGE_ACTION,
                actor=AuditActor.system(),
                outcome=AuditOutcome.SUCCESS,
                object_kind="acd_history",
                details={
                    "before": purge.before.isoformat(),
                    "days": purge.days,
                    "events": purge.events,
                },
            )
        )
