"""`/api/v1/trunks`: `trunks.manage` (held at scope `all` only) for every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind
from callwarden.web import targets
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, require
from callwarden.web.services import app_part
from callwarden.web.trunks.schemas import NewTrunk, TrunkList, TrunkPatch, TrunkView
from callwarden.web.trunks.service import TrunkAdmin

router = APIRouter(prefix=f"{API_PREFIX}/trunks", tags=["trunks"], route_class=GuardedRoute)

ManageTrunks = Annotated[Caller, require(Permission.TRUNKS_MANAGE, kind=ResourceKind.TRUNK)]
ManageTrunk = Annotated[Caller, require(Permission.TRUNKS_MANAGE, target=targets.TRUNK)]
TrunkIdPath = Annotated[int, Path(ge=1, le=targets.MAX_ID)]


def _admin(request: Request) -> TrunkAdmin:
    return app_part(request, TrunkAdmin)


Admin = Annotated[TrunkAdmin, Depends(_admin)]


@router.get("", summary="List trunks (passwords are never shown)")
async def list_trunks(caller: ManageTrunks, admin: Admin) -> TrunkList:
    return admin.list()


@router.post("", status_code=status.HTTP_201_CREATED, summary="Add a trunk")
async def create_trunk(caller: ManageTrunks, admin: Admin, body: NewTrunk) -> TrunkView:
    return await admin.create(caller, body)


@router.get("/{trunk_id}", summary="Read a trunk")
async def get_trunk(caller: ManageTrunk, admin: Admin, trunk_id: TrunkIdPath) -> TrunkView:
    return admin.get(caller)


@router.patch("/{trunk_id}", summary="Change a trunk: host, numbers, outbound routes, ...")
async def update_trunk(
    caller: ManageTrunk, admin: Admin, trunk_id: TrunkIdPath, body: TrunkPatch
) -> TrunkView:
    return await admin.update(caller, body)


@router.delete("/{trunk_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a trunk")
async def delete_trunk(caller: ManageTrunk, admin: Admin, trunk_id: TrunkIdPath) -> Response:
    await admin.delete(caller)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
