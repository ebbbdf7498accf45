"""`/api/v1/roles`: each route needs `roles.manage` (roles are global objects)."""

from __future__ import annotations

from callwarden.domain.permissions import Permission
from callwarden.web import targets
from callwarden.web.admin_api import AdminRoutes
from callwarden.web.roles.schemas import (
    GrantsChange,
    NewRole,
    PatternsChange,
    RoleListParameters,
    RoleView,
)
from callwarden.web.roles.service import RoleAdmin
from callwarden.web.schemas import Page

routes = AdminRoutes("role", RoleAdmin, Permission.ROLES_MANAGE, target=targets.ROLE)
routes.crud(
    {"list": "List roles", "create": "Create a custom role", "get": "Read a role"},
    view=RoleView,
    listing=Page[RoleView],
    query=RoleListParameters,
    new=NewRole,
)
routes.route(
    "PUT",
    "change_grants",
    "Replace a custom role's grants (only ones you hold)",
    RoleAdmin.change_grants,
    one=True,
    path="/grants",
    body=GrantsChange,
    response=RoleView,
)
routes.route(
    "PUT",
    "change_patterns",
    "Replace a role's outbound allow-list (the numbers its members may call out to)",
    RoleAdmin.change_patterns,
    one=True,
    path="/outbound-patterns",
    body=PatternsChange,
    response=RoleView,
)
router = routes.router
