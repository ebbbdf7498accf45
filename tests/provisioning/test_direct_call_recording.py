"""The direct-call recording policy in the provisioning file (SQLite and PostgreSQL): on teams
and users, read back in the directory, inherited down the team tree, refused when misspelt."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from callwarden.domain.cdr import CallDirection
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import RecordingPolicy, Team, User
from callwarden.provisioning import Provisioner, ProvisioningError
from callwarden.telephony.direct_recording import (
    DirectCallRecording,
    direct_call_policy,
    direct_call_sides,
)

Snapshot = Callable[[], DirectorySnapshot]
Write = Callable[..., Path]

DOCUMENT = """\
teams:
  - {name: sales, recording: all}
  - {name: sales-east, parent: sales}
  - {name: support, recording: on_demand}
  - {name: back-office}
users:
  - {username: ann, role: operator, team: sales-east, extension: "1001"}
  - {username: bob, role: operator, team: support, extension: "1002", recording: none}
  - {username: cy, role: operator, team: back-office, extension: "1003"}
  - {username: dee, role: operator, team: back-office, extension: "1004", recording: all}
"""


def _team(snapshot: DirectorySnapshot, name: str) -> Team:
    return next(team for team in snapshot.teams if team.name == name)


def _user(snapshot: DirectorySnapshot, name: str) -> User:
    user = snapshot.user_by_username(name)
    assert user is not None
    return user


def test_policies_are_stored_and_inherited(
    provisioner: Provisioner, snapshot: Snapshot, write_yaml: Write
) -> None:
    provisioner.apply_file(write_yaml(DOCUMENT))
    directory = snapshot()
    assert _team(directory, "sales").recording is RecordingPolicy.ALL
    assert _user(directory, "ann").recording is None
    policies = {
        name: direct_call_policy(directory, _user(directory, name))
        for name in ("ann", "bob", "cy", "dee")
    }
    assert policies == {
        "ann": RecordingPolicy.ALL,  # the parent team's
        "bob": RecordingPolicy.NONE,  # their own over the team's on_demand
        "cy": RecordingPolicy.NONE,  # nothing said anywhere
        "dee": RecordingPolicy.ALL,
    }
    assert direct_call_policy(directory, None) is RecordingPolicy.NONE  # a trunk


@pytest.mark.parametrize(
    ("caller", "callee", "policy", "operator", "roles"),
    [
        # an operator's outbound call to a trunk: the operator is the caller, on `operator`
        ("ann", None, RecordingPolicy.ALL, "ann", ("operator", "customer")),
        # an inbound call from a trunk straight to a user
        (None, "ann", RecordingPolicy.ALL, "ann", ("customer", "operator")),
        # extension to extension: the side whose policy records is the operator
        ("ann", "cy", RecordingPolicy.ALL, "ann", ("operator", "customer")),
        ("cy", "ann", RecordingPolicy.ALL, "ann", ("customer", "operator")),
        ("dee", "ann", RecordingPolicy.ALL, "ann", ("customer", "operator")),  # a tie: callee
        ("bob", "cy", RecordingPolicy.NONE, "cy", ("customer", "operator")),
        ("cy", None, RecordingPolicy.NONE, "cy", ("operator", "customer")),  # not recorded
    ],
)
def test_the_operator_side_joins_the_bridge_as_operator(
    provisioner: Provisioner,
    snapshot: Snapshot,
    write_yaml: Write,
    caller: str | None,
    callee: str | None,
    policy: RecordingPolicy,
    operator: str,
    roles: tuple[str, str],
) -> None:
    provisioner.apply_file(write_yaml(DOCUMENT))
    directory = snapshot()
    caller_id = None if caller is None else _user(directory, caller).id
    callee_id = None if callee is None else _user(directory, callee).id
    sides = direct_call_sides(directory, caller_id, callee_id)
    assert sides.policy is policy
    assert sides.operator is not None and sides.operator.username == operator
    assert sides.bridge_roles == roles
    assert sides.operator_is_caller is (roles[0] == "operator")


class _Control:
    """Stands in for `RecordingControl`: keeps what `call_connected` was told."""

    def __init__(self) -> None:
        self.connected: list[dict[str, object]] = []

    async def call_connected(self, **facts: object) -> None:
        self.connected.append(facts)


def _call(caller: User | None, callee: User | None, *, dialled: str = "+81355550100") -> Any:
    """The parts of a B2BUA `Call` the direct-call recording reads."""
    caller_info = SimpleNamespace(
        user_id=None if caller is None else caller.id,
        label="+81355550199" if caller is None else "1001",
        direction=CallDirection.INBOUND if caller is None else CallDirection.OUTBOUND,
    )
    target = SimpleNamespace(
        user_id=None if callee is None else callee.id,
        trunk_id=7 if callee is None else None,
        label=dialled if callee is None else "1003",
    )
    return SimpleNamespace(
        call_id="direct-1",
        bridge_id="bridge-1",
        caller=caller_info,
        target=target,
        targets=[target],
        inbound=SimpleNamespace(endpoint_id="leg-in"),
        outbound=SimpleNamespace(endpoint_id="leg-out"),
    )


async def test_an_operators_outbound_call_is_theirs_with_the_dialled_number(
    provisioner: Provisioner, snapshot: Snapshot, write_yaml: Write
) -> None:
    provisioner.apply_file(write_yaml(DOCUMENT))
    directory = snapshot()
    ann = _user(directory, "ann")  # sales-east: `all`, inherited
    control = _Control()
    recording = DirectCallRecording(control, lambda: directory)  # type: ignore[arg-type]
    outbound = _call(ann, None)
    assert recording.bridge_roles(outbound) == ("operator", "customer")
    await recording.answered(outbound)
    inbound = _call(None, ann)
    assert recording.bridge_roles(inbound) == ("customer", "operator")
    await recording.answered(inbound)
    between = _call(ann, _user(directory, "cy"))  # cy records nothing: ann's call
    await recording.answered(between)
    mine, theirs, colleague = control.connected
    assert (mine["operator_id"], mine["operator_endpoint"]) == (ann.id, "leg-in")
    assert mine["caller_number"] == "+81355550100"  # the customer: the number ann dialled
    assert (theirs["operator_id"], theirs["operator_endpoint"]) == (ann.id, "leg-out")
    assert theirs["caller_number"] == "+81355550199"  # the outside caller
    assert (colleague["operator_endpoint"], colleague["caller_number"]) == ("leg-in", None)


def test_unset_keeps_and_null_clears(
    provisioner: Provisioner, snapshot: Snapshot, write_yaml: Write
) -> None:
    provisioner.apply_file(write_yaml(DOCUMENT))
    provisioner.apply_file(
        write_yaml(
            "teams: [{name: sales}]\nusers:\n  - {username: dee, role: operator, recording: null}\n"
        )
    )
    directory = snapshot()
    assert _team(directory, "sales").recording is RecordingPolicy.ALL  # not named: kept
    assert _user(directory, "dee").recording is None


def test_a_misspelt_policy_is_refused_and_changes_nothing(
    provisioner: Provisioner, snapshot: Snapshot, write_yaml: Write
) -> None:
    provisioner.apply_file(write_yaml(DOCUMENT))
    with pytest.raises(ProvisioningError, match="recording"):
        provisioner.apply_file(write_yaml("teams: [{name: sales, recording: always}]\n"))
    assert _team(snapshot(), "sales").recording is RecordingPolicy.ALL
