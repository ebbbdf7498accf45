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
from collections.abc import Awaitable, Callable, Iterable, Mapping
from functools import partial
from typing import Any, TypeVar

from callwarden.acd.agent import Agent, BreakReasons, MakeAvailable, SignOut
from callwarden.acd.center import CallCenter, Job
from callwarden.acd.clock import Clock, TimerHandle, WallClock
from callwarden.acd.errors import EngineNotRunning
from callwarden.acd.events import AgentStateChanged
from callwarden.acd.queue import WaitingCall
from callwarden.acd.round_robin import InProcessRoundRobin, RoundRobinMarks
from callwarden.acd.runtime import CallPhase
from callwarden.acd.settings import AcdCallHandler, AcdSettings
from callwarden.bus.claims import AgentClaims
from callwarden.bus.event import Event
from callwarden.bus.protocol import EventBus
from callwarden.bus.subscription import Subscription
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, QueueId, UserId

__all__ = ["AcdEngine"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


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
        round_robin: RoundRobinMarks | None = None,
    ) -> None:
        """`round_robin`: where round-robin queues keep their place (default: in memory;
        `RedisRoundRobin` to share it between nodes and keep it over restarts)."""
        self.node_id = node_id
        self.settings = settings if settings is not None else AcdSettings()
        self._bus = bus
        self._clock = clock
        self._break_reasons = self._reasons(directory)
        self._center = CallCenter(
            directory=directory,
            bus=bus,
            claims=claims,
            calls=calls,
            clock=clock,
            wall_clock=wall_clock,
            node_id=node_id,
            settings=self.settings,
            later=self._later,
            round_robin=round_robin if round_robin is not None else InProcessRoundRobin(),
        )
        self._jobs: asyncio.Queue[tuple[Job, asyncio.Future[Any] | None]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscription: Subscription | None = None
        self._refresh_timer: TimerHandle | None = None
        self._running = False

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
        self._center.cancel_timers()
        if self._subscription is not None:
            self._subscription.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._center.roster.release_all()

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

    def _reasons(self, directory: DirectorySnapshot) -> BreakReasons:
        return BreakReasons(directory.break_reasons or self.settings.break_reasons)

    @property
    def break_reasons(self) -> tuple[str, ...]:
        """The reasons an operator may give for a break (provisioned, else the settings'),
        `missed` last; a phone's break code takes the 1-based index into this list."""
        return self._break_reasons.codes

    def follow_directory(self, directory: DirectorySnapshot) -> None:
        """The directory changed (users, queues, break reasons): follow it as an engine job,
        after the jobs already queued (non-blocking; from the loop's thread)."""
        self._post(partial(self._reload, directory))

    async def reload(self, directory: DirectorySnapshot) -> None:
        """`follow_directory`, awaited (tests, and callers that must know it is done)."""
        await self._call(partial(self._reload, directory))

    async def _reload(self, directory: DirectorySnapshot) -> None:
        self._break_reasons = self._reasons(directory)
        await self._center.reload(directory)
        logger.info("ACD follows the directory: %d queues", len(directory.queues))

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
        """A call entered `queue_id`; its position at arrival (it may be offered at once).
        `caller` is the customer's number (never logged); a higher `priority` waits ahead."""
        return await self._call(
            partial(self._center.arrive, call_id, queue_id, caller, priority, required_skill)
        )

    async def offer_answered(self, call_id: CallId, agent_id: UserId) -> None:
        """`agent_id` answered `call_id`; raises `OfferNotPending` if that offer is over."""
        await self._call(partial(self._center.answered, call_id, agent_id))

    async def offer_failed(self, call_id: CallId, agent_id: UserId) -> None:
        """The offer rang out, was refused or could not reach the phone (a no-answer)."""
        await self._call(partial(self._center.offer_failed, call_id, agent_id))

    async def call_ended(self, call_id: CallId) -> None:
        """The call is over: abandoned if it was still waiting, else the agent wraps up."""
        await self._call(partial(self._center.ended, call_id))

    # -- agent commands (phone feature codes, web) ----------------------------------------------

    async def sign_in(
        self,
        agent_id: UserId,
        queue_ids: Iterable[QueueId] | None = None,
        *,
        changed_by: UserId | None = None,
    ) -> Agent:
        """Sign in to `queue_ids` (default: every queue the agent is a member of).

        `changed_by` (here and below) names who asked, the agent or their supervisor, for the
        event (`AgentStateChanged.changed_by`) and so for the audit; checking that they may
        is the caller's job (`authorize`), as for every command.
        """
        return await self._call(partial(self._center.sign_in, agent_id, queue_ids, changed_by))

    async def change_queues(
        self, agent_id: UserId, queue_ids: Iterable[QueueId], *, changed_by: UserId | None = None
    ) -> Agent:
        return await self._call(
            partial(self._center.change_queues, agent_id, queue_ids, changed_by)
        )

    async def sign_out(self, agent_id: UserId, *, changed_by: UserId | None = None) -> Agent:
        """Sign out (not while on a call; a ringing offer is withdrawn)."""
        return await self._call(partial(self._center.command, agent_id, SignOut(), changed_by))

    async def take_break(
        self, agent_id: UserId, reason: str, *, changed_by: UserId | None = None
    ) -> Agent:
        """Go on break for one of the configured reasons (`UnknownBreakReason` otherwise);
        from AVAILABLE, WRAP_UP or RINGING (the offer is withdrawn), not during a call."""
        event = self._break_reasons.take_break(reason)
        return await self._call(partial(self._center.command, agent_id, event, changed_by))

    async def make_available(self, agent_id: UserId, *, changed_by: UserId | None = None) -> Agent:
        """Back from a break, or end wrap-up early."""
        return await self._call(
            partial(self._center.command, agent_id, MakeAvailable(), changed_by)
        )

    async def extend_wrap_up(self, agent_id: UserId, seconds: float) -> Agent:
        """Add `seconds` to the current wrap-up (`WrapUpLimitReached` past the limit)."""
        return await self._call(partial(self._center.extend_wrap_up, agent_id, seconds))

    async def reset_daily_counts(self, counts: Mapping[UserId, int] | None = None) -> None:
        """Start a new day for the fewest-calls strategy and the operators' figures (calls
        taken back to zero), or set each agent's calls taken today to `counts` (0 for those
        left out), as `acd.today.DailyCounts` does from the stored history at start."""

        async def reset() -> None:
            self._center.roster.reset_daily_counts(counts)

        await self._call(reset)

    # -- queries (read-only, from any code on the loop) -----------------------------------------

    def agent(self, agent_id: UserId) -> Agent:
        return self._center.roster.agent(agent_id)

    def now(self) -> float:
        """The engine's monotonic time, the clock of `Agent.since` (for time in state)."""
        return self._clock.now()

    def agents(self) -> tuple[Agent, ...]:
        return self._center.roster.agents()

    def waiting_calls(self, queue_id: QueueId) -> tuple[WaitingCall, ...]:
        """The calls waiting in the queue (ringing ones included), the next offered first."""
        return self._center.queue(queue_id).calls.calls

    def call_phase(self, call_id: CallId) -> CallPhase | None:
        return self._center.call_phase(call_id)

    def caller_of(self, call_id: CallId) -> str | None:
        """The customer's number of a call in the ACD (waiting to ended); never logged: whoever
        shows it masks it per policy (`domain.policy.shown_number`)."""
        return self._center.caller_of(call_id)

    def position(self, call_id: CallId) -> int:
        return self._center.position(call_id)

    def expected_wait(self, call_id: CallId) -> float:
        """Seconds until the call is expected to be offered (see `queue.estimate_wait`)."""
        return self._center.expected_wait(call_id)

    def round_robin_position(self, queue_id: QueueId) -> int | None:
        """The member position offered last by a round-robin queue (None before the first)."""
        return self._center.queue(queue_id).round_robin_after

    def held_claims(self) -> frozenset[UserId]:
        """The agents this node holds claims on."""
        return self._center.roster.held_claims()

    # -- the job loop --------------------------------------------------------------------------

    async def _call(self, job: Callable[[], Awaitable[_T]]) -> _T:
        if not self._running:
            raise EngineNotRunning("the ACD engine is not running")
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._jobs.put_nowait((job, future))
        return await future

    def _post(self, job: Job) -> None:
        if self._running:
            self._jobs.put_nowait((job, None))

    def _later(self, delay: float, job: Job) -> TimerHandle:
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

    # -- claims and other nodes -------------------------------------------------------------------

    def _schedule_refresh(self) -> None:
        self._refresh_timer = self._later(self.settings.claim_ttl_seconds / 3, self._refresh)

    async def _refresh(self) -> None:
        await self._center.roster.refresh_claims()
        if self._running:
            self._schedule_refresh()

    def _is_remote_agent_event(self, event: Event) -> bool:
        return isinstance(event, AgentStateChanged) and event.node_id != self.node_id

    async def _follow(self, subscription: Subscription) -> None:
        async for event in subscription:
            if isinstance(event, AgentStateChanged):
                self._post(partial(self._center.mirror, event))
