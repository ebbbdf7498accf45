"""A simulated customer calls a simulated operator directly over loopback (no node between):
INVITE, ringing, answer, RTP both ways, BYE from either side, busy, CANCEL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from callwarden.simulator.audio import CUSTOMER_VOICES, OPERATOR_VOICES, SpeechLoop
from callwarden.simulator.calls import CallState, EndReason, IncomingCall, OutgoingCall, SipCall
from callwarden.simulator.customers import Customer, CustomerEnd
from callwarden.simulator.operator import DeskState, OperatorDesk, SimulatedOperator
from callwarden.simulator.rtp_session import MediaTicker, RtpCounters
from callwarden.simulator.settings import OperatorAccount, SecondsRange
from callwarden.simulator.user_agent import UserAgent
from callwarden.sip.addressing import Destination
from callwarden.sip.clock import LoopClock

LOOPBACK = "127.0.0.1"


@dataclass
class Pair:
    customer_agent: UserAgent
    operator: SimulatedOperator
    operator_calls: list[IncomingCall]
    totals: RtpCounters

    def dial(
        self, talk: SecondsRange, patience: float = 10.0
    ) -> tuple[OutgoingCall, Customer, asyncio.Event]:
        done = asyncio.Event()
        customer = Customer(
            self.customer_agent.clock,
            random.Random(1),
            talk=talk,
            patience=patience,
            on_done=lambda _customer: done.set(),
        )
        call = self.customer_agent.place_call("0611111111", "2001", lambda _c: customer.ended())
        call.on_answered = lambda _c: customer.connected()
        customer.dialled(call)
        return call, customer, done


async def _pair(ring: SecondsRange, talk: SecondsRange) -> Pair:
    clock = LoopClock(asyncio.get_running_loop())
    ticker = MediaTicker(clock)
    totals = RtpCounters()
    speech = SpeechLoop.build(OPERATOR_VOICES[0], seconds=2, seed=1)

    def agent(name: str, node: Destination, voice: SpeechLoop) -> UserAgent:
        return UserAgent(
            clock,
            name=name,
            host=LOOPBACK,
            port=0,
            node=node,
            ticker=ticker,
            voices=(voice,),
            rng=random.Random(name),
            rtp_totals=totals,
        )

    operator_agent = agent("sim-op1", Destination("UDP", LOOPBACK, 9), speech)
    desk = OperatorDesk(
        "sim-op1", clock, random.Random(2), ring=ring, talk=talk, wrap_up=SecondsRange(0.2, 0.2)
    )
    operator = SimulatedOperator(
        operator_agent,
        OperatorAccount("sim-op1", "secret-1"),
        desk,
        realm="callwarden",
        expires=300,
    )
    calls: list[IncomingCall] = []
    answer_incoming: Callable[[IncomingCall], None] = operator.on_incoming

    class Recording:
        def on_incoming(self, call: IncomingCall) -> None:
            calls.append(call)
            answer_incoming(call)

    operator_agent.handler = Recording()
    await operator_agent.start()
    desk.sign_in()
    customer_agent = agent(
        "demo-carrier",
        Destination("UDP", LOOPBACK, operator_agent.port),
        SpeechLoop.build(CUSTOMER_VOICES[0], seconds=2, seed=1),
    )
    await customer_agent.start()
    return Pair(customer_agent, operator, calls, totals)


PairFactory = Callable[..., Awaitable[Pair]]


@pytest.fixture
async def pair_factory() -> AsyncIterator[PairFactory]:
    pairs: list[Pair] = []

    async def make(ring: SecondsRange, talk: SecondsRange) -> Pair:
        pair = await _pair(ring, talk)
        pairs.append(pair)
        return pair

    yield make
    for pair in pairs:
        await pair.customer_agent.close()
        await pair.operator.close()


async def _wait(event: asyncio.Event, seconds: float = 5.0) -> None:
    async with asyncio.timeout(seconds):
        await event.wait()


def _assert_gone(*calls: SipCall) -> None:
    for call in calls:
        assert call.state is CallState.ENDED
        assert call not in call.agent.calls
        assert not call.media.sending


async def test_the_customer_talks_hears_the_operator_and_hangs_up(
    pair_factory: PairFactory,
) -> None:
    pair = await pair_factory(ring=SecondsRange(0.1, 0.2), talk=SecondsRange(30, 30))
    call, customer, done = pair.dial(talk=SecondsRange(1.0, 1.0))
    await _wait(done)
    (incoming,) = pair.operator_calls
    assert customer.end is CustomerEnd.HUNG_UP and call.end is not None
    assert call.end.reason is EndReason.HUNG_UP
    assert 0.1 <= (customer.waited or 0) < 0.5
    assert customer.talked == pytest.approx(1.0, abs=0.05)
    await asyncio.sleep(0.05)  # the BYE reaches the operator
    assert incoming.end is not None and incoming.end.reason is EndReason.REMOTE_HUNG_UP
    assert incoming.caller == "0611111111"
    for side in (call, incoming):
        assert 45 <= side.media.counters.packets_sent <= 56, side.call_id
        assert 40 <= side.media.counters.packets_received <= 56, side.call_id
    assert pair.totals.packets_sent == (
        call.media.counters.packets_sent + incoming.media.counters.packets_sent
    )
    desk = pair.operator.desk
    assert desk.state is DeskState.WRAP_UP and desk.answered == 1
    await asyncio.sleep(0.3)
    assert desk.state is DeskState.AVAILABLE
    _assert_gone(call, incoming)


async def test_the_operator_hangs_up_first(pair_factory: PairFactory) -> None:
    pair = await pair_factory(ring=SecondsRange(0.1, 0.1), talk=SecondsRange(0.5, 0.5))
    call, customer, done = pair.dial(talk=SecondsRange(30, 30))
    await _wait(done)
    assert customer.end is CustomerEnd.OPERATOR_HUNG_UP
    assert call.end is not None and call.end.reason is EndReason.REMOTE_HUNG_UP
    assert customer.talked == pytest.approx(0.5, abs=0.05)
    assert pair.operator.desk.hung_up_first == 1
    _assert_gone(call, *pair.operator_calls)


async def test_a_busy_operator_answers_486(pair_factory: PairFactory) -> None:
    pair = await pair_factory(ring=SecondsRange(0.1, 0.1), talk=SecondsRange(30, 30))
    first, _, _ = pair.dial(talk=SecondsRange(30, 30))
    async with asyncio.timeout(5):
        while first.state is not CallState.TALKING:  # noqa: ASYNC110 - polls a state
            await asyncio.sleep(0.01)
    second, customer, done = pair.dial(talk=SecondsRange(30, 30))
    await _wait(done)
    assert customer.end is CustomerEnd.NOT_CONNECTED
    assert second.end is not None and (second.end.reason, second.end.status) == (
        EndReason.REJECTED,
        486,
    )
    assert first.state is CallState.TALKING
    _assert_gone(second)


async def test_a_customer_who_gives_up_cancels_the_ringing_call(
    pair_factory: PairFactory,
) -> None:
    pair = await pair_factory(ring=SecondsRange(3, 3), talk=SecondsRange(30, 30))
    call, customer, done = pair.dial(talk=SecondsRange(30, 30), patience=0.3)
    await _wait(done)
    assert customer.end is CustomerEnd.GAVE_UP
    assert call.end is not None and (call.end.reason, call.end.status) == (
        EndReason.CANCELLED,
        487,
    )
    (incoming,) = pair.operator_calls
    assert incoming.end is not None and incoming.end.reason is EndReason.CANCELLED
    desk = pair.operator.desk
    assert desk.state is DeskState.AVAILABLE and desk.answered == 0
    _assert_gone(call, incoming)
