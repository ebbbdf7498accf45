"""`AgentClaims.claim_many`: a batch claims each free agent for one holder, skips the held
ones, yields claims that release and refresh one by one, and never double-books under races
(in process and on Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from callwarden.bus import AgentClaims, InProcessAgentClaims
from callwarden.bus.redis_claims import RedisAgentClaims
from callwarden.domain.ids import UserId
from callwarden.sip.clock import FakeClock

from .redis_support import connected_client

AGENTS = [UserId(n) for n in range(1, 6)]


@pytest.fixture(params=["in_process", pytest.param("redis", marks=pytest.mark.redis)])
async def claims(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[AgentClaims]:
    if request.param == "in_process":
        yield InProcessAgentClaims(FakeClock().now)
    else:
        async with connected_client(prefix) as client:
            yield RedisAgentClaims(client, key_prefix=prefix)


async def test_a_batch_claims_the_free_agents_and_skips_the_held(claims: AgentClaims) -> None:
    held = await claims.claim(AGENTS[2], "node-b:c9", 30)
    assert held is not None
    batch = await claims.claim_many(AGENTS, "node-a:c1", 30)
    assert [claim is not None for claim in batch] == [True, True, False, True, True]
    for agent_id, claim in zip(AGENTS, batch, strict=True):
        assert claim is None or (claim.agent_id, claim.holder) == (agent_id, "node-a:c1")
        assert await claims.holder(agent_id) == ("node-b:c9" if claim is None else "node-a:c1")
    assert await claims.claim_many(AGENTS, "node-c:c2", 30) == [None] * len(AGENTS)


async def test_batch_claims_release_and_refresh_one_by_one(claims: AgentClaims) -> None:
    first, second = await claims.claim_many(AGENTS[:2], "node-a:c1", 30)
    assert first is not None and second is not None
    assert await claims.release(first)
    assert not await claims.release(first)
    assert await claims.holder(AGENTS[0]) is None
    assert await claims.holder(AGENTS[1]) == "node-a:c1"  # its batch mate is still held
    assert await claims.refresh(second, 30)
    again = await claims.claim_many(AGENTS[:2], "node-b:c2", 30)
    assert again[0] is not None and again[1] is None
    assert not await claims.release(first)  # the old claim cannot free the new holder's
    assert await claims.holder(AGENTS[0]) == "node-b:c2"


async def test_a_duplicate_in_a_batch_is_held_by_its_first_claim(claims: AgentClaims) -> None:
    batch = await claims.claim_many([AGENTS[0], AGENTS[0]], "node-a:c1", 30)
    assert batch[0] is not None and batch[1] is None


async def test_an_empty_batch_and_a_bad_ttl(claims: AgentClaims) -> None:
    assert await claims.claim_many([], "node-a:c1", 30) == []
    with pytest.raises(ValueError, match="must be positive"):
        await claims.claim_many(AGENTS, "node-a:c1", 0)
    assert await claims.holder(AGENTS[0]) is None  # nothing claimed by the bad call


async def test_in_process_batch_claims_expire_by_their_clock() -> None:
    clock = FakeClock()
    claims = InProcessAgentClaims(clock.now)
    batch = await claims.claim_many(AGENTS[:3], "node-a:c1", 30)
    assert all(claim is not None for claim in batch)
    assert len({claim.token for claim in batch if claim is not None}) == 3
    clock.advance(30)
    assert [await claims.holder(agent_id) for agent_id in AGENTS[:3]] == [None] * 3
    assert all(c is not None for c in await claims.claim_many(AGENTS[:3], "node-b:c2", 30))


async def _race_batches(
    claims_of_each_node: list[AgentClaims], agents: list[UserId], rounds: int
) -> dict[UserId, list[str]]:
    """Every node's tasks claim overlapping windows of the agents at once, by batch (even
    tasks) or one by one (odd tasks); who won each agent."""
    winners: dict[UserId, list[str]] = {agent: [] for agent in agents}

    async def contender(node: int, claims: AgentClaims, task: int) -> None:
        holder = f"node-{node}:task-{task}"
        starts = range(0, len(agents), 4)
        for start in starts if node % 2 == 0 else reversed(starts):  # meet in the middle
            window = agents[start : start + 8]
            if task % 2 == 0:
                got = await claims.claim_many(window, holder, 30)
            else:
                got = [await claims.claim(agent, holder, 30) for agent in window]
            for claim in got:
                if claim is not None:
                    winners[claim.agent_id].append(holder)

    await asyncio.gather(
        *(
            contender(node, claims, task)
            for task in range(rounds)
            for node, claims in enumerate(claims_of_each_node)
        )
    )
    return winners


async def test_racing_batches_in_process_never_double_book() -> None:
    claims = InProcessAgentClaims(FakeClock().now)
    agents = [UserId(n) for n in range(40)]
    winners = await _race_batches([claims], agents, rounds=25)
    assert all(len(holders) == 1 for holders in winners.values()), winners


@pytest.mark.redis
async def test_racing_batches_on_two_redis_nodes_never_double_book(prefix: str) -> None:
    """Two connections (two nodes), 25 tasks each, batches and single claims overlapping."""
    async with connected_client(prefix) as node_a, connected_client(prefix) as node_b:
        claims = [
            RedisAgentClaims(node_a, key_prefix=prefix),
            RedisAgentClaims(node_b, key_prefix=prefix),
        ]
        agents = [UserId(n) for n in range(40)]
        winners = await _race_batches(claims, agents, rounds=25)
        assert all(len(holders) == 1 for holders in winners.values()), winners
        assert {holders[0].split(":")[0] for holders in winners.values()} == {"node-0", "node-1"}
