"""Custom roles' grants from the provisioning file; built-in roles' grants are fixed."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import DEFAULT_ROLE_NAMES, Role
from callwarden.domain.permissions import DEFAULT_ROLE_GRANTS, Grant, Permission, Scope
from callwarden.domain.policy import Decision, Resource, ResourceKind, authorize
from callwarden.provisioning import ObjectKind, Outcome, Provisioner, ProvisioningError

Snapshot = Callable[[], DirectorySnapshot]

QUALITY = """\
teams:
  - name: support
  - name: sales
users:
  - username: quinn
    role: quality
    team: support
  - username: alice
    role: operator
    team: support
  - username: sam
    role: operator
    team: sales
roles:
  - name: quality
    description: Listens back to calls of their team.
    grants: ["recordings.play:team", "reports.view:team"]
"""


def _role(directory: DirectorySnapshot, name: str) -> Role:
    role = directory.role_by_name(name)
    assert role is not None, name
    return role


def _problems(provisioner: Provisioner, text: str) -> list[str]:
    with pytest.raises(ProvisioningError) as caught:
        provisioner.apply_text(textwrap.dedent(text), "roles.yaml")
    return [str(problem) for problem in caught.value.problems]


def test_a_custom_role_gets_its_grants(provisioner: Provisioner, snapshot: Snapshot) -> None:
    report = provisioner.apply_text(QUALITY, "roles.yaml")
    assert report.names(ObjectKind.ROLE, Outcome.CREATED) == ("quality",)
    directory = snapshot()
    assert _role(directory, "quality").grants == {
        Grant(Permission.RECORDINGS_PLAY, Scope.TEAM),
        Grant(Permission.REPORTS_VIEW, Scope.TEAM),
    }
    quinn, alice, sam = (directory.user_by_username(name) for name in ("quinn", "alice", "sam"))
    assert quinn is not None and alice is not None and sam is not None
    principal = directory.principal_for(quinn)
    of_alice = Resource.of(ResourceKind.RECORDING, owner=alice.id, team=alice.team_id)
    of_sam = Resource.of(ResourceKind.RECORDING, owner=sam.id, team=sam.team_id)
    assert authorize(principal, Permission.RECORDINGS_PLAY, of_alice) is Decision.ALLOW
    assert authorize(principal, Permission.RECORDINGS_DOWNLOAD, of_alice) is Decision.DENY_FORBIDDEN
    assert authorize(principal, Permission.RECORDINGS_PLAY, of_sam) is Decision.DENY_NOT_FOUND


def test_grants_are_idempotent_replaced_whole_and_kept_when_left_out(
    provisioner: Provisioner, snapshot: Snapshot
) -> None:
    provisioner.apply_text(QUALITY, "roles.yaml")
    again = provisioner.apply_text(QUALITY, "roles.yaml")
    assert again.names(ObjectKind.ROLE, Outcome.UNCHANGED) == ("quality",)

    wider = QUALITY.replace('"reports.view:team"', '"reports.view:all", "live.view:team"')
    changed = provisioner.apply_text(wider, "roles.yaml")
    assert changed.names(ObjectKind.ROLE, Outcome.UPDATED) == ("quality",)
    expected = {
        Grant(Permission.RECORDINGS_PLAY, Scope.TEAM),
        Grant(Permission.REPORTS_VIEW, Scope.ALL),
        Grant(Permission.LIVE_VIEW, Scope.TEAM),
    }
    assert _role(snapshot(), "quality").grants == expected

    left_out = provisioner.apply_text("roles: [{name: quality}]\n", "roles.yaml")
    assert left_out.names(ObjectKind.ROLE, Outcome.UNCHANGED) == ("quality",)
    assert _role(snapshot(), "quality").grants == expected

    cleared = provisioner.apply_text("roles: [{name: quality, grants: []}]\n", "roles.yaml")
    assert cleared.names(ObjectKind.ROLE, Outcome.UPDATED) == ("quality",)
    assert _role(snapshot(), "quality").grants == frozenset()


def test_a_global_permission_may_leave_out_its_scope(
    provisioner: Provisioner, snapshot: Snapshot
) -> None:
    provisioner.apply_text(
        "roles: [{name: config, grants: [settings.manage, 'trunks.manage:all']}]\n", "roles.yaml"
    )
    assert _role(snapshot(), "config").grants == {
        Grant(Permission.SETTINGS_MANAGE, Scope.ALL),
        Grant(Permission.TRUNKS_MANAGE, Scope.ALL),
    }
    again = provisioner.apply_text(
        "roles: [{name: config, grants: ['settings.manage:all', trunks.manage]}]\n", "roles.yaml"
    )
    assert again.names(ObjectKind.ROLE, Outcome.UNCHANGED) == ("config",)


def test_built_in_roles_keep_their_grants(provisioner: Provisioner, snapshot: Snapshot) -> None:
    report = provisioner.apply_text(
        "roles: [{name: operator, outbound_patterns: ['0X.']}]\n", "roles.yaml"
    )
    assert report.names(ObjectKind.ROLE, Outcome.UPDATED) == ("operator",)
    directory = snapshot()
    for name in DEFAULT_ROLE_NAMES:
        assert _role(directory, name).grants == DEFAULT_ROLE_GRANTS[name]


def test_built_in_roles_grants_cannot_be_changed_by_the_file(
    provisioner: Provisioner, snapshot: Snapshot
) -> None:
    problems = _problems(
        provisioner,
        """\
        roles:
          - name: quality
            grants: [recordings.play:team]
          - name: admin
            grants:
              - recordings.download:all
        """,
    )
    assert problems == [
        "roles.yaml:5: roles[1].grants: the grants of built-in role 'admin' are fixed; "
        "define a custom role instead"
    ]
    assert snapshot().role_by_name("quality") is None


def test_invalid_grants_are_named_with_their_line(provisioner: Provisioner) -> None:
    problems = _problems(
        provisioner,
        """\
        roles:
          - name: quality
            grants:
              - recordings.play:team
              - recordings.burn:team
              - recordings.play
              - settings.manage:team
              - reports.view:everyone
              - 42
        """,
    )
    assert problems == [
        "roles.yaml:5: roles[0].grants[1]: unknown permission 'recordings.burn'",
        "roles.yaml:6: roles[0].grants[2]: recordings.play needs a scope (one of: own, team, "
        "all), e.g. recordings.play:team",
        "roles.yaml:7: roles[0].grants[3]: settings.manage cannot be held at scope team "
        "(allowed: all)",
        "roles.yaml:8: roles[0].grants[4]: unknown scope 'everyone' (one of: own, team, all)",
        "roles.yaml:9: roles[0].grants[5]: must be a string",
    ]


def test_a_permission_granted_twice_is_refused(provisioner: Provisioner) -> None:
    problems = _problems(
        provisioner,
        """\
        roles:
          - name: quality
            grants: [recordings.play:team, reports.view:team, recordings.play:all]
        """,
    )
    assert problems == [
        "roles.yaml:3: roles[0].grants: recordings.play is granted twice (grants[0] and grants[2])"
    ]


def test_no_role_may_hold_every_permission(provisioner: Provisioner) -> None:
    everything = ", ".join(
        f"{permission.value}:{'own' if Scope.ALL not in permission.scopes else 'all'}"
        for permission in Permission
    )
    problems = _problems(provisioner, f"roles:\n  - name: god\n    grants: [{everything}]\n")
    assert problems == ["roles.yaml:3: roles[0].grants: no role may hold every permission"]
    one_less = everything.replace("audit.export:all, ", "")
    report = provisioner.apply_text(f"roles: [{{name: almost, grants: [{one_less}]}}]\n", "r.yaml")
    assert report.names(ObjectKind.ROLE, Outcome.CREATED) == ("almost",)


def test_grants_is_a_known_key(provisioner: Provisioner) -> None:
    problems = _problems(provisioner, "roles: [{name: quality, grant: [reports.view:team]}]\n")
    assert problems == ["roles.yaml:1: roles[0].grant: unknown key (did you mean 'grants'?)"]


def test_pruning_a_custom_role_removes_its_grants(
    provisioner: Provisioner, snapshot: Snapshot, write_yaml: Callable[[str, str], Path]
) -> None:
    provisioner.apply_text("roles: [{name: quality, grants: [reports.view:team]}]\n", "a.yaml")
    report = provisioner.apply_file(write_yaml("prune: true\n", "empty.yaml"))
    assert report.names(ObjectKind.ROLE, Outcome.DELETED) == ("quality",)
    assert snapshot().role_by_name("quality") is None
    recreated = provisioner.apply_text("roles: [{name: quality}]\n", "b.yaml")
    assert recreated.names(ObjectKind.ROLE, Outcome.CREATED) == ("quality",)
    assert _role(snapshot(), "quality").grants == frozenset()
