"""`/api/v1/sign-in-networks`: `settings.manage` (held at scope `all` only) for every route."""

from __future__ import annotations

from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind
from callwarden.web.admin_api import AdminRoutes
from callwarden.web.networks.schemas import NetworkList, NetworkView, NewNetwork
from callwarden.web.networks.service import NetworkAdmin

routes = AdminRoutes(
    "network",
    NetworkAdmin,
    Permission.SETTINGS_MANAGE,
    kind=ResourceKind.SETTINGS,
    path="sign-in-networks",
    tag="settings",
)
routes.crud(
    {
        "list": "Sign-in networks (address ranges per role and per team)",
        "create": "Allow a range for a role or team",
        "delete": "Remove a sign-in network",
    },
    view=NetworkView,
    listing=NetworkList,
    new=NewNetwork,
)
router = routes.router
