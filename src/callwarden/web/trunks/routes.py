"""`/api/v1/trunks`: `trunks.manage` (held at scope `all` only) for every route."""

from __future__ import annotations

from callwarden.domain.permissions import Permission
from callwarden.web import targets
from callwarden.web.admin_api import AdminRoutes
from callwarden.web.trunks.schemas import NewTrunk, TrunkList, TrunkPatch, TrunkView
from callwarden.web.trunks.service import TrunkAdmin

routes = AdminRoutes("trunk", TrunkAdmin, Permission.TRUNKS_MANAGE, target=targets.TRUNK)
routes.crud(
    {
        "list": "List trunks (passwords are never shown)",
        "create": "Add a trunk",
        "get": "Read a trunk",
        "update": "Change a trunk: host, numbers, outbound routes, ...",
        "delete": "Remove a trunk",
    },
    view=TrunkView,
    listing=TrunkList,
    new=NewTrunk,
    patch=TrunkPatch,
)
router = routes.router
