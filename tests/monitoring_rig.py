"""An in-process rig for monitoring tests: real policy, real hearing matrices, real SIP
transactions, no sockets.

- `RigMedia` keeps real `media.bridge.Bridge` objects (the topology the engine mixes by) and
  does what the engine does to them; tests read `hearing(...)`: the outcome, not the calls.
- `RigServices` is the SIP application's side: a real `TransactionLayer` over a wire that
  records what would be sent (`Wire`), a fixed clock, dialog registrations.
- `RigCall` is a monitorable call: a bridge with a customer and an operator endpoint, and a
  task that records the events posted to it (release the operator, hang up) and keeps the
  supervisors' CDR legs.
- `north_south_directory()`: teams north and south, a supervisor and an operator in each, an
  auditor and an admin (built-in roles' grants), users with extensions.
- `answer_invite(rig)` plays the supervisor's phone: it answers the INVITE on the wire with 200
  and an SDP answer, as pjsua would.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from callwarden.bus.event import Event
from callwarden.bus.in_process import InProcessBus
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, RoleId, TeamId, UserId
from callwarden.domain.models import Role, Team, User
from callwarden.domain.permissions import DEFAULT_ROLE_GRANTS
from callwarden.domain.policy import Resource, ResourceKind
from callwarden.media.bridge import Bridge, BridgeError
from callwarden.media.control import EndpointId, LocalMedia, MediaError, MediaEvent
from callwarden.media.player import ToneSource
from callwarden.media.stream import OutgoingStream
from callwarden.security.audit_model import AuditEntry, AuditEvent, AuditUnavailable
from callwarden.sip.addressing import Destination, Source, TransportName
from callwarden.sip.clock import FakeClock
from callwarden.sip.dialog import Dialog
from callwarden.sip.headers import Via
from callwarden.sip.message import SipRequest, SipResponse, make_response, parse_message
from callwarden.sip.sdp import DEFAULT_CODECS, negotiate_answer
from callwarden.sip.session_description import SessionDescription
from callwarden.sip.transaction import TransactionLayer
from callwarden.sip.uri import SipUri
from callwarden.telephony.call import CallEvent, Leg
from callwarden.telephony.call_task import DialogOwner
from callwarden.telephony.feature_codes import MonitoringCodes, MonitorMode
from callwarden.telephony.monitor_session import MonitorSession
from callwarden.telephony.monitored_call import CallView
from callwarden.telephony.monitoring import AuditSink, MonitoringService, phone_targets
from callwarden.telephony.registrar import Binding

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HERE = "127.0.0.1"
PHONE = Destination("UDP", "127.0.0.1", 40999)


class RigMedia:
    """The media engine's commands over real bridges (no sockets, no audio)."""

    def __init__(self) -> None:
        self.bridges: dict[str, Bridge] = {}
        self.endpoints: dict[str, str | None] = {}
        self.rtp_timeouts: dict[str, float | None] = {}
        self._listeners: list[Callable[[MediaEvent], None]] = []
        self._ids = itertools.count(1)

    def bridge(self, bridge_id: str) -> Bridge:
        found = self.bridges.get(bridge_id)
        if found is None:
            raise MediaError(f"no bridge {bridge_id}")
        return found

    def hearing(self, bridge_id: str, participant: str) -> frozenset[str]:
        return self.bridge(bridge_id).hearing(participant)

    def open_bridge(self) -> str:
        bridge_id = f"bridge-{next(self._ids)}"
        self.bridges[bridge_id] = Bridge(bridge_id)
        return bridge_id

    def open_endpoint(self, bridge_id: str | None) -> LocalMedia:
        number = next(self._ids)
        endpoint_id = f"endpoint-{number}"
        self.endpoints[endpoint_id] = bridge_id
        return LocalMedia(EndpointId(endpoint_id), HERE, 30000 + 2 * number, 30001 + 2 * number)

    def join(self, bridge_id: str, endpoint_id: str, role: str) -> None:
        try:
            self.bridge(bridge_id).add(endpoint_id, role, stream=OutgoingStream(1, 0, 0))
        except BridgeError as error:
            raise MediaError(str(error)) from None

    async def create_bridge(self) -> str:
        return self.open_bridge()

    async def close_bridge(self, bridge_id: str) -> None:
        self.bridges.pop(bridge_id, None)

    async def create_endpoint(
        self, *, bridge_id: str | None = None, srtp: bool = False
    ) -> LocalMedia:
        return self.open_endpoint(bridge_id)

    async def set_remote(self, endpoint_id: str, **_: object) -> None:
        if endpoint_id not in self.endpoints:
            raise MediaError(f"no endpoint {endpoint_id}")

    async def enable(self, endpoint_id: str, **_: object) -> None:
        if endpoint_id not in self.endpoints:
            raise MediaError(f"no endpoint {endpoint_id}")

    async def add_tone(
        self,
        bridge_id: str,
        frequencies: Sequence[float],
        *,
        level_dbfs: float = -12.0,
        cadence: tuple[float, float] | None = None,
        role: str = "player",
    ) -> str:
        player_id = f"player-{next(self._ids)}"
        source = ToneSource(frequencies, level_dbfs=level_dbfs, cadence=cadence)
        self.bridge(bridge_id).add(player_id, role, frame_source=source)
        return player_id

    async def set_rtp_timeout(self, endpoint_id: str, seconds: float | None) -> None:
        self.rtp_timeouts[endpoint_id] = seconds

    async def add_to_bridge(self, bridge_id: str, endpoint_id: str, role: str) -> None:
        self.join(bridge_id, endpoint_id, role)

    async def remove_from_bridge(self, bridge_id: str, participant_id: str) -> None:
        try:
            self.bridge(bridge_id).remove(participant_id)
        except BridgeError as error:
            raise MediaError(str(error)) from None

    async def close_endpoint(self, endpoint_id: str) -> None:
        bridge_id = self.endpoints.pop(endpoint_id, None)
        bridge = self.bridges.get(bridge_id or "")
        if bridge is not None and endpoint_id in bridge.members:
            bridge.remove(endpoint_id)

    async def set_matrix(self, bridge_id: str, matrix: Mapping[str, frozenset[str]]) -> None:
        try:
            self.bridge(bridge_id).set_matrix(matrix)
        except BridgeError as error:
            raise MediaError(str(error)) from None

    def subscribe(self, callback: Callable[[MediaEvent], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def emit(self, event: MediaEvent) -> None:
        for listener in list(self._listeners):
            listener(event)


@dataclass
class Sent:
    data: bytes
    destination: Destination


class Wire:
    """A MessageSender that keeps what would go out."""

    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def send_bytes(self, data: bytes, destination: Destination, on_error: object = None) -> None:
        self.sent.append(Sent(data, destination))

    def make_via(self, branch: str, transport: TransportName = "UDP") -> Via:
        return Via(transport, HERE, 5060, (("branch", branch), ("rport", None)))

    def requests(self, method: str) -> list[SipRequest]:
        found = []
        for sent in self.sent:
            message = parse_message(sent.data)
            if isinstance(message, SipRequest) and message.method == method:
                found.append(message)
        return found


class NoUser:
    """The transaction user of the rig's layer: nothing arrives unasked in these tests."""

    def on_request(self, request: SipRequest, server_tx: object) -> None:
        raise AssertionError(f"unexpected {request.method}")

    def on_ack(self, request: SipRequest, source: Source) -> None:
        return None

    def on_cancel(self, server_tx: object) -> None:
        return None


class RigServices:
    """What a monitoring session uses of the SIP application."""

    allow = "INVITE, ACK, CANCEL, BYE, OPTIONS"
    user_agent = "callwarden-tests"
    sdp_address = HERE
    ring_timeout = 30.0

    def __init__(self, media: RigMedia) -> None:
        self.media = media
        self.clock = FakeClock(start=100.0)
        self.wire = Wire()
        self.layer = TransactionLayer(self.wire, self.clock, NoUser())  # type: ignore[arg-type]
        self.dialogs: dict[str, DialogOwner] = {}
        self.byes: list[SipRequest] = []

    def now(self) -> datetime:
        return T0

    def contact_uri(self, transport: TransportName) -> SipUri:
        return SipUri.parse(f"sip:{HERE}:5060")

    def send_bye(self, request: SipRequest, destination: Destination) -> None:
        self.byes.append(request)

    def register_dialog(self, dialog: Dialog, call: DialogOwner, leg: Leg) -> None:
        self.dialogs[dialog.call_id] = call

    def unregister_dialog(self, dialog: Dialog) -> None:
        self.dialogs.pop(dialog.call_id, None)


@dataclass(eq=False)
class RigTask:
    """A call's task: what monitoring posts to it, and the supervisors' CDR legs."""

    events: list[CallEvent] = field(default_factory=list)
    monitor_legs: list[tuple[Leg, UserId]] = field(default_factory=list)

    def post(self, event: CallEvent) -> None:
        self.events.append(event)


class RigCalls:
    """The calls monitoring can find (a `CallFinder`)."""

    def __init__(self) -> None:
        self.calls: dict[str, CallView] = {}

    def find(self, call_id: str) -> CallView | None:
        return self.calls.get(call_id)

    def of_operator(self, operator_id: UserId) -> CallView | None:
        found = [call for call in self.calls.values() if call.operator_id == operator_id]
        return found[-1] if found else None


class RecordingBus(InProcessBus):
    """The in-process bus, keeping a copy of everything published."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)
        super().publish(event)


class RigAudit:
    """Keeps the audit events (the web tests use the real audit writer instead)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self.failing = False

    async def append(self, event: AuditEvent) -> AuditEntry:
        if self.failing:
            raise AuditUnavailable("the audit log is down")
        self.events.append(event)
        return _entry(len(self.events), event)

    def actions(self) -> list[tuple[str, str, str]]:
        return [(e.action, e.actor.name, e.outcome.value) for e in self.events]


def _entry(sequence: int, event: AuditEvent) -> AuditEntry:
    return AuditEntry(
        sequence=sequence,
        recorded_at=T0,
        actor=event.actor,
        action=event.action,
        object_kind=event.object_kind,
        object_id=None if event.object_id is None else str(event.object_id),
        outcome=event.outcome,
        source_address=event.source_address,
        reason=event.reason,
        details=event.details,
        previous_hash="0" * 64,
        entry_hash=f"{sequence:064d}",
        format_version=1,
    )


def _user(user_id: int, name: str, role: int, team: int, extension: str) -> User:
    return User(
        id=UserId(user_id),
        username=name,
        display_name=name.title(),
        role_id=RoleId(role),
        team_id=TeamId(team),
        extension=extension,
    )


NORTH, SOUTH = TeamId(1), TeamId(2)
USERS = {
    "north_op": _user(1, "north_op", 1, 1, "2001"),
    "north_sup": _user(2, "north_sup", 2, 1, "3001"),
    "south_op": _user(3, "south_op", 1, 2, "2002"),
    "south_sup": _user(4, "south_sup", 2, 2, "3002"),
    "auditor": _user(5, "auditor", 3, 1, "4001"),
    "admin": _user(6, "admin", 4, 1, "4002"),
    "north_sup2": _user(7, "north_sup2", 2, 1, "3003"),
}


def north_south_directory() -> DirectorySnapshot:
    roles = [
        Role(id=RoleId(n), name=name, builtin=True, grants=DEFAULT_ROLE_GRANTS[name])
        for n, name in enumerate(("operator", "supervisor", "auditor", "admin"), start=1)
    ]
    return DirectorySnapshot(
        teams=[
            Team(id=NORTH, name="north", display_name="North"),
            Team(id=SOUTH, name="south", display_name="South"),
        ],
        roles=roles,
        users=list(USERS.values()),
    )


class Notify:
    """Transparency: operators of `teams` are told on screen, those of `tone` by a tone too."""

    def __init__(
        self, teams: frozenset[TeamId] = frozenset(), tone: frozenset[TeamId] = frozenset()
    ) -> None:
        self.teams = teams | tone
        self.tone = tone

    def operator_notified(self, call: CallView) -> bool:
        return not self.teams.isdisjoint(call.resource.team_ids)

    def operator_tone(self, call: CallView) -> bool:
        return not self.tone.isdisjoint(call.resource.team_ids)


@dataclass
class Rig:
    media: RigMedia
    services: RigServices
    calls: RigCalls
    audit: RigAudit
    bus: RecordingBus
    directory: DirectorySnapshot
    service: MonitoringService
    bindings: dict[str, list[Binding]]
    published: list[Event]

    async def call(self, call_id: str, operator: str) -> CallView:
        """A connected call of the rig's user `operator`."""
        return self.add_call(call_id, USERS[operator])

    def add_call(self, call_id: str, user: User) -> CallView:
        """A connected call of `user` (customer and operator in a normal bridge)."""
        bridge_id = self.media.open_bridge()
        customer = self.media.open_endpoint(bridge_id)
        agent = self.media.open_endpoint(bridge_id)
        self.media.join(bridge_id, customer.endpoint_id, "customer")
        self.media.join(bridge_id, agent.endpoint_id, "operator")
        view = CallView(
            call_id=CallId(call_id),
            task=RigTask(),
            bridge_id=bridge_id,
            customer_endpoint=customer.endpoint_id,
            operator_endpoint=agent.endpoint_id,
            operator_id=user.id,
            resource=Resource(
                ResourceKind.CALL, frozenset({user.id}), frozenset({user.team_id or NORTH})
            ),
        )
        self.calls.calls[call_id] = view
        return view

    def ringing_session(self, call: CallView, supervisor: User) -> MonitorSession:
        """A session of `supervisor` on `call` whose phone is still ringing (no task: the web
        tests switch and end it through the routes)."""
        session = MonitorSession(
            services=self.services,  # type: ignore[arg-type]
            host=self.service,
            call=call,
            supervisor=supervisor,
            mode=MonitorMode.LISTEN,
            reason="QA-0",
            via="api",
            source_address="192.0.2.9",
        )
        self.service.sessions[session.id] = session
        return session

    def register_phone(self, username: str) -> None:
        contact = SipUri.parse(f"sip:{username}@{PHONE.host}:{PHONE.port}")
        self.bindings[username] = [Binding(contact, PHONE, 1e9, f"reg-{username}", 1)]


def build_rig(
    *,
    notify: frozenset[TeamId] = frozenset(),
    tone: frozenset[TeamId] = frozenset(),
    notice_seconds: float = 0.5,
    directory: Callable[[], DirectorySnapshot] | None = None,
    audit_sink: AuditSink | None = None,
) -> Rig:
    """A rig over the rig's own directory and audit keeper, or over given ones (the web
    tests give theirs: the real directory and audit writer)."""
    media = RigMedia()
    services = RigServices(media)
    calls = RigCalls()
    audit = RigAudit()
    bus = RecordingBus()
    published = bus.events
    own_directory = north_south_directory()
    snapshot = directory or (lambda: own_directory)
    bindings: dict[str, list[Binding]] = {}
    service = MonitoringService(
        services=services,  # type: ignore[arg-type]
        live_calls=calls,
        targets=phone_targets(lambda name: bindings.get(name, []), HERE),
        directory=snapshot,
        audit=audit_sink or audit,
        bus=bus,
        transparency=Notify(notify, tone),
        codes=MonitoringCodes(),
        notice_seconds=notice_seconds,
    )
    return Rig(media, services, calls, audit, bus, snapshot(), service, bindings, published)


def answer_invite(rig: Rig, invite: SipRequest) -> None:
    """The supervisor's phone answers `invite` with 200 and an SDP answer."""
    offer = SessionDescription.parse(invite.body)
    answer, _ = negotiate_answer(
        offer, DEFAULT_CODECS, local_address=PHONE.host, local_port=41000, session_id=7,
        session_version=1,
    )  # fmt: skip
    ok: SipResponse = make_response(invite, 200, to_tag="phone-tag")
    ok.headers.add("Contact", f"<sip:phone@{PHONE.host}:{PHONE.port}>")
    ok.headers.add("Content-Type", "application/sdp")
    ok.body = bytes(answer)
    rig.services.layer.on_message(
        parse_message(bytes(ok)), Source("UDP", PHONE.host, PHONE.port, HERE, 5060)
    )


async def settle() -> None:
    """Let the session tasks run what is ready."""
    for _ in range(20):
        await asyncio.sleep(0)
