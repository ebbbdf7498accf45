"""The monitoring service on the in-process rig (monitoring_rig): who may start what, what each
party then hears (the bridge's real hearing matrix), DTMF keys, takeover, ending, and what is
audited and published. The pjsua2 test (tests/integration/test_monitoring.py) proves the audio.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from callwarden.bus.codec import EventCodec
from callwarden.bus.event import visible_to
from callwarden.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from callwarden.domain.ids import RecordingId
from callwarden.media.control import DtmfEvent, RtpTimeoutEvent
from callwarden.recording.capture_events import RecordingPaused, RecordingResumed
from callwarden.security.audit_model import AuditUnavailable
from callwarden.telephony.call import Hangup, ReleaseOperator
from callwarden.telephony.feature_codes import MonitorMode
from callwarden.telephony.monitor_session import MonitorSession
from callwarden.telephony.monitored_call import CallView
from callwarden.telephony.monitoring import Asker
from callwarden.telephony.monitoring_events import (
    MONITORING_EVENT_TYPES,
    MonitoringEnded,
    MonitoringStarted,
    MonitoringSwitched,
    OperatorMonitored,
)
from monitoring_rig import NORTH, PHONE, T0, USERS, Rig, answer_invite, build_rig, settle

F = frozenset


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    built = build_rig()
    yield built
    await built.service.close()


def asker(rig: Rig, username: str, via: str = "api") -> Asker:
    user = USERS[username]
    return Asker(user, rig.directory.principal_for(user), "192.0.2.5", via)


async def joined(rig: Rig, call: CallView, username: str, mode: MonitorMode) -> MonitorSession:
    """`username` starts monitoring `call` from the API and their phone answers."""
    rig.register_phone(username)
    before = len(rig.services.wire.requests("INVITE"))
    session = await rig.service.start(asker(rig, username), call.call_id, mode, "QA-1")
    await settle()
    invites = rig.services.wire.requests("INVITE")
    assert len(invites) == before + 1
    answer_invite(rig, invites[-1])
    await settle()
    assert session.joined
    return session


def hears(rig: Rig, call: CallView, participant: str) -> frozenset[str]:
    return rig.media.hearing(call.bridge_id, participant)


async def test_the_api_rings_the_supervisors_own_phone_and_listening_hears_both(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    session = await joined(rig, call, "north_sup", MonitorMode.LISTEN)
    invite = rig.services.wire.requests("INVITE")[-1]
    assert str(invite.uri) == f"sip:north_sup@{PHONE.host}:{PHONE.port}"
    assert rig.services.wire.sent[0].destination == PHONE
    sup, customer, operator = session.endpoint_id, call.customer_endpoint, call.operator_endpoint
    assert sup is not None and operator is not None
    assert hears(rig, call, sup) == F({customer, operator})
    assert hears(rig, call, customer) == F({operator})
    assert hears(rig, call, operator) == F({customer})
    assert ("monitoring.listen", "north_sup", "success") in rig.audit.actions()
    assert rig.audit.events[-1].reason == "QA-1"
    started = [e for e in rig.published if isinstance(e, MonitoringStarted)]
    assert [(e.call_id, e.mode, e.user_id) for e in started] == [
        ("call-1", "listen", USERS["north_op"].id)
    ]


async def test_whisper_reaches_the_operator_only_and_barge_everyone(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    session = await joined(rig, call, "north_sup", MonitorMode.LISTEN)
    sup, customer, operator = session.endpoint_id, call.customer_endpoint, call.operator_endpoint
    await rig.service.switch(asker(rig, "north_sup"), session, MonitorMode.WHISPER)
    assert hears(rig, call, operator) == F({customer, sup})  # type: ignore[arg-type]
    assert hears(rig, call, customer) == F({operator})
    await rig.service.switch(asker(rig, "north_sup"), session, MonitorMode.BARGE)
    assert hears(rig, call, customer) == F({operator, sup})
    assert hears(rig, call, operator) == F({customer, sup})  # type: ignore[arg-type]
    assert hears(rig, call, sup) == F({customer, operator})  # type: ignore[arg-type]
    switched = [e for e in rig.published if isinstance(e, MonitoringSwitched)]
    assert [(e.previous, e.mode) for e in switched] == [("listen", "whisper"), ("whisper", "barge")]
    actions = [a for a, _, _ in rig.audit.actions()]
    assert actions == ["monitoring.listen", "monitoring.whisper", "monitoring.barge"]


async def test_takeover_cuts_the_operator_out_and_releases_their_leg(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    session = await joined(rig, call, "north_sup", MonitorMode.BARGE)
    sup, customer, operator = session.endpoint_id, call.customer_endpoint, call.operator_endpoint
    assert operator is not None
    await rig.service.switch(asker(rig, "north_sup"), session, MonitorMode.TAKEOVER)
    assert hears(rig, call, customer) == F({sup})
    assert hears(rig, call, operator) == F()
    task = call.task
    assert isinstance(task.events[-1], ReleaseOperator)  # type: ignore[attr-defined]
    assert rig.media.rtp_timeouts[operator] is None
    with pytest.raises(Conflict):
        await rig.service.switch(asker(rig, "north_sup"), session, MonitorMode.LISTEN)
    # The supervisor is now the customer's party: when they hang up, the call ends.
    rig.service.end(session, "supervisor hung up")
    await settle()
    assert isinstance(task.events[-1], Hangup)  # type: ignore[attr-defined]


async def test_a_reason_is_required_to_start(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    rig.register_phone("north_sup")
    for reason in (None, "   "):
        with pytest.raises(ValidationFailed) as refused:
            await rig.service.start(
                asker(rig, "north_sup"), call.call_id, MonitorMode.LISTEN, reason
            )
        assert refused.value.error_id == "audit_reason_required"
    assert rig.services.wire.sent == [] and rig.service.sessions == {}


async def test_another_teams_call_reads_as_a_guessed_id_and_each_attempt_is_audited(
    rig: Rig,
) -> None:
    await rig.call("call-1", "north_op")
    rig.register_phone("south_sup")
    messages = []
    for call_id in ("call-1", "no-such-call"):
        for mode in MonitorMode:
            with pytest.raises(NotFound) as refused:
                await rig.service.start(asker(rig, "south_sup"), call_id, mode, "curious")
            messages.append(str(refused.value).replace(call_id, "<id>"))
    assert set(messages) == {"call <id> not found"}
    denied = [e for e in rig.audit.events if e.action == "permission.denied"]
    assert len(denied) == 8
    assert {e.details["decision"] for e in denied} == {"deny_not_found"}
    assert {e.details["permission"] for e in denied} == {
        "monitor.listen",
        "monitor.whisper",
        "monitor.barge",
        "monitor.takeover",
    }
    assert rig.services.wire.sent == [] and rig.service.sessions == {}


@pytest.mark.parametrize(
    ("username", "error"),
    [("north_op", NotFound), ("south_op", NotFound), ("auditor", Forbidden), ("admin", Forbidden)],
)
async def test_operators_auditors_and_admins_cannot_monitor(
    rig: Rig, username: str, error: type[Exception]
) -> None:
    call = await rig.call("call-1", "north_op" if username != "north_op" else "south_op")
    rig.register_phone(username)
    with pytest.raises(error):
        await rig.service.start(asker(rig, username), call.call_id, MonitorMode.LISTEN, "why")
    assert rig.audit.actions() == [("permission.denied", username, "denied")]
    assert rig.services.wire.sent == []


async def test_one_cannot_monitor_ones_own_call_or_twice(rig: Rig) -> None:
    own = await rig.call("call-own", "north_sup")
    rig.register_phone("north_sup")
    with pytest.raises(Conflict):
        await rig.service.start(asker(rig, "north_sup"), own.call_id, MonitorMode.LISTEN, "x")
    call = await rig.call("call-1", "north_op")
    await joined(rig, call, "north_sup", MonitorMode.LISTEN)
    with pytest.raises(Conflict):
        await rig.service.start(asker(rig, "north_sup"), call.call_id, MonitorMode.BARGE, "x")


async def test_without_a_registered_phone_nothing_is_dialled(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    with pytest.raises(Conflict) as refused:
        await rig.service.start(asker(rig, "north_sup"), call.call_id, MonitorMode.LISTEN, "x")
    assert refused.value.error_id == "monitoring_no_phone"
    assert rig.services.wire.sent == [] and rig.service.sessions == {}


async def test_no_audit_no_monitoring(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    rig.register_phone("north_sup")
    rig.audit.failing = True
    with pytest.raises(AuditUnavailable):
        await rig.service.start(asker(rig, "north_sup"), call.call_id, MonitorMode.LISTEN, "x")
    assert rig.services.wire.sent == [] and rig.service.sessions == {}


async def test_keys_switch_the_mode_and_star_leaves_without_touching_the_call(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    session = await joined(rig, call, "north_sup", MonitorMode.LISTEN)
    sup = session.endpoint_id
    assert sup is not None
    rig.media.emit(DtmfEvent(sup, "5", 0))  # type: ignore[arg-type]
    await settle()
    assert session.mode is MonitorMode.WHISPER
    assert sup in hears(rig, call, call.operator_endpoint)  # type: ignore[arg-type]
    rig.media.emit(DtmfEvent(sup, "6", 0))  # type: ignore[arg-type]
    await settle()
    assert session.mode is MonitorMode.BARGE
    assert [a for a, _, _ in rig.audit.actions()][-1] == "monitoring.barge"
    rig.media.emit(DtmfEvent(sup, "*", 0))  # type: ignore[arg-type]
    await settle()
    assert session.ended_at is not None and rig.service.sessions == {}
    assert [str(bye.uri) for bye in rig.services.byes] == [f"sip:phone@{PHONE.host}:{PHONE.port}"]
    assert sup not in rig.media.bridge(call.bridge_id).members
    assert hears(rig, call, call.customer_endpoint) == F({call.operator_endpoint})
    assert hears(rig, call, call.operator_endpoint) == F({call.customer_endpoint})  # type: ignore[arg-type]
    assert call.task.events == []  # type: ignore[attr-defined]
    ended = [e for e in rig.published if isinstance(e, MonitoringEnded)]
    assert [e.cause for e in ended] == ["supervisor pressed *"]
    assert rig.audit.events[-1].action == "monitoring.ended"
    modes = rig.audit.events[-1].details["modes"]
    assert [mode for _, mode in modes] == ["listen", "whisper", "barge"]  # type: ignore[union-attr]


async def test_a_listener_never_hears_another_supervisors_whisper(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    listener = await joined(rig, call, "north_sup", MonitorMode.LISTEN)
    whisperer = await joined(rig, call, "north_sup2", MonitorMode.WHISPER)
    assert whisperer.endpoint_id not in hears(rig, call, listener.endpoint_id)  # type: ignore[arg-type]
    assert whisperer.endpoint_id not in hears(rig, call, call.customer_endpoint)
    assert whisperer.endpoint_id in hears(rig, call, call.operator_endpoint)  # type: ignore[arg-type]
    # The listener leaves; the whisper goes on as before.
    rig.service.end(listener, "done")
    await settle()
    assert hears(rig, call, call.operator_endpoint) == F(  # type: ignore[arg-type]
        {call.customer_endpoint, whisperer.endpoint_id}
    )


async def test_the_end_of_the_call_hangs_up_its_supervisors(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    session = await joined(rig, call, "north_sup", MonitorMode.LISTEN)

    class Ended:
        call_id = call.call_id

    rig.service.on_call_ended(Ended())  # type: ignore[arg-type]
    await settle()
    assert session.end_cause == "the call ended" and rig.service.sessions == {}
    assert len(rig.services.byes) == 1


async def test_a_media_timeout_on_the_supervisors_leg_ends_only_the_session(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    session = await joined(rig, call, "north_sup", MonitorMode.LISTEN)
    rig.media.emit(RtpTimeoutEvent(session.endpoint_id, 60.0))  # type: ignore[arg-type]
    await settle()
    assert session.end_cause == "media timeout"
    assert call.task.events == []  # type: ignore[attr-defined]


async def test_switching_to_a_mode_one_may_not_use_is_refused_and_audited(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    session = await joined(rig, call, "north_sup", MonitorMode.LISTEN)
    with pytest.raises(Conflict):
        await rig.service.switch(asker(rig, "north_sup2"), session, MonitorMode.BARGE)
    assert session.mode is MonitorMode.LISTEN


async def test_a_card_data_pause_mutes_the_customer_toward_every_supervisor(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    session = await joined(rig, call, "north_sup", MonitorMode.WHISPER)
    sup, customer, operator = session.endpoint_id, call.customer_endpoint, call.operator_endpoint
    facts = {"at": T0, "recording_id": RecordingId(1), "call_id": call.call_id}
    rig.bus.publish(RecordingPaused(**facts, by="operator"))  # type: ignore[arg-type]
    await settle()
    assert hears(rig, call, sup) == F({operator})  # type: ignore[arg-type]
    assert hears(rig, call, operator) == F({customer, sup})  # type: ignore[arg-type]
    # A switch during the pause keeps the customer away from the supervisor.
    await rig.service.switch(asker(rig, "north_sup"), session, MonitorMode.BARGE)
    assert customer not in hears(rig, call, sup)  # type: ignore[arg-type]
    rig.bus.publish(RecordingResumed(**facts, by="operator"))  # type: ignore[arg-type]
    await settle()
    assert hears(rig, call, sup) == F({customer, operator})  # type: ignore[arg-type]


async def test_a_tone_policy_gives_the_operator_alone_a_short_notice() -> None:
    rig = build_rig(tone=frozenset({NORTH}), notice_seconds=0.05)
    try:
        call = await rig.call("call-1", "north_op")
        session = await joined(rig, call, "north_sup", MonitorMode.LISTEN)
        assert session.operator_notified
        bridge = rig.media.bridge(call.bridge_id)
        notices = [pid for pid, member in bridge.members.items() if member.role == "notice"]
        assert len(notices) == 1
        assert notices[0] in hears(rig, call, call.operator_endpoint)  # type: ignore[arg-type]
        assert notices[0] not in hears(rig, call, call.customer_endpoint)
        assert notices[0] not in hears(rig, call, session.endpoint_id)  # type: ignore[arg-type]
        await asyncio.sleep(0.1)
        assert notices[0] not in bridge.members  # half a second, then gone
        started = [e for e in rig.published if isinstance(e, MonitoringStarted)]
        assert started[-1].operator_notified
    finally:
        await rig.service.close()


async def test_a_silent_team_gets_no_notice(rig: Rig) -> None:
    call = await rig.call("call-1", "north_op")
    session = await joined(rig, call, "north_sup", MonitorMode.LISTEN)
    assert not session.operator_notified
    roles = {member.role for member in rig.media.bridge(call.bridge_id).members.values()}
    assert roles == {"customer", "operator", "supervisor"}


async def test_a_notified_team_tells_the_operator_alone() -> None:
    rig = build_rig(notify=frozenset({NORTH}))
    try:
        call = await rig.call("call-1", "north_op")
        session = await joined(rig, call, "north_sup", MonitorMode.LISTEN)
        rig.service.end(session, "done")
        await settle()
        notices = [e for e in rig.published if isinstance(e, OperatorMonitored)]
        assert [(e.call_id, e.monitored) for e in notices] == [("call-1", True), ("call-1", False)]
        operator = rig.directory.principal_for(USERS["north_op"])
        others = [rig.directory.principal_for(USERS[name]) for name in ("north_sup", "south_op")]
        assert all(visible_to(operator)(e) for e in notices)
        assert not any(visible_to(p)(e) for p in others for e in notices)
        started = next(e for e in rig.published if isinstance(e, MonitoringStarted))
        assert visible_to(others[0])(started) and not visible_to(operator)(started)
    finally:
        await rig.service.close()


def test_monitoring_events_cross_nodes() -> None:
    codec = EventCodec(MONITORING_EVENT_TYPES)
    event = OperatorMonitored(
        at=T0, team_id=NORTH, user_id=USERS["north_op"].id, call_id="c@h", monitored=True
    )
    assert codec.decode(codec.encode(event, node_id="a")).event == event
