"""Queue calls' timers on a fake clock, through the real SIP layer, QueueCalls and ACD engine:
maximum wait then overflow, ring no-answer then break, wrap-up and its extension limit,
abandon with the time waited, and the periodic announcements."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from queue_node import PHONE_HOST, Caller, Player, QueueNode

from callwarden.acd.agent import MISSED_REASON, AgentState
from callwarden.acd.errors import WrapUpLimitReached
from callwarden.acd.events import CallAbandoned, CallOverflowed
from callwarden.acd.queue import OverflowKind
from callwarden.acd.settings import AcdSettings
from callwarden.domain.cdr import Disposition, HangupSide
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import QueueId, RoleId, TeamId, UserId
from callwarden.domain.models import HoldMusic, Queue, QueueMember, QueueOverflow, Role, Team, User
from callwarden.telephony.prompts import Prompts
from callwarden.telephony.queue_call import MESSAGE_SECONDS
from callwarden.telephony.queue_events import QueueCallState
from callwarden.telephony.queue_hold import BUSY_TONE_HZ

ALICE = UserId(1)
Q1 = QueueId(1)
BUSY = Player("tone", "+".join(f"{f:g}" for f in BUSY_TONE_HZ))
HOLD = Player("tone", "392+494")


def _directory(queue: Queue) -> DirectorySnapshot:
    return DirectorySnapshot(
        teams=[Team(TeamId(1), "support", "Support")],
        roles=[Role(RoleId(1), "operator")],
        users=[User(ALICE, "alice", "Alice", RoleId(1), TeamId(1), extension="1001")],
        queues=[queue],
    )


def _queue(**settings: object) -> Queue:
    fields: dict[str, object] = {"announce_seconds": None, "members": (QueueMember(ALICE),)}
    fields.update(settings)
    return Queue(Q1, "billing", "Billing", "5000", TeamId(1), **fields)  # type: ignore[arg-type]


Start = Callable[..., Awaitable[QueueNode]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    nodes: list[QueueNode] = []

    async def make(queue: Queue, **options: object) -> QueueNode:
        node = QueueNode(_directory(queue), queue, **options)  # type: ignore[arg-type]
        await node.start()
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        await node.close()


def _hears(node: QueueNode) -> list[Player]:
    call = node.calls[0]
    assert call.bridge_id is not None and call.inbound is not None
    return node.fake_media.heard(call.bridge_id, call.inbound.endpoint_id)


async def test_max_wait_overflows_to_a_message_then_hangs_up(start: Start) -> None:
    node = await start(_queue(max_wait_seconds=30, overflow=QueueOverflow.HANGUP))
    caller = Caller(node, "call-1")
    await caller.call()
    assert _hears(node) == [HOLD]
    await node.advance(29.9)
    assert _hears(node) == [HOLD] and not caller.byes_received()
    await node.advance(0.1)
    assert _hears(node) == [BUSY]
    (overflowed,) = [e for e in node.taken() if isinstance(e, CallOverflowed)]
    assert (overflowed.action, overflowed.waited_seconds) == (OverflowKind.HANGUP, 30.0)
    await node.advance(MESSAGE_SECONDS - 0.1)
    assert not caller.byes_received()
    await node.advance(0.1)
    assert len(caller.byes_received()) == 1
    (cdr,) = node.cdrs
    assert (cdr.disposition, cdr.hangup_side, cdr.hangup_cause) == (
        Disposition.NO_ANSWER,
        HangupSide.SYSTEM,
        "overflow: hangup",
    )


async def test_ring_no_answer_puts_the_operator_on_break_after_the_limit(start: Start) -> None:
    node = await start(_queue(ring_timeout_seconds=15, max_no_answer=2))
    node.register_phone("alice")
    await node.engine.sign_in(ALICE)
    caller = Caller(node, "call-2")
    await caller.call()
    invites = node.wire.requests("INVITE", PHONE_HOST)
    assert len(invites) == 1
    node.phone_reply(invites[0], 180)
    await node.advance(14.9)
    assert node.engine.agent(ALICE).state is AgentState.RINGING
    await node.advance(0.1)  # rang out: CANCEL, a first no-answer, offered again
    assert len(node.wire.requests("CANCEL", PHONE_HOST)) == 1
    assert node.engine.agent(ALICE).state is AgentState.RINGING
    assert len(node.wire.requests("INVITE", PHONE_HOST)) == 2
    await node.advance(15)
    agent = node.engine.agent(ALICE)
    assert (agent.state, agent.break_reason) == (AgentState.BREAK, MISSED_REASON)
    assert node.calls[0].state is QueueCallState.WAITING  # the caller keeps waiting
    assert _hears(node) == [HOLD]


async def test_wrap_up_after_the_call_and_its_extension_limit(start: Start) -> None:
    settings = AcdSettings(wrap_up_extension_limit_seconds=20)
    node = await start(_queue(wrap_up_seconds=10), settings=settings)
    node.register_phone("alice")
    await node.engine.sign_in(ALICE)
    caller = Caller(node, "call-3")
    await caller.call()
    (invite,) = node.wire.requests("INVITE", PHONE_HOST)
    node.phone_reply(invite, 200)
    await node.settle()
    call = node.calls[0]
    assert call.state is QueueCallState.CONNECTED
    assert _hears(node) == []  # the players left; the normal matrix applies
    assert node.fake_media.modes[call.bridge_id or ""] == "normal"
    await node.advance(42)
    await caller.hang_up()
    assert node.engine.agent(ALICE).state is AgentState.WRAP_UP
    await node.engine.extend_wrap_up(ALICE, 15)
    with pytest.raises(WrapUpLimitReached):
        await node.engine.extend_wrap_up(ALICE, 6)
    await node.advance(24.9)
    assert node.engine.agent(ALICE).state is AgentState.WRAP_UP
    await node.advance(0.1)
    assert node.engine.agent(ALICE).state is AgentState.AVAILABLE
    (cdr,) = node.cdrs
    assert (cdr.disposition, cdr.hangup_side) == (Disposition.ANSWERED, HangupSide.CALLER)
    assert cdr.answered_at is not None and (cdr.ended_at - cdr.answered_at).total_seconds() == 42


async def test_an_abandon_counts_the_time_waited(start: Start) -> None:
    node = await start(_queue())
    caller = Caller(node, "call-4")
    await caller.call()
    await node.advance(12.5)
    await caller.hang_up()
    (abandoned,) = [e for e in node.taken() if isinstance(e, CallAbandoned)]
    assert abandoned.waited_seconds == 12.5
    (cdr,) = node.cdrs
    assert (cdr.disposition, cdr.hangup_cause) == (Disposition.CANCELLED, "abandoned")


async def test_position_and_wait_are_announced_periodically(start: Start, tmp_path: Path) -> None:
    prompts = Prompts.synthesise(tmp_path / "prompts")
    queue = _queue(announce_seconds=20, music_on_hold=HoldMusic.MELODY)
    node = await start(queue, prompts=prompts)
    await node.engine.sign_in(ALICE)
    await node.engine.take_break(ALICE, "lunch")  # serving nobody: a wait to announce
    first, second = Caller(node, "call-5"), Caller(node, "call-6")
    await first.call()
    await second.call()
    melody = Player("wav", "melody.wav")
    assert _hears(node) == [melody]
    await node.advance(20)
    assert _hears(node) == [Player("wav", "position-1.wav")]
    position_seconds = prompts.position(1)[1]
    await node.advance(position_seconds)
    wait = node.engine.expected_wait(node.calls[0].call_id)
    assert wait > 0
    minutes = min(9, -(-int(wait) // 60))
    assert _hears(node) == [Player("wav", f"wait-{minutes}.wav")]
    await node.advance(prompts.wait(wait)[1])  # type: ignore[index]
    assert _hears(node) == [melody]
    assert node.calls[0].announcer.heard == [(1, wait)]
    assert node.calls[1].announcer.heard[0][0] == 2
    await node.advance(20)
    assert node.calls[0].announcer.count == 2
