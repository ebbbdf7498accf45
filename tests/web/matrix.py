"""The access matrix, generated from a running application: every route of `app.routes`, every
caller (no session, a session still waiting for MFA, and each built-in role fully signed in),
every placement of the route's object (the caller's own team, another team), and what the
policy says the answer must be.

The expectation of a `require(permission, ...)` route is `authorize()` itself, asked about the
object the route's declared target finds: ALLOW is a 2xx, DENY_NOT_FOUND a 404 `not_found`,
DENY_FORBIDDEN a 403 `forbidden`. Routes declared public, session-step or self-service pass
their guard for the callers they admit (what they answer then depends on the caller's own
state, their sessions and MFA set-up: test_sign_in covers that); a route with no declaration is
reported and fails the test (see `undeclared_routes`).
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from callwarden.domain.policy import Decision, Resource, authorize
from callwarden.provisioning import Provisioner
from callwarden.security.network_policy import NetworkPolicy
from callwarden.security.sessions import IssuedSession
from callwarden.web.access import (
    Access,
    AccessKind,
    GuardedWebSocketRoute,
    own_target,
    route_access,
)
from web.monitoring_support import MonitoringWorld
from web.support import PASSWORD, REALM, Env, cheap_hasher


class Caller(enum.Enum):
    ANONYMOUS = "no session"
    MFA_PENDING = "password only, MFA pending"
    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    AUDITOR = "auditor"

    @property
    def username(self) -> str | None:
        if self is Caller.ANONYMOUS:
            return None
        return "deputy" if self is Caller.MFA_PENDING else self.value


class Placement(enum.Enum):
    NONE = "no object"
    OWN_TEAM = "object of the caller's team"
    OTHER_TEAM = "object of another team"


OWN_USER, OTHER_USER = "colleague", "stranger"
OWN_TEAM, OTHER_TEAM = "north", "south"
CUSTOM_ROLE = "quality"

ACCESS_REFUSALS = {
    (401, "unauthenticated"),
    (401, "mfa_required"),
    (403, "forbidden"),
    (403, "csrf_token_invalid"),
    (404, "not_found"),
}

_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


Body = Callable[[Env], Any]

EXAMPLE_BODIES: dict[tuple[str, str], Body] = {
    ("POST", "/api/v1/sessions"): lambda env: {"username": "operator", "password": PASSWORD},
    ("POST", "/api/v1/sessions/mfa/verify"): lambda env: {"code": "000000"},
    ("POST", "/api/v1/mfa/enroll"): lambda env: {"password": PASSWORD},
    ("POST", "/api/v1/mfa/confirm"): lambda env: {"code": "000000"},
    ("POST", "/api/v1/mfa/recovery-codes"): lambda env: {"password": PASSWORD},
    ("POST", "/api/v1/users"): lambda env: {
        "username": unique("matrix"),
        "role_id": env.snapshot.role_by_name("admin").id,  # type: ignore[union-attr]
    },
    ("PATCH", "/api/v1/users/{user_id}"): lambda env: {"display_name": "Renamed"},
    ("PUT", "/api/v1/users/{user_id}/role"): lambda env: {
        "role_id": env.snapshot.role_by_name("admin").id  # type: ignore[union-attr]
    },
    ("POST", "/api/v1/roles"): lambda env: {
        "name": unique("matrix-role-"),
        "grants": ["reports.view:team"],
    },
    ("PUT", "/api/v1/roles/{role_id}/grants"): lambda env: {"grants": ["reports.view:team"]},
    ("PUT", "/api/v1/roles/{role_id}/outbound-patterns"): lambda env: {
        "outbound_patterns": ["0X."]
    },
    ("POST", "/api/v1/teams"): lambda env: {"name": unique("matrix-team-")},
    ("PATCH", "/api/v1/teams/{team_id}"): lambda env: {"display_name": "Renamed"},
    ("POST", "/api/v1/queues"): lambda env: {
        "name": unique("matrix-queue-"),
        "number": str(7100 + next(_names)),
        "team_id": next(t.id for t in env.snapshot.teams if t.name == OWN_TEAM),
    },
    ("PATCH", "/api/v1/queues/{queue_id}"): lambda env: {"service_level_seconds": 30},
    ("POST", "/api/v1/trunks"): lambda env: {
        "name": unique("matrix-trunk-"),
        "host": "sip.carrier.example",
    },
    ("PATCH", "/api/v1/trunks/{trunk_id}"): lambda env: {"port": 5080},
    ("POST", "/api/v1/sign-in-networks"): lambda env: {
        "network": "198.51.100.0/24",
        "role_id": env.snapshot.role_by_name(CUSTOM_ROLE).id,  # type: ignore[union-attr]
    },
    ("POST", "/api/v1/audit/verify"): lambda env: {},
    # Signing out an agent who is offline changes nothing: it succeeds every time.
    ("POST", "/api/v1/agents/me/state"): lambda env: {"state": "offline"},
    ("POST", "/api/v1/agents/{user_id}/state"): lambda env: {"state": "offline"},
    ("POST", "/api/v1/recordings/{recording_id}/play"): lambda env: {"reason": "QA #1"},
    ("POST", "/api/v1/recordings/{recording_id}/download"): lambda env: {"reason": "QA #1"},
    ("POST", "/api/v1/recordings/{recording_id}/notes"): lambda env: {"text": "matrix note"},
    ("PUT", "/api/v1/recordings/{recording_id}/tags"): lambda env: {"tag": "matrix"},
    ("POST", "/api/v1/recordings/{recording_id}/holds"): lambda env: {"reason": "case 1"},
    # Never allowed to a built-in role (recordings.delete is given deliberately).
    ("DELETE", "/api/v1/recordings/{recording_id}"): lambda env: {"reason": "erasure"},
    ("POST", "/api/v1/legal-holds"): lambda env: {
        "target_kind": "call",
        "target_id": "call-1",
        "reason": "case 1",
    },
    ("POST", "/api/v1/legal-holds/release"): lambda env: {"hold_id": 1, "reason": "closed"},
    ("PUT", "/api/v1/retention-policies"): lambda env: {"scope": "default", "days": 30},
    ("POST", "/sign-in/qr"): lambda env: {"uri": "otpauth://totp/callwarden:operator?secret=AB"},
    ("POST", "/api/v1/monitoring"): lambda env: {
        "call_id": monitoring_world(env).call_ids[OWN_TEAM],
        "mode": "listen",
        "reason": "matrix QA-1",
    },
    ("PATCH", "/api/v1/monitoring/{monitoring_id}"): lambda env: {"mode": "whisper"},
    # On-demand calls: the first allowed case starts the recording, the others find it running.
    ("PUT", "/api/v1/calls/{call_id}/recording"): lambda env: {"state": "recording"},
    ("PUT", "/api/v1/calls/{call_id}/disposition"): lambda env: {
        "code": "resolved",
        "note": "matrix note",
    },
    ("PUT", "/api/v1/supervision/calls/{call_id}/recording"): lambda env: {
        "state": "recording",
        "reason": "customer agreed",
    },
}
"""A valid body for every route that takes one: the success cases must really succeed. A new
route with a body needs an entry here (the matrix fails and says so)."""


def matrix_queue(env: Env, team: str) -> int:
    """The id of the queue of `team` the matrix uses, provisioned if it is not there."""
    name = f"matrix-{team}"
    queue = env.snapshot.queue_by_name(name)
    if queue is None:
        number = "7001" if team == OWN_TEAM else "7002"
        Provisioner(env.database.sessions, REALM, password_hasher=cheap_hasher()).apply_document(
            {"queues": [{"name": name, "number": number, "team": team}]}, "matrix"
        )
        queue = env.services.directory.reload().queue_by_name(name)
        assert queue is not None
    return int(queue.id)


def matrix_trunk(env: Env) -> int:
    """The trunk the matrix uses, provisioned if it is not there."""
    trunk = env.snapshot.trunk_by_name("matrix-carrier")
    if trunk is None:
        Provisioner(env.database.sessions, REALM, password_hasher=cheap_hasher()).apply_document(
            {"trunks": [{"name": "matrix-carrier", "host": "sip.matrix.example"}]}, "matrix"
        )
        trunk = env.services.directory.reload().trunk_by_name("matrix-carrier")
        assert trunk is not None
    return int(trunk.id)


def matrix_network(env: Env) -> int:
    """A sign-in network (of the custom role nobody in the matrix holds), added if none is."""
    policy = NetworkPolicy(env.database.sessions)
    rules = policy.list_all()
    if rules:
        return rules[0].id
    role = env.snapshot.role_by_name(CUSTOM_ROLE)
    assert role is not None
    return policy.add("203.0.113.0/24", role_id=role.id).id


def matrix_queues(env: Env) -> None:
    """The objects of the routes the matrix walks that the organisation does not have: queues
    of both teams, a trunk and a sign-in network, made now if they are not there."""
    matrix_queue(env, OWN_TEAM)
    matrix_queue(env, OTHER_TEAM)
    matrix_trunk(env)
    matrix_network(env)


def monitoring_world(env: Env) -> MonitoringWorld:
    assert env.monitoring is not None
    return env.monitoring


@dataclass(frozen=True)
class Case:
    route: BaseRoute
    access: Access
    method: str
    caller: Caller
    placement: Placement

    @property
    def path_template(self) -> str:
        return str(getattr(self.route, "path", ""))

    def __str__(self) -> str:
        return f"{self.method} {self.path_template} as {self.caller.value}, {self.placement.value}"


def undeclared_routes(app: FastAPI) -> list[str]:
    """Every route of the application without an access declaration."""
    found = []
    for route in app.routes:
        if route_access(route) is None:
            methods = sorted(getattr(route, "methods", None) or ["WEBSOCKET"])
            found.append(f"{methods} {getattr(route, 'path', route)}")
    return found


def _path_parameter(route: BaseRoute) -> str | None:
    names = list(getattr(route, "param_convertors", {}))
    assert len(names) <= 1, f"{route}: the matrix knows routes with at most one path parameter"
    return names[0] if names else None


def cases(app: FastAPI) -> Iterator[Case]:
    for route in app.routes:
        access = route_access(route)
        if access is None:
            continue
        methods = sorted(route.methods or ()) if isinstance(route, APIRoute) else ["WEBSOCKET"]
        parameter = _path_parameter(route)
        placements = (
            [Placement.NONE]
            if parameter is None
            else [Placement.OWN_TEAM]
            if parameter == "role_id"
            else [Placement.OWN_TEAM, Placement.OTHER_TEAM]
        )
        for method, caller, placement in itertools.product(methods, Caller, placements):
            yield Case(route, access, method, caller, placement)


def path_value(
    env: Env, parameter: str, placement: Placement, own_session: int | None
) -> int | str:
    own = placement is Placement.OWN_TEAM
    if parameter == "asset_path":  # the static files of the pages
        return "css/app.css" if own else "js/common.js"
    if parameter == "recording_id":
        assert env.recordings is not None
        return env.recordings.by_team[OWN_TEAM if own else OTHER_TEAM].id
    if parameter == "monitoring_id":  # a session on a call of the team (the supervisor's own)
        return monitoring_world(env).session_ids[OWN_TEAM if own else OTHER_TEAM]
    if parameter == "call_id":  # a recorded live call: the operator's own, or south's
        assert env.live_recording is not None
        return env.live_recording.call_ids[OWN_TEAM if own else OTHER_TEAM]
    if parameter == "token":  # a playback link of the right shape that nobody was given
        return "A" * 24 + "." + "B" * 43
    if parameter == "user_id":
        return env.user(OWN_USER if own else OTHER_USER).id
    if parameter == "team_id":
        team = env.snapshot.teams
        return next(t.id for t in team if t.name == (OWN_TEAM if own else OTHER_TEAM))
    if parameter == "queue_id":  # made again after a case deleted it
        return matrix_queue(env, OWN_TEAM if own else OTHER_TEAM)
    if parameter == "network_id":  # likewise
        return matrix_network(env)
    if parameter == "trunk_id":  # likewise
        return matrix_trunk(env)
    if parameter == "role_id":
        role = env.snapshot.role_by_name(CUSTOM_ROLE)
        assert role is not None
        return role.id
    if parameter == "session_id":
        if own:
            assert own_session is not None
            return own_session
        return int(env.sign_in_directly(OTHER_USER).session.id)
    raise AssertionError(f"the matrix does not know path parameter {parameter!r}")


@dataclass(frozen=True)
class Expected:
    """`status` exactly, or (status None) any answer but an access refusal."""

    status: int | None
    error_id: str | None = None

    def met_by(self, status: int, error_id: str | None) -> bool:
        if self.status is None:
            return status < 500 and (status, error_id) not in ACCESS_REFUSALS
        if self.status == 200:
            return 200 <= status < 300
        return status == self.status and error_id == self.error_id

    def __str__(self) -> str:
        if self.status is None:
            return "past the guard"
        return "2xx" if self.status == 200 else f"{self.status} {self.error_id}"


def expected(env: Env, case: Case, path_params: dict[str, str]) -> Expected:
    access = case.access
    if access.kind is AccessKind.PUBLIC:
        return Expected(None)
    if case.caller is Caller.ANONYMOUS:
        return Expected(401, "unauthenticated")
    if case.caller is Caller.MFA_PENDING and access.kind is not AccessKind.SESSION_STEP:
        return Expected(401, "mfa_required")
    if access.kind is AccessKind.SELF_SERVICE:
        if "session_id" in path_params and case.placement is Placement.OTHER_TEAM:
            return Expected(404, "session_not_found")  # another user's session: not theirs
        return Expected(None)
    if access.kind is AccessKind.SESSION_STEP:
        return Expected(None)
    assert access.permission is not None and access.resource_kind is not None
    username = case.caller.username
    assert username is not None
    principal = env.snapshot.principal_for(env.user(username))
    if access.target is not None:
        resource = access.target.resolve(env.snapshot, path_params).resource
    elif access.own:
        resource = own_target(env.user(username), access.resource_kind).resource
    else:
        resource = Resource.global_resource(access.resource_kind)
    decision = authorize(principal, access.permission, resource)
    return {
        Decision.ALLOW: Expected(200),
        Decision.DENY_NOT_FOUND: Expected(404, "not_found"),
        Decision.DENY_FORBIDDEN: Expected(403, "forbidden"),
    }[decision]


def session_for(env: Env, caller: Caller) -> IssuedSession | None:
    if caller.username is None:
        return None
    return env.sign_in_directly(caller.username, mfa_complete=caller is not Caller.MFA_PENDING)


async def send(
    env: Env, case: Case, session: IssuedSession | None, path: str
) -> tuple[int, str | None]:
    key = (case.method, case.path_template)
    body = EXAMPLE_BODIES[key](env) if key in EXAMPLE_BODIES else None
    async with env.client(session) as client:
        response = await client.request(case.method, path, json=body)
    # A page's refusal is a page; it names its error in a header (callwarden.web.pages.routing).
    error_id = response.headers.get("x-callwarden-error")
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        error_id = response.json().get("error_id")
    return response.status_code, error_id


def needs_body(route: BaseRoute) -> bool:
    return isinstance(route, APIRoute) and route.body_field is not None


def fill(path_template: str, parameter: str | None, value: int | str | None) -> str:
    if parameter is None:
        return path_template
    return re.sub(r"\{" + parameter + r"(:[a-z]+)?\}", str(value), path_template)


def is_websocket(route: BaseRoute) -> bool:
    return isinstance(route, GuardedWebSocketRoute)


def response_summary(response: httpx.Response) -> str:
    return f"{response.status_code} {response.text[:200]}"
