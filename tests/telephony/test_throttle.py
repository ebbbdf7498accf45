"""Throttling of authentication failures per key, driven by a fake clock."""

from __future__ import annotations

import pytest

from callwarden.sip.clock import FakeClock
from callwarden.telephony.throttle import FailureThrottle, ThrottleSettings

SETTINGS = ThrottleSettings(threshold=3, window=60.0, base_block=10.0, max_block=40.0)
ATTACKER = "198.51.100.66"
USER = "203.0.113.5"


@pytest.fixture
def throttle(clock: FakeClock) -> FailureThrottle:
    return FailureThrottle(clock, SETTINGS)


def fail(
    throttle: FailureThrottle, clock: FakeClock, times: int, *, every: float = 1.0
) -> list[bool]:
    """Record `times` failures of ATTACKER, `every` seconds apart; what each one returned."""
    results = []
    for index in range(times):
        if index:
            clock.advance(every)
        results.append(throttle.record_failure(ATTACKER))
    return results


def block_length(throttle: FailureThrottle, clock: FakeClock) -> float:
    """Advance in steps of 0.5 s until ATTACKER is free again; how long that took."""
    start = clock.now()
    while throttle.is_blocked(ATTACKER):
        clock.advance(0.5)
        assert clock.now() - start < 10_000
    return clock.now() - start


def test_the_threshold_within_the_window_blocks(
    throttle: FailureThrottle, clock: FakeClock
) -> None:
    assert fail(throttle, clock, 3, every=29.0) == [False, False, True]
    assert throttle.is_blocked(ATTACKER)
    assert not throttle.is_blocked(USER)
    assert block_length(throttle, clock) == 10.0


def test_below_the_threshold_nothing_is_blocked(
    throttle: FailureThrottle, clock: FakeClock
) -> None:
    assert fail(throttle, clock, 2) == [False, False]
    assert not throttle.is_blocked(ATTACKER)


@pytest.mark.parametrize(
    ("gap", "blocked"),
    [
        (30.0, True),  # the third failure 60 s after the first: still in the window
        (30.5, False),  # 61 s after the first: the window has passed, counting starts again
    ],
)
def test_the_window_is_counted_from_the_first_failure(
    throttle: FailureThrottle, clock: FakeClock, gap: float, blocked: bool
) -> None:
    assert fail(throttle, clock, 3, every=gap)[-1] is blocked
    assert throttle.is_blocked(ATTACKER) is blocked


def test_failures_after_the_window_count_afresh(
    throttle: FailureThrottle, clock: FakeClock
) -> None:
    assert fail(throttle, clock, 2) == [False, False]
    clock.advance(100)
    # the old two are forgotten: it takes three new failures to block
    assert fail(throttle, clock, 3) == [False, False, True]


def test_blocks_double_up_to_max_block(throttle: FailureThrottle, clock: FakeClock) -> None:
    lengths = []
    for _ in range(5):
        assert fail(throttle, clock, 3, every=0.0) == [False, False, True]
        lengths.append(block_length(throttle, clock))
    assert lengths == [10.0, 20.0, 40.0, 40.0, 40.0]


def test_a_failure_during_a_long_block_does_not_lift_it(clock: FakeClock) -> None:
    """A block longer than the window: a failure recorded after the window has passed starts
    a new count, but the running block stands."""
    throttle = FailureThrottle(
        clock, ThrottleSettings(threshold=2, window=60.0, base_block=300.0, max_block=600.0)
    )
    assert [throttle.record_failure(ATTACKER) for _ in range(2)] == [False, True]
    clock.advance(100)
    assert throttle.record_failure(ATTACKER) is False
    assert throttle.is_blocked(ATTACKER)
    assert block_length(throttle, clock) == 200.0


def test_a_success_clears_the_count(throttle: FailureThrottle, clock: FakeClock) -> None:
    assert fail(throttle, clock, 2) == [False, False]
    throttle.record_success(ATTACKER)
    assert fail(throttle, clock, 2) == [False, False]
    assert not throttle.is_blocked(ATTACKER)
    assert throttle.record_failure(ATTACKER) is True


def test_a_success_resets_the_doubling(throttle: FailureThrottle, clock: FakeClock) -> None:
    fail(throttle, clock, 3, every=0.0)
    assert block_length(throttle, clock) == 10.0
    fail(throttle, clock, 3, every=0.0)
    assert block_length(throttle, clock) == 20.0
    throttle.record_success(ATTACKER)
    fail(throttle, clock, 3, every=0.0)
    assert block_length(throttle, clock) == 10.0


def test_a_success_does_not_lift_a_running_block(
    throttle: FailureThrottle, clock: FakeClock
) -> None:
    fail(throttle, clock, 3, every=0.0)
    clock.advance(5)
    throttle.record_success(ATTACKER)
    assert throttle.is_blocked(ATTACKER)
    assert block_length(throttle, clock) == 5.0


def test_one_address_does_not_block_another(throttle: FailureThrottle, clock: FakeClock) -> None:
    fail(throttle, clock, 3)
    assert throttle.record_failure(USER) is False
    assert throttle.is_blocked(ATTACKER)
    assert not throttle.is_blocked(USER)


def test_the_table_is_bounded_and_evicts_the_oldest(clock: FakeClock) -> None:
    throttle = FailureThrottle(clock, ThrottleSettings(threshold=3, max_entries=2))
    first, second, third = "192.0.2.1", "192.0.2.2", "192.0.2.3"
    for address in (first, first, second, second, third):
        assert throttle.record_failure(address) is False
    # `first` (oldest) was evicted: its two failures are forgotten
    assert throttle.record_failure(first) is False
    assert throttle.record_failure(first) is False
    assert throttle.record_failure(first) is True
    # `first` coming back evicted `second` (then the oldest): its two failures are gone too
    assert throttle.record_failure(second) is False


def test_a_failure_refreshes_an_entry_so_it_is_not_the_oldest(clock: FakeClock) -> None:
    throttle = FailureThrottle(clock, ThrottleSettings(threshold=3, max_entries=2))
    first, second, third = "192.0.2.1", "192.0.2.2", "192.0.2.3"
    throttle.record_failure(first)
    throttle.record_failure(second)
    throttle.record_failure(first)  # first is now the newest
    throttle.record_failure(third)  # evicts second
    assert throttle.record_failure(first) is True  # first's count survived: 3 failures
    assert throttle.record_failure(second) is False
