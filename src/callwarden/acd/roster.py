"""The agents of one node: their states, the claims held on them, their wrap-ups, and the
mirror of the agents other nodes drive (private to the ACD engine).

Every state change goes through `Roster.apply` (`Roster.offer` for the agents a call rings),
which runs the state machine and then what
follows from the move: a wrap-up that ends is reported (`CallHandled`), a free agent's claim
is released, and the change is published (`AgentStateChanged`). Like `CallCenter`, it assumes
its coroutines run one at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from callwarden.acd.agent import (
    Agent,
    AgentEvent,
    AgentState,
    ChangeQueues,
    Offer,
    SignOut,
    transition,
)
from callwarden.acd.clock import Clock, TimerHandle, WallClock
from callwarden.acd.errors import AgentEngagedElsewhere, NotAMember, UnknownAgent, UnknownQueue
from callwarden.acd.events import AgentStateChanged, CallHandled, agent_state_changed
from callwarden.acd.routing import MemberStatus
from callwarden.acd.runtime import QueueRecord, WrapUpRecord
from callwarden.bus.claims import AgentClaims, Claim
from callwarden.bus.protocol import EventBus
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, QueueId, UserId

__all__ = ["Roster"]

logger = logging.getLogger(__name__)

_FREE = frozenset({AgentState.AVAILABLE, AgentState.BREAK, AgentState.OFFLINE})
_ENGAGED = frozenset({AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAP_UP})


def _memberships(
    queues: Mapping[QueueId, QueueRecord], directory: DirectorySnapshot
) -> dict[UserId, frozenset[QueueId]]:
    """Each enabled user's queues (a disabled or unknown user is nobody's member)."""
    member_of: dict[UserId, frozenset[QueueId]] = {}
    for record in queues.values():
        for member in record.members:
            user = directory.user(member.user_id)
            if user is not None and user.enabled:
                joined = member_of.get(member.user_id, frozenset())
                member_of[member.user_id] = joined | {record.queue.id}
    return member_of


def _changed(before: Agent, after: Agent) -> bool:
    """Whether the move is one to publish: state, break reason or queues changed."""
    return (
        before.state is not after.state
        or before.break_reason != after.break_reason
        or before.queue_ids != after.queue_ids
    )


class Roster:
    """Every member of a queue of the directory, as an `Agent`."""

    def __init__(
        self,
        *,
        directory: DirectorySnapshot,
        queues: Mapping[QueueId, QueueRecord],
        bus: EventBus,
        claims: AgentClaims,
        clock: Clock,
        wall_clock: WallClock,
        node_id: str,
        claim_ttl_seconds: float,
    ) -> None:
        self._queues = queues
        self._bus = bus
        self._claims = claims
        self._clock = clock
        self._wall_clock = wall_clock
        self._node_id = node_id
        self._claim_ttl = claim_ttl_seconds
        self._member_of = _memberships(queues, directory)
        now = clock.now()
        self._agents: dict[UserId, Agent] = {}
        for user_id in self._member_of:
            user = directory.user(user_id)
            team_id = user.team_id if user is not None else None
            self._agents[user_id] = Agent(user_id, team_id, since=now, idle_since=now)
        self._held: dict[UserId, Claim] = {}
        self._wrap_ups: dict[UserId, WrapUpRecord] = {}
        self._claimed_elsewhere: dict[UserId, float] = {}
        self._remote_engaged: dict[UserId, str] = {}

    # -- reading -------------------------------------------------------------------------------

    def agent(self, agent_id: UserId) -> Agent:
        agent = self._agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(f"agent {agent_id} is in no queue")
        return agent

    def agents(self) -> tuple[Agent, ...]:
        return tuple(self._agents.values())

    def held_claims(self) -> frozenset[UserId]:
        return frozenset(self._held)

    def membership(
        self, agent_id: UserId, queue_ids: Iterable[QueueId] | None
    ) -> frozenset[QueueId]:
        """`queue_ids` checked against the agent's memberships (None: all of them)."""
        member_of = self._member_of.get(agent_id)
        if member_of is None:
            raise UnknownAgent(f"agent {agent_id} is in no queue")
        if queue_ids is None:
            return member_of
        chosen = frozenset(queue_ids)
        for queue_id in sorted(chosen):
            if queue_id not in self._queues:
                raise UnknownQueue(f"queue {queue_id} not found")
            if queue_id not in member_of:
                raise NotAMember(
                    f"agent {agent_id} is not a member of queue {queue_id}",
                    details={"queue": queue_id},
                )
        return chosen

    def check_local(self, agent_id: UserId) -> Agent:
        """The agent, if no other node is ringing or connected to them."""
        agent = self.agent(agent_id)
        node = self._remote_engaged.get(agent_id)
        if node is not None:
            raise AgentEngagedElsewhere(
                f"agent {agent_id} is {agent.state.value} on node {node}",
                details={"node": node, "state": agent.state.value},
            )
        return agent

    def available_members(self, record: QueueRecord) -> list[MemberStatus]:
        """The queue's members who could be offered a call now, for the routing strategies."""
        queue_id = record.queue.id
        agents = self._agents
        elsewhere = self._claimed_elsewhere
        available = AgentState.AVAILABLE
        found: list[MemberStatus] = []
        for position, member in enumerate(record.members):
            agent = agents.get(member.user_id)
            if agent is None or agent.state is not available or queue_id not in agent.queue_ids:
                continue
            if elsewhere:
                busy_until = elsewhere.get(member.user_id)
                if busy_until is not None:
                    if busy_until > self._clock.now():
                        continue
                    del elsewhere[member.user_id]
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

    def staffing(self, record: QueueRecord) -> tuple[int, int]:
        """(available, serving) agents of the queue: signed in to it, and not on break."""
        available = serving = 0
        for member in record.members:
            agent = self._agents.get(member.user_id)
            if (
                agent is None
                or record.queue.id not in agent.queue_ids
                or agent.state is AgentState.BREAK
            ):
                continue
            serving += 1
            available += agent.state is AgentState.AVAILABLE
        return available, serving

    def wrap_up_queues(self) -> set[QueueId]:
        """The queues of the calls being wrapped up now."""
        return {wrap_up.queue_id for wrap_up in self._wrap_ups.values()}

    # -- changing ------------------------------------------------------------------------------

    async def reload(self, directory: DirectorySnapshot) -> list[UserId]:
        """Follow the queues' new members (the records are already updated): a new member is
        an agent, offline; an agent who left a queue is signed out of it (signed out entirely
        when no queue is left and they are not on a call); a disabled user counts as no
        member. An agent on a call keeps it. Returns the agents whose queues changed."""
        member_of = self._member_of = _memberships(self._queues, directory)
        now = self._clock.now()
        for user_id in member_of:
            user = directory.user(user_id)
            team_id = user.team_id if user is not None else None
            agent = self._agents.get(user_id)
            if agent is None:
                self._agents[user_id] = Agent(user_id, team_id, since=now, idle_since=now)
            elif agent.team_id != team_id:
                self._agents[user_id] = replace(agent, team_id=team_id)
        changed: list[UserId] = []
        for user_id, agent in list(self._agents.items()):
            keep = agent.queue_ids & member_of.get(user_id, frozenset())
            if agent.signed_in and keep != agent.queue_ids and user_id not in self._remote_engaged:
                free = agent.state in (AgentState.AVAILABLE, AgentState.BREAK)
                await self.apply(user_id, SignOut() if not keep and free else ChangeQueues(keep))
                changed.append(user_id)
            gone = user_id not in member_of and user_id not in self._held
            if gone and self._agents[user_id].state is AgentState.OFFLINE:
                del self._agents[user_id]
        return [user_id for user_id in changed if user_id in self._agents]

    async def apply(
        self, agent_id: UserId, event: AgentEvent, *, changed_by: UserId | None = None
    ) -> Agent:
        """Run the state machine, then finish a wrap-up that ended, release the claim of a
        free agent, and publish the change (made by `changed_by`, None for the system)."""
        now = self._clock.now()
        before, after = self._move(agent_id, event, now)
        if after.state in _FREE:
            await self._release(agent_id)
        if _changed(before, after):
            self._bus.publish(self._state_event(before, after, now, changed_by, self._wall_clock()))
        return after

    def offer(self, agent_ids: Iterable[UserId], call_id: CallId, queue_id: QueueId) -> None:
        """`apply(Offer)` to agents claimed for `call_id` (a ring-all tier at once): each moves
        to RINGING and its change is published; one clock reading for all of them."""
        now = self._clock.now()
        at = self._wall_clock()
        event = Offer(call_id, queue_id)
        publish = self._bus.publish
        for agent_id in agent_ids:
            before, after = self._move(agent_id, event, now)
            publish(self._state_event(before, after, now, None, at))

    def _move(self, agent_id: UserId, event: AgentEvent, now: float) -> tuple[Agent, Agent]:
        before = self.agent(agent_id)
        after = transition(before, event, now)
        self._agents[agent_id] = after
        if after.state is not AgentState.WRAP_UP and self._wrap_ups:
            self._finish_wrap_up(agent_id, now)
        return before, after

    def reset_daily_counts(self, counts: Mapping[UserId, int] | None = None) -> None:
        """Each agent's calls taken to `counts` (0 for those left out; all 0 without)."""
        counts = counts or {}
        for agent_id, agent in self._agents.items():
            self._agents[agent_id] = replace(agent, calls_taken=counts.get(agent_id, 0))

    def _state_event(
        self, before: Agent, after: Agent, now: float, changed_by: UserId | None, at: datetime
    ) -> AgentStateChanged:
        return agent_state_changed(
            at=at,
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
            changed_by=changed_by,
            node_id=self._node_id,
        )

    # -- wrap-ups ------------------------------------------------------------------------------

    def start_wrap_up(
        self, agent_id: UserId, call_id: CallId, queue_id: QueueId, talk_seconds: float
    ) -> None:
        """Remember the call the agent is about to wrap up (before `apply(EndCall)`)."""
        self._wrap_ups[agent_id] = WrapUpRecord(call_id, queue_id, talk_seconds, self._clock.now())

    def wrap_up_call(self, agent_id: UserId) -> CallId | None:
        wrap_up = self._wrap_ups.get(agent_id)
        return None if wrap_up is None else wrap_up.call_id

    def set_wrap_up_timer(self, agent_id: UserId, timer: TimerHandle) -> None:
        wrap_up = self._wrap_ups.get(agent_id)
        if wrap_up is None:
            timer.cancel()
            return
        if wrap_up.timer is not None:
            wrap_up.timer.cancel()
        wrap_up.timer = timer

    def _finish_wrap_up(self, agent_id: UserId, now: float) -> None:
        wrap_up = self._wrap_ups.pop(agent_id, None)
        if wrap_up is None:
            return
        if wrap_up.timer is not None:
            wrap_up.timer.cancel()
        wrap_seconds = max(0.0, now - wrap_up.started)
        record = self._queues[wrap_up.queue_id]
        record.handle_time.add(wrap_up.talk_seconds + wrap_seconds)
        self._bus.publish(
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

    def cancel_timers(self) -> None:
        for wrap_up in self._wrap_ups.values():
            if wrap_up.timer is not None:
                wrap_up.timer.cancel()

    # -- claims --------------------------------------------------------------------------------

    async def claim(self, agent_ids: Sequence[UserId], call_id: CallId) -> list[UserId]:
        """Claim the agents for `call_id` (one step for a ring-all tier); those claimed, in
        order. One held by someone else is skipped for a while."""
        holder = f"{self._node_id}:{call_id}"
        claims = await self._claims.claim_many(agent_ids, holder, self._claim_ttl)
        claimed: list[UserId] = []
        for agent_id, claim in zip(agent_ids, claims, strict=True):
            if claim is None:
                self._claimed_elsewhere[agent_id] = self._clock.now() + self._claim_ttl
            else:
                self._held[agent_id] = claim
                claimed.append(agent_id)
        return claimed

    async def _release(self, agent_id: UserId) -> None:
        claim = self._held.pop(agent_id, None)
        if claim is not None and not await self._claims.release(claim):
            logger.warning("claim on agent %s had expired before its release", agent_id)

    async def release_all(self) -> None:
        for claim in list(self._held.values()):
            await self._claims.release(claim)
        self._held.clear()

    async def refresh_claims(self) -> None:
        """Extend every claim held; claim again one that expired meanwhile, if still free."""
        for agent_id, claim in list(self._held.items()):
            if await self._claims.refresh(claim, self._claim_ttl):
                continue
            logger.warning("claim on agent %s was lost; claiming it again", agent_id)
            renewed = await self._claims.claim(agent_id, claim.holder, self._claim_ttl)
            if renewed is None:
                logger.error("agent %s was claimed by someone else meanwhile", agent_id)
                self._held.pop(agent_id, None)
            else:
                self._held[agent_id] = renewed

    # -- other nodes ---------------------------------------------------------------------------

    def mirror(self, event: AgentStateChanged) -> bool:
        """Take over another node's view of an agent, unless this node drives the agent;
        whether the agent is now available here."""
        agent_id = event.user_id
        if event.node_id == self._node_id or agent_id is None:
            return False
        if agent_id not in self._agents or agent_id in self._held:
            return False
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
        return event.state is AgentState.AVAILABLE
