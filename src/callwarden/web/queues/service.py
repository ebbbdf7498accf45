"""Use cases of the queue routes (`queues.manage`, checked by the routes).

Changes go through the provisioning rules (names, one number space shared with extensions,
known members and overflow targets), in one write transaction with their audit entry (before
and after); the directory is then reloaded, and the running ACD follows it without a restart
(`AcdEngine.follow_directory`, wired in `callwarden.app`): new and changed queues serve their
next call with the new settings, calls already waiting stay where they are.

A queue that another queue overflows to cannot be deleted (409 `queue_is_overflow_target`):
the other queue would be left overflowing nowhere.
"""

from __future__ import annotations

import functools
from typing import Any

from callwarden.domain.errors import Conflict, JsonValue
from callwarden.domain.ids import QueueId
from callwarden.provisioning.document import QueueSpec
from callwarden.provisioning.state import StoredState
from callwarden.store.mapping import queue_from_row
from callwarden.store.schema import QueueRow
from callwarden.web.access import Caller
from callwarden.web.admin_api import found, page_of
from callwarden.web.directory_writes import Create, Delete, DirectoryAdmin, ObjectKind, Update
from callwarden.web.errors import body_field_error
from callwarden.web.queues.schemas import (
    NewQueue,
    QueueListQuery,
    QueuePatch,
    QueueSettings,
    QueueView,
)
from callwarden.web.schemas import Page

# Settings copied as they are from the request into the provisioning document.
_PLAIN = (
    "display_name",
    "number",
    "strategy",
    "wrap_up_seconds",
    "ring_timeout_seconds",
    "max_no_answer",
    "max_wait_seconds",
    "service_level_seconds",
    "service_level_percent",
    "required_skill_level",
    "recording",
    "announce_seconds",
    "music_on_hold",
)


def _username(stored: StoredState, user_id: int, field_name: str) -> str:
    for name, row in stored.users.items():
        if row.id == user_id:
            return name
    raise body_field_error(field_name, f"unknown user {user_id}")


def _queue_name(stored: StoredState, queue_id: int, field_name: str) -> str:
    for name, row in stored.queues.items():
        if row.id == queue_id:
            return name
    raise body_field_error(field_name, f"unknown queue {queue_id}")


def _spec_data(stored: StoredState, body: QueueSettings) -> dict[str, Any]:
    """The provisioning keys for what `body` states, names resolved from ids (422 if unknown)."""
    data: dict[str, Any] = {key: getattr(body, key) for key in _PLAIN if body.given(key)}
    if body.given("team_id") and body.team_id is not None:
        team = stored.team_name(body.team_id)
        if team is None:
            raise body_field_error("team_id", f"unknown team {body.team_id}")
        data["team"] = team
    if body.members is not None:
        data["members"] = [
            {
                "user": _username(stored, member.user_id, f"members[{index}].user_id"),
                "penalty": member.penalty,
                "skill_level": member.skill_level,
            }
            for index, member in enumerate(body.members)
        ]
    if body.overflow is not None:
        overflow: dict[str, Any] = {"action": body.overflow.action}
        if body.overflow.queue_id is not None:
            overflow["queue"] = _queue_name(stored, body.overflow.queue_id, "overflow.queue_id")
        if body.overflow.user_id is not None:
            overflow["user"] = _username(stored, body.overflow.user_id, "overflow.user_id")
        data["overflow"] = overflow
    return data


def _update_data(body: QueuePatch, stored: StoredState, row: QueueRow) -> dict[str, Any]:
    team = stored.team_name(row.team_id)
    return {"name": row.name, "number": row.number, "team": team, **_spec_data(stored, body)}


def _not_an_overflow_target(stored: StoredState, row: QueueRow) -> None:
    sources = sorted(
        name
        for name, other in stored.queues.items()
        if other.overflow_queue_id == row.id and other.id != row.id
    )
    if sources:
        raise Conflict(
            f"queue {row.name!r} is the overflow of {', '.join(sources)}: change theirs first",
            error_id="queue_is_overflow_target",
            details={"queues": list[JsonValue](sources)},
        )


QUEUE = ObjectKind[QueueRow, QueueView](
    "queue", QueueSpec, lambda row: QueueView.of(queue_from_row(row))
)


class QueueAdmin(DirectoryAdmin):
    def list(self, caller: Caller, query: QueueListQuery) -> Page[QueueView]:
        """From the directory snapshot (`queues.manage` is held at scope `all` only)."""
        queues = [
            queue
            for queue in self._snapshot.queues
            if query.team_id is None or queue.team_id == query.team_id
        ]
        return page_of(queues, query, QueueView.of)

    def get(self, caller: Caller, queue_id: int) -> QueueView:
        queue = self._snapshot.queue(QueueId(queue_id))
        return QueueView.of(found(queue, f"queue {queue_id}"))

    async def create(self, caller: Caller, body: NewQueue) -> QueueView:
        change = Create(QUEUE, caller, body.name, lambda stored: _spec_data(stored, body))
        return await self._writer.run(change)

    async def update(self, caller: Caller, queue_id: int, body: QueuePatch) -> QueueView:
        data = functools.partial(_update_data, body)
        return await self._writer.run(Update(QUEUE, caller, queue_id, data))

    async def delete(self, caller: Caller, queue_id: int) -> None:
        await self._writer.run(Delete(QUEUE, caller, queue_id, _not_an_overflow_target))
