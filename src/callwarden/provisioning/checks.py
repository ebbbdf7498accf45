"""Cross-reference checks: what pydantic cannot see inside one object.

Every check runs against the state the run would leave behind (the file applied over what is
stored), so a file may refer to objects created earlier by another file, and a clash with an
object the file does not list is found before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence

from callwarden.provisioning.errors import Problem
from callwarden.provisioning.source import Locator, PathPart
from callwarden.provisioning.state import TargetState
from callwarden.security.password_policy import PasswordPolicy


def _unknown(kind: str, name: str, target: TargetState) -> str:
    stored: dict[str, set[str]] = {
        "team": set(target.stored.teams),
        "user": set(target.stored.users),
        "role": set(target.stored.roles),
        "queue": set(target.stored.queues),
    }
    if target.document.prune and name in stored[kind]:
        return f"{kind} {name!r} is not in this file, and prune: true removes it"
    return f"unknown {kind} {name!r}"


def _duplicate_names(target: TargetState, locator: Locator) -> list[Problem]:
    document = target.document
    sections: list[tuple[str, str, Sequence[str]]] = [
        ("roles", "name", [role.name for role in document.roles]),
        ("teams", "name", [team.name for team in document.teams]),
        ("users", "username", [user.username for user in document.users]),
        ("trunks", "name", [trunk.name for trunk in document.trunks]),
        ("queues", "name", [queue.name for queue in document.queues]),
    ]
    problems: list[Problem] = []
    for section, key, names in sections:
        first: dict[str, int] = {}
        for index, name in enumerate(names):
            if name in first:
                problems.append(
                    locator.problem(
                        (section, index, key),
                        f"{name!r} is listed twice (first as {section}[{first[name]}])",
                    )
                )
            else:
                first[name] = index
    return problems


def _team_problems(target: TargetState, locator: Locator) -> list[Problem]:
    problems: list[Problem] = []
    parents: dict[str, str | None] = {
        name: target.stored.team_name(row.parent_id) for name, row in target.kept_teams.items()
    }
    for team in target.document.teams:
        parents[team.name] = target.parent_of(team.name, team.parent, given=team.given("parent"))
    for index, team in enumerate(target.document.teams):
        parent = parents[team.name]
        path: tuple[PathPart, ...] = ("teams", index, "parent")
        if parent is None:
            continue
        if parent == team.name:
            problems.append(locator.problem(path, "a team cannot be its own parent"))
        elif parent not in target.team_names:
            problems.append(locator.problem(path, _unknown("team", parent, target)))
        else:
            chain = [team.name, parent]
            while (above := parents.get(chain[-1])) is not None and above not in chain:
                chain.append(above)
            if above == team.name:
                cycle = " -> ".join([*chain, team.name])
                problems.append(locator.problem(path, f"teams would nest in a cycle: {cycle}"))
    return problems


def _user_problems(target: TargetState, locator: Locator) -> list[Problem]:
    problems: list[Problem] = []
    for index, user in enumerate(target.document.users):
        if user.role not in target.role_names:
            problems.append(
                locator.problem(("users", index, "role"), _unknown("role", user.role, target))
            )
        team = target.team_of(user)
        if team is not None and team not in target.team_names:
            problems.append(
                locator.problem(("users", index, "team"), _unknown("team", team, target))
            )
        for position, supervised in enumerate(target.supervised_by(user)):
            if supervised not in target.team_names:
                path: tuple[PathPart, ...] = ("users", index, "supervises")
                if user.given("supervises"):
                    path = (*path, position)
                problems.append(locator.problem(path, _unknown("team", supervised, target)))
    return problems


def _overflow_problems(target: TargetState, locator: Locator) -> list[Problem]:
    problems: list[Problem] = []
    queue_names = {queue.name for queue in target.document.queues} | set(target.kept_queues)
    for index, queue in enumerate(target.document.queues):
        overflow, path = queue.overflow, ("queues", index, "overflow")
        if overflow.queue is not None:
            if overflow.queue == queue.name:
                problems.append(locator.problem(path, "a queue cannot overflow to itself"))
            elif overflow.queue not in queue_names:
                problems.append(locator.problem(path, _unknown("queue", overflow.queue, target)))
        if overflow.user is not None and overflow.user not in target.user_names:
            problems.append(locator.problem(path, _unknown("user", overflow.user, target)))
    return problems


def _queue_problems(target: TargetState, locator: Locator) -> list[Problem]:
    problems: list[Problem] = _overflow_problems(target, locator)
    for index, queue in enumerate(target.document.queues):
        if queue.team not in target.team_names:
            problems.append(
                locator.problem(("queues", index, "team"), _unknown("team", queue.team, target))
            )
        seen: set[str] = set()
        for position, member in enumerate(queue.members):
            path = ("queues", index, "members", position)
            if member.user in seen:
                problems.append(locator.problem(path, f"{member.user!r} is listed twice"))
            elif member.user not in target.user_names:
                problems.append(locator.problem(path, _unknown("user", member.user, target)))
            seen.add(member.user)
    return problems


def _dialled_number_problems(
    target: TargetState, locator: Locator
) -> tuple[set[str], list[Problem]]:
    """Extensions and queue numbers share one number space; return it with its clashes."""
    owners: dict[str, str] = {}
    for name, user_row in target.kept_users.items():
        if user_row.extension is not None:
            owners[user_row.extension] = f"the extension of user {name!r} (not in this file)"
    for name, queue_row in target.kept_queues.items():
        owners.setdefault(queue_row.number, f"the number of queue {name!r} (not in this file)")
    claims: list[tuple[tuple[PathPart, ...], str, str]] = []
    for index, user in enumerate(target.document.users):
        extension = target.extension_of(user)
        if extension is not None:
            claims.append(
                (("users", index, "extension"), extension, f"the extension of {user.username!r}")
            )
    for index, queue in enumerate(target.document.queues):
        claims.append(
            (("queues", index, "number"), queue.number, f"the number of queue {queue.name!r}")
        )
    problems: list[Problem] = []
    for path, number, owner in claims:
        if number in owners:
            problems.append(locator.problem(path, f"{number!r} is already {owners[number]}"))
        else:
            owners[number] = owner
    return set(owners), problems


def _inbound_problems(
    target: TargetState, locator: Locator, dialled_numbers: set[str]
) -> list[Problem]:
    problems: list[Problem] = []
    owners: dict[str, str] = {}
    for name, trunk_row in target.kept_trunks.items():
        for inbound in trunk_row.inbound_numbers:
            owners[inbound.number] = f"an inbound number of trunk {name!r} (not in this file)"
            if inbound.destination is not None and inbound.destination not in dialled_numbers:
                problems.append(
                    locator.problem(
                        (),
                        f"trunk {name!r} (not in this file) sends {inbound.number} to "
                        f"{inbound.destination!r}, which would no longer exist",
                    )
                )
    for index, trunk in enumerate(target.document.trunks):
        for position, (number, destination) in enumerate(target.inbound_of(trunk)):
            path: tuple[PathPart, ...] = ("trunks", index, "inbound_numbers")
            if trunk.given("inbound_numbers"):
                path = (*path, position)
            if number in owners:
                problems.append(locator.problem(path, f"{number!r} is already {owners[number]}"))
            owners.setdefault(number, f"an inbound number of trunk {trunk.name!r}")
            if destination is not None and destination not in dialled_numbers:
                where = (*path, "destination") if trunk.given("inbound_numbers") else path
                problems.append(
                    locator.problem(
                        where, f"{destination!r} is neither an extension nor a queue number"
                    )
                )
    return problems


def password_problems(
    target: TargetState, locator: Locator, policy: PasswordPolicy
) -> list[Problem]:
    """Web passwords the password policy refuses (common, repetitive, based on the name)."""
    problems: list[Problem] = []
    for index, user in enumerate(target.document.users):
        if user.password is None:
            continue
        stored = target.stored.users.get(user.username)
        display_name = user.display_name or (None if stored is None else stored.display_name)
        rejected = policy.problem(user.password, username=user.username, display_name=display_name)
        if rejected is not None:
            problems.append(locator.problem(("users", index, "password"), rejected.reason_message))
    return problems


def cross_reference_problems(target: TargetState, locator: Locator) -> list[Problem]:
    """Every problem of references and uniqueness; empty when the document can be applied."""
    dialled_numbers, number_problems = _dialled_number_problems(target, locator)
    return [
        *_duplicate_names(target, locator),
        *_team_problems(target, locator),
        *_user_problems(target, locator),
        *_queue_problems(target, locator),
        *number_problems,
        *_inbound_problems(target, locator, dialled_numbers),
    ]
