"""Use cases of the audit routes, over `callwarden.security.audit`.

Reads go through `AuditLog.query`, which appends an `audit.read` entry in the same transaction
as the read; an export appends `audit.export` before the first entry leaves, a verification
`audit.verify` with its result. The export is newline-delimited JSON: one entry a line, as
stored (with both hashes), so the receiver can verify the chain itself, read in batches.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from callwarden.domain.errors import JsonValue
from callwarden.domain.ids import UserId
from callwarden.security.audit import (
    AuditAction,
    AuditEntry,
    AuditEvent,
    AuditHead,
    AuditOutcome,
    AuditQuery,
)
from callwarden.security.audit_chain import UnreadableEntry
from callwarden.security.audit_store import iter_entries
from callwarden.web.access import Caller
from callwarden.web.audit_log.schemas import (
    AuditEntryView,
    AuditListQuery,
    HeadView,
    VerifyRequest,
    VerifyView,
)
from callwarden.web.services import WebServices

EXPORT_BATCH = 500


class AuditApi:
    def __init__(self, services: WebServices) -> None:
        self._services = services

    async def query(self, caller: Caller, query: AuditListQuery) -> list[AuditEntryView]:
        filters = AuditQuery(
            since=query.since,
            until=query.until,
            actor_user_id=None if query.actor_user_id is None else UserId(query.actor_user_id),
            actor_name=query.actor_name,
            action_prefix=query.action_prefix,
            object_kind=query.object_kind,
            object_id=query.object_id,
            outcome=None if query.outcome is None else AuditOutcome(query.outcome),
            sort=query.sort,
            descending=query.order == "desc",
            limit=query.limit,
            offset=query.offset,
        )
        entries = await asyncio.to_thread(
            self._services.audit.log.query,
            filters,
            caller.actor,
            source_address=caller.source_address,
        )
        return [AuditEntryView.of(entry) for entry in entries]

    async def head(self, caller: Caller) -> HeadView:
        """The newest entry, which is the record of this export itself."""
        await self._services.audit.record(
            self._event(caller, AuditAction.AUDIT_EXPORT, {"what": "head"})
        )
        head = await asyncio.to_thread(self._services.audit.log.export_head)
        assert head is not None  # the export was just recorded
        return HeadView.of(head)

    async def verify(self, caller: Caller, request: VerifyRequest) -> VerifyView:
        expected = None
        if request.head is not None:
            expected = AuditHead.from_json(json.dumps(request.head.model_dump()))
        result = await asyncio.to_thread(self._services.audit.log.verify, expected)
        view = VerifyView.of(result)
        details: dict[str, JsonValue] = {
            "intact": view.intact,
            "verified": view.verified,
            "against_head": expected is not None,
            "broken_at": None if result.broken is None else result.broken.sequence,
        }
        await self._services.audit.record(self._event(caller, AuditAction.AUDIT_VERIFY, details))
        return view

    async def export(self, caller: Caller, after_sequence: int) -> AsyncIterator[bytes]:
        """Record the export, then yield the entries after `after_sequence`, a line each."""
        await self._services.audit.record(
            self._event(caller, AuditAction.AUDIT_EXPORT, {"after_sequence": after_sequence})
        )
        return self._lines(after_sequence)

    async def _lines(self, after_sequence: int) -> AsyncIterator[bytes]:
        last = after_sequence
        while True:
            batch = await asyncio.to_thread(self._batch, last)
            for item in batch:
                yield item[1]
            if len(batch) < EXPORT_BATCH:
                return
            last = batch[-1][0]

    def _batch(self, after: int) -> list[tuple[int, bytes]]:
        lines: list[tuple[int, bytes]] = []
        with self._services.database() as session:
            for entry in iter_entries(session, after=after):
                lines.append((entry.sequence, _line(entry)))
                if len(lines) >= EXPORT_BATCH:
                    break
        return lines

    @staticmethod
    def _event(caller: Caller, action: str, details: dict[str, JsonValue]) -> AuditEvent:
        return AuditEvent(
            action=action,
            actor=caller.actor,
            outcome=AuditOutcome.SUCCESS,
            object_kind="audit_log",
            source_address=caller.source_address,
            details=details,
        )


def _line(entry: AuditEntry | UnreadableEntry) -> bytes:
    if isinstance(entry, UnreadableEntry):
        data: dict[str, object] = {"sequence": entry.sequence, "unreadable": entry.problem}
    else:
        data = AuditEntryView.of(entry).model_dump(mode="json")
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode() + b"\n"
