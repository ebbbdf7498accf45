"""A queue-call node on one fake clock, for tests of queue calls' timers without sockets.

Everything real but the edges: the transaction layer, the registrar, `QueueCalls`, the
`AcdEngine` and the queue calls run as in a node; the wire records what is sent (`Wire`), the
media engine is an in-memory fake that keeps bridges, players and hearing (`FakeMedia`), and the
clock is `FakeClock` for the SIP timers, the ACD and the queue calls alike. The test plays the
caller and the operator's phone by feeding SIP messages in (`Caller`, `answer`, `ring`).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callwarden.acd.engine import AcdEngine
from callwarden.acd.settings import AcdSettings
from callwarden.bus import Event, InProcessAgentClaims, InProcessBus
from callwarden.domain.cdr import CallDirection, NewCdr
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.models import Queue
from callwarden.media.control import (
    BridgeId,
    EndpointId,
    EngineStats,
    LocalMedia,
    MediaControl,
    MediaError,
    MediaEvent,
)
from callwarden.media.endpoint import EndpointStats
from callwarden.media.srtp import SrtpKeys
from callwarden.sip.addressing import Destination, Source, TransportName
from callwarden.sip.clock import FakeClock
from callwarden.sip.dialog import Dialog, DialogId, DialogTable
from callwarden.sip.headers import Via
from callwarden.sip.message import SipRequest, SipResponse, make_response, parse_message
from callwarden.sip.server_transaction import InviteServerTransaction, ServerTransaction
from callwarden.sip.transaction import TransactionLayer
from callwarden.sip.tx_base import SendErrorCallback
from callwarden.sip.uri import SipUri
from callwarden.telephony.acd_bridge import QueueCalls
from callwarden.telephony.call import InDialogRequest, Leg
from callwarden.telephony.call_context import CallerInfo
from callwarden.telephony.call_task import CallTask
from callwarden.telephony.prompts import Prompts
from callwarden.telephony.queue_call import QueueCall

HERE = "192.0.2.1"
CALLER_HOST, PHONE_HOST = "203.0.113.5", "198.51.100.7"
MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)


def sdp(host: str, port: int) -> bytes:
    return (
        f"v=0\r\no=- 1 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    ).encode()


class Wire:
    """The layer's MessageSender: keeps every message sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Destination]] = []

    def send_bytes(
        self, data: bytes, destination: Destination, on_error: SendErrorCallback | None = None
    ) -> None:
        self.sent.append((data, destination))

    def make_via(self, branch: str, transport: TransportName = "UDP") -> Via:
        return Via(transport, HERE, 5060, (("branch", branch), ("rport", None)))

    def requests(self, method: str, host: str | None = None) -> list[SipRequest]:
        found = []
        for data, destination in self.sent:
            if data.startswith(method.encode() + b" ") and host in (None, destination.host):
                message = parse_message(data)
                assert isinstance(message, SipRequest)
                found.append(message)
        return found

    def responses(self, status: int) -> list[SipResponse]:
        found = []
        for data, _ in self.sent:
            if data.startswith(f"SIP/2.0 {status} ".encode()):
                message = parse_message(data)
                assert isinstance(message, SipResponse)
                found.append(message)
        return found


def _is_file(path: str) -> bool:
    """The engine would fail to load a missing prompt: so does the fake (tiny local files)."""
    return Path(path).is_file()


@dataclass(frozen=True)
class Player:
    kind: str  # "tone" or "wav"
    what: str  # the frequencies, or the file's name


class FakeMedia:
    """MediaControl in memory: bridges with their participants, players and hearing."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.bridges: dict[str, dict[str, str]] = {}
        self.players: dict[str, Player] = {}
        self.hearing_of: dict[tuple[str, str], frozenset[str]] = {}
        self.modes: dict[str, str] = {}
        self.closed: set[str] = set()
        self.recording: dict[str, str] = {}

    def heard(self, bridge_id: str, listener_id: str) -> list[Player]:
        sources = self.hearing_of.get((bridge_id, listener_id), frozenset())
        return [self.players[source] for source in sorted(sources) if source in self.players]

    async def create_endpoint(
        self, *, bridge_id: str | None = None, srtp: bool = False
    ) -> LocalMedia:
        number = next(self._ids)
        return LocalMedia(EndpointId(f"e{number}"), HERE, 20000 + 2 * number, 20001 + 2 * number)

    async def set_remote(
        self,
        endpoint_id: str,
        *,
        host: str,
        port: int,
        payload_type: int,
        encoding: str,
        dtmf_payload_type: int | None = None,
        rtcp_port: int | None = None,
        direction: str = "sendrecv",
        srtp: SrtpKeys | None = None,
    ) -> None:
        pass

    async def enable(
        self, endpoint_id: str, *, latch: bool = False, latch_host: str | None = None
    ) -> None:
        pass

    async def set_rtp_timeout(self, endpoint_id: str, seconds: float | None) -> None:
        pass

    async def close_endpoint(self, endpoint_id: str) -> None:
        self.closed.add(endpoint_id)

    async def stats(self, endpoint_id: str) -> EndpointStats:
        raise MediaError("the fake media engine moves no packets")

    async def engine_stats(self) -> EngineStats:
        raise MediaError("the fake media engine moves no packets")

    async def create_bridge(self) -> BridgeId:
        bridge_id = BridgeId(f"b{next(self._ids)}")
        self.bridges[bridge_id] = {}
        return bridge_id

    def _bridge(self, bridge_id: str) -> dict[str, str]:
        bridge = self.bridges.get(bridge_id)
        if bridge is None:
            raise MediaError(f"no bridge {bridge_id}")
        return bridge

    async def add_to_bridge(self, bridge_id: str, endpoint_id: str, role: str) -> None:
        self._bridge(bridge_id)[endpoint_id] = role

    async def add_tone(
        self,
        bridge_id: str,
        frequencies: Sequence[float],
        *,
        level_dbfs: float = -12.0,
        cadence: tuple[float, float] | None = None,
        role: str = "player",
    ) -> str:
        player_id = f"p{next(self._ids)}"
        self._bridge(bridge_id)[player_id] = role
        self.players[player_id] = Player("tone", "+".join(f"{f:g}" for f in frequencies))
        return player_id

    async def add_wav(
        self, bridge_id: str, path: str, *, loop: bool = True, role: str = "player"
    ) -> str:
        if not _is_file(path):
            raise MediaError(f"no such file {path}")
        player_id = f"p{next(self._ids)}"
        self._bridge(bridge_id)[player_id] = role
        self.players[player_id] = Player("wav", Path(path).name)
        return player_id

    async def remove_from_bridge(self, bridge_id: str, participant_id: str) -> None:
        if self._bridge(bridge_id).pop(participant_id, None) is None:
            raise MediaError(f"{participant_id} is not in {bridge_id}")
        self.players.pop(participant_id, None)

    async def set_hearing(self, bridge_id: str, listener_id: str, sources: frozenset[str]) -> None:
        self.hearing_of[(bridge_id, listener_id)] = sources

    async def set_matrix(self, bridge_id: str, matrix: Mapping[str, frozenset[str]]) -> None:
        for listener, sources in matrix.items():
            self.hearing_of[(bridge_id, listener)] = sources

    async def set_mode(self, bridge_id: str, mode: str) -> None:
        self.modes[bridge_id] = mode
        for listener in self._bridge(bridge_id):
            self.hearing_of.pop((bridge_id, listener), None)

    async def hearing(self, bridge_id: str) -> dict[str, frozenset[str]]:
        return {k[1]: v for k, v in self.hearing_of.items() if k[0] == bridge_id}

    async def close_bridge(self, bridge_id: str) -> None:
        self.bridges.pop(bridge_id, None)

    async def start_recording(self, bridge_id: str, spec: Mapping[str, object]) -> None:
        self._bridge(bridge_id)
        self.recording[bridge_id] = "recording"

    async def pause_recording(self, bridge_id: str) -> int:
        self.recording[bridge_id] = "paused"
        return 0

    async def resume_recording(self, bridge_id: str) -> int:
        self.recording[bridge_id] = "recording"
        return 0

    async def stop_recording(self, bridge_id: str) -> Mapping[str, object]:
        self.recording[bridge_id] = "stopped"
        return {}

    def subscribe(self, callback: Callable[[MediaEvent], None]) -> Callable[[], None]:
        return lambda: None

    async def close(self) -> None:
        pass


class QueueNode:
    """The node: transaction user and `QueueCallServices` of the queue calls."""

    allow = "INVITE, ACK, CANCEL, BYE, OPTIONS"
    user_agent = "callwarden-test"
    sdp_address = HERE
    ring_timeout = 20.0

    def __init__(
        self,
        directory: DirectorySnapshot,
        queue: Queue,
        *,
        prompts: Prompts | None = None,
        settings: AcdSettings | None = None,
    ) -> None:
        from callwarden.telephony.registrar import Registrar

        self.clock = FakeClock()
        self.wire = Wire()
        self.fake_media = FakeMedia()
        self.media: MediaControl = self.fake_media
        self.layer = TransactionLayer(self.wire, self.clock, self)
        self.registrar = Registrar(self.clock)
        self.bus = InProcessBus()
        self.events = self.bus.subscribe()
        self.queue = queue
        self.queue_calls = QueueCalls(
            registrar=self.registrar,
            directory=lambda: directory,
            sdp_address=HERE,
            clock=self.clock,
            prompts=prompts,
        )
        self.engine = AcdEngine(
            directory=directory,
            bus=self.bus,
            claims=InProcessAgentClaims(self.clock.now),
            calls=self.queue_calls,
            clock=self.clock,
            wall_clock=self.now,
            node_id="node",
            settings=settings,
        )
        self.queue_calls.bind(self.engine)
        self.dialogs = DialogTable()
        self.owners: dict[DialogId, tuple[CallTask, Leg]] = {}
        self.calls: list[QueueCall] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.cdrs: list[NewCdr] = []

    # ---- QueueCallServices ---------------------------------------------------------------

    def now(self) -> datetime:
        return MIDNIGHT + timedelta(seconds=self.clock.now())

    def contact_uri(self, transport: TransportName) -> SipUri:
        return SipUri.parse(f"sip:{HERE}:5060")

    def send_bye(self, request: SipRequest, destination: Destination) -> None:
        self.layer.send_request(request, destination, lambda _response: None)

    def register_dialog(self, dialog: Dialog, call: CallTask, leg: Leg) -> None:
        self.dialogs.add(dialog)
        self.owners[dialog.id] = (call, leg)

    def unregister_dialog(self, dialog: Dialog) -> None:
        self.dialogs.remove(dialog)
        self.owners.pop(dialog.id, None)

    def write_cdr(self, cdr: NewCdr) -> None:
        self.cdrs.append(cdr)

    # ---- TransactionUser -----------------------------------------------------------------

    def on_request(self, request: SipRequest, server_tx: ServerTransaction) -> None:
        if request.to.tag is not None:
            dialog = self.dialogs.match_request(request)
            call, leg = self.owners[dialog.id]
            call.post(InDialogRequest(leg, request, server_tx))
            return
        assert isinstance(server_tx, InviteServerTransaction)
        caller = CallerInfo(CallDirection.INBOUND, "0612345678", self.queue.number, None, None)
        call = self.queue_calls.start_call(
            self, server_tx, caller, self.queue, on_finished=lambda _call: None
        )
        self.calls.append(call)
        self.tasks.append(asyncio.get_running_loop().create_task(call.run()))

    def on_ack(self, request: SipRequest, source: Source) -> None:
        dialog = self.dialogs.find_for_request(request)
        if dialog is not None and dialog.id in self.owners:
            self.owners[dialog.id][0].on_ack(request)

    def on_cancel(self, server_tx: InviteServerTransaction) -> None:
        pass

    # ---- driving ------------------------------------------------------------------------

    async def start(self) -> None:
        await self.engine.start()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.queue_calls.close()
        await self.engine.close()

    async def settle(self) -> None:
        """Let every task run until nothing moves (engine jobs, call tasks, media commands)."""
        for _ in range(20):
            await self.engine.settled()
            for _ in range(5):
                await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time on, timer by timer, letting the node react at each deadline."""
        target = self.clock.now() + seconds
        while (deadline := self.clock.next_deadline()) is not None and deadline <= target:
            self.clock.advance_to(deadline)
            await self.settle()
        self.clock.advance_to(target)
        await self.settle()

    def taken(self) -> list[Event]:
        found = []
        while (event := self.events.get_nowait()) is not None:
            found.append(event)
        return found

    def deliver(self, data: bytes, host: str, port: int = 5062) -> None:
        message = parse_message(data)
        self.layer.on_message(message, Source("UDP", host, port, HERE, 5060))

    def register_phone(self, username: str) -> None:
        request = parse_message(
            (
                f"REGISTER sip:{HERE} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {PHONE_HOST}:5062;branch=z9hG4bKreg{username}\r\n"
                "Max-Forwards: 70\r\n"
                f"To: <sip:{username}@{HERE}>\r\nFrom: <sip:{username}@{HERE}>;tag=r1\r\n"
                f"Call-ID: reg-{username}\r\nCSeq: 1 REGISTER\r\n"
                f"Contact: <sip:{username}@{PHONE_HOST}:5062>\r\nExpires: 3600\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
        )
        assert isinstance(request, SipRequest)
        source = Source("UDP", PHONE_HOST, 5062, HERE, 5060)
        assert self.registrar.register(request, source, username).status == 200

    def phone_reply(self, invite: SipRequest, status: int, tag: str = "phone1") -> None:
        """The operator's phone answers one of our INVITEs (200 with an SDP answer)."""
        response = make_response(invite, status, to_tag=tag if status > 100 else None)
        if 200 <= status < 300:
            response.headers.add("Contact", f"<sip:alice@{PHONE_HOST}:5062>")
            response.headers.add("Content-Type", "application/sdp")
            response.body = sdp(PHONE_HOST, 40000)
        self.layer.on_message(response, Source("UDP", PHONE_HOST, 5062, HERE, 5060))


class Caller:
    """The customer's side of one queue call (a plain UDP phone on `CALLER_HOST`)."""

    def __init__(self, node: QueueNode, call_id: str) -> None:
        self.node, self.call_id = node, call_id
        self.to_tag: str | None = None
        self.cseq = 1

    def _head(self, method: str, branch: str, cseq: int) -> str:
        to_tag = f";tag={self.to_tag}" if self.to_tag else ""
        return (
            f"{method} sip:{self.node.queue.number}@{HERE} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {CALLER_HOST}:5060;branch=z9hG4bK{branch}\r\n"
            "Max-Forwards: 70\r\n"
            f"To: <sip:{self.node.queue.number}@{HERE}>{to_tag}\r\n"
            f"From: <sip:0612345678@{CALLER_HOST}>;tag=caller1\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\n"
            f"Contact: <sip:0612345678@{CALLER_HOST}:5060>\r\n"
        )

    async def call(self) -> None:
        body = sdp(CALLER_HOST, 30000)
        head = self._head("INVITE", f"inv{self.call_id}", 1)
        data = f"{head}Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
        self.node.deliver(data.encode() + body, CALLER_HOST, 5060)
        await self.node.settle()
        ok = [r for r in self.node.wire.responses(200) if r.call_id == self.call_id]
        assert ok, "the queue did not answer the caller"
        self.to_tag = ok[0].to.tag
        ack = self._head("ACK", f"ack{self.call_id}", 1) + "Content-Length: 0\r\n\r\n"
        self.node.deliver(ack.encode(), CALLER_HOST, 5060)
        await self.node.settle()

    async def hang_up(self) -> None:
        self.cseq += 1
        bye = self._head("BYE", f"bye{self.call_id}", self.cseq) + "Content-Length: 0\r\n\r\n"
        self.node.deliver(bye.encode(), CALLER_HOST, 5060)
        await self.node.settle()

    def byes_received(self) -> list[SipRequest]:
        return [r for r in self.node.wire.requests("BYE", CALLER_HOST) if r.call_id == self.call_id]
