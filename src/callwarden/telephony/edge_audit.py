"""Every event of the SIP edge's defences goes to the bus (admins' live view) and into the
audit log, in one call: the guards are handed an `EdgeReporter` as their `publish`.

The audit entries name the source address or the party and keep the event's fields as
details; their actor is `sip` (the remote address) for bans and guessing, the system for
toll-fraud refusals and alerts. A full or closed audit queue loses the entry with an error in
the log, never the event nor the refusal it reports.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime

from callwarden.bus.event import Event
from callwarden.security.audit import AuditActor, AuditEvent, AuditOutcome, AuditUnavailable
from callwarden.telephony.security_events import (
    AccountGuessingAlert,
    CallBurstAlert,
    CallRefused,
    NewDestinationAlert,
    SipSecurityEvent,
    SourceBanned,
    SourceUnbanned,
)

logger = logging.getLogger(__name__)

ACTIONS: dict[type[SipSecurityEvent], str] = {
    SourceBanned: "sip.source.banned",
    SourceUnbanned: "sip.source.unbanned",
    AccountGuessingAlert: "sip.account.guessing",
    CallRefused: "sip.call.refused",
    CallBurstAlert: "sip.toll.burst",
    NewDestinationAlert: "sip.toll.new_destination",
}


def audit_event(event: SipSecurityEvent) -> AuditEvent:
    """The audit entry recording `event`."""
    details = {
        field.name: _json(getattr(event, field.name))
        for field in dataclasses.fields(event)
        if field.name not in ("at", "team_id", "user_id")
    }
    if isinstance(event, SourceBanned | SourceUnbanned):
        return AuditEvent(
            action=ACTIONS[type(event)],
            actor=AuditActor.sip(event.address),
            outcome=AuditOutcome.DENIED
            if isinstance(event, SourceBanned)
            else AuditOutcome.SUCCESS,
            object_kind="sip_source",
            object_id=event.address,
            source_address=event.address,
            details=details,
        )
    object_id = getattr(event, "party", None) or getattr(event, "username", None)
    return AuditEvent(
        action=ACTIONS[type(event)],
        actor=AuditActor.system(),
        outcome=AuditOutcome.DENIED,
        object_kind="sip_account" if isinstance(event, AccountGuessingAlert) else "sip_party",
        object_id=object_id,
        details=details,
    )


def _json(value: object) -> str | int | float | bool | None:
    if isinstance(value, datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class EdgeReporter:
    """`publish` for the guards: to the bus, then to the audit log."""

    def __init__(
        self, publish: Callable[[Event], None], audit: Callable[[AuditEvent], object]
    ) -> None:
        self._publish = publish
        self._audit = audit

    def __call__(self, event: Event) -> None:
        self._publish(event)
        if isinstance(event, SipSecurityEvent) and type(event) in ACTIONS:
            try:
                self._audit(audit_event(event))
            except AuditUnavailable as error:
                logger.error("audit entry for %s lost: %s", event.kind, error)
