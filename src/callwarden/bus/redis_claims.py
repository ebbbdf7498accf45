"""`AgentClaims` on Redis: `SET key value NX PX ttl` to claim, compare-and-delete to release.

The value of an agent's key is `"<token> <holder>"`. Claiming is one `SET ... NX PX` command,
atomic on the server, so of any number of nodes racing for an agent exactly one succeeds.
Release and refresh are Lua scripts that act only if the stored value is still this claim's
(https://redis.io/docs/latest/develop/use/patterns/distributed-locks/, single instance).
`claim_many` is one Lua script doing `SET ... NX PX` on each agent's key: one round trip for
a ring-all tier, and each key still set by exactly one of any racing nodes. The claims of one
batch share a token (each sits on its own agent's key, so a claim is still told apart from
any later claim on that agent, which gets a new token).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from redis.asyncio import Redis

from callwarden.bus.claims import Claim, check_ttl, new_claim_token
from callwarden.domain.ids import UserId

__all__ = ["RedisAgentClaims"]

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

_REFRESH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


_CLAIM_MANY = """
local claimed = {}
for index, key in ipairs(KEYS) do
    if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
        claimed[index] = 1
    else
        claimed[index] = 0
    end
end
return claimed
"""


def _milliseconds(ttl_seconds: float) -> int:
    check_ttl(ttl_seconds)
    return max(1, math.ceil(ttl_seconds * 1000))


class RedisAgentClaims:
    """Claims shared by every node on one Redis; keys are `<prefix>agent:<id>:claim`.

    The client is the caller's (it closes it); it may use `decode_responses` or not.
    """

    def __init__(self, client: Redis, *, key_prefix: str = "callwarden:") -> None:
        self._client = client
        self._prefix = key_prefix
        self._release = client.register_script(_RELEASE)
        self._refresh = client.register_script(_REFRESH)
        self._claim_many = client.register_script(_CLAIM_MANY)

    def _key(self, agent_id: UserId) -> str:
        return f"{self._prefix}agent:{agent_id}:claim"

    async def claim(self, agent_id: UserId, holder: str, ttl_seconds: float) -> Claim | None:
        claim = Claim(agent_id, holder, new_claim_token())
        stored = await self._client.set(
            self._key(agent_id), _value(claim), nx=True, px=_milliseconds(ttl_seconds)
        )
        return claim if stored else None

    async def claim_many(
        self, agent_ids: Sequence[UserId], holder: str, ttl_seconds: float
    ) -> list[Claim | None]:
        milliseconds = _milliseconds(ttl_seconds)
        if not agent_ids:
            return []
        token = new_claim_token()
        claims = [Claim(agent_id, holder, token) for agent_id in agent_ids]
        stored = await self._claim_many(
            keys=[self._key(agent_id) for agent_id in agent_ids],
            args=[_value(claims[0]), milliseconds],
        )
        return [claim if flag else None for claim, flag in zip(claims, stored, strict=True)]

    async def release(self, claim: Claim) -> bool:
        deleted = await self._release(keys=[self._key(claim.agent_id)], args=[_value(claim)])
        return bool(deleted)

    async def refresh(self, claim: Claim, ttl_seconds: float) -> bool:
        milliseconds = _milliseconds(ttl_seconds)
        extended = await self._refresh(
            keys=[self._key(claim.agent_id)], args=[_value(claim), milliseconds]
        )
        return bool(extended)

    async def holder(self, agent_id: UserId) -> str | None:
        value = await self._client.get(self._key(agent_id))
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        _, _, holder = text.partition(" ")
        return holder


def _value(claim: Claim) -> str:
    return f"{claim.token} {claim.holder}"
