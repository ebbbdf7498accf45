"""Who may call a route: each route declares exactly one `Access`, and the declaration is what
runs.

Four kinds of declaration, made with these functions in a route's signature or `dependencies`:

- `public(why)`: no session needed (health, metrics, the OpenAPI document, the sign-in step);
- `session_step()`: any live session, MFA done or not: the MFA step itself and sign-out;
- `self_service()`: a fully signed-in session (MFA done where required), acting only on the
  caller's own data (own sessions, own MFA, the live connection);
- `require(Permission.X, target=...)`: a fully signed-in session whose principal the policy
  allows `X` on the route's object (`target` finds it from the path; with `own=True` it is the
  caller's own object of `kind`, e.g. their agent state; without either the object is a global
  resource of `kind`). This is `authorize()` and nothing else: an object the caller
  cannot see is 404, a visible one they may not touch 403, and each denial is audited.

`GuardedRoute` runs the route's declaration before anything else happens to the request (before
its body is read or validated), so an unauthenticated caller learns nothing from 422s. It also
publishes the declaration (`route_access(route)`, and `x-callwarden-access` in the OpenAPI
document), so the access-matrix test can walk the routes of the running application; a route
with no declaration has `route_access(route) is None` and fails that test; a route with two is
refused when it is built.

State-changing methods need the session's CSRF token in the `X-CSRF-Token` header; WebSocket
handshakes need an allowed `Origin` instead (ASVS V3.5.1, V4.4.2).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import DomainError, Forbidden, JsonValue
from callwarden.domain.models import User
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import (
    Principal,
    Resource,
    ResourceKind,
    authorize,
    raise_for,
)
from callwarden.security.audit import AuditAction, AuditActor, AuditEvent, AuditOutcome
from callwarden.security.login import MfaRequired
from callwarden.security.sessions import WebSession
from callwarden.web.errors import Unauthenticated
from callwarden.web.services import WebServices, services_of

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
SESSION_COOKIE = "__Host-callwarden_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CALLER_STATE_KEY = "callwarden_caller"
ACCESS_OPENAPI_KEY = "x-callwarden-access"


class AccessKind(enum.Enum):
    PUBLIC = "public"
    SESSION_STEP = "session_step"
    SELF_SERVICE = "self_service"
    PERMISSION = "permission"


@dataclass(frozen=True)
class TargetFound:
    """The object a route acts on, as the policy sees it, and how to name it in messages."""

    resource: Resource
    what: str
    object_id: str


TargetResolver = Callable[[DirectorySnapshot, Mapping[str, Any]], TargetFound]


@dataclass(frozen=True)
class Target:
    """How a route finds its object from the path: `resolve` raises `not_found` (the same
    words the policy uses for invisible objects) or `ValidationFailed` for a malformed id."""

    kind: ResourceKind
    path_parameter: str
    resolve: TargetResolver


@dataclass(frozen=True)
class Access:
    """One route's declaration."""

    kind: AccessKind
    permission: Permission | None = None
    resource_kind: ResourceKind | None = None
    target: Target | None = None
    note: str = ""
    own: bool = False

    def describe(self) -> dict[str, str | None]:
        return {
            "kind": self.kind.value,
            "permission": None if self.permission is None else self.permission.value,
            "resource": None if self.resource_kind is None else self.resource_kind.value,
            "target": "own"
            if self.own
            else None
            if self.target is None
            else self.target.path_parameter,
            "note": self.note or None,
        }


@dataclass(frozen=True)
class Caller:
    """Who is calling, as established by the route's guard (None parts for public routes)."""

    session: WebSession
    user: User
    principal: Principal
    source_address: str | None
    target: TargetFound | None = None

    @property
    def actor(self) -> AuditActor:
        return AuditActor.user(self.user.id, self.user.username)

    def succeeded(
        self, action: str, object_kind: str, object_id: int, details: Mapping[str, JsonValue]
    ) -> AuditEvent:
        """The audit entry of a change this caller made to one object of the configuration."""
        return AuditEvent(
            action=action,
            actor=self.actor,
            outcome=AuditOutcome.SUCCESS,
            object_kind=object_kind,
            object_id=object_id,
            source_address=self.source_address,
            details=details,
        )


def source_address(connection: HTTPConnection) -> str | None:
    client = connection.client
    return None if client is None else client.host


class AccessGuard:
    """The dependency a declaration makes; `GuardedRoute` runs it before the request body."""

    def __init__(self, access: Access) -> None:
        self.access = access

    def __repr__(self) -> str:
        return f"AccessGuard({self.access.describe()})"

    async def __call__(self, connection: HTTPConnection) -> Caller | None:
        state = connection.scope.setdefault("state", {})
        if CALLER_STATE_KEY in state:
            cached: Caller | None = state[CALLER_STATE_KEY]
            return cached
        caller = await self.check(connection)
        state[CALLER_STATE_KEY] = caller
        return caller

    async def check(self, connection: HTTPConnection) -> Caller | None:
        access = self.access
        if access.kind is AccessKind.PUBLIC:
            return None
        services = services_of(connection)
        if connection.scope["type"] == "websocket":
            check_origin(services, connection)
        found = await asyncio.to_thread(
            services.login.authenticate, connection.cookies.get(SESSION_COOKIE)
        )
        if found is None:
            raise Unauthenticated("sign in first")
        session = found.session
        if (
            connection.scope["type"] == "http"
            and connection.scope["method"] not in SAFE_METHODS
            and not (session.csrf_matches(connection.headers.get(CSRF_HEADER)))
        ):
            await _audit_denial(services, connection, session, None, access, "csrf_token_invalid")
            raise Forbidden(f"missing or wrong {CSRF_HEADER} header", error_id="csrf_token_invalid")
        if access.kind is not AccessKind.SESSION_STEP and isinstance(found, MfaRequired):
            await _audit_denial(services, connection, session, None, access, "mfa_required")
            raise Unauthenticated(
                "complete the MFA step first",
                error_id="mfa_required",
                details={"enrolment_needed": found.enrolment_needed},
            )
        snapshot = services.directory.snapshot
        user = snapshot.user(session.user_id)
        if user is None or not user.enabled:
            raise Unauthenticated("sign in first")
        caller = Caller(
            session=session,
            user=user,
            principal=snapshot.principal_for(user),
            source_address=source_address(connection),
        )
        if access.kind is AccessKind.PERMISSION:
            caller = await self._authorize(services, connection, snapshot, caller)
        return caller

    async def _authorize(
        self,
        services: WebServices,
        connection: HTTPConnection,
        snapshot: DirectorySnapshot,
        caller: Caller,
    ) -> Caller:
        access = self.access
        assert access.permission is not None and access.resource_kind is not None
        if access.target is not None:
            found = access.target.resolve(snapshot, connection.path_params)
        elif access.own:
            found = own_target(caller.user, access.resource_kind)
        else:
            found = TargetFound(Resource.global_resource(access.resource_kind), "", "")
        decision = authorize(caller.principal, access.permission, found.resource)
        if not decision.allowed:
            await _audit_denial(
                services, connection, caller.session, caller.user, access, decision.value, found
            )
            raise_for(decision, found.what or access.resource_kind.value)
        return Caller(
            session=caller.session,
            user=caller.user,
            principal=caller.principal,
            source_address=caller.source_address,
            target=found if access.target is not None or access.own else None,
        )


def own_target(user: User, kind: ResourceKind) -> TargetFound:
    """The caller's own object of `kind` (owned by them, in their team)."""
    resource = Resource.of(kind, owner=user.id, team=user.team_id)
    return TargetFound(resource, f"own {kind.value}", str(user.id))


def established_caller(connection: HTTPConnection) -> Caller:
    """The caller a route's guard established for this request or handshake."""
    caller = connection.scope.get("state", {}).get(CALLER_STATE_KEY)
    if not isinstance(caller, Caller):
        raise Unauthenticated("sign in first")
    return caller


def check_origin(services: WebServices, connection: HTTPConnection) -> None:
    """A WebSocket handshake must come from an allowed origin (cross-site WebSocket
    hijacking, ASVS V4.4.2): a missing `Origin` is refused too."""
    origin = connection.headers.get("origin")
    if origin is None or origin.rstrip("/") not in services.settings.allowed_origins:
        raise Forbidden("this origin may not open a live connection", error_id="origin_refused")


async def _audit_denial(
    services: WebServices,
    connection: HTTPConnection,
    session: WebSession,
    user: User | None,
    access: Access,
    decision: str,
    found: TargetFound | None = None,
) -> None:
    """Record a refusal; a log that cannot be written does not turn a denial into a 500."""
    snapshot_user = user or services.directory.snapshot.user(session.user_id)
    actor = (
        AuditActor.user(snapshot_user.id, snapshot_user.username)
        if snapshot_user is not None
        else AuditActor.anonymous()
    )
    route = connection.scope.get("route")
    event = AuditEvent(
        action=AuditAction.PERMISSION_DENIED,
        actor=actor,
        outcome=AuditOutcome.DENIED,
        object_kind=None if found is None else found.resource.kind.value,
        object_id=None if found is None or not found.object_id else found.object_id,
        source_address=source_address(connection),
        details={
            "decision": decision,
            "permission": None if access.permission is None else access.permission.value,
            "method": connection.scope.get("method", "WEBSOCKET"),
            "route": getattr(route, "path", connection.url.path),
            "session": int(session.id),
        },
    )
    await services.audit.record_quietly(event)


# declarations


def _declare(access: Access) -> params.Depends:
    return params.Depends(AccessGuard(access))


def public(note: str) -> params.Depends:
    """No session needed; `note` says why (it is shown in the OpenAPI document)."""
    return _declare(Access(AccessKind.PUBLIC, note=note))


def session_step(note: str = "") -> params.Depends:
    """Any live session, also one still waiting for its MFA step."""
    return _declare(Access(AccessKind.SESSION_STEP, note=note))


def self_service(note: str = "") -> params.Depends:
    """A fully signed-in session acting on the caller's own data only."""
    return _declare(Access(AccessKind.SELF_SERVICE, note=note))


def require(
    permission: Permission,
    *,
    kind: ResourceKind | None = None,
    target: Target | None = None,
    own: bool = False,
) -> params.Depends:
    """The one permission a route needs, checked by `authorize` against the route's object
    (`target`), the caller's own object of `kind` (`own=True`) or, without either, against a
    global resource of `kind`."""
    if (kind is None) == (target is None):
        raise ValueError("require() needs exactly one of kind= or target=")
    if own and target is not None:
        raise ValueError("require(own=True) takes kind=, not target=")
    resource_kind = target.kind if target is not None else kind
    return _declare(
        Access(
            AccessKind.PERMISSION,
            permission=permission,
            resource_kind=resource_kind,
            target=target,
            own=own,
        )
    )


# routes


def _guards(dependant: Dependant) -> Iterator[AccessGuard]:
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, AccessGuard):
            yield dependency.call
        yield from _guards(dependency)


def _single_guard(route_path: str, dependant: Dependant) -> AccessGuard | None:
    found = {id(guard): guard for guard in _guards(dependant)}
    if len(found) > 1:
        raise ValueError(f"route {route_path} declares {len(found)} accesses; declare exactly one")
    return next(iter(found.values()), None)


class GuardedRoute(APIRoute):
    """An API route whose access declaration runs first and is published."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self.access_guard = _single_guard(self.path, self.dependant)
        if self.access_guard is not None:
            extra = dict(self.openapi_extra or {})
            extra[ACCESS_OPENAPI_KEY] = self.access_guard.access.describe()
            self.openapi_extra = extra

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            guard = self.access_guard
            if guard is not None:
                await guard(request)
            return await handler(request)

        return guarded


WEBSOCKET_CLOSE_UNAUTHENTICATED = 4401
WEBSOCKET_CLOSE_FORBIDDEN = 4403


class GuardedWebSocketRoute(APIWebSocketRoute):
    """A WebSocket route whose declaration runs before the handshake is accepted; a refusal
    closes the handshake (an HTTP 403 to the client) and is not an exception."""

    def __init__(self, path: str, endpoint: Callable[..., Any], access: Access) -> None:
        super().__init__(path, endpoint, dependencies=[_declare(access)])
        self.access_guard = _single_guard(self.path, self.dependant)
        inner = self.app

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            websocket = WebSocket(scope, receive, send)
            guard = self.access_guard
            if guard is not None:
                try:
                    await guard(websocket)
                except DomainError as error:
                    code = (
                        WEBSOCKET_CLOSE_UNAUTHENTICATED
                        if isinstance(error, Unauthenticated)
                        else WEBSOCKET_CLOSE_FORBIDDEN
                    )
                    logger.info("live connection refused: %s", error.error_id)
                    await websocket.close(code=code, reason=error.error_id)
                    return
            await inner(scope, receive, send)

        self.app = app


def route_access(route: BaseRoute) -> Access | None:
    """The declaration of a route of the application, or None if it has none."""
    guard = getattr(route, "access_guard", None)
    return guard.access if isinstance(guard, AccessGuard) else None
