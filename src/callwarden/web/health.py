"""What monitoring reads: `/healthz` (is the node up, how many calls and registrations) and
`/metrics` (Prometheus text format). Both are public and expose counts only: never a user, a
number or a call. Also the OpenAPI document of the API, public as well."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from callwarden.web.access import API_PREFIX, GuardedRoute, public
from callwarden.web.services import NodeStatus, WebServices

OPENAPI_PATH = f"{API_PREFIX}/openapi.json"


def health_router(services: WebServices) -> APIRouter:
    router = APIRouter(route_class=GuardedRoute, tags=["health"])
    registry = CollectorRegistry()
    calls = Gauge("callwarden_active_calls", "Calls in progress", registry=registry)
    phones = Gauge("callwarden_registered_phones", "Live SIP registrations", registry=registry)
    endpoints = Gauge("callwarden_media_endpoints", "Open RTP endpoints", registry=registry)

    @router.get("/healthz", dependencies=[public("liveness probe: counts only")])
    async def healthz() -> dict[str, object]:
        current: NodeStatus = await services.status()
        return {
            "status": "ok",
            "active_calls": current.active_calls,
            "registered_phones": current.registered_phones,
        }

    @router.get("/metrics", dependencies=[public("Prometheus scrape: counts only")])
    async def metrics() -> Response:
        current = await services.status()
        calls.set(current.active_calls)
        phones.set(current.registered_phones)
        endpoints.set(current.media_endpoints)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def openapi_router(document: Callable[[], dict[str, Any]]) -> APIRouter:
    router = APIRouter(route_class=GuardedRoute)

    @router.get(
        OPENAPI_PATH,
        include_in_schema=False,
        dependencies=[public("the API's description is no secret")],
    )
    async def openapi() -> dict[str, Any]:
        return document()

    return router
