"""What the operator desktop and the supervisor console show when they load; the ES modules
keep it current from the live WebSockets (`/api/v1/desk/live`, `/api/v1/live`).

The operator sees their own agent and the names of their own queues, nothing else. The
supervisor sees the people of the teams they may watch (`live.view`), and the force-break and
sign-out controls only for those they may manage (`agents.manage`), decided by `authorize()`
per person: the same decision the API makes when the button is pressed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import HTTPConnection

from callwarden.acd.agent import Agent, AgentState
from callwarden.acd.engine import AcdEngine
from callwarden.acd.errors import EngineNotRunning, UnknownAgent, UnknownQueue
from callwarden.acd.statistics import CenterFigures, Figures
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import Queue, User
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import Resource, ResourceKind, authorize, list_scope
from callwarden.web.access import Caller
from callwarden.web.dispositions.store import NOTE_LIMIT, DispositionCode
from callwarden.web.pages.i18n import chosen_language, format_duration
from callwarden.web.pages.render import script_json
from callwarden.web.services import WebServices


def _engine(services: WebServices) -> AcdEngine:
    engine = services.acd()
    if engine is None:
        raise EngineNotRunning("the ACD engine is not running")
    return engine


def _agent(engine: AcdEngine, user: User) -> Agent:
    try:
        return engine.agent(user.id)
    except UnknownAgent:
        now = engine.now()
        return Agent(user.id, user.team_id, since=now, idle_since=now)


def break_reasons(engine: AcdEngine, snapshot: DirectorySnapshot) -> tuple[str, ...]:
    return snapshot.break_reasons or engine.settings.break_reasons


def _name(user: User) -> str:
    return user.display_name or user.username


def desk_context(
    services: WebServices,
    connection: HTTPConnection,
    caller: Caller,
    codes: Sequence[DispositionCode] = (),
) -> dict[str, Any]:
    """`codes`: the wrap-up disposition codes the form offers, in order."""
    engine = _engine(services)
    language = chosen_language(connection)
    snapshot = services.directory.snapshot
    agent = _agent(engine, caller.user)
    queues = {
        str(queue.id): queue.display_name or queue.name
        for queue in snapshot.queues
        if caller.user.id in queue.member_ids or queue.id in agent.queue_ids
    }
    seconds = agent.time_in_state(engine.now())
    return {
        "agent": {
            "state": agent.state.value,
            "break_reason": agent.break_reason,
            "seconds": round(seconds, 3),
            "duration": format_duration(seconds),
            "calls_taken": agent.calls_taken,
            "queue_names": [
                queues[str(queue_id)]
                for queue_id in sorted(agent.queue_ids)
                if str(queue_id) in queues
            ],
        },
        "break_reasons": break_reasons(engine, snapshot),
        "queues_json": script_json(queues),
        "dispositions": [{"code": code.code, "label": code.label(language)} for code in codes],
        "note_limit": NOTE_LIMIT,
    }


def _watched_people(snapshot: DirectorySnapshot, caller: Caller) -> list[User]:
    """People of the teams the caller may watch who take calls (agents), by name."""
    scope = list_scope(caller.principal, Permission.LIVE_VIEW)
    found = []
    for user in snapshot.users:
        if not user.enabled:
            continue
        resource = Resource.of(ResourceKind.AGENT, owner=user.id, team=user.team_id)
        if not scope.admits(resource):
            continue
        if snapshot.principal_for(user).scope_of(Permission.AGENT_STATE_OWN) is None:
            continue
        found.append(user)
    return sorted(found, key=lambda user: _name(user).casefold())


def _tile(queue: Queue, figures: Figures | None, waiting: dict[str, float]) -> dict[str, Any]:
    """`waiting`: the calls waiting now, by call id, with how long they have waited."""
    offered = 0 if figures is None else figures.offered
    longest = max(waiting.values(), default=0.0)
    return {
        "id": queue.id,
        "name": queue.display_name or queue.name,
        "waiting": len(waiting),
        "waiting_calls": waiting,
        "longest": round(longest, 3),
        "longest_text": format_duration(longest),
        "answered": 0 if figures is None else figures.answered,
        "abandoned": 0 if figures is None else figures.abandoned,
        "overflowed": 0 if figures is None else figures.overflowed,
        "within": 0 if figures is None else figures.answered_within_service_level,
        "offered": offered,
        "service_level_seconds": queue.service_level_seconds,
        "service_level_percent": queue.service_level_percent,
    }


def wallboard_context(
    services: WebServices, connection: HTTPConnection, caller: Caller, figures: CenterFigures
) -> dict[str, Any]:
    engine = _engine(services)
    snapshot = services.directory.snapshot
    now = engine.now()
    rows = []
    for user in _watched_people(snapshot, caller):
        agent = _agent(engine, user)
        resource = Resource.of(ResourceKind.AGENT, owner=user.id, team=user.team_id)
        seconds = agent.time_in_state(now)
        rows.append(
            {
                "user_id": user.id,
                "name": _name(user),
                "state": agent.state.value,
                "break_reason": agent.break_reason,
                "seconds": round(seconds, 3),
                "duration": format_duration(seconds),
                "calls_taken": agent.calls_taken,
                "manageable": authorize(
                    caller.principal, Permission.AGENTS_MANAGE, resource
                ).allowed,
                "monitorable": authorize(
                    caller.principal,
                    Permission.MONITOR_LISTEN,
                    Resource.of(ResourceKind.CALL, owner=user.id, team=user.team_id),
                ).allowed,
            }
        )
    tiles = []
    for queue in snapshot.queues:
        resource = Resource.of(ResourceKind.QUEUE, team=queue.team_id)
        if not authorize(caller.principal, Permission.LIVE_VIEW, resource).allowed:
            continue
        try:
            queued = engine.waiting_calls(queue.id)
        except UnknownQueue:  # created just now: the ACD follows the directory a moment later
            queued = ()
        waiting = {str(call.call_id): round(now - call.arrived_at, 3) for call in queued}
        tiles.append(_tile(queue, figures.queues.get(queue.id), waiting))
    calls = _live_calls(services, engine, snapshot, caller)
    return {
        "rows": rows,
        "tiles": tiles,
        "calls": calls,
        "monitor_modes": _monitor_modes(caller),
        "break_reasons": break_reasons(engine, snapshot),
        "board_json": script_json(
            {"rows": rows, "tiles": tiles, "calls": calls, "me": caller.user.id}
        ),
    }


MONITOR_MODES = (
    ("listen", Permission.MONITOR_LISTEN),
    ("whisper", Permission.MONITOR_WHISPER),
    ("barge", Permission.MONITOR_BARGE),
    ("takeover", Permission.MONITOR_TAKEOVER),
)


def _monitor_modes(caller: Caller) -> list[str]:
    """The modes the caller holds at all (each call is still decided by the service)."""
    return [mode for mode, permission in MONITOR_MODES if caller.principal.scope_of(permission)]


def _live_calls(
    services: WebServices, engine: AcdEngine, snapshot: DirectorySnapshot, caller: Caller
) -> list[dict[str, Any]]:
    """The calls in progress of the watched operators, with the caller's own monitoring
    session on each, if any; `monitorable` is `authorize(monitor.listen)` on the call."""
    monitoring = services.monitoring()
    own_sessions = {
        session.call.call_id: session
        for session in ([] if monitoring is None else monitoring.sessions.values())
        if session.supervisor.id == caller.user.id and session.ended_at is None
    }
    now = engine.now()
    calls = []
    for user in _watched_people(snapshot, caller):
        agent = _agent(engine, user)
        if agent.state is not AgentState.ON_CALL or agent.call_id is None:
            continue
        resource = Resource.of(ResourceKind.CALL, owner=user.id, team=user.team_id)
        session = own_sessions.get(agent.call_id)
        started = agent.call_started if agent.call_started is not None else agent.since
        calls.append(
            {
                "call_id": str(agent.call_id),
                "user_id": user.id,
                "name": _name(user),
                "queue_id": agent.queue_id,
                "seconds": round(max(0.0, now - started), 3),
                "monitorable": authorize(
                    caller.principal, Permission.MONITOR_LISTEN, resource
                ).allowed,
                "session": None
                if session is None
                else {
                    "id": session.id,
                    "mode": session.mode.value,
                    "state": "joined" if session.joined_at is not None else "ringing",
                },
            }
        )
    return calls
