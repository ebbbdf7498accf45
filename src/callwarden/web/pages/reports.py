"""`/reports`: the ACD's figures per queue, team or operator and period, drawn in the browser
from `GET /api/v1/reports` (charts as SVG, tables, CSV download). Declared with the API's own
permission (`reports.view`, any scope), so whoever opens the page gets figures from the API,
limited there to what they may see."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from callwarden.acd.statistics import Dimension, Interval
from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind
from callwarden.web.access import Caller, require
from callwarden.web.dispositions.store import DispositionStore
from callwarden.web.pages.render import PageRenderer, script_json
from callwarden.web.pages.routing import PageRoute
from callwarden.web.services import app_part, services_of

router = APIRouter(route_class=PageRoute, include_in_schema=False)

ViewReports = Annotated[
    Caller, require(Permission.REPORTS_VIEW, kind=ResourceKind.REPORT, own=True)
]


async def _renderer(request: Request) -> PageRenderer:
    return app_part(request, PageRenderer)


Renderer = Annotated[PageRenderer, Depends(_renderer)]


@router.get("/reports")
async def reports_page(caller: ViewReports, request: Request, renderer: Renderer) -> Response:
    services = services_of(request)
    codes = await asyncio.to_thread(DispositionStore(services.database).codes)
    language = renderer.catalog(request).language
    context = {
        "dimensions": [dimension.value for dimension in Dimension],
        "intervals": [interval.value for interval in Interval],
        "dispositions_json": script_json({code.code: code.label(language) for code in codes}),
    }
    return renderer.render(
        request, "reports.html", caller, title_key="reports.title", context=context
    )
