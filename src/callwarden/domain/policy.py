"""The one authorization policy: `authorize(principal, permission, resource) -> Decision`.

Every boundary (REST routes, the live WebSocket, SIP feature codes, the CLI) asks this module
and nothing else; no code anywhere checks a role name. It is pure: the caller brings the
principal (built from the directory, `DirectorySnapshot.principal_for`) and a description of
the object, and gets a decision back.

**Scopes.** A grant at scope

- `OWN` covers an object the principal is an owner of (`principal.user_id in
  resource.owner_ids`: a call they are on, their own agent state or recording);
- `TEAM` covers what `OWN` covers, and any object of one of `principal.team_ids`: the team the
  principal belongs to and every team they supervise, with every team nested below a
  supervised one (membership of a team does not extend to the teams nested below it);
- `ALL` covers every object, and global resources (settings, trunks, the directory).

A global resource (no owners, no teams) is covered by `ALL` only.

**Decisions.** Deny by default:

1. a disabled principal holds nothing;
2. ALLOW if the principal holds `permission` at a scope covering `resource`;
3. otherwise, for a global resource, DENY_FORBIDDEN (that settings exist is no secret);
4. otherwise, DENY_FORBIDDEN if the object is *visible* to the principal: some grant of
   theirs, of any permission, covers it by its scope;
5. otherwise DENY_NOT_FOUND: the principal cannot tell the object from one that does not
   exist (no existence oracle; `raise_for` words both alike).

Numbers: customers' numbers are shown whole only to a principal who may `NUMBERS_VIEW` the
call (or recording, or report) they appear in; everyone else sees them masked except the last
four digits (`mask_number`, `shown_number`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from callwarden.domain.errors import Forbidden, NotFound
from callwarden.domain.ids import TeamId, UserId
from callwarden.domain.permissions import Grant, Permission, Scope, widest_scopes

VISIBLE_DIGITS = 4
MASK_CHARACTER = "*"


class ResourceKind(enum.Enum):
    """What a resource is; carried for messages and the audit log, not used to decide."""

    CALL = "call"
    AGENT = "agent"
    RECORDING = "recording"
    REPORT = "report"
    AUDIT_LOG = "audit_log"
    USER = "user"
    ROLE = "role"
    TEAM = "team"
    QUEUE = "queue"
    TRUNK = "trunk"
    SETTINGS = "settings"
    RETENTION_POLICY = "retention_policy"


class Decision(enum.Enum):
    ALLOW = "allow"
    DENY_NOT_FOUND = "deny_not_found"
    DENY_FORBIDDEN = "deny_forbidden"

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


@dataclass(frozen=True)
class Principal:
    """Who is asking: a user, the team they belong to, the teams they supervise, their grants.

    `supervised_team_ids` must already include every team nested below a supervised team
    (`DirectorySnapshot.principal_for` expands them).
    """

    user_id: UserId
    team_id: TeamId | None
    supervised_team_ids: frozenset[TeamId]
    grants: frozenset[Grant]
    enabled: bool = True
    _scopes: Mapping[Permission, Scope] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        scopes = widest_scopes(self.grants) if self.enabled else {}
        object.__setattr__(self, "_scopes", scopes)

    @property
    def team_ids(self) -> frozenset[TeamId]:
        """The teams a `TEAM` grant reaches: the own team and the supervised ones."""
        if self.team_id is None:
            return self.supervised_team_ids
        return self.supervised_team_ids | {self.team_id}

    def scope_of(self, permission: Permission) -> Scope | None:
        """The widest scope `permission` is held at, or None (always None when disabled)."""
        return self._scopes.get(permission)


@dataclass(frozen=True)
class Resource:
    """The object acted on: its owners (users taking part) and the teams it belongs to.

    No owners and no teams makes it a *global* resource (settings, the trunk list, a report
    across all teams). A call between two users has both as owners and both teams.
    """

    kind: ResourceKind
    owner_ids: frozenset[UserId] = frozenset()
    team_ids: frozenset[TeamId] = frozenset()

    @classmethod
    def of(
        cls, kind: ResourceKind, *, owner: UserId | None = None, team: TeamId | None = None
    ) -> Resource:
        """An object with at most one owner and one team."""
        return cls(
            kind,
            frozenset() if owner is None else frozenset({owner}),
            frozenset() if team is None else frozenset({team}),
        )

    @classmethod
    def global_resource(cls, kind: ResourceKind) -> Resource:
        return cls(kind)

    @property
    def is_global(self) -> bool:
        return not self.owner_ids and not self.team_ids


def covers(scope: Scope, principal: Principal, resource: Resource) -> bool:
    """Whether a grant at `scope` held by `principal` reaches `resource`."""
    if scope is Scope.ALL:
        return True
    if resource.is_global:
        return False
    if principal.user_id in resource.owner_ids:
        return True
    return scope is Scope.TEAM and not resource.team_ids.isdisjoint(principal.team_ids)


def is_visible(principal: Principal, resource: Resource) -> bool:
    """Whether some grant of the principal (of any permission) covers `resource`."""
    scopes = {principal.scope_of(permission) for permission in Permission}
    return any(scope is not None and covers(scope, principal, resource) for scope in scopes)


def authorize(principal: Principal, permission: Permission, resource: Resource) -> Decision:
    """Whether `principal` may do `permission` to `resource` (see the module's rules)."""
    scope = principal.scope_of(permission)
    if scope is not None and covers(scope, principal, resource):
        return Decision.ALLOW
    if resource.is_global or is_visible(principal, resource):
        return Decision.DENY_FORBIDDEN
    return Decision.DENY_NOT_FOUND


def not_found(what: str, *, error_id: str = "not_found") -> NotFound:
    """The error for a missing object; a hidden one must be reported with the same words."""
    return NotFound(f"{what} not found", error_id=error_id)


def raise_for(decision: Decision, what: str, *, not_found_error_id: str = "not_found") -> None:
    """Raise the domain error a denial maps to; return if allowed.

    DENY_NOT_FOUND raises exactly what `not_found(what, error_id=not_found_error_id)` does,
    so a caller that reports really missing objects through `not_found` with the same `what`
    and id makes the two indistinguishable. Pass `what` without the object's private details
    (e.g. `"call 1234"`, never a customer's number).
    """
    if decision is Decision.ALLOW:
        return
    if decision is Decision.DENY_NOT_FOUND:
        raise not_found(what, error_id=not_found_error_id)
    raise Forbidden(f"not allowed on {what}")


def require(
    principal: Principal,
    permission: Permission,
    resource: Resource,
    what: str,
    *,
    not_found_error_id: str = "not_found",
) -> None:
    """`authorize` then `raise_for`: returns only when allowed."""
    decision = authorize(principal, permission, resource)
    raise_for(decision, what, not_found_error_id=not_found_error_id)


@dataclass(frozen=True)
class ListScope:
    """Which objects a listing may return for one permission, to filter a query by.

    `everything`: no filter; otherwise objects owned by `owner_id` (if not None) or belonging
    to one of `team_ids`. `admits(resource)` agrees with `authorize(...) is ALLOW`.
    """

    everything: bool
    owner_id: UserId | None
    team_ids: frozenset[TeamId]

    @property
    def nothing(self) -> bool:
        return not self.everything and self.owner_id is None and not self.team_ids

    def admits(self, resource: Resource) -> bool:
        if self.everything:
            return True
        if resource.is_global:
            return False
        if self.owner_id is not None and self.owner_id in resource.owner_ids:
            return True
        return not resource.team_ids.isdisjoint(self.team_ids)


def list_scope(principal: Principal, permission: Permission) -> ListScope:
    """The objects `principal` may `permission`: what a listing filters its query to."""
    scope = principal.scope_of(permission)
    if scope is None:
        return ListScope(everything=False, owner_id=None, team_ids=frozenset())
    if scope is Scope.ALL:
        return ListScope(everything=True, owner_id=None, team_ids=frozenset())
    teams = principal.team_ids if scope is Scope.TEAM else frozenset()
    return ListScope(everything=False, owner_id=principal.user_id, team_ids=teams)


def mask_number(number: str, principal_may_see_numbers: bool) -> str:
    """`number` whole, or with every letter and digit but the last four digits masked.

    Punctuation (`+`, spaces, `-`, brackets) is kept so the shape stays readable:
    `+49 30 1234567` -> `+** ** ***4567`. A number of four digits or fewer is masked whole
    (it would otherwise be shown whole).
    """
    if principal_may_see_numbers:
        return number
    digit_count = sum(1 for char in number if char.isdigit())
    keep = VISIBLE_DIGITS if digit_count > VISIBLE_DIGITS else 0
    masked: list[str] = []
    digits_seen = 0
    for char in number:
        if char.isdigit():
            digits_seen += 1
            masked.append(char if digits_seen > digit_count - keep else MASK_CHARACTER)
        elif char.isalnum():
            masked.append(MASK_CHARACTER)
        else:
            masked.append(char)
    return "".join(masked)


def shown_number(principal: Principal, resource: Resource, number: str) -> str:
    """`number` as `principal` may see it where it appears in `resource` (a call, a recording)."""
    allowed = authorize(principal, Permission.NUMBERS_VIEW, resource).allowed
    return mask_number(number, allowed)
