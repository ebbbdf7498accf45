"""`/api/v1/queues`: each route needs `queues.manage` on the queue concerned (or on queues at
large, for the list and for creation). The permission is held at scope `all` only."""

from __future__ import annotations

from callwarden.domain.permissions import Permission
from callwarden.web import targets
from callwarden.web.admin_api import AdminRoutes
from callwarden.web.queues.schemas import NewQueue, QueueListParameters, QueuePatch, QueueView
from callwarden.web.queues.service import QueueAdmin
from callwarden.web.schemas import Page

routes = AdminRoutes("queue", QueueAdmin, Permission.QUEUES_MANAGE, target=targets.QUEUE)
routes.crud(
    {
        "list": "List queues",
        "create": "Create a queue",
        "get": "Read a queue",
        "update": "Change a queue's settings, members or overflow",
        "delete": "Delete a queue",
    },
    view=QueueView,
    listing=Page[QueueView],
    query=QueueListParameters,
    new=NewQueue,
    patch=QueuePatch,
)
router = routes.router
