"""The permission catalogue, grants, the default roles and the granting rule."""

from __future__ import annotations

import pytest

from callwarden.domain.models import DEFAULT_ROLE_NAMES
from callwarden.domain.permissions import (
    DEFAULT_ROLE_GRANTS,
    Grant,
    InvalidGrant,
    Permission,
    Scope,
    grants_beyond,
    grants_beyond_for_person,
    may_give_person,
    may_grant,
    normalise_grants,
    widest_scopes,
)

P = Permission
OWN, TEAM, ALL = Scope.OWN, Scope.TEAM, Scope.ALL

# The stored values are a contract (role_grants rows, audit entries, the provisioning file).
VALUES = {
    P.CALLS_PLACE: "calls.place",
    P.CALLS_TAKE: "calls.take",
    P.AGENT_STATE_OWN: "agent_state.change_own",
    P.RECORDING_PAUSE_OWN: "recordings.pause_own",
    P.LIVE_VIEW: "live.view",
    P.MONITOR_LISTEN: "monitor.listen",
    P.MONITOR_WHISPER: "monitor.whisper",
    P.MONITOR_BARGE: "monitor.barge",
    P.MONITOR_TAKEOVER: "monitor.takeover",
    P.RECORDINGS_PLAY: "recordings.play",
    P.RECORDINGS_DOWNLOAD: "recordings.download",
    P.RECORDINGS_DELETE: "recordings.delete",
    P.RECORDINGS_LEGAL_HOLD: "recordings.legal_hold",
    P.RETENTION_MANAGE: "retention.manage",
    P.REPORTS_VIEW: "reports.view",
    P.NUMBERS_VIEW: "numbers.view",
    P.USERS_MANAGE: "users.manage",
    P.ROLES_MANAGE: "roles.manage",
    P.TEAMS_MANAGE: "teams.manage",
    P.QUEUES_MANAGE: "queues.manage",
    P.TRUNKS_MANAGE: "trunks.manage",
    P.SETTINGS_MANAGE: "settings.manage",
    P.AUDIT_VIEW: "audit.view",
    P.AUDIT_EXPORT: "audit.export",
    P.AGENTS_MANAGE: "agents.manage",
}

GLOBAL = {
    P.RETENTION_MANAGE,
    P.USERS_MANAGE,
    P.ROLES_MANAGE,
    P.TEAMS_MANAGE,
    P.QUEUES_MANAGE,
    P.TRUNKS_MANAGE,
    P.SETTINGS_MANAGE,
}
OWN_ONLY = {P.AGENT_STATE_OWN, P.RECORDING_PAUSE_OWN}


def test_catalogue_values_are_stable() -> None:
    assert {permission: permission.value for permission in Permission} == VALUES


@pytest.mark.parametrize("permission", list(Permission), ids=lambda p: p.value)
def test_scopes_each_permission_may_be_held_at(permission: Permission) -> None:
    if permission in GLOBAL:
        assert (permission.scopes, permission.is_global) == (frozenset({ALL}), True)
    elif permission in OWN_ONLY:
        assert (permission.scopes, permission.is_global) == (frozenset({OWN}), False)
    else:
        assert (permission.scopes, permission.is_global) == (frozenset(Scope), False)


def test_scopes_are_ordered() -> None:
    assert [(a.value, b.value) for a in Scope for b in Scope if a.includes(b)] == [
        ("own", "own"),
        ("team", "own"),
        ("team", "team"),
        ("all", "own"),
        ("all", "team"),
        ("all", "all"),
    ]


@pytest.mark.parametrize(
    ("text", "grant"),
    [
        ("recordings.play:team", Grant(P.RECORDINGS_PLAY, TEAM)),
        ("monitor.listen:own", Grant(P.MONITOR_LISTEN, OWN)),
        (" reports.view : all ", Grant(P.REPORTS_VIEW, ALL)),
        ("settings.manage", Grant(P.SETTINGS_MANAGE, ALL)),
        ("settings.manage:all", Grant(P.SETTINGS_MANAGE, ALL)),
        ("agent_state.change_own:own", Grant(P.AGENT_STATE_OWN, OWN)),
    ],
)
def test_grant_parse(text: str, grant: Grant) -> None:
    assert Grant.parse(text) == grant
    assert Grant.parse(str(grant)) == grant


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("recordings.burn:all", "unknown permission 'recordings.burn'"),
        ("", "unknown permission ''"),
        (
            "recordings.play",
            "recordings.play needs a scope (one of: own, team, all), e.g. recordings.play:team",
        ),
        ("recordings.play:world", "unknown scope 'world' (one of: own, team, all)"),
        ("recordings.play:", "unknown scope '' (one of: own, team, all)"),
        ("settings.manage:team", "settings.manage cannot be held at scope team (allowed: all)"),
        ("users.manage:own", "users.manage cannot be held at scope own (allowed: all)"),
        (
            "agent_state.change_own:team",
            "agent_state.change_own cannot be held at scope team (allowed: own)",
        ),
        ("RECORDINGS.PLAY:team", "unknown permission 'RECORDINGS.PLAY'"),
    ],
)
def test_grant_parse_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidGrant) as caught:
        Grant.parse(text)
    assert caught.value.message == message
    assert caught.value.error_id == "invalid_grant"


def test_a_grant_cannot_be_built_at_a_scope_its_permission_does_not_take() -> None:
    with pytest.raises(InvalidGrant) as caught:
        Grant(P.RECORDING_PAUSE_OWN, ALL)
    assert caught.value.message == (
        "recordings.pause_own cannot be held at scope all (allowed: own)"
    )
    assert caught.value.details == {"permission": "recordings.pause_own", "scope": "all"}


def test_widest_scope_wins() -> None:
    grants = [Grant(P.REPORTS_VIEW, OWN), Grant(P.REPORTS_VIEW, ALL), Grant(P.LIVE_VIEW, TEAM)]
    assert dict(widest_scopes(grants)) == {P.REPORTS_VIEW: ALL, P.LIVE_VIEW: TEAM}
    assert normalise_grants(grants) == {Grant(P.REPORTS_VIEW, ALL), Grant(P.LIVE_VIEW, TEAM)}


# The default roles


def _held(role: str) -> dict[Permission, Scope]:
    return dict(widest_scopes(DEFAULT_ROLE_GRANTS[role]))


def test_every_default_role_has_grants() -> None:
    assert set(DEFAULT_ROLE_GRANTS) == set(DEFAULT_ROLE_NAMES)


@pytest.mark.parametrize("role", DEFAULT_ROLE_NAMES)
def test_no_default_role_holds_every_permission(role: str) -> None:
    assert set(_held(role)) < set(Permission)


def test_no_default_role_holds_every_permission_at_all_scope_either() -> None:
    everything = {Grant(permission, ALL) for permission in Permission if ALL in permission.scopes}
    for role, grants in DEFAULT_ROLE_GRANTS.items():
        assert grants_beyond(grants, everything), role


def test_operator_grants() -> None:
    assert _held("operator") == {
        P.CALLS_PLACE: OWN,
        P.CALLS_TAKE: OWN,
        P.AGENT_STATE_OWN: OWN,
        P.RECORDING_PAUSE_OWN: OWN,
    }


def test_supervisor_grants() -> None:
    assert _held("supervisor") == {
        P.CALLS_PLACE: OWN,
        P.CALLS_TAKE: OWN,
        P.AGENT_STATE_OWN: OWN,
        P.RECORDING_PAUSE_OWN: OWN,
        P.LIVE_VIEW: TEAM,
        P.MONITOR_LISTEN: TEAM,
        P.MONITOR_WHISPER: TEAM,
        P.MONITOR_BARGE: TEAM,
        P.MONITOR_TAKEOVER: TEAM,
        P.RECORDINGS_PLAY: TEAM,
        P.REPORTS_VIEW: TEAM,
        P.AGENTS_MANAGE: TEAM,
        P.NUMBERS_VIEW: TEAM,
    }


def test_admin_grants() -> None:
    assert _held("admin") == {
        P.USERS_MANAGE: ALL,
        P.ROLES_MANAGE: ALL,
        P.TEAMS_MANAGE: ALL,
        P.QUEUES_MANAGE: ALL,
        P.TRUNKS_MANAGE: ALL,
        P.SETTINGS_MANAGE: ALL,
        P.REPORTS_VIEW: ALL,
        P.LIVE_VIEW: ALL,
        P.NUMBERS_VIEW: ALL,
    }


def test_auditor_grants() -> None:
    assert _held("auditor") == {
        P.RECORDINGS_PLAY: ALL,
        P.AUDIT_VIEW: ALL,
        P.REPORTS_VIEW: ALL,
        P.NUMBERS_VIEW: ALL,
    }


def test_powers_no_default_role_holds() -> None:
    held = {permission for role in DEFAULT_ROLE_NAMES for permission in _held(role)}
    assert set(Permission) - held == {
        P.RECORDINGS_DOWNLOAD,
        P.RECORDINGS_DELETE,
        P.RECORDINGS_LEGAL_HOLD,
        P.RETENTION_MANAGE,
        P.AUDIT_EXPORT,
    }


# The granting rule


@pytest.mark.parametrize(
    ("granter", "grant", "allowed"),
    [
        ([Grant(P.RECORDINGS_PLAY, TEAM)], Grant(P.RECORDINGS_PLAY, OWN), True),
        ([Grant(P.RECORDINGS_PLAY, TEAM)], Grant(P.RECORDINGS_PLAY, TEAM), True),
        ([Grant(P.RECORDINGS_PLAY, TEAM)], Grant(P.RECORDINGS_PLAY, ALL), False),
        ([Grant(P.RECORDINGS_PLAY, ALL)], Grant(P.RECORDINGS_DOWNLOAD, OWN), False),
        (
            [Grant(P.REPORTS_VIEW, OWN), Grant(P.REPORTS_VIEW, ALL)],
            Grant(P.REPORTS_VIEW, ALL),
            True,
        ),
        ([], Grant(P.CALLS_TAKE, OWN), False),
        (list(DEFAULT_ROLE_GRANTS["admin"]), Grant(P.USERS_MANAGE, ALL), True),
        (list(DEFAULT_ROLE_GRANTS["admin"]), Grant(P.RECORDINGS_DOWNLOAD, ALL), False),
        (list(DEFAULT_ROLE_GRANTS["admin"]), Grant(P.RECORDINGS_DOWNLOAD, OWN), False),
        (list(DEFAULT_ROLE_GRANTS["admin"]), Grant(P.AUDIT_EXPORT, ALL), False),
        (list(DEFAULT_ROLE_GRANTS["admin"]), Grant(P.MONITOR_LISTEN, TEAM), False),
        (list(DEFAULT_ROLE_GRANTS["supervisor"]), Grant(P.MONITOR_LISTEN, TEAM), True),
        (list(DEFAULT_ROLE_GRANTS["supervisor"]), Grant(P.MONITOR_LISTEN, ALL), False),
    ],
)
def test_may_grant(granter: list[Grant], grant: Grant, allowed: bool) -> None:
    assert may_grant(granter, grant) is allowed


def test_an_admin_cannot_give_any_role_recording_export() -> None:
    quality = [
        Grant(P.REPORTS_VIEW, TEAM),
        Grant(P.RECORDINGS_PLAY, TEAM),
        Grant(P.RECORDINGS_DOWNLOAD, TEAM),
    ]
    assert grants_beyond(DEFAULT_ROLE_GRANTS["admin"], quality) == {
        Grant(P.RECORDINGS_PLAY, TEAM),
        Grant(P.RECORDINGS_DOWNLOAD, TEAM),
    }
    assert grants_beyond(DEFAULT_ROLE_GRANTS["admin"], DEFAULT_ROLE_GRANTS["admin"]) == set()


# Giving a person a role: own-scope grants are exempt for users.manage:all

_ADMIN = list(DEFAULT_ROLE_GRANTS["admin"])
_SUPERVISOR = list(DEFAULT_ROLE_GRANTS["supervisor"])


@pytest.mark.parametrize(
    ("granter", "grant", "allowed"),
    [
        (_ADMIN, Grant(P.CALLS_TAKE, OWN), True),
        (_ADMIN, Grant(P.AGENT_STATE_OWN, OWN), True),
        (_ADMIN, Grant(P.RECORDINGS_PLAY, OWN), True),
        (_ADMIN, Grant(P.RECORDINGS_PLAY, TEAM), False),
        (_ADMIN, Grant(P.MONITOR_LISTEN, TEAM), False),
        (_ADMIN, Grant(P.AUDIT_VIEW, ALL), False),
        (_ADMIN, Grant(P.REPORTS_VIEW, ALL), True),
        # Without users.manage:all, an own-scope grant must be held like any other.
        (_SUPERVISOR, Grant(P.RECORDINGS_PLAY, OWN), True),
        (_SUPERVISOR, Grant(P.RECORDINGS_DOWNLOAD, OWN), False),
        (_SUPERVISOR, Grant(P.MONITOR_LISTEN, ALL), False),
        (_SUPERVISOR, Grant(P.AUDIT_VIEW, TEAM), False),
        ([Grant(P.ROLES_MANAGE, ALL)], Grant(P.CALLS_TAKE, OWN), False),
        ([], Grant(P.CALLS_TAKE, OWN), False),
    ],
)
def test_may_give_person(granter: list[Grant], grant: Grant, allowed: bool) -> None:
    assert may_give_person(granter, grant) is allowed


def test_an_admin_gives_people_the_operator_role_but_not_a_supervisor_or_auditor() -> None:
    assert grants_beyond_for_person(_ADMIN, DEFAULT_ROLE_GRANTS["operator"]) == set()
    assert grants_beyond(_ADMIN, DEFAULT_ROLE_GRANTS["operator"]) == set(
        DEFAULT_ROLE_GRANTS["operator"]
    )
    assert grants_beyond_for_person(_ADMIN, DEFAULT_ROLE_GRANTS["supervisor"]) == {
        Grant(P.MONITOR_LISTEN, TEAM),
        Grant(P.MONITOR_WHISPER, TEAM),
        Grant(P.MONITOR_BARGE, TEAM),
        Grant(P.MONITOR_TAKEOVER, TEAM),
        Grant(P.RECORDINGS_PLAY, TEAM),
        Grant(P.AGENTS_MANAGE, TEAM),
    }
    assert grants_beyond_for_person(_ADMIN, DEFAULT_ROLE_GRANTS["auditor"]) == {
        Grant(P.RECORDINGS_PLAY, ALL),
        Grant(P.AUDIT_VIEW, ALL),
    }
