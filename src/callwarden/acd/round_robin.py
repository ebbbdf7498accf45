"""Where each round-robin queue stands: the member offered a call last, kept outside the engine.

A round-robin queue offers each call to the member after the one offered last. The engine
reads that mark before each decision for such a queue and writes it after each offer, through
`RoundRobinMarks`:

- `InProcessRoundRobin` (the default, one node without Redis): a dictionary. A restart of the
  node begins each queue's rotation again at its first member. This is deliberate: keeping the
  mark in the database would put one write on the call path per offer, and losing it skews
  fairness by at most one rotation (the next calls go to the first members again).
- `RedisRoundRobin` (nodes sharing Redis): one hash, `<prefix>acd:round-robin`, field = queue
  id, value = user id. The rotation is shared by every node and survives a restart of any node
  (for as long as Redis keeps its data). One HGET per decision and one HSET per offer.

The mark is a user id, not a place in the member list, so editing the queue's members keeps
the rotation where it was (the engine maps the user back to their current position).
"""

from __future__ import annotations

from typing import Protocol

from redis.asyncio import Redis

from callwarden.domain.ids import QueueId, UserId

__all__ = ["InProcessRoundRobin", "RedisRoundRobin", "RoundRobinMarks"]


class RoundRobinMarks(Protocol):
    async def last(self, queue_id: QueueId) -> UserId | None:
        """The member offered a call of `queue_id` last (None before the first offer)."""
        ...

    async def mark(self, queue_id: QueueId, user_id: UserId) -> None: ...


class InProcessRoundRobin:
    def __init__(self) -> None:
        self._marks: dict[QueueId, UserId] = {}

    async def last(self, queue_id: QueueId) -> UserId | None:
        return self._marks.get(queue_id)

    async def mark(self, queue_id: QueueId, user_id: UserId) -> None:
        self._marks[queue_id] = user_id


class RedisRoundRobin:
    """The marks in one Redis hash (the client is the caller's; it closes it)."""

    def __init__(self, client: Redis, *, key_prefix: str = "callwarden:") -> None:
        self._client = client
        self._key = f"{key_prefix}acd:round-robin"

    async def last(self, queue_id: QueueId) -> UserId | None:
        value = await self._client.hget(self._key, str(queue_id))
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        return UserId(int(text)) if text.isdigit() else None

    async def mark(self, queue_id: QueueId, user_id: UserId) -> None:
        await self._client.hset(self._key, str(queue_id), str(user_id))
