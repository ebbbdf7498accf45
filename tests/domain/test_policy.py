"""authorize(): every default role x permission x (own, same-team, other-team, nested-team,
global) object, visibility, disabled users, custom scopes, errors, listings and masking."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.errors import Forbidden, NotFound
from callwarden.domain.ids import RoleId, TeamId, UserId
from callwarden.domain.models import DEFAULT_ROLE_NAMES, Role, Team, User
from callwarden.domain.permissions import DEFAULT_ROLE_GRANTS, Grant, Permission
from callwarden.domain.policy import (
    Decision,
    Principal,
    Resource,
    ResourceKind,
    authorize,
    is_visible,
    list_scope,
    mask_number,
    not_found,
    raise_for,
    require,
    shown_number,
)

P = Permission
A, N, F = Decision.ALLOW, Decision.DENY_NOT_FOUND, Decision.DENY_FORBIDDEN
LETTERS = {"A": A, "N": N, "F": F}

# center > floor_a > level2 (nested), and floor_b beside it.
CENTER = Team(id=TeamId(1), name="center", display_name="Center")
FLOOR_A = Team(id=TeamId(10), name="floor_a", display_name="Floor A", parent_id=TeamId(1))
LEVEL2 = Team(id=TeamId(11), name="level2", display_name="Level 2", parent_id=TeamId(10))
FLOOR_B = Team(id=TeamId(20), name="floor_b", display_name="Floor B", parent_id=TeamId(1))

ROLES = {
    name: Role(id=RoleId(index), name=name, builtin=True, grants=DEFAULT_ROLE_GRANTS[name])
    for index, name in enumerate(DEFAULT_ROLE_NAMES, start=1)
}


def _user(user_id: int, name: str, role: str, team: Team, *supervises: Team) -> User:
    return User(
        id=UserId(user_id),
        username=name,
        display_name=name,
        role_id=ROLES[role].id,
        team_id=team.id,
        supervised_team_ids=frozenset(team.id for team in supervises),
    )


# One user of each default role, all members of floor A; the supervisor supervises floor A.
MEMBERS = {
    "operator": _user(1, "olivia", "operator", FLOOR_A),
    "supervisor": _user(2, "sam", "supervisor", FLOOR_A, FLOOR_A),
    "admin": _user(3, "ada", "admin", FLOOR_A),
    "auditor": _user(4, "aud", "auditor", FLOOR_A),
}
PEER = _user(5, "peter", "operator", FLOOR_A)
STRANGER = _user(6, "stella", "operator", FLOOR_B)
NESTED = _user(7, "nina", "operator", LEVEL2)
DIRECTORY = DirectorySnapshot(
    teams=[CENTER, FLOOR_A, LEVEL2, FLOOR_B],
    roles=ROLES.values(),
    users=[*MEMBERS.values(), PEER, STRANGER, NESTED],
)

OBJECT_KIND = {
    P.CALLS_PLACE: ResourceKind.CALL,
    P.CALLS_TAKE: ResourceKind.CALL,
    P.AGENT_STATE_OWN: ResourceKind.AGENT,
    P.RECORDING_PAUSE_OWN: ResourceKind.CALL,
    P.LIVE_VIEW: ResourceKind.CALL,
    P.MONITOR_LISTEN: ResourceKind.CALL,
    P.MONITOR_WHISPER: ResourceKind.CALL,
    P.MONITOR_BARGE: ResourceKind.CALL,
    P.MONITOR_TAKEOVER: ResourceKind.CALL,
    P.RECORDINGS_PLAY: ResourceKind.RECORDING,
    P.RECORDINGS_DOWNLOAD: ResourceKind.RECORDING,
    P.RECORDINGS_DELETE: ResourceKind.RECORDING,
    P.RECORDINGS_LEGAL_HOLD: ResourceKind.RECORDING,
    P.RETENTION_MANAGE: ResourceKind.RETENTION_POLICY,
    P.REPORTS_VIEW: ResourceKind.REPORT,
    P.NUMBERS_VIEW: ResourceKind.CALL,
    P.USERS_MANAGE: ResourceKind.USER,
    P.ROLES_MANAGE: ResourceKind.ROLE,
    P.TEAMS_MANAGE: ResourceKind.TEAM,
    P.QUEUES_MANAGE: ResourceKind.QUEUE,
    P.TRUNKS_MANAGE: ResourceKind.TRUNK,
    P.SETTINGS_MANAGE: ResourceKind.SETTINGS,
    P.AUDIT_VIEW: ResourceKind.AUDIT_LOG,
    P.AUDIT_EXPORT: ResourceKind.AUDIT_LOG,
    P.AGENTS_MANAGE: ResourceKind.AGENT,
}


def _resources(role: str, kind: ResourceKind) -> list[Resource]:
    """own, same-team, other-team, nested-team (below floor A), global."""
    me = MEMBERS[role]
    return [
        Resource.of(kind, owner=me.id, team=FLOOR_A.id),
        Resource.of(kind, owner=PEER.id, team=FLOOR_A.id),
        Resource.of(kind, owner=STRANGER.id, team=FLOOR_B.id),
        Resource.of(kind, owner=NESTED.id, team=LEVEL2.id),
        Resource.global_resource(kind),
    ]


# Expected decisions: A = ALLOW, N = DENY_NOT_FOUND, F = DENY_FORBIDDEN.
TABLE = [
    # operator                    own same other nested global
    ("operator", P.CALLS_PLACE, "A N N N F"),
    ("operator", P.CALLS_TAKE, "A N N N F"),
    ("operator", P.AGENT_STATE_OWN, "A N N N F"),
    ("operator", P.RECORDING_PAUSE_OWN, "A N N N F"),
    ("operator", P.LIVE_VIEW, "F N N N F"),
    ("operator", P.MONITOR_LISTEN, "F N N N F"),
    ("operator", P.MONITOR_WHISPER, "F N N N F"),
    ("operator", P.MONITOR_BARGE, "F N N N F"),
    ("operator", P.MONITOR_TAKEOVER, "F N N N F"),
    ("operator", P.RECORDINGS_PLAY, "F N N N F"),
    ("operator", P.RECORDINGS_DOWNLOAD, "F N N N F"),
    ("operator", P.RECORDINGS_DELETE, "F N N N F"),
    ("operator", P.RECORDINGS_LEGAL_HOLD, "F N N N F"),
    ("operator", P.RETENTION_MANAGE, "F N N N F"),
    ("operator", P.REPORTS_VIEW, "F N N N F"),
    ("operator", P.NUMBERS_VIEW, "F N N N F"),
    ("operator", P.USERS_MANAGE, "F N N N F"),
    ("operator", P.ROLES_MANAGE, "F N N N F"),
    ("operator", P.TEAMS_MANAGE, "F N N N F"),
    ("operator", P.QUEUES_MANAGE, "F N N N F"),
    ("operator", P.TRUNKS_MANAGE, "F N N N F"),
    ("operator", P.SETTINGS_MANAGE, "F N N N F"),
    ("operator", P.AUDIT_VIEW, "F N N N F"),
    ("operator", P.AUDIT_EXPORT, "F N N N F"),
    ("operator", P.AGENTS_MANAGE, "F N N N F"),
    # supervisor                  own same other nested global
    ("supervisor", P.CALLS_PLACE, "A F N F F"),
    ("supervisor", P.CALLS_TAKE, "A F N F F"),
    ("supervisor", P.AGENT_STATE_OWN, "A F N F F"),
    ("supervisor", P.RECORDING_PAUSE_OWN, "A F N F F"),
    ("supervisor", P.LIVE_VIEW, "A A N A F"),
    ("supervisor", P.MONITOR_LISTEN, "A A N A F"),
    ("supervisor", P.MONITOR_WHISPER, "A A N A F"),
    ("supervisor", P.MONITOR_BARGE, "A A N A F"),
    ("supervisor", P.MONITOR_TAKEOVER, "A A N A F"),
    ("supervisor", P.RECORDINGS_PLAY, "A A N A F"),
    ("supervisor", P.RECORDINGS_DOWNLOAD, "F F N F F"),
    ("supervisor", P.RECORDINGS_DELETE, "F F N F F"),
    ("supervisor", P.RECORDINGS_LEGAL_HOLD, "F F N F F"),
    ("supervisor", P.RETENTION_MANAGE, "F F N F F"),
    ("supervisor", P.REPORTS_VIEW, "A A N A F"),
    ("supervisor", P.NUMBERS_VIEW, "A A N A F"),
    ("supervisor", P.USERS_MANAGE, "F F N F F"),
    ("supervisor", P.ROLES_MANAGE, "F F N F F"),
    ("supervisor", P.TEAMS_MANAGE, "F F N F F"),
    ("supervisor", P.QUEUES_MANAGE, "F F N F F"),
    ("supervisor", P.TRUNKS_MANAGE, "F F N F F"),
    ("supervisor", P.SETTINGS_MANAGE, "F F N F F"),
    ("supervisor", P.AUDIT_VIEW, "F F N F F"),
    ("supervisor", P.AUDIT_EXPORT, "F F N F F"),
    ("supervisor", P.AGENTS_MANAGE, "A A N A F"),
    # admin                       own same other nested global
    ("admin", P.CALLS_PLACE, "F F F F F"),
    ("admin", P.CALLS_TAKE, "F F F F F"),
    ("admin", P.AGENT_STATE_OWN, "F F F F F"),
    ("admin", P.RECORDING_PAUSE_OWN, "F F F F F"),
    ("admin", P.LIVE_VIEW, "A A A A A"),
    ("admin", P.MONITOR_LISTEN, "F F F F F"),
    ("admin", P.MONITOR_WHISPER, "F F F F F"),
    ("admin", P.MONITOR_BARGE, "F F F F F"),
    ("admin", P.MONITOR_TAKEOVER, "F F F F F"),
    ("admin", P.RECORDINGS_PLAY, "F F F F F"),
    ("admin", P.RECORDINGS_DOWNLOAD, "F F F F F"),
    ("admin", P.RECORDINGS_DELETE, "F F F F F"),
    ("admin", P.RECORDINGS_LEGAL_HOLD, "F F F F F"),
    ("admin", P.RETENTION_MANAGE, "F F F F F"),
    ("admin", P.REPORTS_VIEW, "A A A A A"),
    ("admin", P.NUMBERS_VIEW, "A A A A A"),
    ("admin", P.USERS_MANAGE, "A A A A A"),
    ("admin", P.ROLES_MANAGE, "A A A A A"),
    ("admin", P.TEAMS_MANAGE, "A A A A A"),
    ("admin", P.QUEUES_MANAGE, "A A A A A"),
    ("admin", P.TRUNKS_MANAGE, "A A A A A"),
    ("admin", P.SETTINGS_MANAGE, "A A A A A"),
    ("admin", P.AUDIT_VIEW, "F F F F F"),
    ("admin", P.AUDIT_EXPORT, "F F F F F"),
    ("admin", P.AGENTS_MANAGE, "F F F F F"),
    # auditor                     own same other nested global
    ("auditor", P.CALLS_PLACE, "F F F F F"),
    ("auditor", P.CALLS_TAKE, "F F F F F"),
    ("auditor", P.AGENT_STATE_OWN, "F F F F F"),
    ("auditor", P.RECORDING_PAUSE_OWN, "F F F F F"),
    ("auditor", P.LIVE_VIEW, "F F F F F"),
    ("auditor", P.MONITOR_LISTEN, "F F F F F"),
    ("auditor", P.MONITOR_WHISPER, "F F F F F"),
    ("auditor", P.MONITOR_BARGE, "F F F F F"),
    ("auditor", P.MONITOR_TAKEOVER, "F F F F F"),
    ("auditor", P.RECORDINGS_PLAY, "A A A A A"),
    ("auditor", P.RECORDINGS_DOWNLOAD, "F F F F F"),
    ("auditor", P.RECORDINGS_DELETE, "F F F F F"),
    ("auditor", P.RECORDINGS_LEGAL_HOLD, "F F F F F"),
    ("auditor", P.RETENTION_MANAGE, "F F F F F"),
    ("auditor", P.REPORTS_VIEW, "A A A A A"),
    ("auditor", P.NUMBERS_VIEW, "A A A A A"),
    ("auditor", P.USERS_MANAGE, "F F F F F"),
    ("auditor", P.ROLES_MANAGE, "F F F F F"),
    ("auditor", P.TEAMS_MANAGE, "F F F F F"),
    ("auditor", P.QUEUES_MANAGE, "F F F F F"),
    ("auditor", P.TRUNKS_MANAGE, "F F F F F"),
    ("auditor", P.SETTINGS_MANAGE, "F F F F F"),
    ("auditor", P.AUDIT_VIEW, "A A A A A"),
    ("auditor", P.AUDIT_EXPORT, "F F F F F"),
    ("auditor", P.AGENTS_MANAGE, "F F F F F"),
]


def test_the_table_covers_every_role_and_permission() -> None:
    assert {(role, permission) for role, permission, _ in TABLE} == set(
        itertools.product(DEFAULT_ROLE_NAMES, Permission)
    )
    assert len(TABLE) == len(DEFAULT_ROLE_NAMES) * len(Permission)


@pytest.mark.parametrize(
    ("role", "permission", "expected"), TABLE, ids=[f"{r}-{p.value}" for r, p, _ in TABLE]
)
def test_authorize_default_roles(role: str, permission: Permission, expected: str) -> None:
    principal = DIRECTORY.principal_for(MEMBERS[role])
    decisions = [
        authorize(principal, permission, resource)
        for resource in _resources(role, OBJECT_KIND[permission])
    ]
    assert decisions == [LETTERS[letter] for letter in expected.split()]


# Principals from the directory


def test_principal_for_expands_supervised_teams_to_nested_ones() -> None:
    supervisor = DIRECTORY.principal_for(MEMBERS["supervisor"])
    assert supervisor == Principal(
        user_id=UserId(2),
        team_id=FLOOR_A.id,
        supervised_team_ids=frozenset({FLOOR_A.id, LEVEL2.id}),
        grants=DEFAULT_ROLE_GRANTS["supervisor"],
    )
    assert supervisor.team_ids == {FLOOR_A.id, LEVEL2.id}
    operator = DIRECTORY.principal_for(MEMBERS["operator"])
    assert (operator.supervised_team_ids, operator.team_ids) == (
        frozenset(),
        frozenset({FLOOR_A.id}),
    )


def test_supervising_the_top_team_reaches_every_team_below() -> None:
    head = _user(8, "hal", "supervisor", CENTER, CENTER)
    principal = DirectorySnapshot(
        teams=[CENTER, FLOOR_A, LEVEL2, FLOOR_B], roles=ROLES.values(), users=[head]
    ).principal_for(head)
    assert principal.supervised_team_ids == {CENTER.id, FLOOR_A.id, LEVEL2.id, FLOOR_B.id}
    for team in (FLOOR_A, LEVEL2, FLOOR_B):
        call = Resource.of(ResourceKind.CALL, owner=STRANGER.id, team=team.id)
        assert authorize(principal, P.MONITOR_BARGE, call) is A


def test_a_disabled_user_is_allowed_nothing_and_sees_nothing() -> None:
    disabled = replace(_user(9, "dan", "admin", FLOOR_A), enabled=False)
    principal = DirectorySnapshot(teams=[FLOOR_A], roles=ROLES.values(), users=[disabled])
    principal_of_dan = principal.principal_for(disabled)
    assert principal_of_dan.enabled is False
    for permission in Permission:
        assert principal_of_dan.scope_of(permission) is None
        own = Resource.of(ResourceKind.USER, owner=disabled.id, team=FLOOR_A.id)
        assert authorize(principal_of_dan, permission, own) is N
        assert (
            authorize(principal_of_dan, permission, Resource.global_resource(ResourceKind.SETTINGS))
            is F
        )


# Scopes beyond the default roles


def _principal(
    *grants: str, team: Team | None = FLOOR_A, supervises: frozenset[TeamId] = frozenset()
) -> Principal:
    return Principal(
        user_id=UserId(100),
        team_id=None if team is None else team.id,
        supervised_team_ids=supervises,
        grants=frozenset(Grant.parse(text) for text in grants),
    )


def test_team_scope_of_a_member_reaches_their_team_but_not_the_teams_nested_below_it() -> None:
    lead = _principal("live.view:team")
    decisions = [
        authorize(lead, P.LIVE_VIEW, resource)
        for resource in _resources("operator", ResourceKind.CALL)[1:]
    ]
    assert decisions == [A, N, N, F]


def test_a_principal_without_a_team_reaches_only_what_they_supervise() -> None:
    coach = _principal("monitor.listen:team", team=None, supervises=frozenset({FLOOR_B.id}))
    assert (
        authorize(
            coach,
            P.MONITOR_LISTEN,
            Resource.of(ResourceKind.CALL, owner=STRANGER.id, team=FLOOR_B.id),
        )
        is A
    )
    assert (
        authorize(
            coach, P.MONITOR_LISTEN, Resource.of(ResourceKind.CALL, owner=PEER.id, team=FLOOR_A.id)
        )
        is N
    )


def test_a_call_between_two_teams_belongs_to_both() -> None:
    call = Resource(
        ResourceKind.CALL, frozenset({PEER.id, STRANGER.id}), frozenset({FLOOR_A.id, FLOOR_B.id})
    )
    of_b = _principal("monitor.whisper:team", team=None, supervises=frozenset({FLOOR_B.id}))
    of_level2 = _principal("monitor.whisper:team", team=None, supervises=frozenset({LEVEL2.id}))
    assert authorize(of_b, P.MONITOR_WHISPER, call) is A
    assert authorize(DIRECTORY.principal_for(MEMBERS["supervisor"]), P.MONITOR_WHISPER, call) is A
    assert authorize(of_level2, P.MONITOR_WHISPER, call) is N
    assert authorize(DIRECTORY.principal_for(PEER), P.CALLS_TAKE, call) is A
    assert authorize(DIRECTORY.principal_for(NESTED), P.CALLS_TAKE, call) is N


def test_objects_of_a_team_without_an_owner_and_of_an_owner_without_a_team() -> None:
    queue = Resource.of(ResourceKind.QUEUE, team=FLOOR_A.id)
    teamless = Resource.of(ResourceKind.AGENT, owner=UserId(50))
    supervisor = DIRECTORY.principal_for(MEMBERS["supervisor"])
    operator = DIRECTORY.principal_for(MEMBERS["operator"])
    assert [authorize(supervisor, P.LIVE_VIEW, queue), authorize(operator, P.LIVE_VIEW, queue)] == [
        A,
        N,
    ]
    assert authorize(supervisor, P.AGENTS_MANAGE, teamless) is N
    assert authorize(DIRECTORY.principal_for(MEMBERS["admin"]), P.USERS_MANAGE, teamless) is A


def test_own_scope_reaches_only_objects_one_takes_part_in() -> None:
    listener = _principal("monitor.listen:own")
    mine = Resource.of(ResourceKind.CALL, owner=listener.user_id, team=FLOOR_B.id)
    assert authorize(listener, P.MONITOR_LISTEN, mine) is A
    assert (
        authorize(
            listener,
            P.MONITOR_LISTEN,
            Resource.of(ResourceKind.CALL, owner=PEER.id, team=FLOOR_A.id),
        )
        is N
    )


def test_visibility_comes_from_any_grant() -> None:
    player = _principal("recordings.play:team")
    recording = Resource.of(ResourceKind.RECORDING, owner=PEER.id, team=FLOOR_A.id)
    assert is_visible(player, recording)
    assert authorize(player, P.RECORDINGS_DOWNLOAD, recording) is F
    assert not is_visible(
        player, Resource.of(ResourceKind.RECORDING, owner=STRANGER.id, team=FLOOR_B.id)
    )
    assert not is_visible(player, Resource.global_resource(ResourceKind.SETTINGS))


def test_a_scoped_permission_on_a_global_resource_needs_scope_all() -> None:
    report_of_everyone = Resource.global_resource(ResourceKind.REPORT)
    assert authorize(_principal("reports.view:team"), P.REPORTS_VIEW, report_of_everyone) is F
    assert authorize(_principal("reports.view:all"), P.REPORTS_VIEW, report_of_everyone) is A


def test_the_widest_of_several_grants_of_one_permission_counts() -> None:
    both = _principal("reports.view:own", "reports.view:all")
    assert authorize(both, P.REPORTS_VIEW, Resource.of(ResourceKind.REPORT, team=FLOOR_B.id)) is A


# Errors


def test_raise_for_maps_decisions_to_domain_errors() -> None:
    raise_for(A, "call 7")  # returns: allowed
    with pytest.raises(NotFound) as hidden:
        raise_for(N, "call 7")
    missing = not_found("call 7")
    assert (hidden.value.message, hidden.value.error_id, hidden.value.details) == (
        missing.message,
        missing.error_id,
        missing.details,
    )
    assert (missing.message, missing.error_id) == ("call 7 not found", "not_found")
    with pytest.raises(Forbidden) as forbidden:
        raise_for(F, "call 7")
    assert (forbidden.value.message, forbidden.value.error_id) == (
        "not allowed on call 7",
        "forbidden",
    )


def test_raise_for_uses_the_callers_not_found_id() -> None:
    with pytest.raises(NotFound) as hidden:
        raise_for(N, "recording r-1", not_found_error_id="recording_not_found")
    assert (hidden.value.message, hidden.value.error_id) == (
        "recording r-1 not found",
        "recording_not_found",
    )


def test_require() -> None:
    operator = DIRECTORY.principal_for(MEMBERS["operator"])
    own_call = Resource.of(ResourceKind.CALL, owner=operator.user_id, team=FLOOR_A.id)
    require(operator, P.CALLS_TAKE, own_call, "call 1")
    with pytest.raises(Forbidden):
        require(operator, P.MONITOR_LISTEN, own_call, "call 1")
    with pytest.raises(NotFound):
        require(
            operator,
            P.CALLS_TAKE,
            Resource.of(ResourceKind.CALL, owner=PEER.id, team=FLOOR_A.id),
            "call 2",
        )


# Listings


@pytest.mark.parametrize("role", DEFAULT_ROLE_NAMES)
def test_list_scope_admits_exactly_what_authorize_allows(role: str) -> None:
    principal = DIRECTORY.principal_for(MEMBERS[role])
    for permission in Permission:
        scope = list_scope(principal, permission)
        for resource in _resources(role, OBJECT_KIND[permission]):
            assert scope.admits(resource) is (authorize(principal, permission, resource) is A)


def test_list_scope_values() -> None:
    operator = DIRECTORY.principal_for(MEMBERS["operator"])
    supervisor = DIRECTORY.principal_for(MEMBERS["supervisor"])
    admin = DIRECTORY.principal_for(MEMBERS["admin"])
    calls = list_scope(operator, P.CALLS_TAKE)
    assert (calls.everything, calls.owner_id, calls.team_ids, calls.nothing) == (
        False,
        UserId(1),
        frozenset(),
        False,
    )
    live = list_scope(supervisor, P.LIVE_VIEW)
    assert (live.everything, live.owner_id, live.team_ids) == (
        False,
        UserId(2),
        frozenset({FLOOR_A.id, LEVEL2.id}),
    )
    assert list_scope(admin, P.LIVE_VIEW).everything
    assert list_scope(operator, P.LIVE_VIEW).nothing


# Numbers


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+4930123456789", "+*********6789"),
        ("0312345678", "******5678"),
        ("+49 30 1234567", "+** ** ***4567"),
        ("(030) 123-4567", "(***) ***-4567"),
        ("12345", "*2345"),
        ("1234", "****"),
        ("112", "***"),
        ("", ""),
        ("anonymous", "*********"),
        ("sip:+4930123@example.com", "***:+***0123@*******.***"),
    ],
)
def test_mask_number(number: str, masked: str) -> None:
    assert mask_number(number, False) == masked
    assert mask_number(number, True) == number


def test_shown_number_depends_on_numbers_view_of_the_call() -> None:
    number = "+4930123456789"
    own_call = Resource.of(ResourceKind.CALL, owner=MEMBERS["operator"].id, team=FLOOR_A.id)
    other_call = Resource.of(ResourceKind.CALL, owner=STRANGER.id, team=FLOOR_B.id)
    shown = {
        role: [
            shown_number(DIRECTORY.principal_for(MEMBERS[role]), call, number)
            for call in (own_call, other_call)
        ]
        for role in DEFAULT_ROLE_NAMES
    }
    assert shown == {
        "operator": ["+*********6789", "+*********6789"],
        "supervisor": [number, "+*********6789"],
        "admin": [number, number],
        "auditor": [number, number],
    }
