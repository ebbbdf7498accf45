"""Routing strategies as tables: members in, the order to offer them out."""

from __future__ import annotations

import pytest

from callwarden.acd.routing import CallNeeds, MemberStatus, first_tier, rank_members, ring_together
from callwarden.domain.ids import QueueId, TeamId, UserId
from callwarden.domain.models import Queue, QueueStrategy


def queue(strategy: QueueStrategy, required_skill_level: int = 0) -> Queue:
    return Queue(
        id=QueueId(1),
        name="sales",
        display_name="Sales",
        number="600",
        team_id=TeamId(1),
        strategy=strategy,
        required_skill_level=required_skill_level,
    )


def member(
    user: int,
    *,
    position: int | None = None,
    idle: float = 0.0,
    calls: int = 0,
    penalty: int = 0,
    skill: int = 1,
) -> MemberStatus:
    return MemberStatus(
        user_id=UserId(user),
        position=user if position is None else position,
        penalty=penalty,
        skill_level=skill,
        idle_since=idle,
        calls_taken=calls,
    )


ANY_CALL = CallNeeds()


def order(
    strategy: QueueStrategy,
    members: list[MemberStatus],
    call: CallNeeds = ANY_CALL,
    *,
    required_skill_level: int = 0,
    after: int | None = None,
    tried: dict[int, int] | None = None,
) -> list[int]:
    ranked = rank_members(
        queue(strategy, required_skill_level),
        members,
        call,
        round_robin_after=after,
        tried={UserId(user): count for user, count in (tried or {}).items()},
    )
    return [m.user_id for m in ranked]


LONGEST_IDLE = [
    # idle_since is when the agent became free: the smallest has been idle longest
    (
        "the longest idle first",
        [member(1, idle=50), member(2, idle=10), member(3, idle=30)],
        [2, 3, 1],
    ),
    ("ties go by place in the queue", [member(3, idle=10), member(1, idle=10)], [1, 3]),
    (
        "a lower penalty tier before a longer idle",
        [member(1, idle=0, penalty=1), member(2, idle=90)],
        [2, 1],
    ),
    ("no members, no candidates", [], []),
]


@pytest.mark.parametrize(("case", "members", "expected"), LONGEST_IDLE)
def test_longest_idle(case: str, members: list[MemberStatus], expected: list[int]) -> None:
    assert order(QueueStrategy.LONGEST_IDLE, members) == expected


FIVE = [member(user, idle=100 - user) for user in range(5)]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (None, [0, 1, 2, 3, 4]),  # first decision: from the top
        (0, [1, 2, 3, 4, 0]),
        (2, [3, 4, 0, 1, 2]),
        (4, [0, 1, 2, 3, 4]),  # wraps around
        (9, [0, 1, 2, 3, 4]),  # a position past the end (member removed) wraps too
    ],
)
def test_round_robin_continues_after_the_last_offered(
    after: int | None, expected: list[int]
) -> None:
    assert order(QueueStrategy.ROUND_ROBIN, FIVE, after=after) == expected


def test_round_robin_skips_positions_of_unavailable_members() -> None:
    available = [member(0), member(3), member(4)]  # 1 and 2 are busy
    assert order(QueueStrategy.ROUND_ROBIN, available, after=1) == [3, 4, 0]


def test_round_robin_within_penalty_tiers() -> None:
    members = [member(0, penalty=1), member(1), member(2, penalty=1), member(3)]
    assert order(QueueStrategy.ROUND_ROBIN, members, after=1) == [3, 1, 2, 0]


FEWEST_CALLS = [
    ("fewest calls first", [member(1, calls=5), member(2, calls=1), member(3, calls=3)], [2, 3, 1]),
    (
        "equal calls: longest idle",
        [member(1, calls=2, idle=40), member(2, calls=2, idle=20)],
        [2, 1],
    ),
    ("penalty before calls", [member(1, calls=0, penalty=2), member(2, calls=9)], [2, 1]),
]


@pytest.mark.parametrize(("case", "members", "expected"), FEWEST_CALLS)
def test_fewest_calls(case: str, members: list[MemberStatus], expected: list[int]) -> None:
    assert order(QueueStrategy.FEWEST_CALLS, members) == expected


def test_ring_all_lists_members_by_tier_and_rings_the_first_tier_together() -> None:
    members = [member(4, penalty=1), member(2), member(3, penalty=1), member(1)]
    ranked = rank_members(queue(QueueStrategy.RING_ALL), members)
    assert [m.user_id for m in ranked] == [1, 2, 3, 4]
    assert [m.user_id for m in first_tier(ranked)] == [1, 2]
    assert [m.user_id for m in first_tier(ranked[2:])] == [3, 4]
    assert first_tier(()) == ()
    assert ring_together(queue(QueueStrategy.RING_ALL))
    assert not ring_together(queue(QueueStrategy.LONGEST_IDLE))


SKILLS = [
    (
        "the most skilled first",
        [member(1, skill=2), member(2, skill=5), member(3, skill=3)],
        CallNeeds(),
        0,
        [2, 3, 1],
    ),
    (
        "equal skill: longest idle",
        [member(1, skill=3, idle=50), member(2, skill=3, idle=5)],
        CallNeeds(),
        0,
        [2, 1],
    ),
    (
        "the queue's required level leaves the others out",
        [member(1, skill=1), member(2, skill=2), member(3, skill=4)],
        CallNeeds(),
        2,
        [3, 2],
    ),
    (
        "a call may require more than the queue",
        [member(1, skill=1), member(2, skill=2), member(3, skill=4)],
        CallNeeds(priority=5, required_skill=3),
        2,
        [3],
    ),
    (
        "nobody skilled enough: no candidate",
        [member(1, skill=1), member(2, skill=2)],
        CallNeeds(required_skill=3),
        0,
        [],
    ),
    (
        "penalty tiers before skill",
        [member(1, skill=9, penalty=1), member(2, skill=2, penalty=0)],
        CallNeeds(),
        0,
        [2, 1],
    ),
]


@pytest.mark.parametrize(("case", "members", "call", "required", "expected"), SKILLS)
def test_skills(
    case: str, members: list[MemberStatus], call: CallNeeds, required: int, expected: list[int]
) -> None:
    assert order(QueueStrategy.SKILLS, members, call, required_skill_level=required) == expected


@pytest.mark.parametrize("strategy", list(QueueStrategy))
def test_every_strategy_honours_required_skill_and_tries_tried_members_last(
    strategy: QueueStrategy,
) -> None:
    members = [member(1, skill=1, idle=0), member(2, skill=3, idle=5), member(3, skill=3, idle=9)]
    ranked = order(strategy, members, CallNeeds(required_skill=2), tried={2: 1})
    assert ranked == [3, 2]
    assert order(strategy, members, CallNeeds(required_skill=2), tried={2: 1, 3: 2}) == [2, 3]
