"""The SIP edge's events reach the bus and the audit log through one `EdgeReporter`: a ban
from the real source guard, a refused call from the real toll guard, each one audit entry
(actor, outcome, object, details) that encodes for the hash chain; a full audit queue loses
the entry, never the event."""

from __future__ import annotations

from datetime import UTC, datetime

from callwarden.bus.event import Event
from callwarden.bus.in_process import InProcessBus
from callwarden.domain.cdr import CallDirection
from callwarden.domain.ids import UserId
from callwarden.security.audit import AuditEvent, AuditOutcome, AuditUnavailable
from callwarden.sip.addressing import Source
from callwarden.sip.clock import FakeClock
from callwarden.sip.errors import SipError
from callwarden.telephony.call_context import CallerInfo
from callwarden.telephony.edge_audit import EdgeReporter
from callwarden.telephony.security_events import CallRefused, SourceBanned, SourceUnbanned
from callwarden.telephony.source_guard import SourceGuard, SourceGuardSettings
from callwarden.telephony.toll_guard import TollGuard

WALL = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ATTACKER = Source("UDP", "198.51.100.66", 5060, "192.0.2.1", 5060)


def test_a_ban_and_its_end_are_published_and_audited(clock: FakeClock) -> None:
    bus = InProcessBus()
    watcher = bus.subscribe()
    audited: list[AuditEvent] = []
    guard = SourceGuard(
        clock,
        settings=SourceGuardSettings(ban_threshold=2, ban_seconds=60.0),
        publish=EdgeReporter(bus.publish, audited.append),
        wall_clock=lambda: WALL,
    )
    guard.on_malformed(ATTACKER)
    guard.on_malformed(ATTACKER)
    clock.advance(60.0)
    published: list[Event] = []
    while (event := watcher.get_nowait()) is not None:
        published.append(event)
    assert [type(event) for event in published] == [SourceBanned, SourceUnbanned]
    banned, lifted = audited
    assert (banned.action, banned.outcome, banned.object_id) == (
        "sip.source.banned",
        AuditOutcome.DENIED,
        "198.51.100.66",
    )
    assert banned.actor.kind.value == "sip" and banned.source_address == "198.51.100.66"
    assert banned.details["reason"] == "malformed" and banned.details["offences"] == 2
    assert banned.details["until"] == "2026-11-28T12:01:00+00:00"
    assert lifted.action == "sip.source.unbanned"
    for entry in audited:
        assert entry.encoded().action == entry.action  # valid for the chain


def test_a_refused_call_is_audited(clock: FakeClock) -> None:
    audited: list[AuditEvent] = []
    published: list[Event] = []
    toll = TollGuard(
        clock, publish=EdgeReporter(published.append, audited.append), wall_clock=lambda: WALL
    )
    caller = CallerInfo(
        direction=CallDirection.OUTBOUND,
        label="1001",
        dialled="0900123456",
        flow=None,
        latch_host=None,
        user_id=UserId(7),
    )
    toll.refused(caller, SipError("destination not allowed", 403, "Destination Not Allowed"))
    [event] = published
    assert isinstance(event, CallRefused)
    [entry] = audited
    assert (entry.action, entry.object_kind, entry.object_id) == (
        "sip.call.refused",
        "sip_party",
        "user:7",
    )
    assert entry.details["number"] == "0900123456" and entry.details["status"] == 403


def test_a_full_audit_queue_loses_the_entry_not_the_event(clock: FakeClock) -> None:
    published: list[Event] = []

    def full(_: AuditEvent) -> None:
        raise AuditUnavailable("the audit log is not keeping up")

    guard = SourceGuard(
        clock,
        settings=SourceGuardSettings(ban_threshold=1),
        publish=EdgeReporter(published.append, full),
        wall_clock=lambda: WALL,
    )
    guard.on_malformed(ATTACKER)
    assert guard.is_banned(ATTACKER.remote_host)
    assert [type(event) for event in published] == [SourceBanned]
