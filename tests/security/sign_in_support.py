"""Helpers for the sign-in tests: a fixed clock and a small directory of teams and users."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from callwarden.domain.ids import TeamId, UserId
from callwarden.security.credentials import PasswordChanges
from callwarden.security.devices import KnownDevices
from callwarden.security.login import LoginService
from callwarden.security.mfa import MfaService
from callwarden.security.network_policy import NetworkPolicy
from callwarden.security.passwords import PasswordHasher
from callwarden.security.sessions import SessionService, SessionsRevoked
from callwarden.security.sign_in import SignInServices
from callwarden.security.throttle import LoginThrottle
from callwarden.store.database import Database
from callwarden.store.schema import RoleRow, TeamRow, UserRow

T0 = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
PASSWORD = "violet-harbour-tandem-41"


class FakeClock:
    """Stands still until told to move."""

    def __init__(self, start: datetime = T0) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **amount: float) -> None:
        self.current += timedelta(**amount)


def cheap_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost_kib=64, parallelism=1)


@dataclass
class Directory:
    """Adds teams and users straight to the database, as provisioning would."""

    database: Database
    hasher: PasswordHasher

    def team(self, name: str, parent: TeamId | None = None) -> TeamId:
        with self.database.sessions() as db:
            row = TeamRow(name=name, display_name=name.title(), parent_id=parent)
            db.add(row)
            db.commit()
            return TeamId(row.id)

    def role_id(self, name: str) -> int:
        with self.database.sessions() as db:
            role_id = db.scalar(select(RoleRow.id).where(RoleRow.name == name))
            assert role_id is not None
            return role_id

    def user(
        self,
        username: str,
        role: str = "operator",
        *,
        team: TeamId | None = None,
        password: str | None = PASSWORD,
        enabled: bool = True,
        hasher: PasswordHasher | None = None,
    ) -> UserId:
        password_hash = None if password is None else (hasher or self.hasher).hash(password)
        with self.database.sessions() as db:
            row = UserRow(
                username=username,
                display_name=username.title(),
                role_id=self.role_id(role),
                team_id=team,
                enabled=enabled,
                password_hash=password_hash,
            )
            db.add(row)
            db.commit()
            return UserId(row.id)


@dataclass
class SignIn:
    """Every sign-in service over one database, with the revocations they announced."""

    clock: FakeClock
    directory: Directory
    services: SignInServices
    revoked: list[SessionsRevoked] = field(default_factory=list)

    @property
    def sessions(self) -> SessionService:
        return self.services.sessions

    @property
    def mfa(self) -> MfaService:
        return self.services.mfa

    @property
    def throttle(self) -> LoginThrottle:
        return self.services.throttle

    @property
    def network(self) -> NetworkPolicy:
        return self.services.network_policy

    @property
    def devices(self) -> KnownDevices:
        return self.services.devices

    @property
    def login(self) -> LoginService:
        return self.services.login

    @property
    def passwords(self) -> PasswordChanges:
        return self.services.passwords
