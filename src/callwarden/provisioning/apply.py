"""Writing a checked document into the session, recording what changed.

Order matters for the constraints: pruned queues, users and trunks go first; numbers and
extensions that move between objects are released before they are claimed again (so a swap of
two extensions works); teams and roles that are pruned go last, once nothing refers to them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from callwarden.domain.permissions import Grant
from callwarden.provisioning.document import (
    DispositionSpec,
    QueueSpec,
    RoleSpec,
    Spec,
    TeamSpec,
    TrunkSpec,
    UserSpec,
)
from callwarden.provisioning.report import ObjectKind, Outcome, ReportBuilder
from callwarden.provisioning.state import StoredState, TargetState
from callwarden.security.passwords import PasswordHasher
from callwarden.store.mapping import grant_rows
from callwarden.store.schema import (
    Base,
    BreakReasonRow,
    DispositionCodeRow,
    QueueMemberRow,
    QueueRow,
    RoleRow,
    TeamRow,
    TeamSupervisorRow,
    TrunkInboundNumberRow,
    TrunkRow,
    UserRow,
)

Ha1Function = Callable[[str, str, str, str], str]

_QUEUE_SETTINGS = (
    "strategy",
    "wrap_up_seconds",
    "ring_timeout_seconds",
    "max_no_answer",
    "max_wait_seconds",
    "service_level_seconds",
    "service_level_percent",
    "required_skill_level",
    "recording",
    "announce_seconds",
    "music_on_hold",
)
_TRUNK_SETTINGS = (
    "host",
    "port",
    "transport",
    "outbound_patterns",
    "username",
    "password",
    "enabled",
)


def _set(row: object, attribute: str, value: object) -> bool:
    """Assign when different; whether it changed."""
    if getattr(row, attribute) == value:
        return False
    setattr(row, attribute, value)
    return True


def _copy(row: object, spec: Spec, keys: tuple[str, ...], *, created: bool) -> bool:
    """Copy the keys the file states (all keys, with defaults, for a new object)."""
    changed = False
    for key in keys:
        if created or spec.given(key):
            changed |= _set(row, key, getattr(spec, key))
    return changed


class Applier:
    """Applies one document inside one session; `run()` returns what happened."""

    def __init__(
        self,
        session: Session,
        target: TargetState,
        *,
        realm: str,
        hasher: PasswordHasher,
        compute_ha1: Ha1Function,
    ) -> None:
        self._session = session
        self._target = target
        self._stored: StoredState = target.stored
        self._realm = realm
        self._hasher = hasher
        self._compute_ha1 = compute_ha1
        self._report = ReportBuilder()
        self._roles: dict[str, RoleRow] = dict(self._stored.roles)
        self._teams: dict[str, TeamRow] = dict(self._stored.teams)
        self._users: dict[str, UserRow] = dict(self._stored.users)
        # Values before this run, for change detection after numbers were released.
        self._extensions = {name: row.extension for name, row in self._stored.users.items()}
        self._queue_numbers = {name: row.number for name, row in self._stored.queues.items()}
        self._queues: dict[str, QueueRow] = dict(self._stored.queues)
        self._inbound = {
            name: {(inbound.number, inbound.destination) for inbound in row.inbound_numbers}
            for name, row in self._stored.trunks.items()
        }

    def run(self) -> ReportBuilder:
        document = self._target.document
        if document.prune:
            self._prune_first()
        for role in document.roles:
            self._apply_role(role)
        self._apply_teams(document.teams)
        self._release_moving_numbers()
        for user in document.users:
            self._apply_user(user)
        self._session.flush()
        for trunk in document.trunks:
            self._apply_trunk(trunk)
        for queue in document.queues:
            self._apply_queue(queue)
        self._session.flush()
        for queue in document.queues:  # targets may be queues created just now
            self._apply_overflow(queue)
        if document.break_reasons is not None:
            self._apply_break_reasons(document.break_reasons)
        if document.dispositions is not None:
            self._apply_dispositions(document.dispositions)
        self._session.flush()
        if document.prune:
            self._prune_last()
        return self._report

    def _record(self, kind: ObjectKind, name: str, *, created: bool, changed: bool) -> None:
        if not created:
            self._report.record(kind, name, Outcome.UPDATED if changed else Outcome.UNCHANGED)
        else:
            self._report.record(kind, name, Outcome.CREATED)

    # pruning

    def _delete_unlisted(
        self, kind: ObjectKind, rows: Mapping[str, Base], listed: set[str]
    ) -> None:
        for name, row in rows.items():
            if name not in listed:
                self._session.delete(row)
                self._report.record(kind, name, Outcome.DELETED)
        self._session.flush()

    def _prune_first(self) -> None:
        document = self._target.document
        listed_users = {user.username for user in document.users}
        self._delete_unlisted(
            ObjectKind.QUEUE, self._stored.queues, {queue.name for queue in document.queues}
        )
        self._delete_unlisted(ObjectKind.USER, self._stored.users, listed_users)
        self._delete_unlisted(
            ObjectKind.TRUNK, self._stored.trunks, {trunk.name for trunk in document.trunks}
        )
        self._users = {name: row for name, row in self._users.items() if name in listed_users}
        # The database cascaded memberships and supervision away: reread what is still loaded.
        self._session.expire_all()

    def _prune_last(self) -> None:
        document = self._target.document
        listed_teams = {team.name for team in document.teams}
        doomed = [row for name, row in self._stored.teams.items() if name not in listed_teams]
        for row in doomed:
            row.parent_id = None
        self._session.flush()
        for row in doomed:
            self._session.delete(row)
            self._report.record(ObjectKind.TEAM, row.name, Outcome.DELETED)
        listed_roles = {role.name for role in document.roles}
        for name, role_row in self._stored.roles.items():
            if name not in listed_roles and not role_row.builtin:
                self._session.delete(role_row)
                self._report.record(ObjectKind.ROLE, name, Outcome.DELETED)
        self._session.flush()

    # roles and teams

    def _apply_role(self, spec: RoleSpec) -> None:
        row = self._roles.get(spec.name)
        created = row is None
        if row is None:
            row = RoleRow(name=spec.name, builtin=False)
            self._session.add(row)
            self._roles[spec.name] = row
        changed = _copy(row, spec, ("description", "outbound_patterns"), created=created)
        if created or spec.given("grants"):
            changed |= self._apply_grants(row, spec.parsed_grants())
        self._record(ObjectKind.ROLE, spec.name, created=created, changed=changed)

    @staticmethod
    def _apply_grants(row: RoleRow, grants: frozenset[Grant]) -> bool:
        """Replace a custom role's grants (the document refuses grants for built-in roles)."""
        wanted = {(grant.permission.value, grant.scope) for grant in grants}
        if {(grant.permission, grant.scope) for grant in row.grants} == wanted:
            return False
        row.grants = grant_rows(grants)
        return True

    def _apply_teams(self, teams: list[TeamSpec]) -> None:
        created_names: set[str] = set()
        for spec in teams:
            row = self._teams.get(spec.name)
            created = row is None
            if row is None:
                row = TeamRow(name=spec.name)
                self._session.add(row)
                self._teams[spec.name] = row
                created_names.add(spec.name)
            changed = False
            if created or spec.given("display_name"):
                changed = _set(row, "display_name", spec.display_name or spec.name)
            if created or spec.given("recording"):
                changed |= _set(row, "recording", spec.recording)
            if created or spec.given("monitoring_transparency"):
                changed |= _set(row, "monitoring_transparency", spec.monitoring_transparency)
            self._record(ObjectKind.TEAM, spec.name, created=created, changed=changed)
        self._session.flush()
        for spec in teams:
            created = spec.name in created_names
            if created or spec.given("parent"):
                parent = None if spec.parent is None else self._teams[spec.parent].id
                changed = _set(self._teams[spec.name], "parent_id", parent)
                self._record(ObjectKind.TEAM, spec.name, created=created, changed=changed)
        self._session.flush()

    # numbers that move between objects

    def _release_moving_numbers(self) -> None:
        """Free extensions, queue numbers and inbound numbers that change owner or value."""
        for spec in self._target.document.users:
            row = self._users.get(spec.username)
            if row is not None and row.extension != self._target.extension_of(spec):
                row.extension = None
        for queue in self._target.document.queues:
            queue_row = self._stored.queues.get(queue.name)
            if queue_row is not None and queue_row.number != queue.number:
                queue_row.number = f"-{queue_row.id}"
        for trunk in self._target.document.trunks:
            trunk_row = self._stored.trunks.get(trunk.name)
            if trunk_row is not None and trunk.given("inbound_numbers"):
                wanted = {inbound.number for inbound in trunk.inbound_numbers}
                trunk_row.inbound_numbers = [
                    inbound for inbound in trunk_row.inbound_numbers if inbound.number in wanted
                ]
        self._session.flush()

    # users

    def _apply_user(self, spec: UserSpec) -> None:
        row = self._users.get(spec.username)
        created = row is None
        if row is None:
            row = UserRow(username=spec.username, enabled=True)
            self._session.add(row)
            self._users[spec.username] = row
        changed = _set(row, "role_id", self._roles[spec.role].id)
        if created or spec.given("display_name"):
            changed |= _set(row, "display_name", spec.display_name or spec.username)
        if created or spec.given("team"):
            team_id = None if spec.team is None else self._teams[spec.team].id
            changed |= _set(row, "team_id", team_id)
        extension = self._target.extension_of(spec)
        row.extension = extension
        changed |= not created and self._extensions[spec.username] != extension
        changed |= _copy(row, spec, ("enabled",), created=created)
        if spec.given("password"):
            changed |= self._apply_web_password(row, spec.password)
        if spec.given("sip_password"):
            changed |= self._apply_sip_password(row, spec.sip_password)
        if created or spec.given("supervises"):
            changed |= self._apply_supervision(row, spec.supervises)
        if created or spec.given("recording"):
            changed |= _set(row, "recording", spec.recording)
        self._record(ObjectKind.USER, spec.username, created=created, changed=changed)

    def _apply_web_password(self, row: UserRow, password: str | None) -> bool:
        if password is None:
            return _set(row, "password_hash", None)
        current = row.password_hash
        if (
            current is not None
            and self._hasher.verify(current, password)
            and not self._hasher.needs_rehash(current)
        ):
            return False
        row.password_hash = self._hasher.hash(password)
        return True

    def _apply_sip_password(self, row: UserRow, password: str | None) -> bool:
        if password is None:
            values: tuple[str | None, str | None, str | None] = (None, None, None)
        else:
            values = (
                self._realm,
                self._compute_ha1(row.username, self._realm, password, "MD5"),
                self._compute_ha1(row.username, self._realm, password, "SHA-256"),
            )
        changed = _set(row, "sip_realm", values[0])
        changed |= _set(row, "sip_ha1_md5", values[1])
        return _set(row, "sip_ha1_sha256", values[2]) or changed

    def _apply_supervision(self, row: UserRow, team_names: list[str]) -> bool:
        wanted = {self._teams[name].id for name in team_names}
        current = {link.team_id for link in row.supervised}
        if wanted == current:
            return False
        row.supervised = [link for link in row.supervised if link.team_id in wanted]
        row.supervised.extend(TeamSupervisorRow(team_id=team_id) for team_id in wanted - current)
        return True

    # trunks and queues

    def _apply_trunk(self, spec: TrunkSpec) -> None:
        row = self._stored.trunks.get(spec.name)
        created = row is None
        if row is None:
            row = TrunkRow(name=spec.name)
            self._session.add(row)
        changed = _copy(row, spec, _TRUNK_SETTINGS, created=created)
        if created or spec.given("registers"):
            changed |= _set(row, "register", spec.registers)
        if created or spec.given("inbound_numbers"):
            self._sync_inbound(row, spec)
            wanted = {(inbound.number, inbound.destination) for inbound in spec.inbound_numbers}
            changed |= not created and self._inbound[spec.name] != wanted
        self._record(ObjectKind.TRUNK, spec.name, created=created, changed=changed)

    @staticmethod
    def _sync_inbound(row: TrunkRow, spec: TrunkSpec) -> None:
        """Numbers no longer wanted were released already; add and update the rest."""
        by_number = {inbound.number: inbound for inbound in row.inbound_numbers}
        for inbound in spec.inbound_numbers:
            existing = by_number.get(inbound.number)
            if existing is None:
                row.inbound_numbers.append(
                    TrunkInboundNumberRow(number=inbound.number, destination=inbound.destination)
                )
            else:
                existing.destination = inbound.destination

    def _apply_queue(self, spec: QueueSpec) -> None:
        row = self._stored.queues.get(spec.name)
        created = row is None
        if row is None:
            row = QueueRow(name=spec.name)
            self._session.add(row)
        self._queues[spec.name] = row
        row.number = spec.number
        changed = not created and self._queue_numbers[spec.name] != spec.number
        changed |= _set(row, "team_id", self._teams[spec.team].id)
        if created or spec.given("display_name"):
            changed |= _set(row, "display_name", spec.display_name or spec.name)
        changed |= _copy(row, spec, _QUEUE_SETTINGS, created=created)
        if created or spec.given("members"):
            changed |= self._apply_members(row, spec)
        self._record(ObjectKind.QUEUE, spec.name, created=created, changed=changed)

    def _apply_overflow(self, spec: QueueSpec) -> None:
        row = self._queues[spec.name]
        if spec.name in self._stored.queues and not spec.given("overflow"):
            return
        overflow = spec.overflow
        target_queue = None if overflow.queue is None else self._queues[overflow.queue].id
        target_user = None if overflow.user is None else self._users[overflow.user].id
        changed = _set(row, "overflow", overflow.action)
        changed |= _set(row, "overflow_queue_id", target_queue)
        changed |= _set(row, "overflow_user_id", target_user)
        if changed and spec.name in self._stored.queues:
            self._report.record(ObjectKind.QUEUE, spec.name, Outcome.UPDATED)

    def _apply_break_reasons(self, reasons: list[str]) -> None:
        stored = self._session.scalars(select(BreakReasonRow).order_by(BreakReasonRow.position))
        if [row.code for row in stored] == reasons:
            return
        self._session.execute(delete(BreakReasonRow))
        self._session.flush()
        self._session.add_all(
            BreakReasonRow(position=index, code=code) for index, code in enumerate(reasons, 1)
        )

    def _apply_dispositions(self, dispositions: list[DispositionSpec]) -> None:
        wanted = [(spec.code, spec.label_ja, spec.label_en) for spec in dispositions]
        stored = self._session.scalars(
            select(DispositionCodeRow).order_by(DispositionCodeRow.position)
        )
        if [(row.code, row.label_ja, row.label_en) for row in stored] == wanted:
            return
        self._session.execute(delete(DispositionCodeRow))
        self._session.flush()
        self._session.add_all(
            DispositionCodeRow(position=index, code=code, label_ja=ja, label_en=en)
            for index, (code, ja, en) in enumerate(wanted, 1)
        )

    def _apply_members(self, row: QueueRow, spec: QueueSpec) -> bool:
        wanted = {self._users[member.user].id: member for member in spec.members}
        changed = False
        kept: list[QueueMemberRow] = []
        for existing in row.members:
            member = wanted.pop(existing.user_id, None)
            if member is None:
                changed = True
                continue
            changed |= _set(existing, "penalty", member.penalty)
            changed |= _set(existing, "skill_level", member.skill_level)
            kept.append(existing)
        for user_id, member in wanted.items():
            kept.append(
                QueueMemberRow(
                    user_id=user_id, penalty=member.penalty, skill_level=member.skill_level
                )
            )
            changed = True
        row.members = kept
        return changed
