"""The queues and calls of one node, and every routing decision (private to `AcdEngine`).

`CallCenter` holds each queue's waiting calls and each call's offers, asks the routing
strategy whom to offer a call to, claims and rings that agent (`Roster`), and moves calls on
when they are answered, ring out, are abandoned, end or overflow. Each of its coroutines
assumes it runs alone: `AcdEngine` runs them one at a time. Timers reach it through `later`,
which schedules a coroutine as an engine job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import Any

from callwarden.acd.agent import (
    Agent,
    AgentEvent,
    AgentState,
    Answer,
    ChangeQueues,
    EndCall,
    ExtendWrapUp,
    MakeAvailable,
    NoAnswer,
    SignIn,
    WithdrawOffer,
)
from callwarden.acd.clock import Clock, TimerHandle, WallClock
from callwarden.acd.errors import DuplicateCall, OfferNotPending, UnknownCall, UnknownQueue
from callwarden.acd.events import (
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOverflowed,
    CallQueued,
    call_offered,
)
from callwarden.acd.queue import (
    OverflowAction,
    OverflowKind,
    WaitingCall,
    estimate_wait,
    overflow_deadline,
)
from callwarden.acd.roster import Roster
from callwarden.acd.round_robin import RoundRobinMarks
from callwarden.acd.routing import MemberStatus, first_tier, rank_members, ring_together
from callwarden.acd.runtime import CallPhase, CallRecord, QueueRecord
from callwarden.acd.settings import AcdCallHandler, AcdSettings
from callwarden.bus.claims import AgentClaims
from callwarden.bus.protocol import EventBus
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.domain.models import QueueStrategy

__all__ = ["CallCenter", "Job", "Later"]

Job = Callable[[], Awaitable[Any]]
Later = Callable[[float, Job], TimerHandle]
"""Schedules `job` to run as an engine job `delay` seconds from now."""


class CallCenter:
    """Queues, calls and agents of one node, and the rules that move them."""

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
        settings: AcdSettings,
        later: Later,
        round_robin: RoundRobinMarks,
    ) -> None:
        self.settings = settings
        self._round_robin = round_robin
        self._bus = bus
        self._handler = calls
        self._clock = clock
        self._wall_clock = wall_clock
        self._later = later
        self._queues: dict[QueueId, QueueRecord] = {
            queue.id: QueueRecord(queue, settings.initial_handle_seconds)
            for queue in directory.queues
        }
        self._check_overflow_targets()
        self.roster = Roster(
            directory=directory,
            queues=self._queues,
            bus=bus,
            claims=claims,
            clock=clock,
            wall_clock=wall_clock,
            node_id=node_id,
            claim_ttl_seconds=settings.claim_ttl_seconds,
        )
        self._calls: dict[CallId, CallRecord] = {}
        self._sequence = 0
        self._retired: set[QueueId] = set()
        """Queues removed from the directory that still have calls or wrap-ups."""

    def _check_overflow_targets(self) -> None:
        for queue_id, action in self.settings.overflow.items():
            if queue_id not in self._queues:
                raise ValidationFailed(f"overflow configured for unknown queue {queue_id}")
            if action.kind is OverflowKind.QUEUE and action.queue_id not in self._queues:
                raise ValidationFailed(
                    f"queue {queue_id} overflows to unknown queue {action.queue_id}"
                )

    async def reload(self, directory: DirectorySnapshot) -> None:
        """Follow the directory: new queues, changed queues (members, strategy, timers) and
        removed queues, then the agents (`Roster.reload`). Calls in progress are untouched;
        a removed queue keeps serving the calls already waiting in it until they leave."""
        wanted = {queue.id: queue for queue in directory.queues}
        for queue_id, queue in wanted.items():
            record = self._queues.get(queue_id)
            if record is None:
                self._queues[queue_id] = QueueRecord(queue, self.settings.initial_handle_seconds)
            else:
                record.update(queue)
        self._retired = {queue_id for queue_id in self._queues if queue_id not in wanted}
        in_use = {call.queue_id for call in self._calls.values()} | self.roster.wrap_up_queues()
        for queue_id in self._retired - in_use:
            del self._queues[queue_id]
        self._retired &= in_use
        changed = await self.roster.reload(directory)
        records = [record for record in self._queues.values() if len(record.calls)]
        for record in records:
            await self._dispatch_queue(record)
        if changed:
            await self._dispatch_for_agents(changed)

    def cancel_timers(self) -> None:
        for call in self._calls.values():
            call.cancel_timers()
        self.roster.cancel_timers()

    # -- queries ---------------------------------------------------------------------------------

    def queue(self, queue_id: QueueId) -> QueueRecord:
        record = self._queues.get(queue_id)
        if record is None:
            raise UnknownQueue(f"queue {queue_id} not found")
        return record

    def call_phase(self, call_id: CallId) -> CallPhase | None:
        call = self._calls.get(call_id)
        return None if call is None else call.phase

    def caller_of(self, call_id: CallId) -> str | None:
        """The customer's number of a call waiting, ringing or connected (None once ended)."""
        call = self._calls.get(call_id)
        return None if call is None else call.waiting.caller

    def waiting_call(self, call_id: CallId) -> WaitingCall:
        call = self._calls.get(call_id)
        if call is None or call.phase is CallPhase.CONNECTED:
            raise UnknownCall(f"call {call_id} is not waiting")
        return call.waiting

    def position(self, call_id: CallId) -> int:
        return self._queues[self.waiting_call(call_id).queue_id].calls.position(call_id)

    def expected_wait(self, call_id: CallId) -> float:
        record = self._queues[self.waiting_call(call_id).queue_id]
        available, serving = self.roster.staffing(record)
        return estimate_wait(
            record.calls.position(call_id), available, serving, record.handle_time.seconds
        )

    # -- agent commands --------------------------------------------------------------------------

    async def sign_in(
        self, agent_id: UserId, queue_ids: Iterable[QueueId] | None, changed_by: UserId | None
    ) -> Agent:
        chosen = self.roster.membership(agent_id, queue_ids)
        return await self.command(agent_id, SignIn(chosen), changed_by)

    async def change_queues(
        self, agent_id: UserId, queue_ids: Iterable[QueueId], changed_by: UserId | None
    ) -> Agent:
        chosen = self.roster.membership(agent_id, queue_ids)
        return await self.command(agent_id, ChangeQueues(chosen), changed_by)

    async def command(
        self, agent_id: UserId, event: AgentEvent, changed_by: UserId | None = None
    ) -> Agent:
        """A change asked for by the agent or their supervisor; then serve their queues.

        A break or a sign-out while the agent's phone rings withdraws the offer (not counted
        as a no-answer), so "pause" works whenever the agent is not on a call.
        """
        agent = self.roster.check_local(agent_id)
        ringing = self._calls.get(agent.call_id) if agent.call_id is not None else None
        after = await self.roster.apply(agent_id, event, changed_by=changed_by)
        left_offer = agent.state is AgentState.RINGING and after.state is not AgentState.RINGING
        if left_offer and ringing is not None and agent_id in ringing.ringing:
            ringing.stop_ringing(agent_id)
            self._handler.withdraw_offer(ringing.call_id, agent_id)
            if not ringing.ringing:
                ringing.phase = CallPhase.WAITING
            await self._after_offer_ended(ringing)
        await self._dispatch_for_agents((agent_id,))
        return after

    async def extend_wrap_up(self, agent_id: UserId, seconds: float) -> Agent:
        self.roster.check_local(agent_id)
        limit = self.settings.wrap_up_extension_limit_seconds
        after = await self.roster.apply(agent_id, ExtendWrapUp(seconds, limit))
        self._time_wrap_up(after)
        return after

    def _time_wrap_up(self, agent: Agent) -> None:
        call_id = self.roster.wrap_up_call(agent.user_id)
        if agent.state is not AgentState.WRAP_UP or agent.wrap_up_until is None or not call_id:
            return
        timer = self._later(
            agent.wrap_up_until - self._clock.now(),
            partial(self._wrap_up_due, agent.user_id, call_id),
        )
        self.roster.set_wrap_up_timer(agent.user_id, timer)

    async def _wrap_up_due(self, agent_id: UserId, call_id: CallId) -> None:
        agent = self.roster.agent(agent_id)
        if agent.state is not AgentState.WRAP_UP or self.roster.wrap_up_call(agent_id) != call_id:
            return
        if agent.wrap_up_until is not None and self._clock.now() < agent.wrap_up_until:
            return
        await self.roster.apply(agent_id, MakeAvailable())
        await self._dispatch_for_agents((agent_id,))

    async def mirror(self, event: AgentStateChanged) -> None:
        """Another node changed an agent: follow, and serve their queues if now available."""
        if self.roster.mirror(event) and event.user_id is not None:
            await self._dispatch_for_agents((event.user_id,))

    # -- calls -----------------------------------------------------------------------------------

    def _call_event_fields(self, call: CallRecord) -> dict[str, Any]:
        return {
            "at": self._wall_clock(),
            "team_id": self._queues[call.queue_id].queue.team_id,
            "call_id": call.call_id,
            "queue_id": call.queue_id,
        }

    async def arrive(
        self, call_id: CallId, queue_id: QueueId, caller: str, priority: int, required_skill: int
    ) -> int:
        record = self.queue(queue_id)
        if queue_id in self._retired:
            raise UnknownQueue(f"queue {queue_id} was removed")
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
        fields = self._call_event_fields(call)
        self._bus.publish(CallQueued(**fields, priority=priority, position=position))
        await self._dispatch_queue(record)
        return position

    def _ringing(self, call_id: CallId, agent_id: UserId) -> CallRecord:
        call = self._calls.get(call_id)
        if call is None or agent_id not in call.ringing:
            raise OfferNotPending(f"call {call_id} is not ringing agent {agent_id}")
        return call

    async def answered(self, call_id: CallId, agent_id: UserId) -> None:
        call = self._ringing(call_id, agent_id)
        call.stop_ringing(agent_id)
        await self.roster.apply(agent_id, Answer())
        withdrawn = await self._withdraw_all(call)
        self._queues[call.queue_id].calls.remove(call_id)
        call.cancel_timers()
        now = self._clock.now()
        call.phase = CallPhase.CONNECTED
        call.agent_id = agent_id
        call.answered_at = now
        waited = call.waiting.waited(now)
        fields = self._call_event_fields(call)
        self._bus.publish(CallAnswered(**fields, user_id=agent_id, waited_seconds=waited))
        await self._dispatch_for_agents(withdrawn)

    async def offer_failed(self, call_id: CallId, agent_id: UserId) -> None:
        await self._no_answer(self._ringing(call_id, agent_id), agent_id)

    async def _ring_timeout(self, call_id: CallId, deadline: float) -> None:
        """The call's ring timer ran out at `deadline`: each agent it rang since (none if the
        timer is stale: those offers ended, and a later offer has a later deadline) did not
        answer, one after the other as if each had timed out alone."""
        call = self._calls.get(call_id)
        if call is None:
            return
        expired = [agent_id for agent_id, due in call.ringing.items() if due <= deadline]
        for agent_id in expired:
            if self._calls.get(call_id) is not call or agent_id not in call.ringing:
                continue
            self._handler.withdraw_offer(call_id, agent_id)
            await self._no_answer(call, agent_id)

    async def _no_answer(self, call: CallRecord, agent_id: UserId) -> None:
        call.stop_ringing(agent_id)
        call.tried[agent_id] = call.tried.get(agent_id, 0) + 1
        record = self._queues[call.queue_id]
        await self.roster.apply(agent_id, NoAnswer(record.queue.max_no_answer))
        if not call.ringing:
            call.phase = CallPhase.WAITING
        await self._after_offer_ended(call)
        await self._dispatch_for_agents((agent_id,))

    async def _after_offer_ended(self, call: CallRecord) -> None:
        """An offer of `call` is over: overflow it if it was due meanwhile, else offer it on."""
        if call.phase is CallPhase.WAITING and call.overflow_pending:
            await self._overflow(call)
            return
        await self._dispatch_queue(self._queues[call.queue_id])

    async def _withdraw_all(self, call: CallRecord) -> list[UserId]:
        """Stop ringing every agent the call still rings; they are available again."""
        withdrawn = list(call.ringing)
        for agent_id in withdrawn:
            call.stop_ringing(agent_id)
            self._handler.withdraw_offer(call.call_id, agent_id)
            await self.roster.apply(agent_id, WithdrawOffer())
        return withdrawn

    async def ended(self, call_id: CallId) -> None:
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCall(f"call {call_id} is not in the ACD")
        if call.phase is not CallPhase.CONNECTED:
            await self._abandon(call)
            return
        del self._calls[call_id]
        agent_id = call.agent_id
        assert agent_id is not None and call.answered_at is not None
        talk = self._clock.now() - call.answered_at
        fields = self._call_event_fields(call)
        self._bus.publish(CallEnded(**fields, user_id=agent_id, talk_seconds=talk))
        self.roster.start_wrap_up(agent_id, call_id, call.queue_id, talk)
        wrap_up_seconds = self._queues[call.queue_id].queue.wrap_up_seconds
        self._time_wrap_up(await self.roster.apply(agent_id, EndCall(wrap_up_seconds)))
        await self._dispatch_for_agents((agent_id,))

    async def _abandon(self, call: CallRecord) -> None:
        del self._calls[call.call_id]
        call.cancel_timers()
        withdrawn = await self._withdraw_all(call)
        self._queues[call.queue_id].calls.remove(call.call_id)
        waited = call.waiting.waited(self._clock.now())
        self._bus.publish(CallAbandoned(**self._call_event_fields(call), waited_seconds=waited))
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
        action = self.settings.overflow_for(self._queues[call.queue_id].queue)
        if action.kind is OverflowKind.QUEUE and action.queue_id not in self._queues:
            action = OverflowAction.hang_up()  # the target queue was removed meanwhile
        self._bus.publish(
            CallOverflowed(
                **self._call_event_fields(call),
                waited_seconds=call.waiting.waited(self._clock.now()),
                action=action.kind,
                target_queue_id=action.queue_id,
                target_user_id=action.user_id,
            )
        )
        self._handler.overflow_call(call.call_id, call.queue_id, action)
        if action.kind is OverflowKind.QUEUE and action.queue_id is not None:
            waiting = call.waiting
            await self.arrive(
                waiting.call_id,
                action.queue_id,
                waiting.caller,
                waiting.priority,
                waiting.required_skill,
            )

    # -- routing ---------------------------------------------------------------------------------

    async def _dispatch_for_agents(self, agent_ids: Iterable[UserId]) -> None:
        """Serve the queues of those agents who are available, the queue whose next call
        comes first (priority, then the longest wait) first."""
        queue_ids: set[QueueId] = set()
        for agent_id in agent_ids:
            agent = self.roster.agent(agent_id)
            if agent.state is AgentState.AVAILABLE:
                queue_ids |= agent.queue_ids
        records = [self._queues[q] for q in queue_ids if len(self._queues[q].calls)]
        records.sort(key=lambda record: _head_order(record.calls.calls[0]))
        for record in records:
            await self._dispatch_queue(record)

    async def _dispatch_queue(self, record: QueueRecord) -> None:
        """Offer the queue's waiting calls, in order, to its available members."""
        if not len(record.calls):
            return
        available = self.roster.available_members(record)
        if not available:
            return
        if record.queue.strategy is QueueStrategy.ROUND_ROBIN:
            last = await self._round_robin.last(record.queue.id)
            if last is not None and last in record.positions:
                record.round_robin_after = record.positions[last]
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
            attempted.update(member.user_id for member in group)
            rung = await self._ring(record, call, group)
            if not rung:
                continue
            record.round_robin_after = rung[-1].position
            if record.queue.strategy is QueueStrategy.ROUND_ROBIN:
                await self._round_robin.mark(record.queue.id, rung[-1].user_id)
            call.phase = CallPhase.RINGING
        return attempted

    async def _ring(
        self, record: QueueRecord, call: CallRecord, group: Sequence[MemberStatus]
    ) -> list[MemberStatus]:
        """Claim the group's members in one step and ring those claimed (one ring timer for
        them all); the members rung."""
        claimed = await self.roster.claim([member.user_id for member in group], call.call_id)
        if not claimed:
            return []
        call_id, queue_id = call.call_id, call.queue_id
        self.roster.offer(claimed, call_id, queue_id)
        timeout = record.queue.ring_timeout_seconds
        deadline = self._clock.now() + timeout
        for agent_id in claimed:
            call.ringing[agent_id] = deadline
        call.ring_timer = self._later(timeout, partial(self._ring_timeout, call_id, deadline))
        at, team_id = self._wall_clock(), record.queue.team_id
        publish, offer_call = self._bus.publish, self._handler.offer_call
        for agent_id in claimed:
            publish(
                call_offered(
                    at=at, team_id=team_id, user_id=agent_id, call_id=call_id, queue_id=queue_id
                )
            )
            offer_call(call_id, agent_id, queue_id)
        rung = set(claimed)
        return [member for member in group if member.user_id in rung]


def _head_order(call: WaitingCall) -> tuple[int, float, int]:
    return (-call.priority, call.arrived_at, call.sequence)
