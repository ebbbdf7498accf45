"""The queue model: order by priority then arrival, positions, wait estimates, overflow."""

from __future__ import annotations

import pytest

from callwarden.acd.errors import UnknownCall
from callwarden.acd.queue import (
    CallQueue,
    HandleTimeAverage,
    OverflowAction,
    OverflowKind,
    WaitingCall,
    estimate_wait,
    overflow_deadline,
    within_service_level,
)
from callwarden.domain.errors import ValidationFailed
from callwarden.domain.ids import CallId, QueueId, TeamId, UserId
from callwarden.domain.models import Queue

QUEUE = Queue(
    id=QueueId(1),
    name="support",
    display_name="Support",
    number="700",
    team_id=TeamId(1),
    max_wait_seconds=120,
    service_level_seconds=20,
)


def call(name: str, sequence: int, priority: int = 0, arrived: float = 0.0) -> WaitingCall:
    return WaitingCall(CallId(name), QUEUE.id, arrived, sequence, priority, caller="+4930123456")


def test_calls_wait_by_priority_then_arrival() -> None:
    queue = CallQueue(QUEUE)
    positions = [
        queue.add(call("a", 1)),
        queue.add(call("b", 2)),
        queue.add(call("vip", 3, priority=5)),
        queue.add(call("c", 4)),
        queue.add(call("vip2", 5, priority=5)),
        queue.add(call("urgent", 6, priority=9)),
    ]
    assert positions == [1, 2, 1, 4, 2, 1]  # the position each had on arrival
    assert [c.call_id for c in queue.calls] == ["urgent", "vip", "vip2", "a", "b", "c"]
    assert [queue.position(CallId(n)) for n in ("urgent", "a", "c")] == [1, 4, 6]


def test_removing_a_call_moves_those_behind_it_up() -> None:
    queue = CallQueue(QUEUE)
    for index, name in enumerate("abcd"):
        queue.add(call(name, index))
    removed = queue.remove(CallId("b"))
    assert removed.call_id == "b"
    assert [queue.position(CallId(n)) for n in "acd"] == [1, 2, 3]
    assert len(queue) == 3 and CallId("b") not in queue
    with pytest.raises(UnknownCall):
        queue.remove(CallId("b"))
    with pytest.raises(UnknownCall):
        queue.position(CallId("b"))
    with pytest.raises(ValidationFailed, match="already waiting"):
        queue.add(call("a", 99))


def test_longest_wait_looks_at_every_call_not_just_the_head() -> None:
    queue = CallQueue(QUEUE)
    assert queue.longest_wait(100.0) == 0.0
    queue.add(call("early", 1, arrived=10.0))
    queue.add(call("vip", 2, priority=3, arrived=60.0))
    assert queue.longest_wait(100.0) == 90.0


def test_the_callers_number_stays_out_of_repr() -> None:
    assert "+4930123456" not in repr(call("a", 1))


@pytest.mark.parametrize(
    ("position", "available", "serving", "handle", "expected"),
    [
        (1, 1, 3, 180.0, 0.0),  # an agent is free for it
        (2, 2, 3, 180.0, 0.0),
        (3, 2, 3, 180.0, 180.0),  # 3 × 180 / 3
        (4, 0, 2, 120.0, 240.0),
        (2, 0, 0, 60.0, 120.0),  # nobody serving: as if one agent
    ],
)
def test_expected_wait(
    position: int, available: int, serving: int, handle: float, expected: float
) -> None:
    assert estimate_wait(position, available, serving, handle) == expected


def test_expected_wait_needs_a_real_position() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        estimate_wait(0, 0, 1, 60.0)


def test_the_handle_time_average_starts_from_the_first_call_then_moves_slowly() -> None:
    average = HandleTimeAverage(180.0, weight=0.5)
    assert average.seconds == 180.0
    average.add(100.0)
    assert average.seconds == 100.0
    average.add(200.0)
    assert average.seconds == 150.0
    average.add(float("nan"))
    average.add(-5.0)
    assert (average.seconds, average.samples) == (150.0, 2)


def test_overflow_deadline_and_service_level() -> None:
    waiting = call("a", 1, arrived=30.0)
    assert overflow_deadline(QUEUE, waiting) == 150.0
    unlimited = Queue(id=QueueId(2), name="x", display_name="X", number="701", team_id=TeamId(1))
    assert overflow_deadline(unlimited, waiting) is None
    assert within_service_level(QUEUE, 20.0)
    assert not within_service_level(QUEUE, 20.5)


def test_overflow_actions_are_data_and_must_name_their_target() -> None:
    assert OverflowAction.to_queue(QueueId(2)) == OverflowAction(
        OverflowKind.QUEUE, queue_id=QueueId(2)
    )
    assert OverflowAction.to_user(UserId(9)).user_id == 9
    assert OverflowAction.to_voicemail().message == "leave-a-message"
    assert OverflowAction.hang_up("closed") == OverflowAction(OverflowKind.HANGUP, message="closed")
    with pytest.raises(ValidationFailed, match="needs the queue"):
        OverflowAction(OverflowKind.QUEUE)
    with pytest.raises(ValidationFailed, match="needs the user"):
        OverflowAction(OverflowKind.USER)
