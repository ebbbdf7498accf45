"""The node's HTTP application.

Issue 2 serves only what monitoring needs: `/healthz` (is the node up, how many calls and
registrations) and `/metrics` (Prometheus text format). Neither exposes a user, a number or a
call: only counts. The versioned API with authorization arrives with the identity issue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest


@dataclass(frozen=True, slots=True)
class NodeStatus:
    active_calls: int
    registered_phones: int
    media_endpoints: int


def create_app(status: Callable[[], Awaitable[NodeStatus]]) -> FastAPI:
    """The FastAPI application; `status` is read at each request."""
    app = FastAPI(title="callwarden", docs_url=None, redoc_url=None, openapi_url=None)
    registry = CollectorRegistry()
    calls = Gauge("callwarden_active_calls", "Calls in progress", registry=registry)
    phones = Gauge("callwarden_registered_phones", "Live SIP registrations", registry=registry)
    endpoints = Gauge("callwarden_media_endpoints", "Open RTP endpoints", registry=registry)

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        current = await status()
        return {
            "status": "ok",
            "active_calls": current.active_calls,
            "registered_phones": current.registered_phones,
        }

    @app.get("/metrics")
    async def metrics() -> Response:
        current = await status()
        calls.set(current.active_calls)
        phones.set(current.registered_phones)
        endpoints.set(current.media_endpoints)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
