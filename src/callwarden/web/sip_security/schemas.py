"""Response models of the SIP security routes."""

from __future__ import annotations

from datetime import datetime

from callwarden.telephony.source_guard import BanView, GuardStats
from callwarden.web.schemas import ResponseModel


class BanEntry(ResponseModel):
    address: str
    reason: str
    offences: int
    ban_number: int
    until: datetime
    seconds_left: float

    @classmethod
    def of(cls, ban: BanView) -> BanEntry:
        return cls(
            address=ban.address,
            reason=ban.reason,
            offences=ban.offences,
            ban_number=ban.ban_number,
            until=ban.until,
            seconds_left=ban.seconds_left,
        )


class GuardCounters(ResponseModel):
    admitted: int
    dropped_banned: int
    dropped_rate: int
    dropped_scanner: int
    malformed: int
    auth_failures: int
    bans: int
    unbans: int

    @classmethod
    def of(cls, stats: GuardStats) -> GuardCounters:
        return cls(
            admitted=stats.admitted,
            dropped_banned=stats.dropped_banned,
            dropped_rate=stats.dropped_rate,
            dropped_scanner=stats.dropped_scanner,
            malformed=stats.malformed,
            auth_failures=stats.auth_failures,
            bans=stats.bans,
            unbans=stats.unbans,
        )


class BanList(ResponseModel):
    """`guard_running` is false on a node whose SIP side has not started (no bans then)."""

    guard_running: bool
    bans: list[BanEntry]
    counters: GuardCounters | None
