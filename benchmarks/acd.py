"""ACD routing decisions at scale, and event fan-out over the in-process bus.

Routing: a center of ``--queues`` queues and ``--agents`` agents, each agent a member of
``--queues-per-agent`` queues (so about agents × queues-per-agent ÷ queues members per queue),
every agent signed in and available. Two figures per strategy:

* ``rank``: the pure strategy (`rank_members`) ordering one queue's available members;
* ``engine``: a whole decision through `AcdEngine` on uvloop: `call_arrived` for a call in a
  random queue, until the engine has claimed an agent, moved them to RINGING, published the
  events and asked its owner to ring the phone (in-process bus and claims). The call is then
  answered and ended (no wrap-up), outside the timing, so every decision sees the same
  staffing.

Fan-out: ``--subscribers`` subscriptions on `InProcessBus`, each read by its own task and
filtered with the policy (`visible_to` for a supervisor of one of ``--teams`` teams), receive
``--events`` agent-state events published at ``--rate`` per second; latency is from publish
to the subscriber's task holding the event. This is the bus half of "event to WebSocket
subscriber": the WebSocket (serialisation and the socket write) comes with the web issue.

Claims on Redis (with ``--redis-url``): claiming a ring-all tier of ``--tier`` agents one
`claim` at a time against one `claim_many` (one Lua script), each round released afterwards;
wall clock, since the round trips dominate.

Targets (issue 4): a routing decision under 1 ms at p99; event to subscriber under 50 ms p99.

Usage: .venv/bin/python benchmarks/acd.py [--queues 1000] [--agents 10000] [--decisions 5000]
                                          [--subscribers 500] [--events 2000] [--rate 500]
                                          [--redis-url redis://127.0.0.1:6379/0 --tier 37]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import time
import uuid
from datetime import UTC, datetime

import uvloop
from redis.asyncio import Redis

from callwarden.acd.agent import AgentState
from callwarden.acd.engine import AcdEngine
from callwarden.acd.events import AgentStateChanged
from callwarden.acd.queue import OverflowAction
from callwarden.acd.routing import MemberStatus, rank_members
from callwarden.acd.settings import AcdSettings
from callwarden.bus import InProcessAgentClaims, InProcessBus, Subscription, visible_to
from callwarden.bus.claims import Claim
from callwarden.bus.redis_claims import RedisAgentClaims
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, QueueId, RoleId, TeamId, UserId
from callwarden.domain.models import Queue, QueueMember, QueueStrategy, Role, Team, User
from callwarden.domain.permissions import DEFAULT_ROLE_GRANTS
from callwarden.domain.policy import Principal
from callwarden.sip.clock import LoopClock

TEAMS = 20


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(
    label: str, seconds: list[float], target_ms: float | None = None, cpu: list[float] | None = None
) -> None:
    """One line of wall-clock percentiles, and one of CPU time per operation if measured."""
    p50, p99 = percentile(seconds, 0.50) * 1e3, percentile(seconds, 0.99) * 1e3
    worst = max(seconds) * 1e3
    rate = len(seconds) / sum(seconds) if sum(seconds) else float("inf")
    verdict = "" if target_ms is None else ("  ok" if p99 < target_ms else "  over target")
    print(
        f"  {label:<20} n={len(seconds):>6}  wall p50 {p50:6.3f} p99 {p99:6.3f} "
        f"max {worst:6.3f} ms  {rate:>8,.0f}/s{verdict}"
    )
    if cpu is not None:
        c50, c99 = percentile(cpu, 0.50) * 1e3, percentile(cpu, 0.99) * 1e3
        verdict = "" if target_ms is None else ("  ok" if c99 < target_ms else "  over target")
        print(f"  {'':<31}cpu p50 {c50:6.3f} p99 {c99:6.3f} ms{verdict}")


# -- the center ---------------------------------------------------------------------------------


def build_center(
    queues: int, agents: int, per_agent: int, strategy: QueueStrategy, seed: int
) -> DirectorySnapshot:
    rng = random.Random(seed)
    role = Role(RoleId(1), "operator", builtin=True)
    teams = [Team(TeamId(t), f"team{t}", f"Team {t}") for t in range(1, TEAMS + 1)]
    users = [
        User(UserId(n), f"op{n}", f"Operator {n}", role.id, TeamId(1 + n % TEAMS))
        for n in range(1, agents + 1)
    ]
    members: dict[int, list[QueueMember]] = {q: [] for q in range(1, queues + 1)}
    for user in users:
        for queue_id in rng.sample(range(1, queues + 1), per_agent):
            members[queue_id].append(
                QueueMember(
                    user.id, penalty=rng.choice((0, 0, 0, 1)), skill_level=rng.randint(1, 5)
                )
            )
    queue_list = [
        Queue(
            id=QueueId(q),
            name=f"queue{q}",
            display_name=f"Queue {q}",
            number=str(10_000 + q),
            team_id=TeamId(1 + q % TEAMS),
            strategy=strategy,
            members=tuple(members[q]),
            wrap_up_seconds=0,
            ring_timeout_seconds=60,
        )
        for q in range(1, queues + 1)
    ]
    return DirectorySnapshot(teams=teams, roles=[role], users=users, queues=queue_list)


# -- routing ------------------------------------------------------------------------------------


def bench_rank(
    snapshot: DirectorySnapshot, decisions: int, seed: int
) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    now = 100_000.0
    statuses = {
        queue.id: [
            MemberStatus(
                member.user_id,
                position,
                member.penalty,
                member.skill_level,
                now - rng.uniform(0, 3600),
                rng.randint(0, 40),
            )
            for position, member in enumerate(queue.members)
        ]
        for queue in snapshot.queues
    }
    queue_list = snapshot.queues
    timings: list[float] = []
    cpu: list[float] = []
    for _ in range(decisions):
        queue = rng.choice(queue_list)
        members = statuses[queue.id]
        started, started_cpu = time.perf_counter(), time.thread_time()
        rank_members(queue, members, round_robin_after=len(members) // 2)
        cpu.append(time.thread_time() - started_cpu)
        timings.append(time.perf_counter() - started)
    return timings, cpu


class RingingOwner:
    """The telephony side: remembers whom each call rings."""

    def __init__(self) -> None:
        self.rung: dict[CallId, UserId] = {}

    def offer_call(self, call_id: CallId, agent_id: UserId, queue_id: QueueId) -> None:
        self.rung[call_id] = agent_id

    def withdraw_offer(self, call_id: CallId, agent_id: UserId) -> None:
        pass

    def overflow_call(self, call_id: CallId, queue_id: QueueId, action: OverflowAction) -> None:
        pass


async def bench_engine(
    snapshot: DirectorySnapshot, decisions: int, seed: int
) -> tuple[list[float], list[float]]:
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    clock = LoopClock(loop)
    owner = RingingOwner()
    engine = AcdEngine(
        directory=snapshot,
        bus=InProcessBus(),
        claims=InProcessAgentClaims(clock.now),
        calls=owner,
        clock=clock,
        wall_clock=lambda: datetime.now(UTC),
        node_id="bench",
        settings=AcdSettings(claim_ttl_seconds=600),
    )
    async with engine:
        for user in snapshot.users:
            await engine.sign_in(user.id)
        gc.collect()
        gc.freeze()  # the center out of the collector's way, as a node would after start-up
        queue_ids = [queue.id for queue in snapshot.queues]
        timings: list[float] = []
        cpu: list[float] = []
        for index in range(decisions):
            call_id = CallId(f"call-{index}")
            queue_id = rng.choice(queue_ids)
            started, started_cpu = time.perf_counter(), time.thread_time()
            await engine.call_arrived(call_id, queue_id, caller="+4930123456")
            cpu.append(time.thread_time() - started_cpu)
            timings.append(time.perf_counter() - started)
            agent = owner.rung.pop(call_id)
            await engine.offer_answered(call_id, agent)
            await engine.call_ended(call_id)
        assert all(a.state is AgentState.AVAILABLE for a in engine.agents())
    gc.unfreeze()
    return timings, cpu


# -- claims on Redis -----------------------------------------------------------------------------


async def bench_redis_claims(url: str, tier: int, rounds: int) -> tuple[list[float], list[float]]:
    """Wall seconds to claim `tier` agents one by one, and in one `claim_many`, per round."""
    client = Redis.from_url(url)
    prefix = f"bench-{uuid.uuid4().hex[:12]}:"
    claims = RedisAgentClaims(client, key_prefix=prefix)
    agents = [UserId(n) for n in range(1, tier + 1)]
    one_by_one: list[float] = []
    batched: list[float] = []
    try:
        for index in range(rounds):
            started = time.perf_counter()
            single = [await claims.claim(agent, f"bench:c{index}", 30) for agent in agents]
            one_by_one.append(time.perf_counter() - started)
            await _release_all(claims, single)
            started = time.perf_counter()
            batch = await claims.claim_many(agents, f"bench:m{index}", 30)
            batched.append(time.perf_counter() - started)
            await _release_all(claims, batch)
    finally:
        await client.aclose()
    return one_by_one, batched


async def _release_all(claims: RedisAgentClaims, taken: list[Claim | None]) -> None:
    for claim in taken:
        if claim is None:
            raise RuntimeError("a benchmark claim failed: is another client using these keys?")
        await claims.release(claim)


# -- fan-out ------------------------------------------------------------------------------------


async def bench_fanout(subscribers: int, events: int, rate: float) -> tuple[list[float], int]:
    bus = InProcessBus()
    supervisors = [
        Principal(
            user_id=UserId(900_000 + n),
            team_id=TeamId(1 + n % TEAMS),
            supervised_team_ids=frozenset({TeamId(1 + n % TEAMS)}),
            grants=DEFAULT_ROLE_GRANTS["supervisor"],
        )
        for n in range(subscribers)
    ]
    sent_at: dict[int, float] = {}
    latencies: list[float] = []

    async def read(subscription: Subscription) -> None:
        async for event in subscription:
            received = time.perf_counter()
            assert isinstance(event, AgentStateChanged)
            latencies.append(received - sent_at[event.calls_taken])

    readers = [
        asyncio.create_task(read(bus.subscribe(visible_to(p), max_pending=10_000)))
        for p in supervisors
    ]
    await asyncio.sleep(0)
    interval = 1.0 / rate
    start = time.perf_counter()
    for index in range(events):
        # events come from many tasks in a node: yield to the loop between two, even when late
        await asyncio.sleep(max(0.0, start + index * interval - time.perf_counter()))
        event = AgentStateChanged(
            at=datetime.now(UTC),
            team_id=TeamId(1 + index % TEAMS),
            user_id=UserId(1 + index),
            state=AgentState.AVAILABLE,
            previous=AgentState.WRAP_UP,
            calls_taken=index,  # carries the event's number for the readers
        )
        sent_at[index] = time.perf_counter()
        bus.publish(event)
    await asyncio.sleep(0.2)
    await bus.close()
    await asyncio.gather(*readers)
    return latencies, sum(1 for _ in supervisors)


# -- main ---------------------------------------------------------------------------------------


async def run(options: argparse.Namespace) -> None:
    print(
        f"routing: {options.queues} queues, {options.agents} agents, each in "
        f"{options.queues_per_agent} queues "
        f"(~{options.agents * options.queues_per_agent // options.queues} members per queue)"
    )
    for strategy in QueueStrategy:
        snapshot = build_center(
            options.queues, options.agents, options.queues_per_agent, strategy, options.seed
        )
        gc.collect()
        print(f" {strategy.value}")
        wall, cpu = bench_rank(snapshot, options.decisions * 4, options.seed)
        report("rank (pure)", wall, 1.0, cpu)
        wall, cpu = await bench_engine(snapshot, options.decisions, options.seed)
        report("engine decision", wall, 1.0, cpu)
    print(
        f"fan-out: {options.subscribers} subscribers (policy-filtered, {TEAMS} teams), "
        f"{options.events} events at {options.rate:g}/s, in-process bus"
    )
    latencies, _ = await bench_fanout(options.subscribers, options.events, options.rate)
    report("event to subscriber", latencies, 50.0)
    print("  (the WebSocket part of event-to-browser comes with the web issue)")
    if options.redis_url:
        print(f"claims on Redis: a tier of {options.tier} agents, 500 rounds")
        one_by_one, batched = await bench_redis_claims(options.redis_url, options.tier, 500)
        report("claim one by one", one_by_one)
        report("claim_many", batched)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--queues-per-agent", type=int, default=5)
    parser.add_argument("--decisions", type=int, default=5000)
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--redis-url", default=None, help="also time tier claims on this Redis")
    parser.add_argument("--tier", type=int, default=37)
    options = parser.parse_args(argv)
    uvloop.run(run(options))


if __name__ == "__main__":
    main()
