"""The permission catalogue, scopes, grants and the default roles' grants.

A *grant* is a permission held at a *scope*:

- `Scope.OWN`: objects the holder takes part in (their own calls, state, recordings);
- `Scope.TEAM`: those, plus objects of the holder's own team and of every team they supervise,
  including the teams nested below a supervised team;
- `Scope.ALL`: every object, and global resources (settings, trunks, the whole directory).

Permissions about objects (calls, agents, recordings, reports, the audit log, numbers shown)
take any scope their kind allows; *global* permissions (managing users, roles, teams, queues,
trunks, settings, retention) are held at `Scope.ALL` only. Two permissions are about one's
own call or state by definition and are held at `Scope.OWN` only.

No default role holds every permission. Recordings download/export, deletion and legal hold,
retention management and audit export are held by no default role at all: an installation
gives them deliberately, through a custom role in the provisioning file.

**The granting rule** (`may_grant`): nobody can give a permission they do not hold themselves,
at a scope wider than their own. Whoever manages users and roles therefore cannot build a role
holding recording export (and take it): that power comes only from the provisioning file, which
is applied by whoever runs the installation, never through the API. See `grants_beyond` for the
whole set a change would add beyond the granter's own.

**Giving a person a role** (`may_give_person`) follows the same rule, except that grants at
`Scope.OWN` are exempt for a giver holding `users.manage` at `Scope.ALL`: the built-in admin can
create operators and set their passwords, although it cannot take calls itself. Grants at
`Scope.TEAM` or `Scope.ALL` must still be held by the giver.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from callwarden.domain.errors import ValidationFailed


class Scope(enum.Enum):
    """How far a grant reaches; ordered OWN < TEAM < ALL (a wider scope includes the narrower)."""

    OWN = "own"
    TEAM = "team"
    ALL = "all"

    @property
    def rank(self) -> int:
        return _SCOPE_RANK[self]

    def includes(self, other: Scope) -> bool:
        """Whether this scope reaches at least as far as `other`."""
        return self.rank >= other.rank


_SCOPE_RANK: Mapping[Scope, int] = MappingProxyType({Scope.OWN: 0, Scope.TEAM: 1, Scope.ALL: 2})

_OBJECT_SCOPES = frozenset(Scope)
_GLOBAL_SCOPES = frozenset({Scope.ALL})
_OWN_SCOPES = frozenset({Scope.OWN})


class Permission(enum.Enum):
    """Every action the policy decides on. The values are stable: they are stored and logged."""

    CALLS_PLACE = "calls.place"
    CALLS_TAKE = "calls.take"
    AGENT_STATE_OWN = "agent_state.change_own"
    RECORDING_PAUSE_OWN = "recordings.pause_own"
    LIVE_VIEW = "live.view"
    MONITOR_LISTEN = "monitor.listen"
    MONITOR_WHISPER = "monitor.whisper"
    MONITOR_BARGE = "monitor.barge"
    MONITOR_TAKEOVER = "monitor.takeover"
    RECORDINGS_PLAY = "recordings.play"
    RECORDINGS_DOWNLOAD = "recordings.download"
    RECORDINGS_DELETE = "recordings.delete"
    RECORDINGS_LEGAL_HOLD = "recordings.legal_hold"
    RETENTION_MANAGE = "retention.manage"
    REPORTS_VIEW = "reports.view"
    NUMBERS_VIEW = "numbers.view"
    USERS_MANAGE = "users.manage"
    ROLES_MANAGE = "roles.manage"
    TEAMS_MANAGE = "teams.manage"
    QUEUES_MANAGE = "queues.manage"
    TRUNKS_MANAGE = "trunks.manage"
    SETTINGS_MANAGE = "settings.manage"
    AUDIT_VIEW = "audit.view"
    AUDIT_EXPORT = "audit.export"
    AGENTS_MANAGE = "agents.manage"

    @property
    def scopes(self) -> frozenset[Scope]:
        """The scopes this permission may be held at."""
        if self in _GLOBAL_PERMISSIONS:
            return _GLOBAL_SCOPES
        if self in _OWN_ONLY_PERMISSIONS:
            return _OWN_SCOPES
        return _OBJECT_SCOPES

    @property
    def is_global(self) -> bool:
        """Whether this permission is about the installation rather than scoped objects."""
        return self in _GLOBAL_PERMISSIONS


_GLOBAL_PERMISSIONS = frozenset(
    {
        Permission.RETENTION_MANAGE,
        Permission.USERS_MANAGE,
        Permission.ROLES_MANAGE,
        Permission.TEAMS_MANAGE,
        Permission.QUEUES_MANAGE,
        Permission.TRUNKS_MANAGE,
        Permission.SETTINGS_MANAGE,
    }
)
_OWN_ONLY_PERMISSIONS = frozenset({Permission.AGENT_STATE_OWN, Permission.RECORDING_PAUSE_OWN})


class InvalidGrant(ValidationFailed):
    """A grant names an unknown permission or scope, or a scope its permission cannot take."""

    default_error_id = "invalid_grant"


@dataclass(frozen=True, order=False)
class Grant:
    """A permission held at a scope; `Grant.parse("recordings.play:team")` reads the text form."""

    permission: Permission
    scope: Scope

    def __post_init__(self) -> None:
        if self.scope not in self.permission.scopes:
            allowed = ", ".join(s.value for s in Scope if s in self.permission.scopes)
            raise InvalidGrant(
                f"{self.permission.value} cannot be held at scope {self.scope.value}"
                f" (allowed: {allowed})",
                details={"permission": self.permission.value, "scope": self.scope.value},
            )

    @classmethod
    def parse(cls, text: str) -> Grant:
        """`permission:scope`; a global permission may leave out its only scope (`:all`)."""
        name, separator, scope_text = text.strip().partition(":")
        try:
            permission = Permission(name.strip())
        except ValueError:
            raise InvalidGrant(
                f"unknown permission {name.strip()!r}", details={"permission": name.strip()}
            ) from None
        if not separator:
            if not permission.is_global:
                raise InvalidGrant(
                    f"{permission.value} needs a scope (one of: own, team, all), "
                    f"e.g. {permission.value}:team",
                    details={"permission": permission.value},
                )
            return cls(permission, Scope.ALL)
        try:
            scope = Scope(scope_text.strip())
        except ValueError:
            raise InvalidGrant(
                f"unknown scope {scope_text.strip()!r} (one of: own, team, all)",
                details={"scope": scope_text.strip()},
            ) from None
        return cls(permission, scope)

    def __str__(self) -> str:
        return f"{self.permission.value}:{self.scope.value}"


def widest_scopes(grants: Iterable[Grant]) -> Mapping[Permission, Scope]:
    """For each permission held, the widest scope it is held at."""
    widest: dict[Permission, Scope] = {}
    for grant in grants:
        held = widest.get(grant.permission)
        if held is None or grant.scope.rank > held.rank:
            widest[grant.permission] = grant.scope
    return MappingProxyType(widest)


def normalise_grants(grants: Iterable[Grant]) -> frozenset[Grant]:
    """One grant per permission, at the widest scope given (what a role stores)."""
    return frozenset(
        Grant(permission, scope) for permission, scope in widest_scopes(grants).items()
    )


def may_grant(granter_grants: Iterable[Grant], grant: Grant) -> bool:
    """Whether someone holding `granter_grants` may give `grant` to a role.

    Only a permission the granter holds, at a scope no wider than their own: nobody can hand
    out (and so, through a role of their making, take) a power they do not already have.
    """
    held = widest_scopes(granter_grants).get(grant.permission)
    return held is not None and held.includes(grant.scope)


def grants_beyond(granter_grants: Iterable[Grant], grants: Iterable[Grant]) -> frozenset[Grant]:
    """The grants of `grants` that `may_grant` refuses to someone holding `granter_grants`."""
    held = tuple(granter_grants)
    return frozenset(grant for grant in grants if not may_grant(held, grant))


def may_give_person(granter_grants: Iterable[Grant], grant: Grant) -> bool:
    """Whether someone holding `granter_grants` may give a person a role holding `grant`.

    The granting rule (`may_grant`), with one exemption: a grant at `Scope.OWN` may be given by
    whoever holds `users.manage` at `Scope.ALL`, held or not. An own-scope grant is power over
    the grantee's own calls, state and data only, never over anyone else's, so the admin who
    creates an operator (and sets their password) gains nothing over other people by it. A
    grant at `Scope.TEAM` or `Scope.ALL` still has to be held by the giver. Building a role
    (`may_grant`) has no such exemption.
    """
    held = tuple(granter_grants)
    if grant.scope is Scope.OWN and widest_scopes(held).get(Permission.USERS_MANAGE) is Scope.ALL:
        return True
    return may_grant(held, grant)


def grants_beyond_for_person(
    granter_grants: Iterable[Grant], grants: Iterable[Grant]
) -> frozenset[Grant]:
    """The grants of `grants` that `may_give_person` refuses to someone holding `granter_grants`."""
    held = tuple(granter_grants)
    return frozenset(grant for grant in grants if not may_give_person(held, grant))


def _grants(*pairs: tuple[Permission, Scope]) -> frozenset[Grant]:
    return frozenset(Grant(permission, scope) for permission, scope in pairs)


_OWN_CALL_WORK = (
    (Permission.CALLS_PLACE, Scope.OWN),
    (Permission.CALLS_TAKE, Scope.OWN),
    (Permission.AGENT_STATE_OWN, Scope.OWN),
    (Permission.RECORDING_PAUSE_OWN, Scope.OWN),
)

DEFAULT_ROLE_GRANTS: Mapping[str, frozenset[Grant]] = MappingProxyType(
    {
        # Own calls and own state only: no settings, no downloads, numbers masked.
        "operator": _grants(*_OWN_CALL_WORK),
        # Takes calls too; watches, monitors, coaches and reports on the teams supervised.
        "supervisor": _grants(
            *_OWN_CALL_WORK,
            (Permission.LIVE_VIEW, Scope.TEAM),
            (Permission.MONITOR_LISTEN, Scope.TEAM),
            (Permission.MONITOR_WHISPER, Scope.TEAM),
            (Permission.MONITOR_BARGE, Scope.TEAM),
            (Permission.MONITOR_TAKEOVER, Scope.TEAM),
            (Permission.RECORDINGS_PLAY, Scope.TEAM),
            (Permission.REPORTS_VIEW, Scope.TEAM),
            (Permission.AGENTS_MANAGE, Scope.TEAM),
            (Permission.NUMBERS_VIEW, Scope.TEAM),
        ),
        # Configuration and users; call-data analytics across teams. No audio, no audit export.
        "admin": _grants(
            (Permission.USERS_MANAGE, Scope.ALL),
            (Permission.ROLES_MANAGE, Scope.ALL),
            (Permission.TEAMS_MANAGE, Scope.ALL),
            (Permission.QUEUES_MANAGE, Scope.ALL),
            (Permission.TRUNKS_MANAGE, Scope.ALL),
            (Permission.SETTINGS_MANAGE, Scope.ALL),
            (Permission.REPORTS_VIEW, Scope.ALL),
            (Permission.LIVE_VIEW, Scope.ALL),
            (Permission.NUMBERS_VIEW, Scope.ALL),
        ),
        # Read-only: recordings, the audit log and reports; no monitoring, no configuration.
        "auditor": _grants(
            (Permission.RECORDINGS_PLAY, Scope.ALL),
            (Permission.AUDIT_VIEW, Scope.ALL),
            (Permission.REPORTS_VIEW, Scope.ALL),
            (Permission.NUMBERS_VIEW, Scope.ALL),
        ),
    }
)
"""The grants of the built-in roles. They are fixed: the provisioning file cannot change them,
and revision 0002 stores the same set (a test compares the two)."""
