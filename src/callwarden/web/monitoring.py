"""`/api/v1/monitoring`: start, switch and end live monitoring of a call (docs/monitoring.md).

- `GET` lists the sessions on calls the caller may monitor;
- `POST {call_id, mode, reason}` starts a session: callwarden rings the caller's own registered
  phone and joins it to the call's bridge (201 at once, `state: ringing`, then `joined`);
- `PATCH /{monitoring_id} {mode}` switches the mode of one's own session;
- `DELETE /{monitoring_id}` ends a session (the call goes on).

Every route declares `monitor.listen` (the least of the monitoring permissions): for `POST`
and `GET` on one's own scope (whether one monitors at all), for `PATCH` and `DELETE` on the
session's call. The permission of the mode asked for (`monitor.whisper`, ...) is then checked
on the call itself by the monitoring service, which audits every refusal: another team's call
reads as not found, whether it exists or not.
"""

# No `from __future__ import annotations`: the routes are made inside `monitoring_router` and
# their annotations name its local declarations, which FastAPI must see as objects.
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import Field, field_validator

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import InvalidState, ValidationFailed
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind, list_scope, not_found
from callwarden.telephony.feature_codes import MonitorMode
from callwarden.telephony.monitor_session import MonitorSession
from callwarden.telephony.monitoring import Asker, MonitoringService
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, Target, TargetFound, require
from callwarden.web.schemas import RequestModel, ResponseModel
from callwarden.web.services import WebServices, services_of

__all__ = ["monitoring_router"]

ModeName = Literal["listen", "whisper", "barge", "takeover"]
MONITORING_ID = re.compile(r"[A-Za-z0-9_-]{16}")
"""A session id as `new_monitoring_id` makes them (12 random bytes, URL-safe base64)."""
MonitoringIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{16}$")]
_WORD = r"[A-Za-z0-9.!%*_+`'~()<>:\\\"/\[\]?{}-]"
CALL_ID = re.compile(rf"{_WORD}{{1,200}}(@{_WORD}{{1,54}})?")
"""A SIP Call-ID (RFC 3261 25.1 `callid`: word ["@" word])."""


class MonitoringUnavailable(InvalidState):
    default_error_id = "monitoring_not_running"


class StartMonitoring(RequestModel):
    call_id: Annotated[str, Field(min_length=1, max_length=255)]
    mode: ModeName
    reason: Annotated[str | None, Field(max_length=500)] = None

    @field_validator("call_id")
    @classmethod
    def _is_call_id(cls, value: str) -> str:
        """A SIP Call-ID, and none that reads as a path (`../`): no such text reaches a lookup."""
        if CALL_ID.fullmatch(value) is None or "../" in value or "/.." in value:
            raise ValueError("must be a SIP Call-ID as the call's events and CDR show it")
        return value


class SwitchMonitoring(RequestModel):
    mode: ModeName


class MonitoringView(ResponseModel):
    id: str
    call_id: str
    supervisor_id: int
    operator_id: int
    mode: str
    state: Literal["ringing", "joined", "ended"]
    via: str
    started_at: datetime
    joined_at: datetime | None
    operator_notified: bool

    @classmethod
    def of(cls, session: MonitorSession) -> "MonitoringView":
        state: Literal["ringing", "joined", "ended"] = (
            "ended"
            if session.ended_at is not None
            else "joined"
            if session.joined_at is not None
            else "ringing"
        )
        return cls(
            id=session.id,
            call_id=session.call.call_id,
            supervisor_id=session.supervisor.id,
            operator_id=session.call.operator_id,
            mode=session.mode.value,
            state=state,
            via=session.via,
            started_at=session.started_at,
            joined_at=session.joined_at,
            operator_notified=session.operator_notified,
        )


class MonitoringList(ResponseModel):
    items: list[MonitoringView]


def _service(services: WebServices) -> MonitoringService:
    service = services.monitoring()
    if service is None:
        raise MonitoringUnavailable("live monitoring is not running on this node")
    return service


def _asker(caller: Caller) -> Asker:
    return Asker(caller.user, caller.principal, caller.source_address, "api")


def _monitoring_target(services: WebServices) -> Target:
    def resolve(snapshot: DirectorySnapshot, path_params: Mapping[str, Any]) -> TargetFound:
        monitoring_id = str(path_params.get("monitoring_id", ""))
        if MONITORING_ID.fullmatch(monitoring_id) is None:
            problem = "must be a monitoring session id (16 letters, digits, '-' or '_')"
            raise ValidationFailed(
                f"monitoring_id: {problem}",
                details={
                    "field": "monitoring_id",
                    "problems": [
                        {"location": "path", "field": "monitoring_id", "problem": problem}
                    ],
                },
            )
        what = f"monitoring {monitoring_id}"
        service = services.monitoring()
        session = None if service is None else service.session_of(monitoring_id)
        if session is None:
            raise not_found(what)
        return TargetFound(session.call.resource, what, monitoring_id)

    return Target(ResourceKind.CALL, "monitoring_id", resolve)


def monitoring_router(services: WebServices) -> APIRouter:
    """The monitoring routes over `services` (their target finds sessions in its service)."""
    router = APIRouter(
        prefix=f"{API_PREFIX}/monitoring", tags=["monitoring"], route_class=GuardedRoute
    )
    session_target = _monitoring_target(services)
    monitors = Annotated[
        Caller, require(Permission.MONITOR_LISTEN, kind=ResourceKind.CALL, own=True)
    ]
    on_session = Annotated[Caller, require(Permission.MONITOR_LISTEN, target=session_target)]

    def service_of(request: Request) -> MonitoringService:
        return _service(services_of(request))

    service_dependency = Annotated[MonitoringService, Depends(service_of)]

    @router.get("", summary="Monitoring sessions on the calls one may monitor")
    async def list_sessions(caller: monitors, service: service_dependency) -> MonitoringList:
        scope = list_scope(caller.principal, Permission.MONITOR_LISTEN)
        items = [
            MonitoringView.of(session)
            for session in service.sessions.values()
            if scope.admits(session.call.resource)
        ]
        return MonitoringList(items=items)

    @router.post("", status_code=201, summary="Monitor a call from one's own phone")
    async def start(
        caller: monitors, service: service_dependency, body: StartMonitoring
    ) -> MonitoringView:
        session = await service.start(
            _asker(caller), body.call_id, MonitorMode(body.mode), body.reason
        )
        return MonitoringView.of(session)

    def session_of(service: MonitoringService, caller: Caller) -> MonitorSession:
        assert caller.target is not None
        session = service.session_of(caller.target.object_id)
        if session is None:
            raise not_found(caller.target.what)
        return session

    @router.patch("/{monitoring_id}", summary="Switch a monitoring session's mode")
    async def switch(
        caller: on_session,
        service: service_dependency,
        monitoring_id: MonitoringIdPath,
        body: SwitchMonitoring,
    ) -> MonitoringView:
        session = session_of(service, caller)
        await service.switch(_asker(caller), session, MonitorMode(body.mode))
        return MonitoringView.of(session)

    @router.delete("/{monitoring_id}", summary="End a monitoring session (the call goes on)")
    async def end(
        caller: on_session, service: service_dependency, monitoring_id: MonitoringIdPath
    ) -> MonitoringView:
        session = session_of(service, caller)
        service.end(session, f"ended by {caller.user.username} from the API")
        return MonitoringView.of(session)

    return router
