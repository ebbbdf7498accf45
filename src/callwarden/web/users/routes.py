"""`/api/v1/users`: each route needs `users.manage` on the user concerned (or on users at
large, for the list and for creation)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status

from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind
from callwarden.web import targets
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, require
from callwarden.web.schemas import Page
from callwarden.web.services import app_part
from callwarden.web.users.schemas import (
    MfaResetView,
    NewUser,
    RoleChange,
    UserListParameters,
    UserPatch,
    UserView,
)
from callwarden.web.users.service import UserAdmin

router = APIRouter(prefix=f"{API_PREFIX}/users", tags=["users"], route_class=GuardedRoute)

ManageUsers = Annotated[Caller, require(Permission.USERS_MANAGE, kind=ResourceKind.USER)]
ManageUser = Annotated[Caller, require(Permission.USERS_MANAGE, target=targets.USER)]
UserIdPath = Annotated[int, Path(ge=1, le=targets.MAX_ID)]


def _admin(request: Request) -> UserAdmin:
    return app_part(request, UserAdmin)


Admin = Annotated[UserAdmin, Depends(_admin)]


@router.get("", summary="List users (filter, sort, page)")
async def list_users(
    caller: ManageUsers, admin: Admin, query: UserListParameters
) -> Page[UserView]:
    return await admin.list(caller, query)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a user")
async def create_user(caller: ManageUsers, admin: Admin, body: NewUser) -> UserView:
    return await admin.create(caller, body)


@router.get("/{user_id}", summary="Read a user")
async def get_user(caller: ManageUser, admin: Admin, user_id: UserIdPath) -> UserView:
    return admin.get(caller)


@router.patch("/{user_id}", summary="Change a user's names, team, numbers or credentials")
async def update_user(
    caller: ManageUser, admin: Admin, user_id: UserIdPath, body: UserPatch
) -> UserView:
    return await admin.update(caller, body)


@router.put("/{user_id}/role", summary="Give a user another role (only one you may grant)")
async def change_role(
    caller: ManageUser, admin: Admin, user_id: UserIdPath, body: RoleChange
) -> UserView:
    return await admin.change_role(caller, body)


@router.post("/{user_id}/disable", summary="Disable a user and end all their sessions at once")
async def disable_user(caller: ManageUser, admin: Admin, user_id: UserIdPath) -> UserView:
    return await admin.set_enabled(caller, enabled=False)


@router.post("/{user_id}/enable", summary="Enable a user again")
async def enable_user(caller: ManageUser, admin: Admin, user_id: UserIdPath) -> UserView:
    return await admin.set_enabled(caller, enabled=True)


@router.post(
    "/{user_id}/mfa/reset",
    summary="Remove a user's second factor (lost phone); they enrol again at next sign-in",
)
async def reset_mfa(caller: ManageUser, admin: Admin, user_id: UserIdPath) -> MfaResetView:
    return MfaResetView(user_id=user_id, had_mfa=await admin.reset_mfa(caller))
