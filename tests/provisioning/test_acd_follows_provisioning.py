"""A provisioning run reaches a running ACD the way the node wires it: `UserDirectory.reload`
in a worker thread, its `on_reload` listener handing the snapshot to the engine's loop
(`AcdEngine.follow_directory`). New members, a changed strategy and new break reasons apply
to the next decision; the call waiting meanwhile is not dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from callwarden.acd.agent import AgentState
from callwarden.acd.engine import AcdEngine
from callwarden.acd.queue import OverflowAction
from callwarden.bus import InProcessAgentClaims, InProcessBus
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.provisioning import Provisioner
from callwarden.sip.clock import FakeClock
from callwarden.store.database import Database
from callwarden.store.directory import UserDirectory

Write = Callable[..., Path]

FILE = """\
teams: [{{name: support}}]
users:
  - {{username: alice, role: operator, team: support, extension: "1001"}}
  - {{username: bob, role: operator, team: support, extension: "1002"}}
queues:
  - {{name: sales, number: "5001", team: support, members: [{members}], strategy: {strategy}}}
break_reasons: [{reasons}]
"""


class Ringing:
    def __init__(self) -> None:
        self.offers: list[tuple[CallId, UserId]] = []

    def offer_call(self, call_id: CallId, agent_id: UserId, queue_id: QueueId) -> None:
        self.offers.append((call_id, agent_id))

    def withdraw_offer(self, call_id: CallId, agent_id: UserId) -> None:
        pass

    def overflow_call(self, call_id: CallId, queue_id: QueueId, action: OverflowAction) -> None:
        pass


def _id(snapshot: DirectorySnapshot, username: str) -> UserId:
    user = snapshot.user_by_username(username)
    assert user is not None
    return user.id


async def test_the_engine_follows_a_provisioning_run(
    database: Database, provisioner: Provisioner, write_yaml: Write
) -> None:
    provisioner.apply_file(
        write_yaml(FILE.format(members="alice", strategy="longest_idle", reasons="lunch"))
    )
    directory = UserDirectory(database.sessions)
    snapshot = directory.reload()
    alice, bob = _id(snapshot, "alice"), _id(snapshot, "bob")
    queue = snapshot.queue_by_name("sales")
    assert queue is not None
    clock, ringing = FakeClock(), Ringing()
    engine = AcdEngine(
        directory=snapshot,
        bus=InProcessBus(),
        claims=InProcessAgentClaims(clock.now),
        calls=ringing,
        clock=clock,
        wall_clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
        node_id="node",
    )
    async with engine:
        loop = asyncio.get_running_loop()

        def follow(new: DirectorySnapshot) -> None:  # as app.py registers it
            loop.call_soon_threadsafe(engine.follow_directory, new)

        directory.on_reload(follow)
        await engine.sign_in(alice)
        await engine.take_break(alice, "lunch")
        await engine.call_arrived(CallId("c1"), queue.id)  # nobody free: it waits
        text = FILE.format(members="alice, bob", strategy="ring_all", reasons="lunch, coaching")
        provisioner.apply_file(write_yaml(text))
        await asyncio.to_thread(directory.reload)
        await asyncio.sleep(0)  # the listener's call_soon_threadsafe
        await engine.settled()
        assert engine.agent(bob).state is AgentState.OFFLINE
        assert engine.break_reasons == ("lunch", "coaching", "missed")
        await engine.make_available(alice)
        await engine.sign_in(bob)
        assert ringing.offers == [(CallId("c1"), alice)]
        await engine.call_ended(CallId("c1"))
        await engine.call_arrived(CallId("c2"), queue.id)
        assert sorted(ringing.offers[1:]) == sorted([(CallId("c2"), alice), (CallId("c2"), bob)])
