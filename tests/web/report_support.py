"""A known day for the reports, played through the real ACD engine whose bus is recorded into
the database by `AcdHistory` (as the node wires it), with dispositions saved through the
disposition store (as `PUT /api/v1/calls/{id}/disposition` does).

Queues (provisioned with the web tests' organisation): `north-line` (team north: operator and
colleague; answered within 20 s counts; wrap-up 30 s) and `south-line` (team south: stranger;
the same). From `START` (09:00 in Tokyo, 00:00 UTC):

| s | what |
|---|---|
| 0 | operator signs in to north-line, stranger to south-line |
| 60 | call n1 to north-line, rings the operator; answered at 70 (waited 10) |
| 190 | n1 ends (talk 120); wrap-up 30 s: handled at 220 |
| 300 | call n2 to north-line rings the operator; the caller hangs up at 340: abandoned (40) |
| 400 | operator on break `lunch`; available again at 1000 |
| 1200 | call s1 to south-line, answered by stranger at 1205 (waited 5); ends 1265, handled 1295 |
| 1500 | both sign out |

n1 is disposed `resolved`, s1 `callback`. By hand, for 09:00 to 10:00: north-line offered 2,
answered 1, abandoned 1, service level 50 %, ASA 10 s, AHT 150 s, occupancy 150 ÷ (1500 − 600)
(one sixth), lunch 600 s; south-line offered 1, answered 1, service level 100 %, ASA 5 s, AHT
90 s, occupancy 90 ÷ 1500 (6 %).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from callwarden.acd.engine import AcdEngine
from callwarden.acd.history import AcdHistory, RecordedBus
from callwarden.bus.claims import InProcessAgentClaims
from callwarden.bus.in_process import InProcessBus
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.provisioning import Provisioner
from callwarden.security.audit import AuditActor, AuditEvent, AuditOutcome
from callwarden.security.clock import Clock
from callwarden.sip.clock import FakeClock as SipFakeClock
from callwarden.store.database import Database
from callwarden.web.dispositions.store import CallDisposition, DispositionStore
from web.support import ORGANISATION, PASSWORD, REALM, NoTelephony, cheap_hasher

START = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
"""09:00 on Monday 30 November 2026 in Tokyo."""
END = START + timedelta(hours=1)

REPORT_QUEUES: list[dict[str, Any]] = [
    {
        "name": "north-line",
        "number": "5000",
        "team": "north",
        "members": ["operator", "colleague"],
        "service_level_seconds": 20,
        "wrap_up_seconds": 30,
    },
    {
        "name": "south-line",
        "number": "5100",
        "team": "south",
        "members": ["stranger"],
        "service_level_seconds": 20,
        "wrap_up_seconds": 30,
    },
]

HAND_COMPUTED = {
    "north-line": {
        "offered": 2,
        "answered": 1,
        "abandoned": 1,
        "service_level": 0.5,
        "average_speed_of_answer": 10.0,
        "average_handle_time": 150.0,
        "occupancy": 150 / 900,
        "break_seconds": {"lunch": 600.0},
    },
    "south-line": {
        "offered": 1,
        "answered": 1,
        "abandoned": 0,
        "service_level": 1.0,
        "average_speed_of_answer": 5.0,
        "average_handle_time": 90.0,
        "occupancy": 90 / 1500,
        "break_seconds": {},
    },
}


def provision_with_queues(database: Database, extra: dict[str, Any] | None = None) -> None:
    document = {
        **ORGANISATION,
        **(extra or {}),
        "queues": REPORT_QUEUES,
        "users": [{**user, "password": PASSWORD} for user in ORGANISATION["users"]],
    }
    Provisioner(database.sessions, REALM, password_hasher=cheap_hasher()).apply_document(
        document, "reports"
    )


def _saved(call_id: str, user_id: UserId, code: str, at: datetime) -> CallDisposition:
    return CallDisposition(
        call_id=call_id, user_id=user_id, team_id=None, code=code, note="", updated_at=at
    )


def _audit(disposition: CallDisposition, username: str) -> Callable[[object], AuditEvent]:
    assert disposition.user_id is not None

    def event(_before: object) -> AuditEvent:
        return AuditEvent(
            action="call.disposition",
            actor=AuditActor.user(disposition.user_id, username),  # type: ignore[arg-type]
            outcome=AuditOutcome.SUCCESS,
            object_kind="call",
            object_id=disposition.call_id,
            details={"code": disposition.code, "note": "", "previous_code": None},
        )

    return event


class _WallClock:
    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now


async def play_day(
    snapshot: DirectorySnapshot, sessions: Callable[[], Session], bus: InProcessBus | None = None
) -> AcdHistory:
    """Plays the day through a real engine; returns its history, closed (every event written)."""
    users = {user.username: user.id for user in snapshot.users}
    queues = {queue.name: queue.id for queue in snapshot.queues}
    north, south = QueueId(queues["north-line"]), QueueId(queues["south-line"])
    operator, stranger = UserId(users["operator"]), UserId(users["stranger"])
    clock = SipFakeClock()
    history = AcdHistory(sessions)
    history.start()
    engine = AcdEngine(
        directory=snapshot,
        bus=RecordedBus(bus or InProcessBus(), history.record),
        claims=InProcessAgentClaims(clock.now),
        calls=NoTelephony(),
        clock=clock,
        wall_clock=lambda: START + timedelta(seconds=clock.now()),
        node_id="reports",
    )

    async def at(second: float) -> None:
        while (deadline := clock.next_deadline()) is not None and deadline <= second:
            clock.advance_to(deadline)
            await engine.settled()
        clock.advance_to(second)
        await engine.settled()

    await engine.start()
    try:
        await engine.sign_in(operator, [north])
        await engine.sign_in(stranger, [south])
        await at(60)
        await engine.call_arrived(CallId("n1"), north, caller="+81300000001")
        await at(70)
        await engine.offer_answered(CallId("n1"), operator)
        await at(190)
        await engine.call_ended(CallId("n1"))
        await at(300)
        await engine.call_arrived(CallId("n2"), north, caller="+81300000002")
        await at(340)
        await engine.call_ended(CallId("n2"))
        await at(400)
        await engine.take_break(operator, "lunch")
        await at(1000)
        await engine.make_available(operator)
        await at(1200)
        await engine.call_arrived(CallId("s1"), south, caller="+81300000003")
        await at(1205)
        await engine.offer_answered(CallId("s1"), stranger)
        await at(1265)
        await engine.call_ended(CallId("s1"))
        await at(1500)
        await engine.sign_out(operator)
        await engine.sign_out(stranger)
        await engine.settled()
    finally:
        await engine.close()
        await history.close()
    store = DispositionStore(sessions)
    clock_now: Clock = _WallClock(lambda: START + timedelta(hours=1))
    for call_id, username, code in (("n1", "operator", "resolved"), ("s1", "stranger", "callback")):
        saved = _saved(call_id, UserId(users[username]), code, START + timedelta(minutes=30))
        store.save(saved, _audit(saved, username), clock_now)
    return history
