"""`/api/v1/audit`: reading needs `audit.view`, exporting `audit.export` (held by no built-in
role: an installation gives it deliberately). The audit log is a global resource."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, require
from callwarden.web.audit_log.schemas import (
    AuditEntryView,
    AuditExportParameters,
    AuditListParameters,
    HeadView,
    VerifyRequest,
    VerifyView,
)
from callwarden.web.audit_log.service import AuditApi
from callwarden.web.services import app_part

router = APIRouter(prefix=f"{API_PREFIX}/audit", tags=["audit"], route_class=GuardedRoute)

ViewAudit = Annotated[Caller, require(Permission.AUDIT_VIEW, kind=ResourceKind.AUDIT_LOG)]
ExportAudit = Annotated[Caller, require(Permission.AUDIT_EXPORT, kind=ResourceKind.AUDIT_LOG)]


def _api(request: Request) -> AuditApi:
    return app_part(request, AuditApi)


Api = Annotated[AuditApi, Depends(_api)]


@router.get("/entries", summary="Query the audit log (the read is itself audited)")
async def query_entries(
    caller: ViewAudit, api: Api, query: AuditListParameters
) -> list[AuditEntryView]:
    return await api.query(caller, query)


@router.post("/verify", summary="Recompute the hash chain, optionally against an exported head")
async def verify(caller: ViewAudit, api: Api, body: VerifyRequest) -> VerifyView:
    return await api.verify(caller, body)


@router.get("/head", summary="The newest entry's hash, to keep outside the database")
async def head(caller: ExportAudit, api: Api) -> HeadView:
    return await api.head(caller)


@router.get(
    "/export",
    summary="Export the entries after a sequence number as newline-delimited JSON",
    response_class=StreamingResponse,
)
async def export(caller: ExportAudit, api: Api, query: AuditExportParameters) -> StreamingResponse:
    lines = await api.export(caller, query.after_sequence)
    return StreamingResponse(lines, media_type="application/x-ndjson")
