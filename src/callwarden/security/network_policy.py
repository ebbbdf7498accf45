"""Where people may sign in from: address ranges per role and per team (default: anywhere).

A rule names a network (CIDR, IPv4 or IPv6) and either a role or a team. For a user:

- if any rule names the user's role, the address must be in one of the role's networks;
- if any rule names the user's team or a team above it (teams nest), the address must be in
  one of those teams' networks;
- both apply when both exist (an admin of an outsourced team must be on the company VPN *and*
  on the partner's network, i.e. in both); with no rule for either, any address is allowed.

Client addresses are compared as given, except that an IPv4-mapped IPv6 address
(`::ffff:192.0.2.1`, as a dual-stack socket reports IPv4 clients) is its IPv4 address.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from callwarden.domain.errors import NotFound, ValidationFailed
from callwarden.domain.ids import RoleId, TeamId
from callwarden.domain.models import User
from callwarden.store.schema import RoleRow, SignInNetworkRow, TeamRow

IpAddress = IPv4Address | IPv6Address
IpNetwork = IPv4Network | IPv6Network
SessionFactory = Callable[[], Session]

IPV6_ADDRESS_PREFIX = 64
DESCRIPTION_LENGTH = 255
MAX_TEAM_DEPTH = 64


def parse_client_address(text: str) -> IpAddress:
    """A client's address from text (as the web server reports it); `ValidationFailed` if it is
    not an IP address."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise ValidationFailed(
            f"{text[:64]!r} is not an IP address", details={"client_address": "not an IP address"}
        ) from None
    return unmapped(address)


def unmapped(address: IpAddress) -> IpAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it stands for; others unchanged."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def address_key(address: IpAddress) -> str:
    """How a client's address is remembered and counted: an IPv4 address as itself, an IPv6
    address as its /64 (one home or office subnet; the host part changes for privacy)."""
    address = unmapped(address)
    if isinstance(address, IPv6Address):
        return str(IPv6Network((address, IPV6_ADDRESS_PREFIX), strict=False))
    return str(address)


def parse_network(text: str) -> IpNetwork:
    """A CIDR network (`10.8.0.0/16`, `2001:db8::/32`, or one address); host bits must be 0."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as error:
        hint = ""
        with contextlib.suppress(ValueError):
            hint = f" (did you mean {ipaddress.ip_network(text.strip(), strict=False)}?)"
        raise ValidationFailed(
            f"{text[:64]!r} is not a network in CIDR notation{hint}",
            details={"network": f"not a network in CIDR notation: {error}{hint}"},
        ) from None


@dataclass(frozen=True)
class NetworkRule:
    id: int
    network: IpNetwork
    role_id: RoleId | None = None
    team_id: TeamId | None = None
    description: str = ""


def rule_from_row(row: SignInNetworkRow) -> NetworkRule:
    return NetworkRule(
        id=row.id,
        network=ipaddress.ip_network(row.network),
        role_id=None if row.role_id is None else RoleId(row.role_id),
        team_id=None if row.team_id is None else TeamId(row.team_id),
        description=row.description,
    )


def _within(address: IpAddress, networks: Sequence[IpNetwork]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


class NetworkPolicy:
    """Stores the rules and answers whether a user may sign in from an address."""

    def __init__(self, session_factory: SessionFactory) -> None:
        self._db = session_factory

    def add(
        self,
        network: str,
        *,
        role_id: RoleId | None = None,
        team_id: TeamId | None = None,
        description: str = "",
    ) -> NetworkRule:
        """Allow `network` for a role or a team (exactly one of them)."""
        parsed = parse_network(network)
        if (role_id is None) == (team_id is None):
            raise ValidationFailed(
                "a sign-in network applies to a role or to a team",
                details={"role_id": "give exactly one of role_id and team_id"},
            )
        if len(description) > DESCRIPTION_LENGTH:
            raise ValidationFailed(
                "description too long",
                details={"description": f"at most {DESCRIPTION_LENGTH} characters"},
            )
        with self._db() as db:
            if role_id is not None and db.get(RoleRow, role_id) is None:
                raise NotFound(f"role {role_id} not found", error_id="role_not_found")
            if team_id is not None and db.get(TeamRow, team_id) is None:
                raise NotFound(f"team {team_id} not found", error_id="team_not_found")
            row = SignInNetworkRow(
                role_id=role_id, team_id=team_id, network=str(parsed), description=description
            )
            db.add(row)
            db.commit()
            return rule_from_row(row)

    def remove(self, rule_id: int) -> None:
        with self._db() as db:
            row = db.get(SignInNetworkRow, rule_id)
            if row is None:
                raise NotFound(
                    f"sign-in network {rule_id} not found", error_id="sign_in_network_not_found"
                )
            db.delete(row)
            db.commit()

    def list_all(self) -> list[NetworkRule]:
        with self._db() as db:
            rows = db.scalars(select(SignInNetworkRow).order_by(SignInNetworkRow.id))
            return [rule_from_row(row) for row in rows]

    def allows(self, user: User, address: IpAddress) -> bool:
        """Whether `user` may sign in from `address` (see the module docstring)."""
        with self._db() as db:
            return self.allows_in(db, user, address)

    @classmethod
    def allows_in(cls, db: Session, user: User, address: IpAddress) -> bool:
        """`allows`, judged by the rules as `db` sees them (a change not yet committed, say)."""
        address = unmapped(address)
        teams = cls._team_and_ancestors(db, user.team_id)
        rows = db.scalars(
            select(SignInNetworkRow).where(
                or_(
                    SignInNetworkRow.role_id == user.role_id,
                    SignInNetworkRow.team_id.in_(teams),
                )
            )
        ).all()
        role_networks = [rule_from_row(row).network for row in rows if row.role_id is not None]
        team_networks = [rule_from_row(row).network for row in rows if row.team_id is not None]
        if role_networks and not _within(address, role_networks):
            return False
        return not team_networks or _within(address, team_networks)

    @staticmethod
    def _team_and_ancestors(db: Session, team_id: TeamId | None) -> list[int]:
        chain: list[int] = []
        current: int | None = team_id
        while current is not None and current not in chain and len(chain) < MAX_TEAM_DEPTH:
            chain.append(current)
            current = db.scalar(select(TeamRow.parent_id).where(TeamRow.id == current))
        return chain
