"""The traffic simulator: simulated operators and customers calling through a callwarden node
over the network, with real RTP, so a demo center is alive the moment it starts.

Operators are SIP phones registered as demo users (digest authentication); customers are
calls from the trunk `demo-carrier`, sent from the address the node has configured for it.
Each customer call ends with one INFO log line saying how it went.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
from dataclasses import dataclass, field

from callwarden.simulator.audio import CUSTOMER_VOICES, OPERATOR_VOICES, SpeechLoop, Voice
from callwarden.simulator.calls import IncomingCall, OutgoingCall
from callwarden.simulator.customers import CallArrivals, Customer, CustomerEnd, caller_number
from callwarden.simulator.operator import OperatorDesk, SimulatedOperator
from callwarden.simulator.rtp_session import MediaTicker, RtpCounters
from callwarden.simulator.settings import SimulatorSettings
from callwarden.simulator.user_agent import UserAgent
from callwarden.sip.addressing import Destination
from callwarden.sip.clock import Clock, LoopClock

__all__ = ["Simulator", "SimulatorStats"]

logger = logging.getLogger(__name__)

TRUNK_NAME = "demo-carrier"
SPEECH_LOOP_SECONDS = 30.0


@dataclass(slots=True)
class SimulatorStats:
    """What the simulator has done so far."""

    calls_placed: int = 0
    calls_connected: int = 0
    calls_answered: int = 0
    gave_up: int = 0
    calls_ended: int = 0
    not_connected: collections.Counter[int] = field(default_factory=collections.Counter)
    rtp: RtpCounters = field(default_factory=RtpCounters)


def _speech(voices: tuple[Voice, ...], seed: int) -> tuple[SpeechLoop, ...]:
    return tuple(SpeechLoop.build(v, seconds=SPEECH_LOOP_SECONDS, seed=seed) for v in voices)


class Simulator:
    """``await start()``, then ``await close()``."""

    def __init__(
        self,
        settings: SimulatorSettings,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.stats = SimulatorStats()
        self._clock = clock
        self._rng = rng or random.Random()
        self._dialling = random.Random(self._rng.getrandbits(64))  # numbers and caller IDs
        self._ticker: MediaTicker | None = None
        self._trunk: UserAgent | None = None
        self.operators: list[SimulatedOperator] = []
        self._arrivals: CallArrivals | None = None
        self._customers: dict[Customer, OutgoingCall] = {}
        self._by_caller: dict[str, Customer] = {}
        self._closing = False

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            self._clock = LoopClock(asyncio.get_running_loop())
        return self._clock

    @property
    def active_calls(self) -> int:
        return len(self._customers)

    async def start(self) -> None:
        """Open the phones, register the operators; customers start calling once the first
        operator is signed in (right away when the simulator plays no operator)."""
        settings = self.settings
        clock = self.clock
        seed = self._rng.getrandbits(32)
        customer_voices, operator_voices = await asyncio.to_thread(
            lambda: (_speech(CUSTOMER_VOICES, seed), _speech(OPERATOR_VOICES, seed))
        )
        self._ticker = MediaTicker(clock)
        node = Destination("UDP", settings.node_host, settings.node_port)
        self._trunk = self._agent(TRUNK_NAME, settings.trunk_port, node, customer_voices)
        await self._trunk.start()
        self._arrivals = CallArrivals(
            clock,
            random.Random(self._rng.getrandbits(64)),
            interval=settings.call_interval,
            first_after=settings.first_call_after,
            max_concurrent=settings.max_concurrent_calls,
            place_call=self._place_call,
            active=lambda: len(self._customers),
        )
        for account in settings.operators:
            desk = OperatorDesk(
                account.username,
                clock,
                random.Random(self._rng.getrandbits(64)),
                ring=settings.ring_seconds,
                talk=settings.talk_seconds,
                wrap_up=settings.wrap_up_seconds,
            )
            operator = SimulatedOperator(
                self._agent(account.username, 0, node, operator_voices),
                account,
                desk,
                realm=settings.realm,
                expires=settings.register_expires,
            )
            operator.on_signed_in = self._operator_signed_in
            operator.on_answered = self._operator_answered
            self.operators.append(operator)
            await operator.start()
        if not self.operators:
            self._arrivals.start()
        logger.info(
            "simulator: operators %s register with the node at %s:%d; customers call %s from "
            "trunk %s at %s:%d, about %.0f calls a minute",
            ", ".join(account.username for account in settings.operators) or "(none)",
            settings.node_host,
            settings.node_port,
            ", ".join(sorted(set(settings.numbers))),
            TRUNK_NAME,
            settings.host,
            self._trunk.port,
            settings.calls_per_minute,
        )

    def _agent(
        self, name: str, port: int, node: Destination, voices: tuple[SpeechLoop, ...]
    ) -> UserAgent:
        assert self._ticker is not None
        return UserAgent(
            self.clock,
            name=name,
            host=self.settings.host,
            port=port,
            node=node,
            ticker=self._ticker,
            voices=voices,
            rng=random.Random(self._rng.getrandbits(64)),
            rtp_totals=self.stats.rtp,
        )

    def _operator_signed_in(self, operator: SimulatedOperator) -> None:
        if self._arrivals is not None and not self._arrivals.running:
            self._arrivals.start()

    def _place_call(self) -> None:
        assert self._trunk is not None
        settings = self.settings
        customer = Customer(
            self.clock,
            random.Random(self._rng.getrandbits(64)),
            talk=settings.talk_seconds,
            patience=settings.customer_patience,
            on_done=self._customer_done,
        )
        number = self._dialling.choice(settings.numbers)
        caller = caller_number(self._dialling)
        while caller in self._by_caller:
            caller = caller_number(self._dialling)
        call = self._trunk.place_call(caller, number, lambda _call: customer.ended())
        call.on_answered = lambda _call: self._connected(customer)
        self._customers[customer] = call
        self._by_caller[caller] = customer
        self.stats.calls_placed += 1
        customer.dialled(call, via_queue=number in settings.queue_numbers)

    def _connected(self, customer: Customer) -> None:
        self.stats.calls_connected += 1
        customer.connected()

    def _operator_answered(self, call: IncomingCall) -> None:
        """A simulated operator took a call: if it is one of our customers' (by caller number),
        that customer stops waiting in the queue and starts talking. (A real softphone's answer
        is not seen: that customer waits out their patience, then hangs up.)"""
        customer = self._by_caller.get(call.caller)
        if customer is not None:
            customer.picked_up()

    def _customer_done(self, customer: Customer) -> None:
        call = self._customers.pop(customer, None)
        if call is None:
            return
        self._by_caller.pop(call.caller, None)
        stats = self.stats
        stats.calls_ended += 1
        if customer.answered_at is not None:
            stats.calls_answered += 1
        elif customer.end is CustomerEnd.GAVE_UP:
            stats.gave_up += 1
        elif customer.end is CustomerEnd.NOT_CONNECTED and call.end is not None:
            stats.not_connected[call.end.status or 0] += 1
        logger.info("%s", describe(call, customer, stopping=self._closing))

    async def close(self) -> None:
        """Stop calling, hang up every call, close the phones."""
        self._closing = True
        if self._arrivals is not None:
            self._arrivals.close()
        for customer in list(self._customers):
            customer.close()
        for operator in self.operators:
            await operator.close()
        if self._trunk is not None:
            await self._trunk.close()
        if self._ticker is not None:
            self._ticker.close()


def describe(call: OutgoingCall, customer: Customer, *, stopping: bool = False) -> str:
    """The one log line of a finished customer call (``stopping``: cut by the shutdown)."""
    head = f"simulated call {call.caller} -> {call.number}"
    tail = f"(call {call.call_id})"
    waited = customer.waited or 0.0
    where = "in the queue" if customer.connected_at is not None else "ringing"
    end = customer.end
    if end is CustomerEnd.NOT_CONNECTED:
        sip_end = call.end
        if sip_end is not None and sip_end.status is not None:
            status = f"{sip_end.status} {sip_end.detail}".strip()
        else:
            detail = sip_end.detail if sip_end is not None else ""
            status = f"failed: {detail}" if detail else "failed"
        return f"{head}: not connected ({status}) after {waited:.1f} s {tail}"
    if end is CustomerEnd.GAVE_UP:
        return f"{head}: customer gave up after {waited:.1f} s {where} {tail}"
    if end is CustomerEnd.ENDED_WAITING or (stopping and customer.answered_at is None):
        by = "the simulator stopped" if stopping else "the node ended the call"
        return f"{head}: {by} after {waited:.1f} s {where} {tail}"
    assert end is not None
    rtp = call.media.counters
    return (
        f"{head}: answered after {waited:.1f} s, talked {customer.talked or 0.0:.1f} s, "
        f"{end.value}; RTP sent {rtp.packets_sent}, received {rtp.packets_received} {tail}"
    )
