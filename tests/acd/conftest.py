"""An ACD engine on a fake clock and the in-process bus, with an owner that records what the
engine asked of it (the engine's only output besides its events and state)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

import pytest

from callwarden.acd.engine import AcdEngine
from callwarden.acd.queue import OverflowAction
from callwarden.acd.settings import AcdSettings
from callwarden.bus import Event, InProcessAgentClaims, InProcessBus, Subscription
from callwarden.bus.claims import AgentClaims
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, QueueId, RoleId, TeamId, UserId
from callwarden.domain.models import Queue, QueueMember, Role, Team, User
from callwarden.sip.clock import FakeClock

MIDNIGHT = datetime(2025, 3, 3, tzinfo=UTC)
"""Wall time when the fake clock reads 0."""

TEAM_A, TEAM_B = TeamId(1), TeamId(2)
ROLE = Role(RoleId(1), "operator", builtin=True)
USERS = tuple(
    User(UserId(n), f"op{n}", f"Operator {n}", ROLE.id, TEAM_A if n < 200 else TEAM_B)
    for n in (101, 102, 103, 104, 201, 202)
)


def make_queue(
    queue_id: int,
    members: Iterable[int | QueueMember],
    *,
    team: TeamId = TEAM_A,
    **settings: object,
) -> Queue:
    return Queue(
        id=QueueId(queue_id),
        name=f"q{queue_id}",
        display_name=f"Queue {queue_id}",
        number=str(600 + queue_id),
        team_id=team,
        members=tuple(m if isinstance(m, QueueMember) else QueueMember(UserId(m)) for m in members),
        **settings,  # type: ignore[arg-type]
    )


def directory(*queues: Queue) -> DirectorySnapshot:
    return DirectorySnapshot(
        teams=(Team(TEAM_A, "a", "Team A"), Team(TEAM_B, "b", "Team B")),
        roles=(ROLE,),
        users=USERS,
        queues=queues,
    )


class RecordingOwner:
    """The telephony side as the engine sees it: records each request, in order."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, int]] = []

    def offer_call(self, call_id: CallId, agent_id: UserId, queue_id: QueueId) -> None:
        self.requests.append(("offer", call_id, agent_id))

    def withdraw_offer(self, call_id: CallId, agent_id: UserId) -> None:
        self.requests.append(("withdraw", call_id, agent_id))

    def overflow_call(self, call_id: CallId, queue_id: QueueId, action: OverflowAction) -> None:
        self.requests.append(("overflow", call_id, queue_id))

    def take(self) -> list[tuple[str, str, int]]:
        taken, self.requests = self.requests, []
        return taken


def drain(subscription: Subscription) -> list[Event]:
    events = []
    while (event := subscription.get_nowait()) is not None:
        events.append(event)
    return events


async def advance(engine: AcdEngine, clock: FakeClock, seconds: float) -> None:
    """Move the fake clock `seconds` forward, stopping at each timer's deadline until the
    engine has run the jobs that timer queued, so each job sees the time it was due at."""
    target = clock.now() + seconds
    while (deadline := clock.next_deadline()) is not None and deadline <= target:
        clock.advance_to(deadline)
        await engine.settled()
    clock.advance_to(target)
    await engine.settled()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def bus() -> InProcessBus:
    return InProcessBus()


@pytest.fixture
def claims(clock: FakeClock) -> InProcessAgentClaims:
    return InProcessAgentClaims(clock.now)


@pytest.fixture
def owner() -> RecordingOwner:
    return RecordingOwner()


EngineFactory = Callable[..., Awaitable[AcdEngine]]


@pytest.fixture
async def make_engine(
    clock: FakeClock, bus: InProcessBus, claims: InProcessAgentClaims, owner: RecordingOwner
) -> AsyncIterator[EngineFactory]:
    """`await make_engine(queue, ..., settings=..., node_id=..., owner=..., claims=...)`."""
    engines: list[AcdEngine] = []

    async def build(
        *queues: Queue,
        settings: AcdSettings | None = None,
        node_id: str = "node-a",
        owner_: RecordingOwner = owner,
        claims_: AgentClaims = claims,
    ) -> AcdEngine:
        engine = AcdEngine(
            directory=directory(*queues),
            bus=bus,
            claims=claims_,
            calls=owner_,
            clock=clock,
            wall_clock=lambda: MIDNIGHT + timedelta(seconds=clock.now()),
            node_id=node_id,
            settings=settings,
        )
        await engine.start()
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        await engine.close()
