"""The node's HTTP application: `/healthz`, `/metrics` and the versioned API under `/api/v1`.

`create_app(services)` builds it from a `WebServices` (nothing is created at import time). Each
route declares who may call it (`callwarden.web.access`), errors have one shape and one mapping
(`callwarden.web.errors`), bodies are capped (`callwarden.web.body_limit`), and every answer
carries the security headers (`callwarden.web.headers`). docs/api.md describes the API.

Routes are added to the application's own route list (not through `include_router`), so that
`app.routes` lists every route with its full path: that is what the access-matrix test walks.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from callwarden.web.access import API_PREFIX, GuardedRoute
from callwarden.web.agents.routes import router as agents_router
from callwarden.web.agents.service import AgentDesk
from callwarden.web.audit_log.routes import router as audit_router
from callwarden.web.audit_log.service import AuditApi
from callwarden.web.body_limit import BodyLimitMiddleware
from callwarden.web.desk.call import desk_call_router
from callwarden.web.desk.routes import desk_live_route
from callwarden.web.directory_writes import DirectoryWriter
from callwarden.web.dispositions.routes import disposition_router
from callwarden.web.errors import install_error_handlers
from callwarden.web.headers import SecurityHeadersMiddleware
from callwarden.web.health import health_router, openapi_router
from callwarden.web.live.connections import LiveConnections
from callwarden.web.live.routes import live_route
from callwarden.web.live_recording import live_recording_routers
from callwarden.web.monitoring import monitoring_router
from callwarden.web.networks.routes import router as networks_router
from callwarden.web.networks.service import NetworkAdmin
from callwarden.web.pages import install_pages
from callwarden.web.phone.routes import phone_route
from callwarden.web.queues.routes import router as queues_router
from callwarden.web.queues.service import QueueAdmin
from callwarden.web.recordings import recordings_routers
from callwarden.web.reports.routes import reports_router
from callwarden.web.roles.routes import router as roles_router
from callwarden.web.roles.service import RoleAdmin
from callwarden.web.services import NodeStatus, WebServices, WebSettings, part_name
from callwarden.web.sign_in.routes import mfa as mfa_router
from callwarden.web.sign_in.routes import sessions as sessions_router
from callwarden.web.sign_in.service import SignIn
from callwarden.web.sip_security.routes import router as sip_security_router
from callwarden.web.teams.routes import router as teams_router
from callwarden.web.teams.service import TeamAdmin
from callwarden.web.trunks.routes import router as trunks_router
from callwarden.web.trunks.service import TrunkAdmin
from callwarden.web.users.routes import router as users_router
from callwarden.web.users.service import UserAdmin

__all__ = ["API_PREFIX", "NodeStatus", "WebServices", "WebSettings", "create_app"]

API_VERSION = "1"


def _add_routes(app: FastAPI, router: APIRouter) -> None:
    for route in router.routes:
        if not isinstance(route, GuardedRoute):
            raise TypeError(f"route {route!r} is not a GuardedRoute")
        app.router.routes.append(route)


def create_app(services: WebServices) -> FastAPI:
    """The application over `services`; the live-connection registry it makes listens to
    session revocations for as long as `services.revocations` lives."""
    app = FastAPI(
        title="callwarden",
        version=API_VERSION,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.services = services
    writer = DirectoryWriter(
        services.database,
        services.directory,
        realm=services.realm,
        hasher=services.password_hasher,
        clock=services.clock,
    )
    live = LiveConnections()
    services.revocations.subscribe(live.on_revoked)
    parts: list[Any] = [
        UserAdmin(services, writer),
        RoleAdmin(services, writer),
        TeamAdmin(services, writer),
        QueueAdmin(services, writer),
        NetworkAdmin(services),
        TrunkAdmin(services, writer),
        AuditApi(services),
        AgentDesk(services),
        SignIn(services),
        live,
    ]
    for part in parts:
        setattr(app.state, part_name(type(part)), part)
    install_error_handlers(app)
    for router in (
        health_router(services),
        openapi_router(app.openapi),
        sessions_router,
        mfa_router,
        users_router,
        roles_router,
        teams_router,
        queues_router,
        networks_router,
        trunks_router,
        audit_router,
        agents_router,
        monitoring_router(services),
        *recordings_routers(services),
        *live_recording_routers(services),
        disposition_router(services),
        reports_router(services),
        desk_call_router(services),
        sip_security_router,
    ):
        _add_routes(app, router)
    app.router.routes.append(live_route())
    app.router.routes.append(desk_live_route())
    app.router.routes.append(phone_route())
    install_pages(app, services)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=services.settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    return app
