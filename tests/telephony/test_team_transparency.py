"""Monitoring transparency per team: a team's own policy (admin console, provisioning file)
wins over the node's `monitor_notify_teams` setting, which still decides for teams without
one; read from the directory at each decision, so a change applies to the next session."""

from __future__ import annotations

from typing import Any, cast

import pytest

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, RoleId, TeamId, UserId
from callwarden.domain.models import MonitoringTransparency, Team, User
from callwarden.domain.policy import Resource, ResourceKind
from callwarden.telephony.monitored_call import CallView
from callwarden.telephony.monitoring_policy import TeamTransparency

NORTH, SOUTH, WEST = TeamId(1), TeamId(2), TeamId(3)
T = MonitoringTransparency


def _snapshot(policies: dict[TeamId, MonitoringTransparency | None]) -> DirectorySnapshot:
    names = {NORTH: "north", SOUTH: "south", WEST: "west"}
    teams = [
        Team(team_id, names[team_id], names[team_id], monitoring_transparency=policy)
        for team_id, policy in policies.items()
    ]
    users = [
        User(UserId(10 + team_id), f"op{team_id}", "", RoleId(1), team_id=team_id)
        for team_id in policies
    ]
    users.append(User(UserId(99), "teamless", "", RoleId(1)))
    return DirectorySnapshot(teams=teams, users=users)


def _call(operator: int) -> CallView:
    return CallView(
        call_id=CallId(f"call-{operator}"),
        task=cast(Any, None),  # not read by the transparency policy
        bridge_id="bridge",
        customer_endpoint="customer",
        operator_endpoint="operator",
        operator_id=UserId(operator),
        resource=Resource.of(ResourceKind.CALL, owner=UserId(operator)),
    )


@pytest.mark.parametrize(
    ("policies", "operator", "notified", "tone"),
    [
        # No team policy: the setting (`north`, `south:tone`) decides, as before.
        ({NORTH: None, SOUTH: None, WEST: None}, 11, True, False),
        ({NORTH: None, SOUTH: None, WEST: None}, 12, True, True),
        ({NORTH: None, SOUTH: None, WEST: None}, 13, False, False),
        # A team's own policy wins, in both directions.
        ({NORTH: T.SILENT, SOUTH: None, WEST: None}, 11, False, False),
        ({NORTH: None, SOUTH: T.SCREEN, WEST: None}, 12, True, False),
        ({NORTH: None, SOUTH: None, WEST: T.SCREEN_AND_TONE}, 13, True, True),
        # An operator of no team is never told.
        ({NORTH: T.SCREEN, SOUTH: None, WEST: None}, 99, False, False),
    ],
)
def test_a_teams_policy_wins_over_the_setting(
    policies: dict[TeamId, MonitoringTransparency | None],
    operator: int,
    notified: bool,
    tone: bool,
) -> None:
    snapshot = _snapshot(policies)
    transparency = TeamTransparency(["north", "south:tone"], lambda: snapshot)
    call = _call(operator)
    assert transparency.operator_notified(call) is notified
    assert transparency.operator_tone(call) is tone


def test_a_change_applies_to_the_next_decision() -> None:
    current = [_snapshot({NORTH: None, SOUTH: None, WEST: None})]
    transparency = TeamTransparency([], lambda: current[0])
    assert not transparency.operator_notified(_call(11))
    current[0] = _snapshot({NORTH: T.SCREEN_AND_TONE, SOUTH: None, WEST: None})
    assert transparency.operator_notified(_call(11)) and transparency.operator_tone(_call(11))
