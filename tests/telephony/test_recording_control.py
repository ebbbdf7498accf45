"""Recording control: the queue's policy, the operator's DTMF codes, who may pause whose call,
the pause timeout on a fake clock. A real media engine (key presses arrive as RFC 4733 packets
on the operator's and the customer's RTP endpoints), the real recorder and capture, the
catalogue on SQLite with a supervisor and two operators in two teams.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from callwarden.bus.in_process import InProcessBus
from callwarden.domain.cdr import CallDirection
from callwarden.domain.errors import InvalidState, NotFound, ValidationFailed
from callwarden.domain.ids import CallId, QueueId, RecordingId, TeamId, UserId
from callwarden.domain.models import QueueStrategy, RecordingPolicy
from callwarden.domain.policy import Principal
from callwarden.media.control import MediaConfig
from callwarden.media.dtmf import dtmf_packets
from callwarden.media.engine import MediaEngine
from callwarden.recording.capture import CaptureProvider
from callwarden.recording.keyring import FileKeyRing
from callwarden.recording.manifest import SignedManifest
from callwarden.recording.models import Recording, RecordingStatus
from callwarden.recording.numbers import SealedNumbers
from callwarden.recording.recorder import ActiveRecording, Recorder, RecorderSettings
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.storage import LocalStorage
from callwarden.security.audit_model import AuditEvent, AuditOutcome
from callwarden.store.database import Database
from callwarden.store.directory import UserDirectory
from callwarden.store.migrations import upgrade
from callwarden.store.schema import (
    QueueRow,
    RecordingRow,
    RoleRow,
    TeamRow,
    TeamSupervisorRow,
    UserRow,
)
from callwarden.store.testing import temporary_sqlite_url
from callwarden.telephony.monitoring_events import (
    MonitoringEnded,
    MonitoringEvent,
    MonitoringStarted,
    MonitoringSwitched,
)
from callwarden.telephony.recording_control import (
    CodeMatcher,
    RecordedCall,
    RecordingControl,
    RecordingControlSettings,
    RecordingRequired,
)


@pytest.mark.parametrize(
    ("keys", "actions"),
    [
        ("*1", [None, "pause"]),
        ("*2", [None, "resume"]),
        ("1*1", [None, None, "pause"]),
        ("**1", [None, None, "pause"]),  # a second '*' starts the code again
        ("*3*2", [None, None, None, "resume"]),
        ("#*1*2", [None, None, "pause", None, "resume"]),
    ],
)
def test_code_matcher_recognises_codes_in_a_stream_of_keys(
    keys: str, actions: list[str | None]
) -> None:
    matcher = CodeMatcher({"*1": "pause", "*2": "resume"}, timeout=3.0)
    assert [matcher.press(key, now=float(n)) for n, key in enumerate(keys)] == actions


def test_code_matcher_forgets_a_prefix_after_the_timeout() -> None:
    matcher = CodeMatcher({"*1": "pause"}, timeout=3.0)
    assert matcher.press("*", 10.0) is None
    assert matcher.press("1", 13.5) is None


@dataclass
class FakeClock:
    """Monotonic time and one-shot timers the test moves on."""

    time: float = 0.0
    timers: list[tuple[float, Callable[[], object], list[bool]]] = field(default_factory=list)

    def now(self) -> float:
        return self.time

    def call_later(self, delay: float, callback: Callable[[], object], /) -> _Handle:
        cancelled = [False]
        self.timers.append((self.time + delay, callback, cancelled))
        return _Handle(cancelled)

    def advance(self, seconds: float) -> None:
        self.time += seconds
        due = [t for t in self.timers if t[0] <= self.time]
        self.timers = [t for t in self.timers if t[0] > self.time]
        for _, callback, cancelled in due:
            if not cancelled[0]:
                callback()


@dataclass
class _Handle:
    cancelled: list[bool]

    def cancel(self) -> None:
        self.cancelled[0] = True


@dataclass
class Center:
    control: RecordingControl
    engine: MediaEngine
    clock: FakeClock
    directory: UserDirectory
    database: Database
    audit: list[AuditEvent]
    users: dict[str, UserId]
    support: TeamId
    queue: QueueId
    bus: InProcessBus
    storage: LocalStorage
    sockets: list[socket.socket] = field(default_factory=list)

    def principal(self, name: str) -> Principal:
        snapshot = self.directory.snapshot
        user = snapshot.user(self.users[name])
        assert user is not None
        return snapshot.principal_for(user)

    def recording(self, call_id: CallId) -> Recording:
        with self.database.sessions() as session:
            [recording_id] = session.scalars(
                select(RecordingRow.id).where(RecordingRow.call_id == call_id)
            )
            return RecordingRepository(session, SealedNumbers(bytes(32))).get(
                RecordingId(recording_id)
            )


def _seed(database: Database) -> tuple[dict[str, UserId], TeamId, QueueId]:
    with database.sessions() as session, session.begin():
        roles = {r.name: r.id for r in session.scalars(select(RoleRow))}
        support = TeamRow(name="support", display_name="Support")
        sales = TeamRow(name="sales", display_name="Sales")
        session.add_all([support, sales])
        session.flush()
        users = {
            "ann": UserRow(
                username="ann", display_name="Ann", role_id=roles["operator"], team_id=support.id
            ),
            "bob": UserRow(
                username="bob", display_name="Bob", role_id=roles["operator"], team_id=support.id
            ),
            "sue": UserRow(
                username="sue", display_name="Sue", role_id=roles["supervisor"], team_id=support.id
            ),
            "sam": UserRow(
                username="sam", display_name="Sam", role_id=roles["supervisor"], team_id=sales.id
            ),
        }
        session.add_all(users.values())
        session.flush()
        session.add_all(
            [
                TeamSupervisorRow(user_id=users["sue"].id, team_id=support.id),
                TeamSupervisorRow(user_id=users["sam"].id, team_id=sales.id),
            ]
        )
        queue = QueueRow(
            name="q",
            display_name="q",
            number="600",
            team_id=support.id,
            strategy=QueueStrategy.LONGEST_IDLE,
            wrap_up_seconds=0,
            ring_timeout_seconds=20,
            max_no_answer=3,
            max_wait_seconds=None,
            service_level_seconds=20,
            service_level_percent=80,
            required_skill_level=1,
            recording=RecordingPolicy.ALL,
        )
        session.add(queue)
        session.flush()
        return (
            {name: UserId(row.id) for name, row in users.items()},
            TeamId(support.id),
            QueueId(queue.id),
        )


@pytest.fixture
async def center(tmp_path: Path) -> AsyncIterator[Center]:
    url = temporary_sqlite_url(tmp_path)
    upgrade(url)
    database = Database(url)
    users, support, queue = _seed(database)
    directory = UserDirectory(database.sessions)
    directory.reload()
    engine = MediaEngine(MediaConfig(ports="47740-47759"), recording_sinks=CaptureProvider())
    storage = LocalStorage(tmp_path / "recordings")
    await engine.start()
    recorder = Recorder(
        media=engine,
        sessions=database.sessions,
        numbers=SealedNumbers(bytes(32)),
        keys=FileKeyRing(tmp_path / "keys"),
        storage=storage,
        signing_key=NodeSigningKey.generate(),
        settings=RecorderSettings(),
        wall_clock=lambda: datetime.now(UTC),
    )
    clock = FakeClock()
    audit: list[AuditEvent] = []
    bus = InProcessBus()
    control = RecordingControl(
        recorder=recorder,
        media=engine,
        directory=lambda: directory.snapshot,
        settings=RecordingControlSettings(pause_timeout_seconds=60.0),
        clock=clock,
        audit=audit.append,
        bus=bus,
    )
    made = Center(
        control, engine, clock, directory, database, audit, users, support, queue, bus, storage
    )
    yield made
    for sock in made.sockets:
        sock.close()
    await control.close()
    await recorder.close()
    await engine.close()
    database.close()


@dataclass
class Keypad:
    """A phone's RTP socket sending RFC 4733 key presses to an endpoint."""

    sock: socket.socket
    target: tuple[str, int]
    sequence_number: int = 1
    timestamp: int = 8000

    def press(self, keys: str) -> None:
        for key in keys:
            for packet in dtmf_packets(
                key,
                payload_type=101,
                ssrc=0x1234,
                sequence_number=self.sequence_number,
                timestamp=self.timestamp,
            ):
                self.sock.sendto(bytes(packet), self.target)
                self.sequence_number += 1
            self.timestamp += 1600


async def _call(center: Center, call_id: str, policy: RecordingPolicy) -> tuple[Keypad, Keypad]:
    """A bridge with a customer and an operator leg (ann); keypads on both phones."""
    engine = center.engine
    bridge = await engine.create_bridge()
    pads = []
    for role in ("customer", "operator"):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        center.sockets.append(sock)
        local = await engine.create_endpoint(bridge_id=bridge)
        await engine.set_remote(
            local.endpoint_id,
            host="127.0.0.1",
            port=sock.getsockname()[1],
            payload_type=0,
            encoding="PCMU",
            dtmf_payload_type=101,
        )
        await engine.add_to_bridge(bridge, local.endpoint_id, role)
        await engine.enable(local.endpoint_id)
        pads.append((Keypad(sock, (local.host, local.rtp_port)), local.endpoint_id))
    await center.control.call_connected(
        call_id=CallId(call_id),
        bridge_id=bridge,
        policy=policy,
        direction=CallDirection.INBOUND,
        operator_id=center.users["ann"],
        operator_endpoint=pads[1][1],
        queue_id=center.queue,
        team_id=center.support,
    )
    return pads[0][0], pads[1][0]


def _active(recorded: RecordedCall) -> ActiveRecording | None:
    return recorded.active


async def _eventually(predicate: Callable[[], bool]) -> None:
    """Wait for ``predicate`` (keys travel as real UDP packets through the engine: on a loaded
    machine that can take more than the usual few milliseconds)."""
    for _ in range(1000):  # up to about 10 s
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_operator_keys_pause_and_resume_customer_keys_do_nothing(center: Center) -> None:
    customer, operator = await _call(center, "c1", RecordingPolicy.ALL)
    recorded = center.control.recorded_call(CallId("c1"))
    assert recorded is not None and recorded.active is not None
    customer.press("*1")
    await asyncio.sleep(0.2)
    assert not recorded.active.paused
    operator.press("*1")
    await _eventually(lambda: recorded.active is not None and recorded.active.paused)
    operator.press("*2")
    await _eventually(lambda: recorded.active is not None and not recorded.active.paused)
    # The audit entry is written after the resume took effect, not in the same step.
    await _eventually(lambda: len(center.audit) >= 2)
    assert [(e.action, e.outcome, e.details["by"]) for e in center.audit] == [
        ("recording.pause", AuditOutcome.SUCCESS, "dtmf"),
        ("recording.resume", AuditOutcome.SUCCESS, "dtmf"),
    ]
    assert all(e.actor.user_id == center.users["ann"] for e in center.audit)
    await center.control.call_ended(CallId("c1"))
    row = center.recording(CallId("c1"))
    assert row.status is RecordingStatus.COMPLETE and len(row.pauses) == 1


async def test_who_may_pause_whose_call(center: Center) -> None:
    await _call(center, "c2", RecordingPolicy.ALL)
    call_id = CallId("c2")
    with pytest.raises(NotFound):  # another operator: not even told the call exists
        await center.control.pause(call_id, center.principal("bob"), by="api")
    with pytest.raises(NotFound):  # the supervisor of another team
        await center.control.pause(call_id, center.principal("sam"), by="api")
    with pytest.raises(NotFound):
        await center.control.pause(CallId("nope"), center.principal("sue"), by="api")
    assert await center.control.pause(call_id, center.principal("sue"), by="supervisor")
    await center.control.resume(call_id, center.principal("ann"), by="operator")
    recorded = center.control.recorded_call(call_id)
    assert recorded is not None and recorded.active is not None and not recorded.active.paused


async def test_a_forgotten_pause_ends_after_the_timeout(center: Center) -> None:
    await _call(center, "c3", RecordingPolicy.ALL)
    call_id = CallId("c3")
    assert await center.control.pause(call_id, center.principal("ann"), by="operator")
    recorded = center.control.recorded_call(call_id)
    assert recorded is not None and recorded.active is not None
    center.clock.advance(59.0)
    await asyncio.sleep(0.05)
    assert recorded.active.paused
    center.clock.advance(1.0)
    await _eventually(lambda: recorded.active is not None and not recorded.active.paused)
    assert center.audit[-1].details["by"] == "timeout"


async def test_on_demand_waits_for_start_and_none_never_records(center: Center) -> None:
    await _call(center, "c4", RecordingPolicy.ON_DEMAND)
    call_id = CallId("c4")
    recorded = center.control.recorded_call(call_id)
    assert recorded is not None and _active(recorded) is None
    with pytest.raises(InvalidState):
        await center.control.pause(call_id, center.principal("ann"), by="api")
    with pytest.raises(NotFound):  # another operator
        await center.control.start(call_id, center.principal("bob"))
    active = await center.control.start(call_id, center.principal("ann"))  # their own call
    assert _active(recorded) is active
    assert await center.control.start(call_id, center.principal("sue")) is active
    await _call(center, "c5", RecordingPolicy.NONE)
    assert center.control.recorded_call(CallId("c5")) is None


async def test_on_demand_stop_needs_a_reason_and_all_cannot_be_stopped(center: Center) -> None:
    await _call(center, "c6", RecordingPolicy.ON_DEMAND)
    call_id, ann = CallId("c6"), center.principal("ann")
    with pytest.raises(InvalidState):  # nothing to stop yet
        await center.control.stop(call_id, ann, reason="wrong number")
    first = await center.control.start(call_id, ann, reason="customer agreed")
    with pytest.raises(ValidationFailed):
        await center.control.stop(call_id, ann, reason="  ")
    await center.control.stop(call_id, center.principal("sue"), reason="customer objected")
    recorded = center.control.recorded_call(call_id)
    assert recorded is not None and recorded.active is None and first.stopped
    second = await center.control.start(call_id, ann)  # a new recording of the same call
    assert second.recording_id != first.recording_id
    assert [(e.action, e.reason) for e in center.audit] == [
        ("recording.start", "customer agreed"),
        ("recording.stop", "customer objected"),
        ("recording.start", None),
    ]
    await _call(center, "c7", RecordingPolicy.ALL)
    with pytest.raises(RecordingRequired):
        await center.control.stop(CallId("c7"), center.principal("sue"), reason="no")


def _monitoring(
    kind: type[MonitoringEvent], call_id: str, at: datetime, **values: object
) -> MonitoringEvent:
    return kind(
        at=at,
        monitoring_id="m" * 16,
        call_id=CallId(call_id),
        supervisor_id=UserId(7),
        via="api",
        **values,  # type: ignore[arg-type]
    )


async def test_the_manifest_lists_the_calls_monitoring_sessions(center: Center) -> None:
    await _call(center, "c8", RecordingPolicy.ALL)
    recorded = center.control.recorded_call(CallId("c8"))
    assert recorded is not None and recorded.active is not None
    start = recorded.active.started_at
    center.bus.publish(_monitoring(MonitoringStarted, "c8", start, mode="listen"))
    center.bus.publish(
        _monitoring(MonitoringSwitched, "other-call", start, mode="listen", previous="listen")
    )
    center.bus.publish(
        _monitoring(MonitoringSwitched, "c8", start, mode="whisper", previous="listen")
    )
    center.bus.publish(_monitoring(MonitoringEnded, "c8", start, mode="whisper", cause="hung up"))
    await center.control.call_ended(CallId("c8"))
    row = center.recording(CallId("c8"))
    assert row.monitored
    manifest = SignedManifest.load(center.storage.path_for_writing(row.storage_key)).fields()
    at = start.isoformat()
    assert manifest["monitoring_sessions"] == [
        {
            "monitoring_id": "m" * 16,
            "supervisor_id": 7,
            "via": "api",
            "started_at": at,
            "ended_at": at,
            "end_cause": "hung up",
            "modes": [{"mode": "listen", "from": at}, {"mode": "whisper", "from": at}],
        }
    ]


async def test_an_unmonitored_call_has_no_monitoring_sessions(center: Center) -> None:
    await _call(center, "c9", RecordingPolicy.ALL)
    await center.control.call_ended(CallId("c9"))
    row = center.recording(CallId("c9"))
    manifest = SignedManifest.load(center.storage.path_for_writing(row.storage_key)).fields()
    assert manifest["monitoring_sessions"] == [] and not row.monitored
