"""The dial plan as tables: who reaches what by dialling which string (directory in conftest)."""

from __future__ import annotations

import pytest

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import Trunk, User
from callwarden.telephony.dialplan import (
    MAX_DIAL_STRING,
    Rejected,
    Route,
    ToQueue,
    ToTrunk,
    ToUser,
    is_dial_string,
    route_from_trunk,
    route_from_user,
)

Outcome = tuple[str, ...] | tuple[str, int]


def outcome(route: Route) -> Outcome:
    """A route as a comparable row: ("user", name), ("queue", name), ("trunk", name, number)
    or ("rejected", status)."""
    if isinstance(route, ToUser):
        return ("user", route.user.username)
    if isinstance(route, ToQueue):
        return ("queue", route.queue.name)
    if isinstance(route, ToTrunk):
        return ("trunk", route.trunk.name, route.number)
    return ("rejected", route.status)


def user(directory: DirectorySnapshot, username: str) -> User:
    found = directory.user_by_username(username)
    assert found is not None
    return found


def trunk(directory: DirectorySnapshot, name: str) -> Trunk:
    found = directory.trunk_by_name(name)
    assert found is not None
    return found


# --------------------------------------------------------------------------- from a user


@pytest.mark.parametrize(
    ("caller", "number", "expected"),
    [
        # extensions
        ("alice", "1002", ("user", "bob")),
        ("bob", "1001", ("user", "alice")),
        ("erin", "1001", ("user", "alice")),
        ("alice", "1001", ("rejected", 486)),
        ("alice", "1003", ("rejected", 480)),
        ("dave", "1001", ("user", "alice")),
        # queues
        ("alice", "5000", ("queue", "billing")),
        ("dave", "5000", ("queue", "billing")),
        # out through a trunk, within the role's allow-list (first enabled trunk by name)
        ("alice", "0612345678", ("trunk", "carrier", "0612345678")),
        ("alice", "118218", ("trunk", "partner", "118218")),
        ("bob", "0612345678", ("trunk", "carrier", "0612345678")),
        ("bob", "0044201234567", ("trunk", "carrier", "0044201234567")),
        # a trunk would take it, the role does not allow it
        ("alice", "0044201234567", ("rejected", 403)),
        ("dave", "0612345678", ("rejected", 403)),
        ("dave", "118218", ("rejected", 403)),
        ("erin", "0044201234567", ("rejected", 403)),
        # nobody takes it
        ("alice", "1009", ("rejected", 404)),
        ("alice", "061234567", ("rejected", 404)),
        ("bob", "+33612345678", ("rejected", 404)),
        ("alice", "*", ("rejected", 404)),
    ],
)
def test_route_from_user(
    directory: DirectorySnapshot, caller: str, number: str, expected: Outcome
) -> None:
    assert outcome(route_from_user(directory, user(directory, caller), number)) == expected


def test_the_rejections_carry_their_reason_phrase(directory: DirectorySnapshot) -> None:
    alice = user(directory, "alice")
    assert route_from_user(directory, alice, "1001") == Rejected(486, "Busy Here")
    assert route_from_user(directory, alice, "1003") == Rejected(480, "Temporarily Unavailable")
    assert route_from_user(directory, alice, "0044201234567") == Rejected(
        403, "Destination Not Allowed"
    )
    assert route_from_user(directory, alice, "1009") == Rejected(404, "Not Found")


def test_a_disabled_caller_reaches_nothing(directory: DirectorySnapshot) -> None:
    carol = user(directory, "carol")
    for number in ("1001", "5000", "0612345678", "1009"):
        assert route_from_user(directory, carol, number) == Rejected(403, "Forbidden")


def test_a_disabled_trunk_is_never_chosen_for_outbound_calls(
    directory: DirectorySnapshot,
) -> None:
    # `archive` is first by name and matches both numbers, but it is disabled.
    archive = trunk(directory, "archive")
    assert archive.outbound_patterns and not archive.enabled
    alice = user(directory, "alice")
    assert outcome(route_from_user(directory, alice, "0612345678"))[1] == "carrier"
    assert outcome(route_from_user(directory, alice, "118218"))[1] == "partner"


INJECTIONS = [
    "",
    "1001;x",
    "1001;user=phone",
    "sip:1001",
    "sip:1001@pbx.example",
    "1001@pbx.example",
    "10 01",
    " 1001",
    "1001 ",
    "1001\n",
    "1001\r\n",
    "1001\x00",
    "10-01",
    "10.01",
    "(1001)",
    "1001?x=y",
    "%31001",
    "1001,1002",
    "1001|1002",
    "1001'--",
    "\uff11\uff10\uff10\uff11",  # full-width digits
    "\u0661\u0660\u0660\u0661",  # Arabic-Indic digits
    "+",
    "++1001",
    "1+001",
    "5000;x",
    "0612345678;x",
    "1" * (MAX_DIAL_STRING + 1),
    "00" + "1" * (MAX_DIAL_STRING - 1),  # 33 characters that the trunk pattern `00.` matches
    "+" + "1" * (MAX_DIAL_STRING + 1),
]


@pytest.mark.parametrize("number", INJECTIONS)
def test_anything_but_a_dial_string_is_refused_before_any_lookup(
    directory: DirectorySnapshot, number: str
) -> None:
    assert not is_dial_string(number)
    for caller in ("alice", "bob"):
        assert route_from_user(directory, user(directory, caller), number) == Rejected(
            404, "Not Found"
        )
    for name in ("carrier", "partner"):
        assert route_from_trunk(directory, trunk(directory, name), number) == Rejected(
            404, "Not Found"
        )


@pytest.mark.parametrize(
    "number",
    ["1", "1001", "*72", "#", "*#*#", "+33612345678", "1" * MAX_DIAL_STRING, "+" + "9" * 32],
)
def test_dial_strings(number: str) -> None:
    assert is_dial_string(number)


# --------------------------------------------------------------------------- from a trunk


@pytest.mark.parametrize(
    ("from_trunk", "number", "expected"),
    [
        # the trunk's own inbound numbers, to the extension or queue they name
        ("carrier", "0312345678", ("queue", "billing")),
        ("carrier", "0312345601", ("user", "alice")),
        ("carrier", "1002", ("user", "bob")),  # no destination: routed as dialled
        ("carrier", "0312345603", ("rejected", 480)),  # names a disabled user
        ("carrier", "0312345699", ("rejected", 404)),  # names nothing that exists
        ("carrier", "0312345000", ("rejected", 404)),  # as dialled, but no such extension
        ("partner", "0498765432", ("user", "bob")),
        # a trunk's call for an extension or queue that is not one of its inbound numbers
        ("carrier", "1001", ("rejected", 404)),
        ("carrier", "5000", ("rejected", 404)),
        ("partner", "1002", ("rejected", 404)),  # carrier's inbound number, not partner's
        # no transit: another trunk's inbound numbers, or anything an outbound pattern takes
        ("carrier", "0498765432", ("rejected", 404)),
        ("partner", "0312345678", ("rejected", 404)),
        ("partner", "0312345601", ("rejected", 404)),
        ("carrier", "0612345678", ("rejected", 404)),
        ("carrier", "0044201234567", ("rejected", 404)),
        ("carrier", "118218", ("rejected", 404)),
        ("partner", "118218", ("rejected", 404)),
        ("partner", "0612345678", ("rejected", 404)),
        # unknown
        ("carrier", "999", ("rejected", 404)),
        # a disabled trunk reaches nothing, not even its own inbound number
        ("archive", "0312340000", ("rejected", 404)),
        ("archive", "0312345678", ("rejected", 404)),
    ],
)
def test_route_from_trunk(
    directory: DirectorySnapshot, from_trunk: str, number: str, expected: Outcome
) -> None:
    assert outcome(route_from_trunk(directory, trunk(directory, from_trunk), number)) == expected


def test_a_trunk_call_never_leaves_through_a_trunk(directory: DirectorySnapshot) -> None:
    """Every number any trunk routes outbound, and every inbound number, offered by every
    trunk: none of them ever becomes a ToTrunk route."""
    numbers = [
        "0612345678",
        "0044201234567",
        "118218",
        "0312345678",
        "0312345601",
        "0312340000",
        "0498765432",
        "1002",
    ]
    for source in directory.trunks:
        for number in numbers:
            assert not isinstance(route_from_trunk(directory, source, number), ToTrunk)
