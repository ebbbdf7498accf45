"""Agent claims: one holder at a time, release and refresh only by the holder, expiry; the
same behaviour in process and on Redis, and races that never double-book."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from callwarden.bus import AgentClaims, InProcessAgentClaims
from callwarden.bus.redis_claims import RedisAgentClaims
from callwarden.domain.ids import UserId
from callwarden.sip.clock import FakeClock

from .redis_support import connected_client, redis_url

AGENT = UserId(7)


@pytest.fixture(params=["in_process", pytest.param("redis", marks=pytest.mark.redis)])
async def claims(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[AgentClaims]:
    if request.param == "in_process":
        yield InProcessAgentClaims(FakeClock().now)
    else:
        async with connected_client(prefix) as client:
            yield RedisAgentClaims(client, key_prefix=prefix)


async def test_one_holder_at_a_time(claims: AgentClaims) -> None:
    first = await claims.claim(AGENT, "node-a:c1", 30)
    assert first is not None and first.holder == "node-a:c1" and len(first.token) == 32
    assert await claims.claim(AGENT, "node-b:c2", 30) is None
    assert await claims.holder(AGENT) == "node-a:c1"
    assert await claims.claim(UserId(8), "node-b:c2", 30) is not None  # other agents are free


async def test_release_frees_the_agent_once(claims: AgentClaims) -> None:
    claim = await claims.claim(AGENT, "node-a:c1", 30)
    assert claim is not None
    assert await claims.release(claim)
    assert not await claims.release(claim)
    assert await claims.holder(AGENT) is None
    assert await claims.claim(AGENT, "node-b:c2", 30) is not None


async def test_an_old_claim_cannot_release_or_refresh_the_new_holders(claims: AgentClaims) -> None:
    old = await claims.claim(AGENT, "node-a:c1", 30)
    assert old is not None and await claims.release(old)
    new = await claims.claim(AGENT, "node-b:c2", 30)
    assert new is not None
    assert not await claims.release(old)
    assert not await claims.refresh(old, 30)
    assert await claims.holder(AGENT) == "node-b:c2"
    assert await claims.refresh(new, 30)


async def test_the_ttl_must_be_positive(claims: AgentClaims) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        await claims.claim(AGENT, "x", 0)


async def test_in_process_claims_expire_by_their_clock() -> None:
    clock = FakeClock()
    claims = InProcessAgentClaims(clock.now)
    claim = await claims.claim(AGENT, "node-a:c1", 30)
    assert claim is not None
    clock.advance(20)
    assert await claims.refresh(claim, 30)  # now until t=50
    clock.advance(29)
    assert await claims.holder(AGENT) == "node-a:c1"
    clock.advance(1)
    assert await claims.holder(AGENT) is None
    assert not await claims.refresh(claim, 30)
    assert await claims.claim(AGENT, "node-b:c2", 30) is not None


@pytest.mark.redis
async def test_redis_claims_expire_and_a_refresh_extends_them(prefix: str) -> None:
    async with connected_client(prefix) as client:
        claims = RedisAgentClaims(client, key_prefix=prefix)
        claim = await claims.claim(AGENT, "node-a:c1", 0.2)
        assert claim is not None
        assert await claims.refresh(claim, 30)
        assert 29_000 < await client.pttl(f"{prefix}agent:7:claim") <= 30_000
        short = await claims.claim(UserId(8), "node-a:c2", 0.05)
        assert short is not None
        await asyncio.sleep(0.1)  # Redis expires keys by its own clock: let 50 ms pass
        assert await claims.holder(UserId(8)) is None
        assert await claims.claim(UserId(8), "node-b:c3", 30) is not None


async def _race(
    claims_of_each_node: list[AgentClaims], agents: list[UserId], rounds: int
) -> dict[UserId, list[str]]:
    """Every node's tasks claim every agent at once; who won each agent."""
    winners: dict[UserId, list[str]] = {agent: [] for agent in agents}

    async def contender(node: int, claims: AgentClaims, task: int) -> None:
        for agent in agents if node % 2 == 0 else reversed(agents):  # meet in the middle
            holder = f"node-{node}:task-{task}"
            if await claims.claim(agent, holder, 30) is not None:
                winners[agent].append(holder)

    await asyncio.gather(
        *(
            contender(node, claims, task)
            for task in range(rounds)
            for node, claims in enumerate(claims_of_each_node)
        )
    )
    return winners


async def test_racing_tasks_in_process_never_double_book() -> None:
    claims = InProcessAgentClaims(FakeClock().now)
    agents = [UserId(n) for n in range(20)]
    winners = await _race([claims], agents, rounds=25)
    assert all(len(holders) == 1 for holders in winners.values())


@pytest.mark.redis
async def test_racing_two_nodes_on_redis_never_double_book(prefix: str) -> None:
    """Two connections (two nodes), 25 tasks each, all claiming the same 20 agents."""
    async with connected_client(prefix) as node_a, connected_client(prefix) as node_b:
        claims = [
            RedisAgentClaims(node_a, key_prefix=prefix),
            RedisAgentClaims(node_b, key_prefix=prefix),
        ]
        agents = [UserId(n) for n in range(20)]
        winners = await _race(claims, agents, rounds=25)
        assert all(len(holders) == 1 for holders in winners.values()), winners
        # both nodes won some agents: the race was real
        assert {holders[0].split(":")[0] for holders in winners.values()} == {"node-0", "node-1"}


@pytest.mark.redis
async def test_redis_claims_work_with_decoded_responses(prefix: str) -> None:
    client = Redis.from_url(redis_url(), decode_responses=True)
    try:
        claims = RedisAgentClaims(client, key_prefix=prefix)
        claim = await claims.claim(AGENT, "node-a:c1", 5)
        assert claim is not None
        assert await claims.holder(AGENT) == "node-a:c1"
        assert await claims.release(claim)
    finally:
        await client.delete(f"{prefix}agent:7:claim")
        await client.aclose()
