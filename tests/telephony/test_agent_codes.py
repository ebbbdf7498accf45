"""Agent feature codes against a real ACD engine on a fake clock: what each code changes,
what is refused (and how the phone is answered), and what the audit records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from callwarden.acd.agent import AgentState
from callwarden.acd.engine import AcdEngine
from callwarden.acd.queue import OverflowAction
from callwarden.bus import InProcessAgentClaims, InProcessBus
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, QueueId, RoleId, TeamId, UserId
from callwarden.domain.models import Queue, QueueMember, Role, Team, User
from callwarden.domain.permissions import DEFAULT_ROLE_GRANTS
from callwarden.security.audit_model import AuditEvent, AuditOutcome
from callwarden.sip.clock import FakeClock
from callwarden.telephony.agent_codes import AgentCodes, AgentFeatures, Refused
from callwarden.telephony.dialplan import ToFeature

ALICE, BOB, DAVE = UserId(1), UserId(2), UserId(4)
Q1 = QueueId(1)


def _directory() -> DirectorySnapshot:
    roles = [
        Role(RoleId(1), "operator", builtin=True, grants=DEFAULT_ROLE_GRANTS["operator"]),
        Role(RoleId(3), "auditor", builtin=True, grants=DEFAULT_ROLE_GRANTS["auditor"]),
    ]
    users = [
        User(ALICE, "alice", "Alice", RoleId(1), TeamId(1), extension="1001"),
        User(BOB, "bob", "Bob", RoleId(1), TeamId(1), extension="1002"),
        User(DAVE, "dave", "Dave", RoleId(3), TeamId(1), extension="1004"),
    ]
    queue = Queue(
        Q1,
        "billing",
        "Billing",
        "5000",
        TeamId(1),
        members=(QueueMember(ALICE), QueueMember(DAVE)),
        wrap_up_seconds=30,
    )
    return DirectorySnapshot(
        teams=[Team(TeamId(1), "support", "Support")],
        roles=roles,
        users=users,
        queues=[queue],
        break_reasons=["lunch", "training", "meeting"],
    )


class Owner:
    def offer_call(self, call_id: CallId, agent_id: UserId, queue_id: QueueId) -> None:
        pass

    def withdraw_offer(self, call_id: CallId, agent_id: UserId) -> None:
        pass

    def overflow_call(self, call_id: CallId, queue_id: QueueId, action: OverflowAction) -> None:
        pass


class Audit:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def append(self, event: AuditEvent) -> object:
        self.events.append(event)
        return event


@pytest.fixture
async def engine() -> AsyncIterator[AcdEngine]:
    clock = FakeClock()
    engine = AcdEngine(
        directory=_directory(),
        bus=InProcessBus(),
        claims=InProcessAgentClaims(clock.now),
        calls=Owner(),
        clock=clock,
        wall_clock=lambda: datetime(2026, 1, 1, tzinfo=UTC),
        node_id="test",
    )
    await engine.start()
    yield engine
    await engine.close()


@pytest.fixture
def audit() -> Audit:
    return Audit()


@pytest.fixture
def features(engine: AcdEngine, audit: Audit) -> AgentFeatures:
    features = AgentFeatures(AgentCodes(), clock=FakeClock(), directory=_directory, audit=audit)
    features.bind(engine)
    return features


def _user(user_id: UserId) -> User:
    user = _directory().user(user_id)
    assert user is not None
    return user


async def test_sign_in_break_by_digit_available_and_sign_out(
    features: AgentFeatures, engine: AcdEngine, audit: Audit
) -> None:
    alice = _user(ALICE)
    steps = [("*51", ""), ("*53", "2"), ("*53", ""), ("*54", ""), ("*52", "")]
    seen = []
    for code, argument in steps:
        agent = await features.change(alice, ToFeature(code, argument), "192.0.2.5")
        seen.append((agent.state, agent.break_reason))
    assert seen == [
        (AgentState.AVAILABLE, None),
        (AgentState.BREAK, "training"),
        (AgentState.BREAK, "lunch"),
        (AgentState.AVAILABLE, None),
        (AgentState.OFFLINE, None),
    ]
    assert len(audit.events) == 5
    first = audit.events[1]
    assert (first.action, first.outcome, first.object_id, first.source_address) == (
        "agent.state.change",
        AuditOutcome.SUCCESS,
        1,
        "192.0.2.5",
    )
    assert first.details["before"] == {"state": "available", "break_reason": None, "queue_ids": [1]}
    assert first.details["after"] == {
        "state": "break",
        "break_reason": "training",
        "queue_ids": [1],
    }
    assert (first.details["source"], first.details["code"], first.details["argument"]) == (
        "phone",
        "*53",
        "2",
    )
    assert engine.agent(ALICE).state is AgentState.OFFLINE


async def test_asking_for_the_current_state_changes_and_records_nothing(
    features: AgentFeatures, audit: Audit
) -> None:
    alice = _user(ALICE)
    await features.change(alice, ToFeature("*51", ""), "192.0.2.5")
    await features.change(alice, ToFeature("*51", ""), "192.0.2.5")
    await features.change(alice, ToFeature("*54", ""), "192.0.2.5")
    assert len(audit.events) == 1


async def test_available_signs_an_offline_agent_in(features: AgentFeatures) -> None:
    agent = await features.change(_user(ALICE), ToFeature("*54", ""), "192.0.2.5")
    assert (agent.state, agent.queue_ids) == (AgentState.AVAILABLE, frozenset({Q1}))


@pytest.mark.parametrize(
    ("user_id", "code", "argument", "status", "phrase"),
    [
        (BOB, "*51", "", 404, "Not A Queue Member"),
        (ALICE, "*53", "7", 404, "Unknown Break Reason"),
        (ALICE, "*53", "12", 404, "Unknown Break Reason"),
        (ALICE, "*51", "9", 404, "Not Found"),
        (DAVE, "*51", "", 403, "Agent State Change Not Allowed"),
    ],
)
async def test_refused_codes_say_why_and_change_nothing(
    features: AgentFeatures,
    engine: AcdEngine,
    audit: Audit,
    user_id: UserId,
    code: str,
    argument: str,
    status: int,
    phrase: str,
) -> None:
    with pytest.raises(Refused) as caught:
        await features.change(_user(user_id), ToFeature(code, argument), "192.0.2.5")
    assert (caught.value.status, caught.value.reason) == (status, phrase)
    assert engine.agent(ALICE).state is AgentState.OFFLINE
    denied = [e for e in audit.events if e.outcome is AuditOutcome.DENIED]
    assert len(denied) == (1 if status == 403 else 0)


async def test_a_break_during_a_call_is_refused_with_the_engine_s_reason(
    features: AgentFeatures, engine: AcdEngine
) -> None:
    alice = _user(ALICE)
    await features.change(alice, ToFeature("*51", ""), "192.0.2.5")
    await engine.call_arrived(CallId("c1"), Q1)
    await engine.offer_answered(CallId("c1"), ALICE)
    with pytest.raises(Refused) as caught:
        await features.change(alice, ToFeature("*53", "1"), "192.0.2.5")
    assert caught.value.status == 403
    assert "on_call" in caught.value.reason
    assert engine.agent(ALICE).state is AgentState.ON_CALL


def test_codes_are_configurable_and_checked() -> None:
    assert AgentCodes("*71", "*72", "*73", "*74").codes == ("*71", "*72", "*73", "*74")
    with pytest.raises(ValueError, match="must differ"):
        AgentCodes("*51", "*51")
    with pytest.raises(ValueError, match="feature code"):
        AgentCodes(sign_in="51")
