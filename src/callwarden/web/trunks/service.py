"""Use cases of the trunk routes (`trunks.manage`, checked by the routes).

Changes go through the provisioning rules (host names, dial patterns, numbers unique across
trunks, a registering trunk has credentials), in one write transaction with their audit entry
(`trunk.create`, `trunk.update` with before and after of what changed, `trunk.delete`); the
password is never shown nor audited (`has_password`, and `credentials_changed` in an update). The
directory is reloaded: the dial plan routes the next call with the change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from callwarden.domain.errors import Conflict, JsonValue
from callwarden.domain.ids import TrunkId
from callwarden.domain.policy import not_found
from callwarden.provisioning.document import ProvisioningDocument, TrunkSpec
from callwarden.provisioning.state import StoredState
from callwarden.security.audit import AuditAction, AuditEvent
from callwarden.store.mapping import trunk_from_row
from callwarden.store.schema import TrunkRow
from callwarden.web.access import Caller
from callwarden.web.directory_writes import DirectoryWriter
from callwarden.web.services import WebServices
from callwarden.web.trunks.schemas import NewTrunk, TrunkList, TrunkPatch, TrunkSettings, TrunkView

_PLAIN = ("host", "port", "transport", "outbound_patterns", "password", "enabled")


def _spec_data(body: TrunkSettings) -> dict[str, Any]:
    data: dict[str, Any] = {key: getattr(body, key) for key in _PLAIN if body.given(key)}
    if body.given("auth_username"):
        data["username"] = body.auth_username
    if body.given("registers"):
        data["register"] = body.registers
    if body.inbound_numbers is not None:
        data["inbound_numbers"] = [
            {"number": inbound.number, "destination": inbound.destination}
            for inbound in body.inbound_numbers
        ]
    return data


def _stored_row(stored: StoredState, trunk_id: TrunkId) -> TrunkRow:
    for row in stored.trunks.values():
        if row.id == trunk_id:
            return row
    raise not_found(f"trunk {trunk_id}")


def _load(session: Session, name: str) -> TrunkView:
    session.expire_all()
    row = session.scalar(
        select(TrunkRow)
        .options(selectinload(TrunkRow.inbound_numbers))
        .where(TrunkRow.name == name)
    )
    assert row is not None
    return TrunkView.of(trunk_from_row(row))


def _details(view: TrunkView) -> dict[str, JsonValue]:
    return dict(view.model_dump(mode="json", by_alias=True))


@dataclass
class _Create:
    caller: Caller
    body: NewTrunk

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        if self.body.name in stored.trunks:
            raise Conflict(f"trunk name {self.body.name!r} is taken", error_id="trunk_name_taken")
        data = {"name": self.body.name, **_spec_data(self.body)}
        return ProvisioningDocument(trunks=[TrunkSpec.model_validate(data)])

    def finish(self, session: Session) -> tuple[TrunkView, Sequence[AuditEvent]]:
        view = _load(session, self.body.name)
        event = self.caller.succeeded(
            AuditAction.TRUNK_CREATE, "trunk", view.id, {"after": _details(view)}
        )
        return view, [event]


@dataclass
class _Update:
    caller: Caller
    trunk_id: TrunkId
    body: TrunkPatch
    name: str = ""
    before: dict[str, JsonValue] = field(default_factory=dict)

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        row = _stored_row(stored, self.trunk_id)
        self.name = row.name
        self.before = _details(TrunkView.of(trunk_from_row(row)))
        # The stored credentials go along, so that the file's rule (registering needs both)
        # is judged on the trunk as it will be.
        data: dict[str, Any] = {"name": row.name, "host": row.host}
        if not self.body.given("auth_username"):
            data["username"] = row.username
        if not self.body.given("password"):
            data["password"] = row.password
        if not self.body.given("registers"):
            data["register"] = row.register
        data.update(_spec_data(self.body))
        return ProvisioningDocument(trunks=[TrunkSpec.model_validate(data)])

    def finish(self, session: Session) -> tuple[TrunkView, Sequence[AuditEvent]]:
        view = _load(session, self.name)
        after = _details(view)
        details: dict[str, JsonValue] = {
            "before": {k: v for k, v in self.before.items() if after.get(k) != v},
            "after": {k: v for k, v in after.items() if self.before.get(k) != v},
            "credentials_changed": self.body.given("password"),
        }
        return view, [self.caller.succeeded(AuditAction.TRUNK_UPDATE, "trunk", view.id, details)]


@dataclass
class _Delete:
    caller: Caller
    trunk_id: TrunkId
    before: dict[str, JsonValue] = field(default_factory=dict)

    def prepare(self, session: Session, stored: StoredState) -> ProvisioningDocument:
        row = _stored_row(stored, self.trunk_id)
        self.before = _details(TrunkView.of(trunk_from_row(row)))
        session.delete(row)
        session.flush()
        return ProvisioningDocument()

    def finish(self, session: Session) -> tuple[None, Sequence[AuditEvent]]:
        event = self.caller.succeeded(
            AuditAction.TRUNK_DELETE, "trunk", int(self.trunk_id), {"before": self.before}
        )
        return None, [event]


class TrunkAdmin:
    def __init__(self, services: WebServices, writer: DirectoryWriter) -> None:
        self._services = services
        self._writer = writer

    def list(self) -> TrunkList:
        trunks = self._services.directory.snapshot.trunks
        return TrunkList(items=[TrunkView.of(trunk) for trunk in trunks])

    def get(self, caller: Caller) -> TrunkView:
        assert caller.target is not None
        trunk = self._services.directory.snapshot.trunk(TrunkId(int(caller.target.object_id)))
        if trunk is None:
            raise not_found(caller.target.what)
        return TrunkView.of(trunk)

    async def create(self, caller: Caller, body: NewTrunk) -> TrunkView:
        return await asyncio.to_thread(self._writer.write, _Create(caller, body))

    async def update(self, caller: Caller, body: TrunkPatch) -> TrunkView:
        assert caller.target is not None
        change = _Update(caller, TrunkId(int(caller.target.object_id)), body)
        return await asyncio.to_thread(self._writer.write, change)

    async def delete(self, caller: Caller) -> None:
        assert caller.target is not None
        change = _Delete(caller, TrunkId(int(caller.target.object_id)))
        await asyncio.to_thread(self._writer.write, change)
