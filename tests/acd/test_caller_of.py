"""`AcdEngine.caller_of`: the customer's number while the ACD has the call (waiting, ringing,
connected), none once it ended or for a call it never had; no event carries it."""

from __future__ import annotations

from callwarden.bus import InProcessBus
from callwarden.domain.ids import CallId, UserId
from callwarden.sip.clock import FakeClock

from .conftest import EngineFactory, advance, drain, make_queue

A = UserId(101)


async def test_the_number_is_known_from_arrival_to_the_end(
    make_engine: EngineFactory, clock: FakeClock, bus: InProcessBus
) -> None:
    engine = await make_engine(make_queue(1, [A], wrap_up_seconds=10))
    events = bus.subscribe()
    call = CallId("c1")
    assert engine.caller_of(call) is None
    await engine.call_arrived(call, make_queue(1, [A]).id, caller="+4930111222")
    assert engine.caller_of(call) == "+4930111222"  # waiting
    await engine.sign_in(A)
    await advance(engine, clock, 1)
    assert engine.caller_of(call) == "+4930111222"  # ringing
    await engine.offer_answered(call, A)
    assert engine.caller_of(call) == "+4930111222"  # connected
    await engine.call_ended(call)
    assert engine.caller_of(call) is None  # in wrap-up the ACD has let it go
    assert engine.caller_of(CallId("never")) is None
    assert all("+4930111222" not in repr(event) for event in drain(events))
