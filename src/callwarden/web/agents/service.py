"""Use cases of the agent routes (permissions are checked by the routes' declarations).

Every change goes to the node's `AcdEngine` with `changed_by` set, then is audited
(`agent.state.change`, the actor, the agent, before and after, the source address). Asking for
the state an agent is already in changes nothing and records nothing (a repeated click is not a
second act). Users who are in no queue are shown OFFLINE with no queues.
"""

from __future__ import annotations

from callwarden.acd.agent import Agent, AgentState
from callwarden.acd.engine import AcdEngine
from callwarden.acd.errors import EngineNotRunning, UnknownAgent
from callwarden.domain.errors import JsonValue
from callwarden.domain.ids import TeamId, UserId
from callwarden.domain.models import User
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Resource, ResourceKind, list_scope, not_found, require
from callwarden.security.audit import AuditAction, AuditEvent, AuditOutcome
from callwarden.web.access import Caller
from callwarden.web.agents.schemas import AgentList, AgentView, ForcedStateChange, OwnStateChange
from callwarden.web.services import WebServices

SOURCE = "web"


def state_summary(agent: Agent) -> dict[str, JsonValue]:
    """What the audit keeps of a state: the state, the break reason, the queues."""
    return {
        "state": agent.state.value,
        "break_reason": agent.break_reason,
        "queue_ids": [int(queue_id) for queue_id in sorted(agent.queue_ids)],
    }


def state_change_event(caller: Caller, before: Agent, after: Agent, source: str) -> AuditEvent:
    return AuditEvent(
        action=AuditAction.AGENT_STATE_CHANGE,
        actor=caller.actor,
        outcome=AuditOutcome.SUCCESS,
        object_kind=ResourceKind.AGENT.value,
        object_id=int(after.user_id),
        source_address=caller.source_address,
        details={
            "before": state_summary(before),
            "after": state_summary(after),
            "source": source,
        },
    )


def _unchanged(agent: Agent, state: str, reason: str | None) -> bool:
    if agent.state.value != state:
        return False
    return agent.state is not AgentState.BREAK or agent.break_reason == reason


class AgentDesk:
    def __init__(self, services: WebServices) -> None:
        self._services = services

    def _engine(self) -> AcdEngine:
        engine = self._services.acd()
        if engine is None:
            raise EngineNotRunning("the ACD engine is not running")
        return engine

    def _agent(self, engine: AcdEngine, user: User) -> Agent:
        try:
            return engine.agent(user.id)
        except UnknownAgent:
            now = engine.now()
            return Agent(user.id, user.team_id, since=now, idle_since=now)

    def _view(self, engine: AcdEngine, user: User) -> AgentView:
        return AgentView.of(user, self._agent(engine, user), engine.now())

    def me(self, caller: Caller) -> AgentView:
        return self._view(self._engine(), caller.user)

    def list(self, caller: Caller, team_id: int | None) -> AgentList:
        """The agents of the teams the caller may watch (`live.view`), or of `team_id`."""
        engine = self._engine()
        principal = caller.principal
        if team_id is not None:
            what = f"team {team_id}"
            if self._services.directory.snapshot.team(TeamId(team_id)) is None:
                raise not_found(what)
            resource = Resource.of(ResourceKind.AGENT, team=TeamId(team_id))
            require(principal, Permission.LIVE_VIEW, resource, what)
        scope = list_scope(principal, Permission.LIVE_VIEW)
        snapshot = self._services.directory.snapshot
        now = engine.now()
        items = []
        for agent in sorted(engine.agents(), key=lambda agent: agent.user_id):
            user = snapshot.user(agent.user_id)
            if user is None:
                continue
            resource = Resource.of(ResourceKind.AGENT, owner=user.id, team=user.team_id)
            if not scope.admits(resource):
                continue
            if team_id is not None and user.team_id != team_id:
                continue
            items.append(AgentView.of(user, agent, now))
        return AgentList(items=items)

    async def change_own(self, caller: Caller, body: OwnStateChange) -> AgentView:
        return await self._change(caller, caller.user, body.state, body.reason)

    async def force(self, caller: Caller, body: ForcedStateChange) -> AgentView:
        assert caller.target is not None
        user = self._services.directory.snapshot.user(UserId(int(caller.target.object_id)))
        if user is None:
            raise not_found(caller.target.what)
        return await self._change(caller, user, body.state, body.reason)

    async def _change(
        self, caller: Caller, user: User, state: str, reason: str | None
    ) -> AgentView:
        engine = self._engine()
        before = self._agent(engine, user)
        if _unchanged(before, state, reason):
            return AgentView.of(user, before, engine.now())
        after = await apply_state(engine, user.id, state, reason, changed_by=caller.user.id)
        await self._services.audit.record(state_change_event(caller, before, after, SOURCE))
        return AgentView.of(user, after, engine.now())


async def apply_state(
    engine: AcdEngine, agent_id: UserId, state: str, reason: str | None, *, changed_by: UserId
) -> Agent:
    """Move the agent to `state` (`available` signs an offline agent in to all own queues)."""
    if state == "offline":
        return await engine.sign_out(agent_id, changed_by=changed_by)
    if state == "break":
        assert reason is not None
        return await engine.take_break(agent_id, reason, changed_by=changed_by)
    if engine.agent(agent_id).state is AgentState.OFFLINE:
        return await engine.sign_in(agent_id, changed_by=changed_by)
    return await engine.make_available(agent_id, changed_by=changed_by)
