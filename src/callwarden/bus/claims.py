"""Atomic claims on agents, so that no two offers (from one node or several) ring one operator.

Before offering a call to an agent, the ACD claims the agent; the claim succeeds for exactly
one holder until it is released or expires. Expiry (`ttl_seconds`) frees the agents of a node
that died; a live holder refreshes its claims well before they expire. A claim is identified
by a token unique to it, so a holder whose claim expired and was taken by someone else can
neither release nor refresh the new holder's claim (random across nodes; a counter in process,
where nobody can forge one). `claim_many` claims several agents for one holder in one step
(ring-all offers a call to a whole tier): each agent is claimed atomically, independently of
the others.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from callwarden.domain.ids import UserId

__all__ = ["AgentClaims", "Claim", "InProcessAgentClaims", "new_claim_token"]


@dataclass(frozen=True, slots=True)
class Claim:
    """A successful claim: who holds `agent_id`, and the token proving it."""

    agent_id: UserId
    holder: str
    token: str


def new_claim_token() -> str:
    """A random token (32 hex digits) for one claim."""
    return secrets.token_hex(16)


def check_ttl(ttl_seconds: float) -> None:
    if not ttl_seconds > 0:
        raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds!r}")


class AgentClaims(Protocol):
    """Claims on agents, atomic across every node sharing the backend."""

    async def claim(self, agent_id: UserId, holder: str, ttl_seconds: float) -> Claim | None:
        """Claim `agent_id` for `holder` (e.g. `"node-a:call-17"`), or None if already held."""
        ...

    async def claim_many(
        self, agent_ids: Sequence[UserId], holder: str, ttl_seconds: float
    ) -> list[Claim | None]:
        """`claim` for each of `agent_ids` in one step, in order: the claim, or None for an
        agent already held (a duplicate in `agent_ids` is held by its first claim)."""
        ...

    async def release(self, claim: Claim) -> bool:
        """Give the claim up; False if it had expired or was no longer this claim."""
        ...

    async def refresh(self, claim: Claim, ttl_seconds: float) -> bool:
        """Extend the claim to `ttl_seconds` from now; False if it is no longer held."""
        ...

    async def holder(self, agent_id: UserId) -> str | None:
        """Who holds `agent_id` now, or None."""
        ...


class InProcessAgentClaims:
    """`AgentClaims` for a single node; `now` is a monotonic clock in seconds."""

    __slots__ = ("_claims", "_now", "_tokens")

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._claims: dict[UserId, tuple[Claim, float]] = {}
        self._tokens = itertools.count(1)

    def _current(self, agent_id: UserId) -> Claim | None:
        entry = self._claims.get(agent_id)
        if entry is None:
            return None
        claim, expires_at = entry
        if expires_at <= self._now():
            del self._claims[agent_id]
            return None
        return claim

    async def claim(self, agent_id: UserId, holder: str, ttl_seconds: float) -> Claim | None:
        check_ttl(ttl_seconds)
        return self._claim(agent_id, holder, self._now() + ttl_seconds)

    async def claim_many(
        self, agent_ids: Sequence[UserId], holder: str, ttl_seconds: float
    ) -> list[Claim | None]:
        check_ttl(ttl_seconds)
        expires_at = self._now() + ttl_seconds
        return [self._claim(agent_id, holder, expires_at) for agent_id in agent_ids]

    def _claim(self, agent_id: UserId, holder: str, expires_at: float) -> Claim | None:
        if self._current(agent_id) is not None:
            return None
        claim = Claim(agent_id, holder, f"{next(self._tokens):032x}")
        self._claims[agent_id] = (claim, expires_at)
        return claim

    async def release(self, claim: Claim) -> bool:
        if self._current(claim.agent_id) != claim:
            return False
        del self._claims[claim.agent_id]
        return True

    async def refresh(self, claim: Claim, ttl_seconds: float) -> bool:
        check_ttl(ttl_seconds)
        if self._current(claim.agent_id) != claim:
            return False
        self._claims[claim.agent_id] = (claim, self._now() + ttl_seconds)
        return True

    async def holder(self, agent_id: UserId) -> str | None:
        current = self._current(agent_id)
        return None if current is None else current.holder
