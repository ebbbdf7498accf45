"""Feature codes in the dial plan and the registry of handlers (directory in conftest)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import User
from callwarden.sip.server_transaction import InviteServerTransaction
from callwarden.telephony.call_context import CallerInfo
from callwarden.telephony.call_task import CallTask
from callwarden.telephony.dialplan import (
    Rejected,
    ToFeature,
    ToUser,
    match_feature,
    route_from_trunk,
    route_from_user,
)
from callwarden.telephony.features import FeatureCodes, check_feature_code
from callwarden.telephony.queue_call import QueueCallServices

CODES = frozenset({"*5", "*51", "*53", "*91"})


def user(directory: DirectorySnapshot, username: str) -> User:
    found = directory.user_by_username(username)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("*51", ToFeature("*51", "")),
        ("*532", ToFeature("*53", "2")),
        ("*52", ToFeature("*5", "2")),  # the longest configured code wins
        ("*911001", ToFeature("*91", "1001")),
        ("*99", None),
        ("51", None),
        ("*", None),
    ],
)
def test_the_longest_code_starting_the_dial_string_matches(
    number: str, expected: ToFeature | None
) -> None:
    assert match_feature(CODES, number) == expected


def test_a_user_reaches_a_feature_code_before_any_other_route(
    directory: DirectorySnapshot,
) -> None:
    alice = user(directory, "alice")
    assert route_from_user(directory, alice, "*532", feature_codes=CODES) == ToFeature("*53", "2")
    assert route_from_user(directory, alice, "*99", feature_codes=CODES) == Rejected(
        404, "Not Found"
    )
    assert route_from_user(directory, alice, "*51") == Rejected(404, "Not Found")  # none configured
    assert isinstance(route_from_user(directory, alice, "1002", feature_codes=CODES), ToUser)


def test_a_disabled_user_reaches_no_feature_code(directory: DirectorySnapshot) -> None:
    disabled = user(directory, "carol")
    assert not disabled.enabled
    assert route_from_user(directory, disabled, "*51", feature_codes=CODES) == Rejected(
        403, "Forbidden"
    )


def test_a_trunk_never_reaches_a_feature_code(directory: DirectorySnapshot) -> None:
    trunk = directory.trunk_by_name("carrier")
    assert trunk is not None
    assert route_from_trunk(directory, trunk, "*51") == Rejected(404, "Not Found")


class _Handler:
    def __init__(self, codes: Iterable[str]) -> None:
        self._codes = tuple(codes)

    @property
    def codes(self) -> Iterable[str]:
        return self._codes

    def start_call(
        self,
        services: QueueCallServices,
        invite_tx: InviteServerTransaction,
        caller: CallerInfo,
        user: User,
        feature: ToFeature,
        *,
        on_finished: Callable[[CallTask], None],
    ) -> CallTask:
        raise AssertionError("not called in these tests")


def test_feature_codes_know_each_code_s_handler() -> None:
    agent, monitor = _Handler(["*51", "*52"]), _Handler(["*91"])
    codes = FeatureCodes([agent, monitor])
    assert codes.codes == {"*51", "*52", "*91"}
    assert codes.handler("*52") is agent
    assert codes.handler("*91") is monitor


def test_a_code_served_twice_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\*51 is served twice"):
        FeatureCodes([_Handler(["*51"]), _Handler(["*51"])])


@pytest.mark.parametrize("code", ["51", "*", "*5a", "*123456789", " *51"])
def test_malformed_codes_are_refused(code: str) -> None:
    with pytest.raises(ValueError, match="feature code"):
        check_feature_code(code)
    with pytest.raises(ValueError, match="feature code"):
        FeatureCodes([_Handler([code])])
