"""`/api/v1/users`: each route needs `users.manage` on the user concerned (or on users at
large, for the list and for creation)."""

from __future__ import annotations

from callwarden.domain.permissions import Permission
from callwarden.web import targets
from callwarden.web.admin_api import AdminRoutes
from callwarden.web.schemas import Page
from callwarden.web.users.schemas import (
    MfaResetView,
    NewUser,
    RoleChange,
    UserListParameters,
    UserPatch,
    UserView,
)
from callwarden.web.users.service import UserAdmin

routes = AdminRoutes("user", UserAdmin, Permission.USERS_MANAGE, target=targets.USER)
routes.crud(
    {
        "list": "List users (filter, sort, page)",
        "create": "Create a user",
        "get": "Read a user",
        "update": "Change a user's names, team, numbers or credentials",
    },
    view=UserView,
    listing=Page[UserView],
    query=UserListParameters,
    new=NewUser,
    patch=UserPatch,
)
routes.route(
    "PUT",
    "change_role",
    "Give a user another role (only one you may grant)",
    UserAdmin.change_role,
    one=True,
    path="/role",
    body=RoleChange,
    response=UserView,
)
routes.route(
    "POST",
    "disable_user",
    "Disable a user and end all their sessions at once",
    UserAdmin.disable,
    one=True,
    path="/disable",
    response=UserView,
)
routes.route(
    "POST",
    "enable_user",
    "Enable a user again",
    UserAdmin.enable,
    one=True,
    path="/enable",
    response=UserView,
)
routes.route(
    "POST",
    "reset_mfa",
    "Remove a user's second factor (lost phone); they enrol again at next sign-in",
    UserAdmin.reset_mfa,
    one=True,
    path="/mfa/reset",
    response=MfaResetView,
)
router = routes.router
