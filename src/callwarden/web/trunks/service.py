"""Use cases of the trunk routes (`trunks.manage`, checked by the routes).

Changes go through the provisioning rules (host names, dial patterns, numbers unique across
trunks, a registering trunk has credentials), in one write transaction with their audit entry
(`trunk.create`, `trunk.update` with before and after of what changed, `trunk.delete`); the
password is never shown nor audited (`has_password`, and `credentials_changed` in an update). The
directory is reloaded: the dial plan routes the next call with the change.
"""

from __future__ import annotations

import functools
from typing import Any

from callwarden.domain.ids import TrunkId
from callwarden.provisioning.document import TrunkSpec
from callwarden.provisioning.state import StoredState
from callwarden.store.mapping import trunk_from_row
from callwarden.store.schema import TrunkRow
from callwarden.web.access import Caller
from callwarden.web.admin_api import found
from callwarden.web.directory_writes import Create, Delete, DirectoryAdmin, ObjectKind, Update
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


def _update_data(body: TrunkPatch, stored: StoredState, row: TrunkRow) -> dict[str, Any]:
    # The stored credentials go along, so that the file's rule (registering needs both)
    # is judged on the trunk as it will be.
    data: dict[str, Any] = {"name": row.name, "host": row.host}
    if not body.given("auth_username"):
        data["username"] = row.username
    if not body.given("password"):
        data["password"] = row.password
    if not body.given("registers"):
        data["register"] = row.register
    return {**data, **_spec_data(body)}


TRUNK = ObjectKind[TrunkRow, TrunkView](
    "trunk", TrunkSpec, lambda row: TrunkView.of(trunk_from_row(row)), by_alias=True
)


class TrunkAdmin(DirectoryAdmin):
    def list(self, caller: Caller) -> TrunkList:
        trunks = self._snapshot.trunks
        return TrunkList(items=[TrunkView.of(trunk) for trunk in trunks])

    def get(self, caller: Caller, trunk_id: int) -> TrunkView:
        trunk = self._snapshot.trunk(TrunkId(trunk_id))
        return TrunkView.of(found(trunk, f"trunk {trunk_id}"))

    async def create(self, caller: Caller, body: NewTrunk) -> TrunkView:
        return await self._writer.run(Create(TRUNK, caller, body.name, lambda _: _spec_data(body)))

    async def update(self, caller: Caller, trunk_id: int, body: TrunkPatch) -> TrunkView:
        data = functools.partial(_update_data, body)
        credentials = {"credentials_changed": body.given("password")}
        return await self._writer.run(Update(TRUNK, caller, trunk_id, data, credentials))

    async def delete(self, caller: Caller, trunk_id: int) -> None:
        await self._writer.run(Delete(TRUNK, caller, trunk_id))
