"""Use cases of the sign-in network routes (`settings.manage`, checked by the routes).

Each change is written with its audit entry in one write transaction (`sign_in_network.create`,
`sign_in_network.delete`, with the rule). A change that would stop the caller signing in again
from the address they are using now (a rule for their own role or team that leaves it out, or
the removal of the rule that lets it in) is refused with 409 `would_lock_you_out`: an admin
cannot shut themselves out by mistake. Sessions already open are not ended; a rule applies at
the next sign-in (docs/sign-in.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from callwarden.domain.errors import InvalidState, JsonValue, ValidationFailed
from callwarden.domain.ids import RoleId, TeamId
from callwarden.domain.policy import not_found
from callwarden.security import audit
from callwarden.security.audit import AuditAction, AuditEvent
from callwarden.security.network_policy import (
    NetworkPolicy,
    parse_client_address,
    parse_network,
    rule_from_row,
)
from callwarden.store.database import WRITE_TRANSACTION
from callwarden.store.schema import RoleRow, SignInNetworkRow, TeamRow
from callwarden.web.access import Caller
from callwarden.web.errors import body_field_error
from callwarden.web.networks.schemas import NetworkList, NetworkView, NewNetwork
from callwarden.web.services import WebServices


def _event(caller: Caller, action: str, view: NetworkView) -> AuditEvent:
    rule: dict[str, JsonValue] = dict(view.model_dump(mode="json"))
    return caller.succeeded(action, "sign_in_network", view.id, {"rule": rule})


def _check_not_locked_out(db: Session, caller: Caller) -> None:
    """Refuse (409) unless the caller may still sign in from their address, as `db` sees it."""
    if caller.source_address is None:
        return
    address = parse_client_address(caller.source_address)
    if not NetworkPolicy.allows_in(db, caller.user, address):
        raise InvalidState(
            f"you could no longer sign in from {caller.source_address}: nothing was changed",
            error_id="would_lock_you_out",
        )


class NetworkAdmin:
    def __init__(self, services: WebServices) -> None:
        self._services = services

    def _write(self, change: Callable[[Session], AuditEvent]) -> None:
        with self._services.database() as db:
            db.connection(execution_options=WRITE_TRANSACTION)
            event = change(db)
            audit.append(db, event, self._services.clock)
            db.commit()

    def list(self, caller: Caller) -> NetworkList:
        with self._services.database() as db:
            rows = db.scalars(select(SignInNetworkRow).order_by(SignInNetworkRow.id))
            return NetworkList(items=[NetworkView.of(rule_from_row(row)) for row in rows])

    async def create(self, caller: Caller, body: NewNetwork) -> NetworkView:
        try:
            network = parse_network(body.network)
        except ValidationFailed:
            # Not the value sent back (it may be anything): the rule, and the nearest network.
            problem = "not a network in CIDR notation (e.g. 10.8.0.0/16 or 2001:db8::/32)"
            try:
                nearest = ipaddress.ip_network(body.network.strip(), strict=False)
            except ValueError:
                raise body_field_error("network", problem) from None
            raise body_field_error("network", f"host bits set: did you mean {nearest}?") from None
        created: list[NetworkView] = []

        def change(db: Session) -> AuditEvent:
            if body.role_id is not None and db.get(RoleRow, body.role_id) is None:
                raise body_field_error("role_id", f"unknown role {body.role_id}")
            if body.team_id is not None and db.get(TeamRow, body.team_id) is None:
                raise body_field_error("team_id", f"unknown team {body.team_id}")
            row = SignInNetworkRow(
                role_id=None if body.role_id is None else RoleId(body.role_id),
                team_id=None if body.team_id is None else TeamId(body.team_id),
                network=str(network),
                description=body.description,
            )
            db.add(row)
            db.flush()
            _check_not_locked_out(db, caller)
            created.append(NetworkView.of(rule_from_row(row)))
            return _event(caller, AuditAction.SIGN_IN_NETWORK_CREATE, created[0])

        await asyncio.to_thread(self._write, change)
        return created[0]

    async def delete(self, caller: Caller, network_id: int) -> None:
        def change(db: Session) -> AuditEvent:
            row = db.get(SignInNetworkRow, network_id)
            if row is None:
                raise not_found(f"sign-in network {network_id}")
            view = NetworkView.of(rule_from_row(row))
            db.delete(row)
            db.flush()
            _check_not_locked_out(db, caller)
            return _event(caller, AuditAction.SIGN_IN_NETWORK_DELETE, view)

        await asyncio.to_thread(self._write, change)
