"""`AcdEngine`: queues and agents brought together; offers each call to the best agent.

The engine knows no SIP. It tells its owner (`AcdCallHandler`) to offer a call to an agent,
to withdraw an offer, or to overflow a call, and is told back that an offer was answered or
failed, or that a call ended. It decides again whenever a call arrives or an agent becomes
available, publishes every change on the bus (`callwarden.acd.events`), and keeps time with
an injected clock (ring timeouts, wrap-up, maximum wait, claim refresh).

**One task.** Every change runs as a job on the engine's own task, one at a time, in arrival
order (commands from the owner, timers, events mirrored from other nodes), so no two
decisions interleave. The public coroutines enqueue a job and return its result (or raise its
typed error); `settled()` waits until no job is left, which is what tests use after moving a
fake clock.

**Several nodes.** Before ringing an agent the engine claims the agent (`AgentClaims`); the
claim is held until the agent is free again (AVAILABLE, BREAK or OFFLINE) and refreshed every
third of its lifetime. Each node mirrors the other nodes' `AgentStateChanged` events, so an
operator signed in on one node is offered calls of every node. Commands for an agent another
node is ringing or connected to raise `AgentEngagedElsewhere` (naming that node): they belong
there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from functools import partial
from typing import Any, TypeVar

from callwarden.acd.agent import (
    Agent,
    AgentEvent,
    AgentState,
    Answer,
    BreakReasons,
    ChangeQueues,
    EndCall,
    ExtendWrapUp,
    MakeAvailable,
    NoAnswer,
    Offer,
    SignIn,
    SignOut,
    WithdrawOffer,
    transition,
)
from callwarden.acd.clock import Clock, WallClock
from callwarden.acd.errors import (
    AgentEngagedElsewhere,
    DuplicateCall,
    EngineNotRunning,
    NotAMember,
    OfferNotPending,
    UnknownAgent,
    UnknownCall,
    UnknownQueue,
)
from callwarden.acd.events import (
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallHandled,
    CallOffered,
    CallOverflowed,
    CallQueued,
)
from callwarden.acd.queue import OverflowKind, WaitingCall, estimate_wait, overflow_deadline
from callwarden.acd.routing import MemberStatus, first_tier, rank_members, ring_together
from callwarden.acd.runtime import CallPhase, CallRecord, QueueRecord, WrapUpRecord
from callwarden.acd.settings import AcdCallHandler, AcdSettings
from callwarden.bus.claims import AgentClaims, Claim
from callwarden.bus.event import Event
from callwarden.bus.protocol import EventBus
from callwarden.bus.subscription import Subscription
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import CallId, QueueId, UserId

__all__ = ["AcdEngine"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
_Job = Callable[[], Awaitable[Any]]

_FREE = frozenset({AgentState.AVAILABLE, AgentState.BREAK, AgentState.OFFLINE})
_ENGAGED = frozenset({AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP})


class AcdEngine:
    """The automatic call distributor of one node (see the module's rules)."""

    def __init__(
        self,
        *,
        directory: DirectorySnapshot,
        bus: EventBus,
        claims: AgentClaims,
        calls: AcdCallHandler,
        clock: Clock,
        wall_clock: WallClock,
        node_id: str,
        settings: AcdSettings | None = None,
    ) -> None:
        self.node_id = node_id
        self.settings = settings if settings is not None else AcdSettings()
        self._bus = bus
        self._claims = claims
        self._handler = calls
        self._clock = clock
        self._wall_clock = wall_clock
        self._break_reasons = BreakReasons(self.settings.break_reasons)
        self._queues: dict[QueueId, QueueRecord] = {
            queue.id: QueueRecord(queue, self.settings.initial_handle_seconds)
            for queue in directory.queues
        }
        self._check_overflow_targets()
        self._member_of: dict[UserId, frozenset[QueueId]] = {}
        for record in self._queues.values():
            for member in record.members:
                joined = self._member_of.get(member.user_id, frozenset())
                self._member_of[member.user_id] = joined | {record.queue.id}
        now = clock.now()
        self._agents: dict[UserId, Agent] = {}
        for user_id in self._member_of:
            user = directory.user(user_id)
            self._agents[user_id] = Agent(
                user_id, user.team_id if user is not None else None, since=now, idle_since=now
            )
        self._calls: dict[CallId, CallRecord] = {}
        self._wrap_ups: dict[UserId, WrapUpRecord] = {}
        self._held: dict[UserId, Claim] = {}
        self._claimed_elsewhere: dict[UserId, float] = {}
        self._remote_engaged: dict[UserId, str] = {}
        self._sequence = 0
        self._jobs: asyncio.Queue[tuple[_Job, asyncio.Future[Any] | None]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription: Subscription | None = None
        self._refresh_timer: Any = None
        self._running = False

    def _check_overflow_targets(self) -> None:
        for queue_id, action in self.settings.overflow.items():
            if queue_id not in self._queues:
                raise ValidationFailed(f"overflow configured for unknown queue {queue_id}")
            if action.kind is OverflowKind.QUEUE and action.queue_id not in self._queues:
                raise ValidationFailed(
                    f"queue {queue_id} overflows to unknown queue {action.queue_id}"
                )

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the engine's task and follow the other nodes' agent states on the bus."""
        if self._running:
            return
        self._running = True
        self._subscription = self._bus.subscribe(self._is_remote_agent_event)
        self._tasks = [
            asyncio.create_task(self._run(), name=f"acd-{self.node_id}"),
            asyncio.create_task(
                self._follow(self._subscription), name=f"acd-follow-{self.node_id}"
            ),
        ]
        self._schedule_refresh()

    async def close(self) -> None:
        """Stop: cancel timers and tasks, release every claim this node holds."""
        if not self._running:
            return
        self._running = False
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
        for call in self._calls.values():
            call.cancel_timers()
        for wrap_up in self._wrap_ups.values():
            if wrap_up.timer is not None:
                wrap_up.timer.cancel()
        if self._subscription is not None:
            self._subscription.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for claim in list(self._held.values()):
            await self._claims.release(claim)
        self._held.clear()

    async def __aenter__(self) -> AcdEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def settled(self) -> None:
        """Wait until every queued job (including those jobs queue in turn) has run and every
        event already delivered by the bus has been taken in."""
        while True:
            await self._jobs.join()
            subscription = self._subscription
            if subscription is None or not subscription.pending:
                return
            await asyncio.sleep(0)

    # -- the owner's reports (telephony) -------------------------------------------------------

    async def call_arrived(
        self,
        call_id: CallId,
        queue_id: QueueId,
        *,
        caller: str = "",
        priority: int = 0,
        required_skill: int = 0,
    ) -> int:
        """A call entered `queue_id`; its position at arrival (it may be offered at once)."""
        return await self._call(
            partial(self._arrive, call_id, queue_id, caller, priority, required_skill)
        )

    async def offer_answered(self, call_id: CallId, agent_id: UserId) -> None:
        """`agent_id` answered `call_id`; raises `OfferNotPending` if that offer is over."""
        await self._call(partial(self._answered, call_id, agent_id))

    async def offer_failed(self, call_id: CallId, agent_id: UserId) -> None:
        """The offer rang out, was refused or could not reach the phone (a no-answer)."""
        await self._call(partial(self._offer_failed, call_id, agent_id))

    async def call_ended(self, call_id: CallId) -> None:
        """The call is over: abandoned if it was still waiting, else the agent wraps up."""
        await self._call(partial(self._ended, call_id))

    # -- agent commands (phone feature codes, web) ----------------------------------------------

    async def sign_in(self, agent_id: UserId, queue_ids: Iterable[QueueId] | None = None) -> Agent:
        """Sign in to `queue_ids` (default: every queue the agent is a member of)."""
        return await self._call(partial(self._sign_in, agent_id, queue_ids))

    async def change_queues(self, agent_id: UserId, queue_ids: Iterable[QueueId]) -> Agent:
        return await self._call(partial(self._change_queues, agent_id, queue_ids))

    async def sign_out(self, agent_id: UserId) -> Agent:
        return await self._call(partial(self._command, agent_id, SignOut()))

    async def take_break(self, agent_id: UserId, reason: str) -> Agent:
        """Go on break for one of the configured reasons (`UnknownBreakReason` otherwise)."""
        event = self._break_reasons.take_break(reason)
        return await self._call(partial(self._command, agent_id, event))

    async def make_available(self, agent_id: UserId) -> Agent:
        """Back from a break, or end wrap-up early."""
        return await self._call(partial(self._command, agent_id, MakeAvailable()))

    async def extend_wrap_up(self, agent_id: UserId, seconds: float) -> Agent:
        """Add `seconds` to the current wrap-up (`WrapUpLimitReached` past the limit)."""
        return await self._call(partial(self._extend_wrap_up, agent_id, seconds))

    async def reset_daily_counts(self) -> None:
        """Start a new day for the fewest-calls strategy (calls taken back to zero)."""
        await self._call(self._reset_daily_counts)

    # -- queries (read-only, from any code on the loop) -----------------------------------------

    def agent(self, agent_id: UserId) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(f"agent {agent_id} is in no queue")
        return agent

    def agents(self) -> tuple[Agent, ...]:
        return tuple(self._agents.values())

    def waiting_calls(self, queue_id: QueueId) -> tuple[WaitingCall, ...]:
        return self._queue(queue_id).calls.calls

    def call_phase(self, call_id: CallId) -> CallPhase | None:
        call = self._calls.get(call_id)
        return None if call is None else call.phase

    def position(self, call_id: CallId) -> int:
        call = self._waiting_call(call_id)
        return self._queues[call.queue_id].calls.position(call_id)

    def expected_wait(self, call_id: CallId) -> float:
        """Seconds until the call is expected to be offered (see `queue.estimate_wait`)."""
        call = self._waiting_call(call_id)
        record = self._queues[call.queue_id]
        available = serving = 0
        for member in record.members:
            agent = self._agents[member.user_id]
            if call.queue_id not in agent.queue_ids or agent.state is AgentState.BREAK:
                continue
            serving += 1
            available += agent.state is AgentState.AVAILABLE
        return estimate_wait(
            record.calls.position(call_id), available, serving, record.handle_time.seconds
        )

    def round_robin_position(self, queue_id: QueueId) -> int | None:
        """The member position offered last by a round-robin queue (None before the first)."""
        return self._queue(queue_id).round_robin_after

    def held_claims(self) -> frozenset[UserId]:
        """The agents this node holds claims on."""
        return frozenset(self._held)

    # -- the job loop --------------------------------------------------------------------------

    async def _call(self, job: Callable[[], Awaitable[_T]]) -> _T:
        if not self._running:
            raise EngineNotRunning("the ACD engine is not running")
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._jobs.put_nowait((job, future))
        return await future

    def _post(self, job: _Job) -> None:
        if self._running:
            self._jobs.put_nowait((job, None))

    def _later(self, delay: float, job: _Job) -> Any:
        return self._clock.call_later(delay, partial(self._post, job))

    async def _run(self) -> None:
        while True:
            job, future = await self._jobs.get()
            try:
                result = await job()
            except Exception as error:
                if future is None or future.done():
                    logger.exception("ACD job %s failed", getattr(job, "func", job))
                else:
                    future.set_exception(error)
            else:
                if future is not None and not future.done():
                    future.set_result(result)
            finally:
                self._jobs.task_done()

    # -- helpers ---------------------------------------------------------------------------------

    def _queue(self, queue_id: QueueId) -> QueueRecord:
        record = self._queues.get(queue_id)
        if record is None:
            raise UnknownQueue(f"queue {queue_id} not found")
        return record

    def _waiting_call(self, call_id: CallId) -> WaitingCall:
        call = self._calls.get(call_id)
        if call is None or call.phase is CallPhase.CONNECTED:
            raise UnknownCall(f"call {call_id} is not waiting")
        return call.waiting

    def _publish(self, event: Event) -> None:
        self._bus.publish(event)

    def _call_event_fields(self, call: CallRecord) -> dict[str, Any]:
        return {
            "at": self._wall_clock(),
            "team_id": self._queues[call.queue_id].queue.team_id,
            "call_id": call.call_id,
            "queue_id": call.queue_id,
        }

    async def _apply(self, agent_id: UserId, event: AgentEvent) -> Agent:
        """Run the state machine, then what follows from the move: finish a wrap-up, release
        the claim of a free agent, publish the change."""
        before = self.agent(agent_id)
        now = self._clock.now()
        after = transition(before, event, now)
        self._agents[agent_id] = after
        if after.state is not AgentState.WRAP_UP:
            self._finish_wrap_up(agent_id, now)
        if after.state in _FREE:
            await self._release(agent_id)
        if (before.state, before.break_reason, before.queue_ids) != (
            after.state,
            after.break_reason,
            after.queue_ids,
        ):
            self._publish(self._state_event(before, after, now))
        return after

    def _state_event(self, before: Agent, after: Agent, now: float) -> AgentStateChanged:
        return AgentStateChanged(
            at=self._wall_clock(),
            team_id=after.team_id,
            user_id=after.user_id,
            state=after.state,
            previous=before.state,
            reason=after.break_reason,
            queue_ids=tuple(sorted(after.queue_ids)),
            call_id=after.call_id,
            seconds_in_previous=before.time_in_state(now) if before.state != after.state else 0.0,
            idle_seconds=max(0.0, now - after.idle_since),
            calls_taken=after.calls_taken,
            missed_offers=after.missed_offers,
            node_id=self.node_id,
        )

    async def _release(self, agent_id: UserId) -> None:
        claim = self._held.pop(agent_id, None)
        if claim is not None and not await self._claims.release(claim):
            logger.warning("claim on agent %s had expired before its release", agent_id)

    def _finish_wrap_up(self, agent_id: UserId, now: float) -> None:
        wrap_up = self._wrap_ups.pop(agent_id, None)
        if wrap_up is None:
            return
        if wrap_up.timer is not None:
            wrap_up.timer.cancel()
        wrap_seconds = max(0.0, now - wrap_up.started)
        record = self._queues[wrap_up.queue_id]
        record.handle_time.add(wrap_up.talk_seconds + wrap_seconds)
        self._publish(
            CallHandled(
                at=self._wall_clock(),
                team_id=record.queue.team_id,
                user_id=agent_id,
                call_id=wrap_up.call_id,
                queue_id=wrap_up.queue_id,
                talk_seconds=wrap_up.talk_seconds,
                wrap_up_seconds=wrap_seconds,
            )
        )

    def _check_local(self, agent_id: UserId) -> Agent:
        agent = self.agent(agent_id)
        node = self._remote_engaged.get(agent_id)
        if node is not None:
            raise AgentEngagedElsewhere(
                f"agent {agent_id} is {agent.state.value} on node {node}",
                details={"node": node, "state": agent.state.value},
            )
        return agent

    # -- agent commands --------------------------------------------------------------------------

    async def _sign_in(self, agent_id: UserId, queue_ids: Iterable[QueueId] | None) -> Agent:
        self._check_local(agent_id)
        chosen = self._membership(agent_id, queue_ids)
        after = await self._apply(agent_id, SignIn(chosen))
        await self._dispatch_for_agent(agent_id)
        return after

    async def _change_queues(self, agent_id: UserId, queue_ids: Iterable[QueueId]) -> Agent:
        self._check_local(agent_id)
        after = await self._apply(agent_id, ChangeQueues(self._membership(agent_id, queue_ids)))
        await self._dispatch_for_agent(agent_id)
        return after

    def _membership(
        self, agent_id: UserId, queue_ids: Iterable[QueueId] | None
    ) -> frozenset[QueueId]:
        member_of = self._member_of.get(agent_id)
        if member_of is None:
            raise UnknownAgent(f"agent {agent_id} is in no queue")
        if queue_ids is None:
            return member_of
        chosen = frozenset(queue_ids)
        for queue_id in sorted(chosen):
            self._queue(queue_id)
            if queue_id not in member_of:
                raise NotAMember(
                    f"agent {agent_id} is not a member of queue {queue_id}",
                    details={"queue": queue_id},
                )
        return chosen

    async def _command(self, agent_id: UserId, event: AgentEvent) -> Agent:
        self._check_local(agent_id)
        after = await self._apply(agent_id, event)
        await self._dispatch_for_agent(agent_id)
        return after

    async def _extend_wrap_up(self, agent_id: UserId, seconds: float) -> Agent:
        self._check_local(agent_id)
        limit = self.settings.wrap_up_extension_limit_seconds
        after = await self._apply(agent_id, ExtendWrapUp(seconds, limit))
        wrap_up = self._wrap_ups.get(agent_id)
        if wrap_up is not None and after.wrap_up_until is not None:
            if wrap_up.timer is not None:
                wrap_up.timer.cancel()
            wrap_up.timer = self._later(
                after.wrap_up_until - self._clock.now(),
                partial(self._wrap_up_due, agent_id, wrap_up.call_id),
            )
        return after

    async def _wrap_up_due(self, agent_id: UserId, call_id: CallId) -> None:
        agent = self._agents[agent_id]
        wrap_up = self._wrap_ups.get(agent_id)
        if agent.state is not AgentState.WRAP_UP or wrap_up is None or wrap_up.call_id != call_id:
            return
        if agent.wrap_up_until is not None and self._clock.now() < agent.wrap_up_until:
            return
        await self._apply(agent_id, MakeAvailable())
        await self._dispatch_for_agent(agent_id)

    async def _reset_daily_counts(self) -> None:
        for agent_id, agent in self._agents.items():
            self._agents[agent_id] = replace(agent, calls_taken=0)

    # -- calls -----------------------------------------------------------------------------------

    async def _arrive(
        self, call_id: CallId, queue_id: QueueId, caller: str, priority: int, required_skill: int
    ) -> int:
        record = self._queue(queue_id)
        if call_id in self._calls:
            raise DuplicateCall(f"call {call_id} is already in a queue")
        self._sequence += 1
        waiting = WaitingCall(
            call_id, queue_id, self._clock.now(), self._sequence, priority, required_skill, caller
        )
        position = record.calls.add(waiting)
        call = CallRecord(waiting)
        self._calls[call_id] = call
        deadline = overflow_deadline(record.queue, waiting)
        if deadline is not None:
            call.overflow_timer = self._later(
                deadline - waiting.arrived_at, partial(self._overflow_due, call_id, waiting)
            )
        self._publish(
            CallQueued(**self._call_event_fields(call), priority=priority, position=position)
        )
        await self._dispatch_queue(record)
        return position

    async def _answered(self, call_id: CallId, agent_id: UserId) -> None:
        call = self._calls.get(call_id)
        if call is None or agent_id not in call.ringing:
            raise OfferNotPending(f"call {call_id} is not ringing agent {agent_id}")
        call.ringing.pop(agent_id).cancel()
        await self._apply(agent_id, Answer())
        withdrawn = await self._withdraw_all(call)
        record = self._queues[call.queue_id]
        record.calls.remove(call_id)
        if call.overflow_timer is not None:
            call.overflow_timer.cancel()
            call.overflow_timer = None
        now = self._clock.now()
        call.phase = CallPhase.CONNECTED
        call.agent_id = agent_id
        call.answered_at = now
        self._publish(
            CallAnswered(
                **self._call_event_fields(call),
                user_id=agent_id,
                waited_seconds=call.waiting.waited(now),
            )
        )
        await self._dispatch_for_agents(withdrawn)

    async def _offer_failed(self, call_id: CallId, agent_id: UserId) -> None:
        call = self._calls.get(call_id)
        if call is None or agent_id not in call.ringing:
            raise OfferNotPending(f"call {call_id} is not ringing agent {agent_id}")
        await self._no_answer(call, agent_id)

    async def _ring_timeout(self, call_id: CallId, agent_id: UserId) -> None:
        call = self._calls.get(call_id)
        if call is None or agent_id not in call.ringing:
            return
        self._handler.withdraw_offer(call_id, agent_id)
        await self._no_answer(call, agent_id)

    async def _no_answer(self, call: CallRecord, agent_id: UserId) -> None:
        call.ringing.pop(agent_id).cancel()
        call.tried[agent_id] = call.tried.get(agent_id, 0) + 1
        record = self._queues[call.queue_id]
        await self._apply(agent_id, NoAnswer(record.queue.max_no_answer))
        if not call.ringing:
            call.phase = CallPhase.WAITING
            if call.overflow_pending:
                await self._overflow(call)
        await self._dispatch_queue(record)
        await self._dispatch_for_agent(agent_id)

    async def _withdraw_all(self, call: CallRecord) -> list[UserId]:
        """Stop ringing every agent the call still rings; they are available again."""
        withdrawn = list(call.ringing)
        for agent_id in withdrawn:
            call.ringing.pop(agent_id).cancel()
            self._handler.withdraw_offer(call.call_id, agent_id)
            await self._apply(agent_id, WithdrawOffer())
        return withdrawn

    async def _ended(self, call_id: CallId) -> None:
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCall(f"call {call_id} is not in the ACD")
        if call.phase is not CallPhase.CONNECTED:
            await self._abandon(call)
            return
        del self._calls[call_id]
        agent_id = call.agent_id
        assert agent_id is not None and call.answered_at is not None
        now = self._clock.now()
        talk = now - call.answered_at
        self._publish(
            CallEnded(**self._call_event_fields(call), user_id=agent_id, talk_seconds=talk)
        )
        record = self._queues[call.queue_id]
        self._wrap_ups[agent_id] = WrapUpRecord(call_id, call.queue_id, talk, now)
        after = await self._apply(agent_id, EndCall(record.queue.wrap_up_seconds))
        if after.state is AgentState.WRAP_UP and after.wrap_up_until is not None:
            self._wrap_ups[agent_id].timer = self._later(
                after.wrap_up_until - now, partial(self._wrap_up_due, agent_id, call_id)
            )
        await self._dispatch_for_agent(agent_id)

    async def _abandon(self, call: CallRecord) -> None:
        del self._calls[call.call_id]
        call.cancel_timers()
        withdrawn = await self._withdraw_all(call)
        self._queues[call.queue_id].calls.remove(call.call_id)
        waited = call.waiting.waited(self._clock.now())
        self._publish(CallAbandoned(**self._call_event_fields(call), waited_seconds=waited))
        await self._dispatch_for_agents(withdrawn)

    async def _overflow_due(self, call_id: CallId, waiting: WaitingCall) -> None:
        call = self._calls.get(call_id)
        if call is None or call.waiting is not waiting:
            return
        call.overflow_timer = None
        if call.phase is CallPhase.RINGING:
            call.overflow_pending = True  # let the ringing offer finish first
        elif call.phase is CallPhase.WAITING:
            await self._overflow(call)

    async def _overflow(self, call: CallRecord) -> None:
        del self._calls[call.call_id]
        call.cancel_timers()
        self._queues[call.queue_id].calls.remove(call.call_id)
        action = self.settings.overflow_for(call.queue_id)
        self._publish(
            CallOverflowed(
                **self._call_event_fields(call),
                waited_seconds=call.waiting.waited(self._clock.now()),
                action=action.kind,
                target_queue_id=action.queue_id,
                target_user_id=action.user_id,
            )
        )
        if action.kind is OverflowKind.QUEUE and action.queue_id is not None:
            waiting = call.waiting
            await self._arrive(
                waiting.call_id,
                action.queue_id,
                waiting.caller,
                waiting.priority,
                waiting.required_skill,
            )
        self._handler.overflow_call(call.call_id, call.queue_id, action)

    # -- routing ---------------------------------------------------------------------------------

    def _available_members(self, record: QueueRecord) -> list[MemberStatus]:
        queue_id = record.queue.id
        now = self._clock.now()
        found: list[MemberStatus] = []
        for position, member in enumerate(record.members):
            agent = self._agents[member.user_id]
            if agent.state is not AgentState.AVAILABLE or queue_id not in agent.queue_ids:
                continue
            busy_until = self._claimed_elsewhere.get(member.user_id)
            if busy_until is not None:
                if busy_until > now:
                    continue
                del self._claimed_elsewhere[member.user_id]
            found.append(
                MemberStatus(
                    member.user_id,
                    position,
                    member.penalty,
                    member.skill_level,
                    agent.idle_since,
                    agent.calls_taken,
                )
            )
        return found

    async def _dispatch_for_agents(self, agent_ids: Iterable[UserId]) -> None:
        queue_ids: set[QueueId] = set()
        for agent_id in agent_ids:
            agent = self._agents[agent_id]
            if agent.state is AgentState.AVAILABLE:
                queue_ids |= agent.queue_ids
        await self._dispatch_queues(queue_ids)

    async def _dispatch_for_agent(self, agent_id: UserId) -> None:
        await self._dispatch_for_agents((agent_id,))

    async def _dispatch_queues(self, queue_ids: Iterable[QueueId]) -> None:
        """Serve the given queues, the one whose next call comes first (priority, then the
        longest wait) first."""
        records = [self._queues[q] for q in queue_ids if len(self._queues[q].calls)]
        records.sort(key=lambda record: _head_order(record.calls.calls[0]))
        for record in records:
            await self._dispatch_queue(record)

    async def _dispatch_queue(self, record: QueueRecord) -> None:
        """Offer the queue's waiting calls, in order, to its available members."""
        if not len(record.calls):
            return
        available = self._available_members(record)
        for waiting in record.calls.calls:
            if not available:
                return
            call = self._calls[waiting.call_id]
            if call.phase is not CallPhase.WAITING:
                continue
            ranked = rank_members(
                record.queue,
                available,
                waiting.needs,
                round_robin_after=record.round_robin_after,
                tried=call.tried,
            )
            if not ranked:
                continue
            attempted = await self._offer(record, call, ranked)
            available = [member for member in available if member.user_id not in attempted]

    async def _offer(
        self, record: QueueRecord, call: CallRecord, ranked: tuple[MemberStatus, ...]
    ) -> set[UserId]:
        """Claim and ring the first member that can be claimed (for ring-all, the first tier
        with anyone claimable); the members tried."""
        attempted: set[UserId] = set()
        together = ring_together(record.queue)
        remaining = ranked
        while remaining and call.phase is CallPhase.WAITING:
            group = first_tier(remaining) if together else remaining[:1]
            remaining = remaining[len(group) :]
            for member in group:
                attempted.add(member.user_id)
                if await self._ring(record, call, member):
                    record.round_robin_after = member.position
            if call.ringing:
                call.phase = CallPhase.RINGING
        return attempted

    async def _ring(self, record: QueueRecord, call: CallRecord, member: MemberStatus) -> bool:
        agent_id = member.user_id
        ttl = self.settings.claim_ttl_seconds
        claim = await self._claims.claim(agent_id, f"{self.node_id}:{call.call_id}", ttl)
        if claim is None:
            self._claimed_elsewhere[agent_id] = self._clock.now() + ttl
            return False
        self._held[agent_id] = claim
        await self._apply(agent_id, Offer(call.call_id, call.queue_id))
        call.ringing[agent_id] = self._later(
            record.queue.ring_timeout_seconds, partial(self._ring_timeout, call.call_id, agent_id)
        )
        self._publish(CallOffered(**self._call_event_fields(call), user_id=agent_id))
        self._handler.offer_call(call.call_id, agent_id, call.queue_id)
        return True

    # -- claims and other nodes -------------------------------------------------------------------

    def _schedule_refresh(self) -> None:
        self._refresh_timer = self._later(self.settings.claim_ttl_seconds / 3, self._refresh_claims)

    async def _refresh_claims(self) -> None:
        ttl = self.settings.claim_ttl_seconds
        for agent_id, claim in list(self._held.items()):
            if not await self._claims.refresh(claim, ttl):
                logger.warning("claim on agent %s was lost; claiming it again", agent_id)
                renewed = await self._claims.claim(agent_id, claim.holder, ttl)
                if renewed is None:
                    logger.error("agent %s was claimed by %s meanwhile", agent_id, claim.holder)
                    self._held.pop(agent_id, None)
                else:
                    self._held[agent_id] = renewed
        if self._running:
            self._schedule_refresh()

    def _is_remote_agent_event(self, event: Event) -> bool:
        return isinstance(event, AgentStateChanged) and event.node_id != self.node_id

    async def _follow(self, subscription: Subscription) -> None:
        async for event in subscription:
            if isinstance(event, AgentStateChanged):
                self._post(partial(self._mirror, event))

    async def _mirror(self, event: AgentStateChanged) -> None:
        """Take over another node's view of an agent (unless this node drives the agent)."""
        agent_id = event.user_id
        if agent_id is None or agent_id not in self._agents or agent_id in self._held:
            return
        now = self._clock.now()
        self._agents[agent_id] = replace(
            self._agents[agent_id],
            state=event.state,
            since=now,
            idle_since=now - event.idle_seconds,
            break_reason=event.reason,
            queue_ids=frozenset(event.queue_ids) & self._member_of.get(agent_id, frozenset()),
            call_id=event.call_id,
            queue_id=None,
            calls_taken=event.calls_taken,
            missed_offers=event.missed_offers,
            call_started=None,
            wrap_up_until=None,
            wrap_up_extended=0.0,
        )
        self._claimed_elsewhere.pop(agent_id, None)
        if event.state in _ENGAGED:
            self._remote_engaged[agent_id] = event.node_id
        else:
            self._remote_engaged.pop(agent_id, None)
        if event.state is AgentState.AVAILABLE:
            await self._dispatch_for_agent(agent_id)


def _head_order(call: WaitingCall) -> tuple[int, float, int]:
    return (-call.priority, call.arrived_at, call.sequence)
