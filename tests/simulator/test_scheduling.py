"""When simulated customers call and how simulated people behave on the line, on a fake clock:
arrival rate and concurrency, ring and talk times, who hangs up, wrap-up, busy desks."""

from __future__ import annotations

import itertools
import random

import pytest

from callwarden.simulator.customers import CallArrivals, Customer, CustomerEnd, caller_number
from callwarden.simulator.operator import DeskState, OperatorDesk
from callwarden.simulator.settings import SecondsRange, SimulatorSettings
from callwarden.sip.clock import FakeClock
from callwarden.sip.tx_base import IllegalTransitionError

RING = SecondsRange(1.0, 4.0)
TALK = SecondsRange(20.0, 90.0)
WRAP_UP = SecondsRange(3.0, 8.0)


class Line:
    """A call as the person at one end sees it: what they did to it, and when."""

    def __init__(self, clock: FakeClock, call_id: str = "call-1") -> None:
        self._clock = clock
        self.call_id = call_id
        self.answered_at: float | None = None
        self.hung_up_at: float | None = None
        self.cancelled_at: float | None = None
        self.rejected: int | None = None

    def answer(self) -> None:
        self.answered_at = self._clock.now()

    def hang_up(self) -> None:
        self.hung_up_at = self._clock.now()

    def cancel(self) -> None:
        self.cancelled_at = self._clock.now()

    def reject(self, status: int, detail: str = "") -> None:
        self.rejected = status


# -- arrivals ---------------------------------------------------------------------------------


def _arrivals(
    clock: FakeClock, placed: list[float], active: list[int], max_concurrent: int = 4
) -> CallArrivals:
    settings = SimulatorSettings(node_host="127.0.0.1", node_port=5060, operators=())
    return CallArrivals(
        clock,
        random.Random(11),
        interval=settings.call_interval,
        first_after=2.0,
        max_concurrent=max_concurrent,
        place_call=lambda: placed.append(clock.now()),
        active=lambda: active[0],
    )


def test_ten_calls_a_minute_means_one_every_four_to_eight_seconds() -> None:
    clock = FakeClock()
    placed: list[float] = []
    arrivals = _arrivals(clock, placed, [0])
    arrivals.start()
    clock.advance(600)
    assert placed[0] == 2.0
    gaps = [later - earlier for earlier, later in itertools.pairwise(placed)]
    assert min(gaps) >= 4.0 and max(gaps) <= 8.0
    assert 75 <= len(placed) <= 150
    assert abs(sum(gaps) / len(gaps) - 6.0) < 0.5
    assert arrivals.placed == len(placed) and arrivals.skipped == 0


def test_no_new_call_while_every_customer_line_is_busy() -> None:
    clock = FakeClock()
    placed: list[float] = []
    active = [4]
    arrivals = _arrivals(clock, placed, active, max_concurrent=4)
    arrivals.start()
    clock.advance(60)
    assert placed == [] and arrivals.skipped >= 7
    active[0] = 3
    clock.advance(8)
    assert len(placed) == 1


def test_arrivals_stop_when_closed() -> None:
    clock = FakeClock()
    placed: list[float] = []
    arrivals = _arrivals(clock, placed, [0])
    arrivals.start()
    clock.advance(10)
    count = len(placed)
    arrivals.close()
    clock.advance(600)
    assert len(placed) == count and clock.pending() == 0


def test_caller_numbers_look_like_mobile_numbers() -> None:
    rng = random.Random(5)
    numbers = {caller_number(rng) for _ in range(100)}
    assert len(numbers) == 100
    assert all(
        number.startswith("06") and number.isdigit() and len(number) == 10 for number in numbers
    )


# -- customers --------------------------------------------------------------------------------


def _customer(
    clock: FakeClock, done: list[Customer], seed: int = 1, talk: SecondsRange = TALK
) -> Customer:
    return Customer(clock, random.Random(seed), talk=talk, patience=60.0, on_done=done.append)


def test_a_customer_talks_within_the_range_then_hangs_up() -> None:
    clock = FakeClock()
    done: list[Customer] = []
    customer = _customer(clock, done)
    line = Line(clock)
    customer.dialled(line)
    clock.advance(3.5)
    customer.connected()
    hang_up = clock.next_deadline()
    assert hang_up is not None
    clock.advance_to(hang_up)
    assert line.hung_up_at is not None and 20.0 <= line.hung_up_at - 3.5 <= 90.0
    customer.ended()  # the BYE went out: the call is over
    assert done == [customer]
    assert customer.end is CustomerEnd.HUNG_UP
    assert customer.waited == 3.5
    assert customer.talked == pytest.approx(customer.planned_talk)
    assert line.cancelled_at is None


def test_when_the_operator_hangs_up_first_the_customer_does_not() -> None:
    clock = FakeClock()
    done: list[Customer] = []
    customer = _customer(clock, done)
    line = Line(clock)
    customer.dialled(line)
    customer.connected()
    clock.advance(10.0)
    customer.ended()  # the operator's BYE
    clock.advance(200.0)
    assert line.hung_up_at is None
    assert customer.end is CustomerEnd.OPERATOR_HUNG_UP and customer.talked == 10.0
    assert clock.pending() == 0


def test_a_customer_gives_up_after_their_patience() -> None:
    clock = FakeClock()
    done: list[Customer] = []
    customer = _customer(clock, done)
    line = Line(clock)
    customer.dialled(line)
    clock.advance(59.9)
    assert line.cancelled_at is None
    clock.advance(0.1)
    assert line.cancelled_at == 60.0
    customer.ended()  # 487 to the INVITE
    assert customer.end is CustomerEnd.GAVE_UP and customer.talked is None
    assert customer.waited == 60.0


def test_a_queued_customer_waits_on_hold_then_talks_once_an_operator_picks_up() -> None:
    clock = FakeClock()
    done: list[Customer] = []
    customer = _customer(clock, done, talk=SecondsRange(70.0, 80.0))
    line = Line(clock)
    customer.dialled(line, via_queue=True)
    clock.advance(0.1)
    customer.connected()  # the queue answers at once: hold audio
    clock.advance(30.0)
    assert customer.answered_at is None and line.hung_up_at is None
    customer.picked_up()
    customer.picked_up()  # said twice: still one pick-up
    assert customer.answered_at == 30.1
    clock.advance(29.9)
    assert line.hung_up_at is None  # patience no longer counts: talking now
    clock.advance(60.1)
    assert line.hung_up_at is not None and 70.0 <= line.hung_up_at - 30.1 <= 80.0
    assert customer.waited == pytest.approx(30.1)


def test_a_queued_customer_out_of_patience_hangs_up_an_abandon() -> None:
    clock = FakeClock()
    done: list[Customer] = []
    customer = _customer(clock, done)
    line = Line(clock)
    customer.dialled(line, via_queue=True)
    customer.connected()
    clock.advance(60.0)
    assert line.hung_up_at == 60.0 and line.cancelled_at is None  # BYE, not CANCEL
    customer.ended()
    assert customer.end is CustomerEnd.GAVE_UP and customer.talked is None
    customer.picked_up()  # too late: nothing changes
    assert customer.answered_at is None and clock.pending() == 0


def test_a_queue_call_the_node_ends_while_waiting() -> None:
    clock = FakeClock()
    done: list[Customer] = []
    customer = _customer(clock, done)
    customer.dialled(Line(clock), via_queue=True)
    customer.connected()
    clock.advance(20.0)
    customer.ended()  # overflow with a message, or the node shutting down
    assert customer.end is CustomerEnd.ENDED_WAITING and customer.waited == 20.0


def test_a_refused_call_is_not_connected_and_reported_once() -> None:
    clock = FakeClock()
    done: list[Customer] = []
    customer = _customer(clock, done)
    customer.dialled(Line(clock))
    clock.advance(0.2)
    customer.ended()  # 486 Busy Here
    customer.ended()
    assert done == [customer] and customer.end is CustomerEnd.NOT_CONNECTED
    assert clock.pending() == 0


# -- operators --------------------------------------------------------------------------------


def _desk(clock: FakeClock, seed: int = 3) -> OperatorDesk:
    desk = OperatorDesk(
        "sim-op1", clock, random.Random(seed), ring=RING, talk=TALK, wrap_up=WRAP_UP
    )
    desk.sign_in()
    return desk


def test_an_operator_lets_it_ring_answers_talks_hangs_up_and_wraps_up() -> None:
    clock = FakeClock()
    desk = _desk(clock)
    line = Line(clock)
    assert desk.offer(line) and desk.state is DeskState.RINGING
    clock.advance(4.0)
    assert line.answered_at is not None and 1.0 <= line.answered_at <= 4.0
    assert desk.state is DeskState.ON_CALL
    hang_up = clock.next_deadline()
    assert hang_up is not None
    clock.advance_to(hang_up)
    assert line.hung_up_at is not None and 20.0 <= line.hung_up_at - line.answered_at <= 90.0
    assert desk.state is DeskState.WRAP_UP
    clock.advance(8.0)
    assert desk.state is DeskState.AVAILABLE
    assert (desk.answered, desk.hung_up_first, desk.refused) == (1, 1, 0)


def test_ring_and_talk_times_cover_their_ranges() -> None:
    clock = FakeClock()
    desk = _desk(clock, seed=9)
    rings, talks = [], []
    for number in range(200):
        line = Line(clock, f"call-{number}")
        offered_at = clock.now()
        assert desk.offer(line)
        clock.advance(200.0)  # ring, talk, wrap-up: all over
        assert line.answered_at is not None and line.hung_up_at is not None
        rings.append(line.answered_at - offered_at)
        talks.append(line.hung_up_at - line.answered_at)
    assert 1.0 <= min(rings) < 1.3 and 3.7 < max(rings) <= 4.0
    assert 20.0 <= min(talks) < 25.0 and 85.0 < max(talks) <= 90.0


def test_a_busy_operator_refuses_a_second_call_with_486() -> None:
    clock = FakeClock()
    desk = _desk(clock)
    first, second, third = Line(clock, "a"), Line(clock, "b"), Line(clock, "c")
    desk.offer(first)
    assert not desk.offer(second) and second.rejected == 486
    clock.advance(5.0)
    assert not desk.offer(third) and third.rejected == 486  # on the call now
    assert desk.refused == 2 and desk.call is first


def test_the_caller_hanging_up_first_ends_the_talk_and_starts_wrap_up() -> None:
    clock = FakeClock()
    desk = _desk(clock)
    line = Line(clock)
    desk.offer(line)
    clock.advance(4.0)
    desk.call_ended(line)
    assert desk.state is DeskState.WRAP_UP
    assert not desk.offer(Line(clock, "during-wrap-up"))
    clock.advance(8.0)
    assert desk.state is DeskState.AVAILABLE and line.hung_up_at is None
    assert desk.hung_up_first == 0


def test_a_call_cancelled_while_ringing_is_never_answered() -> None:
    clock = FakeClock()
    desk = _desk(clock)
    line = Line(clock)
    desk.offer(line)
    clock.advance(0.5)
    desk.call_ended(line)
    assert desk.state is DeskState.AVAILABLE
    clock.advance(100.0)
    assert line.answered_at is None and desk.answered == 0


def test_an_operator_signed_out_takes_no_call_and_drops_the_ringing_one() -> None:
    clock = FakeClock()
    desk = OperatorDesk("sim-op2", clock, random.Random(1), ring=RING, talk=TALK, wrap_up=WRAP_UP)
    offline = Line(clock, "offline")
    assert not desk.offer(offline) and offline.rejected == 486
    desk.sign_in()
    ringing = Line(clock, "ringing")
    desk.offer(ringing)
    desk.sign_out()
    assert ringing.rejected == 480 and desk.state is DeskState.OFFLINE
    clock.advance(10.0)
    assert ringing.answered_at is None


def test_wrap_up_while_signed_out_ends_offline() -> None:
    clock = FakeClock()
    desk = _desk(clock)
    line = Line(clock)
    desk.offer(line)
    clock.advance(4.0)
    desk.sign_out()  # the registration lapsed during the call: the call goes on
    assert desk.state is DeskState.ON_CALL
    desk.call_ended(line)
    clock.advance(8.0)
    assert desk.state is DeskState.OFFLINE


def test_a_desk_state_machine_rejects_moves_it_does_not_have() -> None:
    desk = _desk(FakeClock())
    with pytest.raises(IllegalTransitionError):
        desk._transition(DeskState.ON_CALL)  # available -> on call without ringing
