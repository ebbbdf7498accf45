"""`/api/v1/queues`: each route needs `queues.manage` on the queue concerned (or on queues at
large, for the list and for creation). The permission is held at scope `all` only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind
from callwarden.web import targets
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, require
from callwarden.web.queues.schemas import NewQueue, QueueListParameters, QueuePatch, QueueView
from callwarden.web.queues.service import QueueAdmin
from callwarden.web.schemas import Page
from callwarden.web.services import app_part

router = APIRouter(prefix=f"{API_PREFIX}/queues", tags=["queues"], route_class=GuardedRoute)

ManageQueues = Annotated[Caller, require(Permission.QUEUES_MANAGE, kind=ResourceKind.QUEUE)]
ManageQueue = Annotated[Caller, require(Permission.QUEUES_MANAGE, target=targets.QUEUE)]
QueueIdPath = Annotated[int, Path(ge=1, le=targets.MAX_ID)]


def _admin(request: Request) -> QueueAdmin:
    return app_part(request, QueueAdmin)


Admin = Annotated[QueueAdmin, Depends(_admin)]


@router.get("", summary="List queues")
async def list_queues(
    caller: ManageQueues, admin: Admin, query: QueueListParameters
) -> Page[QueueView]:
    return admin.list(query)


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create a queue")
async def create_queue(caller: ManageQueues, admin: Admin, body: NewQueue) -> QueueView:
    return await admin.create(caller, body)


@router.get("/{queue_id}", summary="Read a queue")
async def get_queue(caller: ManageQueue, admin: Admin, queue_id: QueueIdPath) -> QueueView:
    return admin.get(caller)


@router.patch("/{queue_id}", summary="Change a queue's settings, members or overflow")
async def update_queue(
    caller: ManageQueue, admin: Admin, queue_id: QueueIdPath, body: QueuePatch
) -> QueueView:
    return await admin.update(caller, body)


@router.delete("/{queue_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a queue")
async def delete_queue(caller: ManageQueue, admin: Admin, queue_id: QueueIdPath) -> Response:
    await admin.delete(caller)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
