"""`/api/v1/roles`: each route needs `roles.manage` (roles are global objects)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status

from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind
from callwarden.web import targets
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, require
from callwarden.web.roles.schemas import (
    GrantsChange,
    NewRole,
    PatternsChange,
    RoleListParameters,
    RoleView,
)
from callwarden.web.roles.service import RoleAdmin
from callwarden.web.schemas import Page
from callwarden.web.services import app_part

router = APIRouter(prefix=f"{API_PREFIX}/roles", tags=["roles"], route_class=GuardedRoute)

ManageRoles = Annotated[Caller, require(Permission.ROLES_MANAGE, kind=ResourceKind.ROLE)]
ManageRole = Annotated[Caller, require(Permission.ROLES_MANAGE, target=targets.ROLE)]
RoleIdPath = Annotated[int, Path(ge=1, le=targets.MAX_ID)]


def _admin(request: Request) -> RoleAdmin:
    return app_part(request, RoleAdmin)


Admin = Annotated[RoleAdmin, Depends(_admin)]


@router.get("", summary="List roles")
async def list_roles(
    caller: ManageRoles, admin: Admin, query: RoleListParameters
) -> Page[RoleView]:
    return admin.list(caller, query)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a custom role")
async def create_role(caller: ManageRoles, admin: Admin, body: NewRole) -> RoleView:
    return await admin.create(caller, body)


@router.get("/{role_id}", summary="Read a role")
async def get_role(caller: ManageRole, admin: Admin, role_id: RoleIdPath) -> RoleView:
    return admin.get(caller)


@router.put("/{role_id}/grants", summary="Replace a custom role's grants (only ones you hold)")
async def change_grants(
    caller: ManageRole, admin: Admin, role_id: RoleIdPath, body: GrantsChange
) -> RoleView:
    return await admin.change_grants(caller, body)


@router.put(
    "/{role_id}/outbound-patterns",
    summary="Replace a role's outbound allow-list (the numbers its members may call out to)",
)
async def change_patterns(
    caller: ManageRole, admin: Admin, role_id: RoleIdPath, body: PatternsChange
) -> RoleView:
    return await admin.change_patterns(caller, body)
