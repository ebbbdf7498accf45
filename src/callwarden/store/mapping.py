"""Conversions between table rows and domain values."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from callwarden.domain.cdr import Cdr, CdrLeg, NewCdr
from callwarden.domain.ids import CallId, CdrId, QueueId, RoleId, TeamId, TrunkId, UserId
from callwarden.domain.models import (
    InboundNumber,
    Queue,
    QueueMember,
    Role,
    SipCredentials,
    Team,
    Trunk,
    User,
)
from callwarden.domain.patterns import DialPattern, InvalidDialPattern
from callwarden.domain.permissions import Grant, InvalidGrant, Permission, normalise_grants
from callwarden.store.schema import (
    CDR_TEXT_LENGTH,
    NAME_LENGTH,
    URI_LENGTH,
    CdrRow,
    QueueRow,
    RoleGrantRow,
    RoleRow,
    TeamRow,
    TrunkRow,
    UserRow,
)

logger = logging.getLogger(__name__)


def patterns_from_texts(texts: Iterable[str], owner: str) -> tuple[DialPattern, ...]:
    """Parse stored patterns; one that no longer parses is left out (allowing less, not more)."""
    patterns: list[DialPattern] = []
    for text in texts:
        try:
            patterns.append(DialPattern.parse(text))
        except InvalidDialPattern as error:
            logger.warning("ignoring stored dial pattern of %s: %s", owner, error.message)
    return tuple(patterns)


def grants_from_rows(rows: Iterable[RoleGrantRow], owner: str) -> frozenset[Grant]:
    """Read stored grants; one naming a permission this code does not know, or a scope its
    permission cannot take, is left out (allowing less, not more)."""
    grants: list[Grant] = []
    for row in rows:
        try:
            grants.append(Grant(Permission(row.permission), row.scope))
        except ValueError:
            logger.warning("ignoring unknown permission %r of %s", row.permission, owner)
        except InvalidGrant as error:
            logger.warning("ignoring stored grant of %s: %s", owner, error.message)
    return normalise_grants(grants)


def grant_rows(grants: Iterable[Grant]) -> list[RoleGrantRow]:
    """The rows storing `grants` (one per permission, at its widest scope), in catalogue order."""
    order = {permission: index for index, permission in enumerate(Permission)}
    return [
        RoleGrantRow(permission=grant.permission.value, scope=grant.scope)
        for grant in sorted(normalise_grants(grants), key=lambda grant: order[grant.permission])
    ]


def team_from_row(row: TeamRow) -> Team:
    parent = None if row.parent_id is None else TeamId(row.parent_id)
    return Team(
        id=TeamId(row.id),
        name=row.name,
        display_name=row.display_name,
        parent_id=parent,
        recording=row.recording,
        monitoring_transparency=row.monitoring_transparency,
    )


def role_from_row(row: RoleRow) -> Role:
    return Role(
        id=RoleId(row.id),
        name=row.name,
        description=row.description,
        outbound_patterns=patterns_from_texts(row.outbound_patterns, f"role {row.name}"),
        builtin=row.builtin,
        grants=grants_from_rows(row.grants, f"role {row.name}"),
    )


def user_from_row(row: UserRow) -> User:
    sip = None
    if row.sip_realm is not None and row.sip_ha1_md5 is not None and row.sip_ha1_sha256 is not None:
        sip = SipCredentials(
            realm=row.sip_realm, ha1_md5=row.sip_ha1_md5, ha1_sha256=row.sip_ha1_sha256
        )
    return User(
        id=UserId(row.id),
        username=row.username,
        display_name=row.display_name,
        role_id=RoleId(row.role_id),
        team_id=None if row.team_id is None else TeamId(row.team_id),
        extension=row.extension,
        enabled=row.enabled,
        password_hash=row.password_hash,
        sip=sip,
        supervised_team_ids=frozenset(TeamId(link.team_id) for link in row.supervised),
        recording=row.recording,
    )


def trunk_from_row(row: TrunkRow) -> Trunk:
    return Trunk(
        id=TrunkId(row.id),
        name=row.name,
        host=row.host,
        port=row.port,
        transport=row.transport,
        inbound_numbers=tuple(
            InboundNumber(number=inbound.number, destination=inbound.destination)
            for inbound in row.inbound_numbers
        ),
        outbound_patterns=patterns_from_texts(row.outbound_patterns, f"trunk {row.name}"),
        username=row.username,
        password=row.password,
        register=row.register,
        enabled=row.enabled,
    )


def queue_from_row(row: QueueRow) -> Queue:
    return Queue(
        id=QueueId(row.id),
        name=row.name,
        display_name=row.display_name,
        number=row.number,
        team_id=TeamId(row.team_id),
        strategy=row.strategy,
        members=tuple(
            QueueMember(
                user_id=UserId(member.user_id),
                penalty=member.penalty,
                skill_level=member.skill_level,
            )
            for member in row.members
        ),
        wrap_up_seconds=row.wrap_up_seconds,
        ring_timeout_seconds=row.ring_timeout_seconds,
        max_no_answer=row.max_no_answer,
        max_wait_seconds=row.max_wait_seconds,
        service_level_seconds=row.service_level_seconds,
        service_level_percent=row.service_level_percent,
        required_skill_level=row.required_skill_level,
        recording=row.recording,
        overflow=row.overflow,
        overflow_queue_id=None if row.overflow_queue_id is None else QueueId(row.overflow_queue_id),
        overflow_user_id=None if row.overflow_user_id is None else UserId(row.overflow_user_id),
        announce_seconds=row.announce_seconds,
        music_on_hold=row.music_on_hold,
    )


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[:length]


def _clip_optional(text: str | None, length: int) -> str | None:
    return None if text is None else _clip(text, length)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _utc_optional(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def normalise_cdr(cdr: NewCdr) -> NewCdr:
    """`cdr` as it will read back: times in UTC, free text cut to its column (never refused)."""
    legs = tuple(
        replace(
            leg,
            sip_call_id=_clip(leg.sip_call_id, CDR_TEXT_LENGTH),
            uri=_clip(leg.uri, URI_LENGTH),
            hangup_cause=_clip_optional(leg.hangup_cause, CDR_TEXT_LENGTH),
            started_at=_utc(leg.started_at),
            answered_at=_utc_optional(leg.answered_at),
            ended_at=_utc(leg.ended_at),
        )
        for leg in cdr.legs
    )
    return replace(
        cdr,
        call_id=CallId(_clip(cdr.call_id, CDR_TEXT_LENGTH)),
        caller=_clip(cdr.caller, CDR_TEXT_LENGTH),
        callee=_clip(cdr.callee, CDR_TEXT_LENGTH),
        dialled_number=_clip(cdr.dialled_number, NAME_LENGTH),
        hangup_cause=_clip_optional(cdr.hangup_cause, CDR_TEXT_LENGTH),
        started_at=_utc(cdr.started_at),
        answered_at=_utc_optional(cdr.answered_at),
        ended_at=_utc(cdr.ended_at),
        legs=legs,
    )


def cdr_values(cdr: NewCdr) -> dict[str, Any]:
    """The `cdrs` row of a normalised CDR (its fields are named like the columns)."""
    values = {field.name: getattr(cdr, field.name) for field in fields(NewCdr)}
    del values["legs"]
    values["duration_ms"] = cdr.duration // timedelta(milliseconds=1)
    return values


def leg_values(cdr_id: int, position: int, leg: CdrLeg) -> dict[str, Any]:
    """The `cdr_legs` row of one leg of a normalised CDR."""
    values = {field.name: getattr(leg, field.name) for field in fields(CdrLeg)}
    values.update(cdr_id=cdr_id, position=position)
    return values


def stored_cdr(cdr_id: CdrId, cdr: NewCdr) -> Cdr:
    """The stored record of a normalised CDR."""
    values = {field.name: getattr(cdr, field.name) for field in fields(NewCdr)}
    return Cdr(id=cdr_id, **values)


def cdr_from_row(row: CdrRow, wrap_up_code: str | None = None) -> Cdr:
    return Cdr(
        id=CdrId(row.id),
        wrap_up_code=wrap_up_code,
        call_id=CallId(row.call_id),
        direction=row.direction,
        caller=row.caller,
        callee=row.callee,
        dialled_number=row.dialled_number,
        route_kind=row.route_kind,
        started_at=row.started_at,
        answered_at=row.answered_at,
        ended_at=row.ended_at,
        disposition=row.disposition,
        hangup_cause=row.hangup_cause,
        sip_status=row.sip_status,
        hangup_side=row.hangup_side,
        caller_user_id=None if row.caller_user_id is None else UserId(row.caller_user_id),
        callee_user_id=None if row.callee_user_id is None else UserId(row.callee_user_id),
        queue_id=None if row.queue_id is None else QueueId(row.queue_id),
        trunk_id=None if row.trunk_id is None else TrunkId(row.trunk_id),
        team_id=None if row.team_id is None else TeamId(row.team_id),
        legs=tuple(
            CdrLeg(
                role=leg.role,
                sip_call_id=leg.sip_call_id,
                uri=leg.uri,
                started_at=leg.started_at,
                answered_at=leg.answered_at,
                ended_at=leg.ended_at,
                sip_status=leg.sip_status,
                hangup_cause=leg.hangup_cause,
                user_id=None if leg.user_id is None else UserId(leg.user_id),
                trunk_id=None if leg.trunk_id is None else TrunkId(leg.trunk_id),
            )
            for leg in row.legs
        ),
    )
