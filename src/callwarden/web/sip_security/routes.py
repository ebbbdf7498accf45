"""`/api/v1/sip/bans`: the addresses the SIP source guard bans now, and its counters.

Admins only: `settings.manage` on the global settings resource (the same permission the bus
events `sip.source_banned` / `sip.source_unbanned` need, so REST and the live stream agree)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from callwarden.domain.permissions import Permission
from callwarden.domain.policy import ResourceKind
from callwarden.web.access import API_PREFIX, Caller, GuardedRoute, require
from callwarden.web.services import services_of
from callwarden.web.sip_security.schemas import BanEntry, BanList, GuardCounters

router = APIRouter(prefix=f"{API_PREFIX}/sip", tags=["sip"], route_class=GuardedRoute)

ManageSettings = Annotated[Caller, require(Permission.SETTINGS_MANAGE, kind=ResourceKind.SETTINGS)]


@router.get("/bans", summary="SIP sources banned now (scanners, floods, password guessing)")
async def list_bans(caller: ManageSettings, request: Request) -> BanList:
    guard = services_of(request).sip_guard()
    if guard is None:
        return BanList(guard_running=False, bans=[], counters=None)
    return BanList(
        guard_running=True,
        bans=[BanEntry.of(ban) for ban in guard.bans()],
        counters=GuardCounters.of(guard.stats),
    )
