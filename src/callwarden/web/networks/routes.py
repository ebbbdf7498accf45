"""`/api/v1/sign-in-networks`: `settings.manage` (held at scope `all` only) for every route."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind
from callwarden.web import targets
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, require
from callwarden.web.networks.schemas import NetworkList, NetworkView, NewNetwork
from callwarden.web.networks.service import NetworkAdmin
from callwarden.web.services import app_part

router = APIRouter(
    prefix=f"{API_PREFIX}/sign-in-networks", tags=["settings"], route_class=GuardedRoute
)

ManageSettings = Annotated[Caller, require(Permission.SETTINGS_MANAGE, kind=ResourceKind.SETTINGS)]
NetworkIdPath = Annotated[int, Path(ge=1, le=targets.MAX_ID)]


def _admin(request: Request) -> NetworkAdmin:
    return app_part(request, NetworkAdmin)


Admin = Annotated[NetworkAdmin, Depends(_admin)]


@router.get("", summary="Sign-in networks (address ranges per role and per team)")
async def list_networks(caller: ManageSettings, admin: Admin) -> NetworkList:
    return admin.list()


@router.post("", status_code=status.HTTP_201_CREATED, summary="Allow a range for a role or team")
async def create_network(caller: ManageSettings, admin: Admin, body: NewNetwork) -> NetworkView:
    return await admin.create(caller, body)


@router.delete(
    "/{network_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a sign-in network"
)
async def delete_network(
    caller: ManageSettings, admin: Admin, network_id: NetworkIdPath
) -> Response:
    await admin.delete(caller, network_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
