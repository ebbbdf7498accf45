"""Concurrent browser-phone calls one node carries, end to end, and their CPU against SIP legs.

A real node (`callwarden serve`, its own process tree: node, media worker, CDR writer) is
provisioned from a file of this script's own: ``--workers`` queues, each with its trunk and
its share of the operators (as many operators as the largest step has legs). Each load worker
is a separate process (``--workers`` of them, so the peers' CPU is spread and measured apart
from the node's). For every step of N legs and for each kind of operator leg, a worker:

* signs its operators in through the real sign-in API (``POST /api/v1/sessions``, one
  session each, from an allowed origin) and makes them available
  (``POST /api/v1/agents/me/state``);
* ``webrtc``: opens each operator's browser phone over the authenticated WebSocket
  ``/api/v1/phone`` with an aiortc peer connection standing in for the browser (ICE,
  DTLS-SRTP, PCMU offered as Chromium offers it, a 440 Hz tone sent 50 frames/s), waits for
  ``ready``; ``sip``: registers a plain SIP phone for each operator (digest REGISTER) that
  answers with 200 and sends and counts plain RTP;
* places one customer call per operator from its trunk into its queue (a small SIP UAC in
  the worker, plain RTP, a 1 kHz tone 50 packets/s); the queue offers it, the browser phone
  rings and the peer answers (``answer_call``), or the SIP phone answers.

Once every call of the step is up, the window starts: for ``--duration`` seconds every leg's
received audio is counted at both ends (aiortc's decoded frames at the browser, RTP packets at
the customer and at the SIP phone) against the 50 per second sent, and the node's process tree
CPU (user + system from /proc) and the load workers' own CPU are taken over the same window;
the node's memory (resident set of its process tree) is read before the legs and with them.
Both kinds run at every step in the same invocation, so the ratio "CPU per WebRTC leg / CPU per
SIP leg" compares minutes of the same machine. The whole machine's busy share (/proc/stat) over
the window says how much other processes took.

Target (issue 8): at least 100 concurrent WebRTC legs per node with < 1 % loss.

Usage: .venv/bin/python benchmarks/webrtc_calls.py [--legs 25,50,100] [--kinds sip,webrtc]
                                                   [--workers 2] [--duration 10] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import multiprocessing
import os
import secrets
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Registration, free_port, process_tree_cpu_s
from sip_cps import Callwarden, CallwardenUnavailableError, machine_description

PY_SPY = str(Path(sys.executable).parent / "py-spy")
NODE_HOST = "127.0.0.1"
ORIGIN = "https://bench.callwarden.test"
COOKIE = "__Host-callwarden_session"
SIP_PASSWORD = "bench-webrtc-sip-secret"
WEB_PASSWORD = "bench-webrtc-web-password"
PACKETS_PER_SECOND = 50
FRAME = 160
WARM_UP_S = 2.0
SETUP_TIMEOUT_S = 120.0
COUNT_TIMEOUT_S = 120.0
"""A loaded worker hands its counts over within this after the window ends."""
TEARDOWN_TIMEOUT_S = 120.0
"""Hanging up and signing out every leg; a slower teardown is noted, the figures kept."""
READY_TIMEOUT_S = 60.0


def customer_host(worker: int) -> str:
    return f"127.0.0.{20 + worker}"


def phone_host(worker: int) -> str:
    return f"127.0.0.{40 + worker}"


def queue_number(worker: int) -> str:
    return f"5{worker:03d}"


def inbound_number(worker: int) -> str:
    return f"03100{worker:05d}"


def operator_name(index: int) -> str:
    return f"op{index:04d}"


def tone_payloads(hz: float) -> list[bytes]:
    """50 frames (one second) of a µ-law tone at -12 dBFS, 160 samples each."""
    from callwarden.media.g711 import Encoding, encode

    t = np.arange(FRAME * PACKETS_PER_SECOND) / 8000.0
    pcm = (0.25 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    return [encode(pcm[i * FRAME : (i + 1) * FRAME], Encoding.PCMU) for i in range(50)]


# -- a few lines of SIP -------------------------------------------------------------------------

_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
}


@dataclass
class Message:
    first: str
    headers: list[tuple[str, str]]
    body: str

    @classmethod
    def parse(cls, data: bytes) -> Message:
        head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            headers.append((_COMPACT.get(name, name), value.strip()))
        return cls(lines[0], headers, body)

    def all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def one(self, name: str) -> str:
        values = self.all(name)
        return values[0] if values else ""

    @property
    def is_request(self) -> bool:
        return not self.first.startswith("SIP/2.0")

    @property
    def method(self) -> str:
        return self.first.split(" ", 1)[0] if self.is_request else self.one("cseq").split()[-1]

    @property
    def status(self) -> int:
        return 0 if self.is_request else int(self.first.split(" ")[1])


def sdp(host: str, port: int) -> str:
    return (
        f"v=0\r\no=- {secrets.randbelow(10**9)} 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\n"
        f"t=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )


def sdp_address(body: str) -> tuple[str, int] | None:
    host, port = "", 0
    for line in body.split("\r\n"):
        if line.startswith("c=IN IP4 "):
            host = line.split()[-1]
        elif line.startswith("m=audio "):
            port = int(line.split()[1])
    return (host, port) if host and port else None


def build(first: str, headers: list[tuple[str, str]], body: str = "") -> bytes:
    lines = [first, *(f"{name}: {value}" for name, value in headers)]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def response(
    request: Message, status: str, to_tag: str, extra: list[tuple[str, str]], body: str = ""
) -> bytes:
    to = request.one("to")
    if ";tag=" not in to:
        to = f"{to};tag={to_tag}"
    headers = [("Via", via) for via in request.all("via")]
    headers += [("From", request.one("from")), ("To", to), ("Call-ID", request.one("call-id"))]
    headers += [("CSeq", request.one("cseq")), *extra]
    return build(f"SIP/2.0 {status}", headers, body)


# -- RTP ends -----------------------------------------------------------------------------------


class RtpEnd(asyncio.DatagramProtocol):
    """A plain RTP phone: sends the shared ticker's frame to `remote`, counts what arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.remote: tuple[str, int] | None = None
        self.received = 0
        self.sequence = secrets.randbelow(65536)
        self.ssrc = secrets.randbits(32)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received += 1

    def send(self, payload: bytes) -> None:
        if self.transport is None or self.remote is None:
            return
        self.sequence += 1
        header = struct.pack(
            "!BBHII",
            0x80,
            0,
            self.sequence & 0xFFFF,
            (self.sequence * FRAME) & 0xFFFFFFFF,
            self.ssrc,
        )
        self.transport.sendto(header + payload, self.remote)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def rtp_end(host: str) -> RtpEnd:
    end = RtpEnd()
    await asyncio.get_running_loop().create_datagram_endpoint(lambda: end, local_addr=(host, 0))
    return end


async def ticker(ends: Callable[[], list[RtpEnd]], stop: asyncio.Event) -> None:
    """Every 20 ms, one frame of a 1 kHz tone from every plain RTP end (on schedule: a late
    tick is caught up, not dropped)."""
    payloads = tone_payloads(1000.0)
    loop = asyncio.get_running_loop()
    start, tick = loop.time(), 0
    while not stop.is_set():
        for end in ends():
            end.send(payloads[tick % len(payloads)])
        tick += 1
        await asyncio.sleep(max(0.0, start + tick * 0.02 - loop.time()))


# -- SIP agents: the customers' trunk and the operators' SIP phones -----------------------------


@dataclass
class CustomerCall:
    call_id: str
    from_tag: str
    media: RtpEnd
    invite: bytes = b""
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    failed: str = ""
    to: str = ""
    contact: str = ""
    cseq: int = 1


class Sip(asyncio.DatagramProtocol):
    """One UDP SIP socket: the customers' UAC (a trunk of the node) or the SIP phones' UAS."""

    def __init__(self, host: str, node: tuple[str, int]) -> None:
        self.host = host
        self.node = node
        self.transport: asyncio.DatagramTransport | None = None
        self.calls: dict[str, CustomerCall] = {}
        self.phones: dict[str, RtpEnd] = {}  # operator name -> its RTP end (the UAS side)
        self.answers: dict[str, bytes] = {}  # call-id -> our 200 to its INVITE
        self.answered_calls = 0

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, data: bytes, addr: tuple[str, int] | None = None) -> None:
        assert self.transport is not None
        self.transport.sendto(data, addr or self.node)

    def _via(self) -> tuple[str, str]:
        return (
            "Via",
            f"SIP/2.0/UDP {self.host}:{self.port};rport;branch=z9hG4bK{secrets.token_hex(8)}",
        )

    # customers

    async def place(self, number: str) -> CustomerCall:
        call = CustomerCall(secrets.token_hex(10), secrets.token_hex(4), await rtp_end(self.host))
        self.calls[call.call_id] = call
        uri = f"sip:{number}@{self.node[0]}:{self.node[1]}"
        call.invite = build(
            f"INVITE {uri} SIP/2.0",
            [
                self._via(),
                ("Max-Forwards", "70"),
                (
                    "From",
                    f"<sip:0901234{secrets.randbelow(10**4):04d}@{self.host}>;tag={call.from_tag}",
                ),
                ("To", f"<{uri}>"),
                ("Call-ID", call.call_id),
                ("CSeq", "1 INVITE"),
                ("Contact", f"<sip:customer@{self.host}:{self.port}>"),
            ],
            sdp(self.host, call.media.port),
        )
        self.send(call.invite)
        asyncio.get_running_loop().create_task(self._retransmit(call))
        return call

    async def _retransmit(self, call: CustomerCall) -> None:
        interval = 0.5
        while call.to == "" and not call.failed and interval < 8:
            await asyncio.sleep(interval)
            if call.to == "" and not call.failed and not call.answered.is_set():
                self.send(call.invite)
            interval *= 2

    def hang_up(self, call: CustomerCall) -> None:
        if not call.answered.is_set() or call.failed:
            return
        call.cseq += 1
        target = call.contact or f"sip:{self.node[0]}:{self.node[1]}"
        self.send(
            build(
                f"BYE {target} SIP/2.0",
                [
                    self._via(),
                    ("Max-Forwards", "70"),
                    ("From", f"<sip:customer@{self.host}>;tag={call.from_tag}"),
                    ("To", call.to),
                    ("Call-ID", call.call_id),
                    ("CSeq", f"{call.cseq} BYE"),
                ],
            )
        )

    def _customer_response(self, message: Message, call: CustomerCall) -> None:
        if message.method != "INVITE" or message.status < 200:
            if message.method == "INVITE" and call.to == "" and message.status > 100:
                call.to = ""  # ringing or queued: keep waiting
            return
        to = message.one("to")
        target = (
            message.one("contact").strip("<>").split(">")[0] or f"sip:{self.node[0]}:{self.node[1]}"
        )
        ack_uri = target if message.status < 300 else f"sip:{self.node[0]}:{self.node[1]}"
        via = message.all("via")[0] if message.status >= 300 else self._via()[1]
        self.send(
            build(
                f"ACK {ack_uri} SIP/2.0",
                [
                    ("Via", via),
                    ("Max-Forwards", "70"),
                    ("From", message.one("from")),
                    ("To", to),
                    ("Call-ID", call.call_id),
                    ("CSeq", "1 ACK"),
                ],
            )
        )
        if message.status >= 300:
            call.failed = message.first
            call.answered.set()
            return
        call.to, call.contact = to, target
        address = sdp_address(message.body)
        if address is not None:
            call.media.remote = address
        call.answered.set()

    # the operators' SIP phones

    def _phone_request(self, message: Message, addr: tuple[str, int]) -> None:
        call_id = message.one("call-id")
        method = message.method
        if method == "INVITE":
            if call_id not in self.answers:
                user = message.first.split(" ")[1].removeprefix("sip:").split("@")[0]
                phone = self.phones.get(user)
                if phone is None:
                    self.send(response(message, "404 Not Found", secrets.token_hex(4), []), addr)
                    return
                address = sdp_address(message.body)
                if address is not None:
                    phone.remote = address
                self.answers[call_id] = response(
                    message,
                    "200 OK",
                    secrets.token_hex(4),
                    [("Contact", f"<sip:{user}@{self.host}:{self.port}>")],
                    sdp(self.host, phone.port),
                )
                self.answered_calls += 1
            self.send(self.answers[call_id], addr)
        elif method == "ACK":
            return
        elif method == "CANCEL":
            self.send(response(message, "200 OK", secrets.token_hex(4), []), addr)
        else:  # BYE, OPTIONS, INFO, re-INVITE's friends: fine
            self.send(response(message, "200 OK", secrets.token_hex(4), []), addr)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if not data.strip():
            return
        message = Message.parse(data)
        call = self.calls.get(message.one("call-id"))
        if message.is_request:
            if call is not None:  # the node ends or refreshes a customer's call
                self.send(response(message, "200 OK", call.from_tag, []), addr)
            else:
                self._phone_request(message, addr)
        elif call is not None:
            self._customer_response(message, call)


# -- the worker: operators, their browser or SIP phones, the customers --------------------------


class Operator:
    def __init__(self, name: str) -> None:
        self.name = name
        self.cookie = ""
        self.csrf = ""
        self.frames = 0
        self.state = "new"
        self.errors: list[str] = []
        self.ready = asyncio.Event()
        self.talking = asyncio.Event()
        self.socket: Any = None
        self.peer: Any = None
        self.tasks: list[asyncio.Task[None]] = []


async def sign_in(client: Any, operator: Operator) -> None:
    reply = await client.post(
        "/api/v1/sessions",
        json={"username": operator.name, "password": WEB_PASSWORD},
        headers={"Origin": ORIGIN},
    )
    if reply.status_code != 200:
        raise RuntimeError(f"sign-in of {operator.name}: {reply.status_code} {reply.text[:120]}")
    operator.cookie = f"{COOKIE}={reply.cookies[COOKIE]}"
    operator.csrf = reply.json()["csrf_token"]
    reply = await client.post(
        "/api/v1/agents/me/state",
        json={"state": "available"},
        headers={"Origin": ORIGIN, "Cookie": operator.cookie, "X-CSRF-Token": operator.csrf},
    )
    if reply.status_code != 200:
        raise RuntimeError(f"{operator.name} available: {reply.status_code} {reply.text[:120]}")


def tone_track_class() -> type:
    from aiortc.mediastreams import MediaStreamTrack
    from av import AudioFrame

    pcm = (0.25 * 32767 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000.0)).astype(np.int16)

    class Tone(MediaStreamTrack):
        """The browser's microphone: a 440 Hz tone, one 20 ms frame every 20 ms."""

        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.pts = 0
            self.start: float | None = None

        async def recv(self) -> AudioFrame:
            loop = asyncio.get_running_loop()
            if self.start is None:
                self.start = loop.time()
            wait = self.start + self.pts / 8000 - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            offset = self.pts % 8000
            frame = AudioFrame.from_ndarray(
                pcm[offset : offset + FRAME].reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts = 8000, self.pts
            frame.time_base = fractions.Fraction(1, 8000)
            self.pts += FRAME
            return frame

    return Tone


async def browser_phone(url: str, operator: Operator, tone: type) -> None:
    """The page's part: the phone's WebSocket, an aiortc peer connection, answer on ring."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError
    from websockets.asyncio.client import connect

    loop = asyncio.get_running_loop()
    socket = await connect(
        url,
        origin=ORIGIN,  # type: ignore[arg-type]
        additional_headers={"Cookie": operator.cookie},
        open_timeout=60,
        ping_interval=None,
    )
    operator.socket = socket
    welcome = json.loads(await socket.recv())
    if welcome.get("type") != "welcome":
        raise RuntimeError(f"{operator.name}: {welcome}")
    peer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    operator.peer = peer
    peer.addTransceiver(tone(), direction="sendrecv")

    @peer.on("track")
    def _count(track: Any) -> None:
        async def count() -> None:
            with contextlib.suppress(MediaStreamError):
                while True:
                    await track.recv()
                    operator.frames += 1

        operator.tasks.append(loop.create_task(count()))

    await peer.setLocalDescription(await peer.createOffer())
    await socket.send(json.dumps({"type": "offer", "sdp": peer.localDescription.sdp}))

    async def read() -> None:
        async for frame in socket:
            message = json.loads(frame)
            kind = message.get("type")
            operator.state = kind
            if kind == "answer":
                await peer.setRemoteDescription(RTCSessionDescription(message["sdp"], "answer"))
            elif kind == "ready":
                operator.ready.set()
            elif kind == "ringing":
                await socket.send(json.dumps({"type": "answer_call"}))
            elif kind == "connected":
                operator.talking.set()
            elif kind in ("error", "closed", "ended"):
                operator.errors.append(json.dumps(message))

    operator.tasks.append(loop.create_task(read()))


def _slowest(operators: list[Operator]) -> str:
    states: dict[str, int] = {}
    for operator in operators:
        states[operator.state] = states.get(operator.state, 0) + 1
    return ", ".join(f"{state}: {count}" for state, count in sorted(states.items()))


async def receive(pipe: Connection) -> Any:
    """The orchestrator's next word, without blocking the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, pipe.recv)


async def worker_main(pipe: Connection, spec: dict[str, Any]) -> None:
    import httpx

    loop = asyncio.get_running_loop()
    kind, index = spec["kind"], spec["worker"]
    node = (NODE_HOST, spec["sip_port"])
    operators = [Operator(name) for name in spec["operators"]]
    trunk = Sip(customer_host(index), node)
    await loop.create_datagram_endpoint(
        lambda: trunk, local_addr=(customer_host(index), spec["trunk_port"])
    )
    phones = Sip(phone_host(index), node)
    plain_ends: list[RtpEnd] = []
    errors: list[str] = []
    try:
        async with httpx.AsyncClient(base_url=spec["http"], timeout=60) as client:
            for operator in operators:
                await sign_in(client, operator)
        if kind == "sip":
            port = free_port(phone_host(index))
            for operator in operators:  # before our socket binds the port (Registration's rule)
                status = await loop.run_in_executor(
                    None,
                    Registration(operator.name, SIP_PASSWORD, node, phone_host(index), port).run,
                )
                if status != 200:
                    raise RuntimeError(f"REGISTER {operator.name}: {status}")
            await loop.create_datagram_endpoint(
                lambda: phones, local_addr=(phone_host(index), port)
            )
            for operator in operators:
                phones.phones[operator.name] = end = await rtp_end(phone_host(index))
                plain_ends.append(end)
        else:
            tone = tone_track_class()
            url = spec["http"].replace("http://", "ws://") + "/api/v1/phone"
            for start in range(0, len(operators), 5):  # five handshakes at a time
                batch = operators[start : start + 5]
                await asyncio.gather(*(browser_phone(url, op, tone) for op in batch))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        asyncio.gather(*(op.ready.wait() for op in batch)), READY_TIMEOUT_S
                    )
            not_ready = [op.name for op in operators if not op.ready.is_set()]
            if not_ready:  # carried on without them; the step's "up" says how many
                errors.append(f"{len(not_ready)} browser phones not ready in time")
                operators = [op for op in operators if op.ready.is_set()]
    except Exception as error:  # the benchmark reports what broke
        errors.append(f"{type(error).__name__}: {error}")
        operators = []
    pipe.send({"phones_up": len(operators), "errors": errors})
    if not operators or await receive(pipe) != "call":
        return

    stop = asyncio.Event()
    customers: list[CustomerCall] = []
    tick = loop.create_task(ticker(lambda: [*plain_ends, *(c.media for c in customers)], stop))
    try:
        for _ in operators:  # about 20 calls a second: the ACD offers them one after the other
            customers.append(await trunk.place(inbound_number(index)))
            await asyncio.sleep(0.05)
        deadline = loop.time() + SETUP_TIMEOUT_S
        while loop.time() < deadline:
            answered = all(c.answered.is_set() for c in customers)
            talking = (
                phones.answered_calls >= len(operators)
                if kind == "sip"
                else all(op.talking.is_set() for op in operators)
            )
            if answered and talking:
                break
            await asyncio.sleep(0.2)
    except Exception as error:
        errors.append(f"{type(error).__name__}: {error}")
    up = (
        phones.answered_calls
        if kind == "sip"
        else sum(1 for op in operators if op.talking.is_set())
    )
    failed = [c.failed for c in customers if c.failed]
    pipe.send(
        {
            "up": up,
            "customers": sum(1 for c in customers if c.answered.is_set() and not c.failed),
            "errors": errors + failed[:3] + [e for op in operators for e in op.errors][:3],
            "states": _slowest(operators),
        }
    )

    # Counted: the legs that are up (the operators talking, the customers answered).
    talking_ops = [op for op in operators if op.talking.is_set()]
    live = [c for c in customers if c.answered.is_set() and not c.failed]

    def counts() -> tuple[list[int], list[int]]:
        near = (
            [op.frames for op in talking_ops]
            if kind == "webrtc"
            else [e.received for e in plain_ends]
        )
        return near, [c.media.received for c in live]

    async def rtp_received() -> tuple[list[int], int]:
        """The browser peers' RTP packets received (inbound-rtp), before their jitter buffer,
        and the packets their sequence numbers say were lost on the way (sent by the node but
        not received): a shortfall not in the second was never sent."""
        totals, lost = [], 0
        for op in talking_ops:
            stats = (await op.peer.getStats()).values() if op.peer is not None else []
            inbound = [s for s in stats if s.type == "inbound-rtp"]
            totals.append(sum(s.packetsReceived for s in inbound))
            lost += sum(s.packetsLost for s in inbound)
        return totals, lost

    if await receive(pipe) == "start":
        near0, far0 = counts()
        cpu0, wall0 = time.process_time(), time.monotonic()
        rtp0, lost0 = await rtp_received() if kind == "webrtc" else (near0, 0)
        await receive(pipe)  # "stop"
        near1, far1 = counts()
        cpu, window = time.process_time() - cpu0, time.monotonic() - wall0
        rtp1, lost1 = await rtp_received() if kind == "webrtc" else (near1, 0)
        pipe.send(
            {
                "near": [b - a for a, b in zip(near0, near1, strict=True)],
                "near_rtp": [b - a for a, b in zip(rtp0, rtp1, strict=True)],
                "far": [b - a for a, b in zip(far0, far1, strict=True)],
                "near_seq_lost": lost1 - lost0,
                "cpu_s": cpu,
                "window_s": window,
            }
        )
        await receive(pipe)  # "end"
    stop.set()
    await tick
    for call in customers:
        trunk.hang_up(call)
    await asyncio.sleep(1.0)
    async with httpx.AsyncClient(base_url=spec["http"], timeout=60) as client:
        for operator in operators:
            if operator.socket is not None:
                await operator.socket.close()
            if operator.peer is not None:
                await operator.peer.close()
            for task in operator.tasks:
                task.cancel()
            await client.post(
                "/api/v1/sessions/logout",
                headers={
                    "Origin": ORIGIN,
                    "Cookie": operator.cookie,
                    "X-CSRF-Token": operator.csrf,
                },
            )
    for end in plain_ends + [c.media for c in customers]:
        end.close()
    pipe.send("done")


def worker(pipe: Connection, spec: dict[str, Any]) -> None:
    import uvloop

    uvloop.run(worker_main(pipe, spec))


# -- the orchestrator ---------------------------------------------------------------------------


def tree_rss_mib(pid: int) -> float:
    """Resident memory of `pid` and its descendants, MiB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rindex(")") + 2 :].split()[1]), []).append(
                int(entry.name)
            )
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
        pending.extend(children.get(current, []))
    return total / 1024


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def udp_receive_drops() -> int:
    """Datagrams the kernel dropped for full receive buffers so far, machine-wide (every
    process's sockets, from /proc/net/snmp)."""
    rows = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = [row for row in rows if row[0] == "Udp:"][:2]
    return int(values[names.index("RcvbufErrors")])


@dataclass
class Result:
    kind: str
    legs: int
    up: int
    node_cpu: float  # % of one core over the window
    workers_cpu: float
    machine_busy: float  # % of the whole machine (all cores)
    near_loss: float  # the operator end's received audio against 50/s, all legs
    near_worst: float  # the worst leg's
    near_rtp_loss: float  # the operator end's RTP packets (browser: before its jitter buffer)
    far_loss: float  # the customer end's
    far_worst: float
    rss_before: float
    rss_with: float
    udp_drops: int = 0  # the kernel's, machine-wide, over the window
    near_seq_lost: float = 0.0  # the operator end's gaps in RTP sequence numbers, of expected
    note: str = ""

    def line(self) -> str:
        per_leg = self.node_cpu / self.up if self.up else float("nan")
        grown = (self.rss_with - self.rss_before) / self.up if self.up else float("nan")
        return (
            f"{self.kind:7} {self.legs:5d} {self.up:4d} {self.node_cpu:8.1f} {per_leg:8.2f} "
            f"{self.workers_cpu:8.1f} {self.machine_busy:6.0f} "
            f"{100 * self.near_loss:6.2f}/{100 * self.near_worst:5.1f} "
            f"{100 * self.near_rtp_loss:6.2f} {100 * self.near_seq_lost:6.2f} "
            f"{100 * self.far_loss:6.2f}/{100 * self.far_worst:5.1f} "
            f"{self.rss_with:7.0f} {grown:6.2f} {self.udp_drops:6d}  {self.note}"
        )


HEADER = (
    f"{'kind':7} {'legs':>5} {'up':>4} {'node %':>8} {'%/leg':>8} {'load %':>8} {'mach%':>6} "
    f"{'op loss/worst %':>15} {'op RTP':>6} {'gaps':>6} {'cust loss/worst':>15} {'RSS MiB':>7} "
    f"{'MiB/leg':>6} {'drops':>6}"
)


def loss(counts: list[float], duration: float) -> tuple[float, float]:
    expected = PACKETS_PER_SECOND * duration
    if not counts:
        return 1.0, 1.0
    total = max(0.0, 1 - sum(counts) / (expected * len(counts)))
    worst = max(0.0, 1 - min(counts) / expected)
    return total, worst


def run_step(
    profile: Path | None,
    callwarden: Callwarden,
    kind: str,
    legs: int,
    workers: int,
    duration: float,
    trunk_ports: list[int],
) -> Result:
    assert callwarden.process is not None
    pid = callwarden.process.pid
    rss_before = tree_rss_mib(pid)
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    for index in range(workers):
        names = [operator_name(i) for i in range(legs) if i % workers == index]
        mine, theirs = context.Pipe()
        spec = {
            "kind": kind,
            "worker": index,
            "operators": names,
            "sip_port": callwarden.sip_port,
            "http": f"http://{NODE_HOST}:{callwarden.http_port}",
            "trunk_port": trunk_ports[index],
        }
        process = context.Process(target=worker, args=(theirs, spec), daemon=True)
        process.start()
        pipes.append(mine)
        processes.append(process)

    def gather(timeout: float) -> list[Any]:
        replies = []
        for pipe in pipes:
            if not pipe.poll(timeout):
                raise TimeoutError("a load worker did not answer")
            replies.append(pipe.recv())
        return replies

    notes: list[str] = []
    result = Result(kind, legs, 0, 0, 0, 0, 1, 1, 1, 1, 1, rss_before, rss_before)
    try:
        ready = gather(SETUP_TIMEOUT_S * 4)
        notes += [e for r in ready for e in r["errors"]]
        if not any(r["phones_up"] for r in ready):
            result.note = "; ".join(notes[:3])
            return result
        pipes = [pipe for pipe, r in zip(pipes, ready, strict=True) if r["phones_up"]]
        for pipe in pipes:
            pipe.send("call")
        up = gather(SETUP_TIMEOUT_S * 2)
        result.up = sum(r["up"] for r in up)
        notes += [e for r in up for e in r["errors"]]
        if result.up < legs:
            notes.append("states " + " | ".join(r["states"] for r in up))
        time.sleep(WARM_UP_S)
        result.rss_with = tree_rss_mib(pid)
        busy0, cpu0, drops0 = machine_busy(), process_tree_cpu_s(pid), udp_receive_drops()
        for pipe in pipes:
            pipe.send("start")
        spy = None
        if profile is not None:
            spy = subprocess.Popen(
                [
                    PY_SPY,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(int(duration)),
                    "--rate",
                    "100",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--output",
                    str(profile),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        time.sleep(duration)
        for pipe in pipes:
            pipe.send("stop")
        busy1, cpu1, drops1 = machine_busy(), process_tree_cpu_s(pid), udp_receive_drops()
        result.udp_drops = drops1 - drops0
        counted = gather(COUNT_TIMEOUT_S)
        for pipe in pipes:
            pipe.send("end")
        result.node_cpu = 100 * (cpu1 - cpu0) / duration
        result.workers_cpu = 100 * sum(r["cpu_s"] / r["window_s"] for r in counted)
        result.machine_busy = 100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
        # A loaded worker sees "start" and "stop" late: each counted over the window it saw.
        windows = [r["window_s"] for r in counted]
        notes.append(f"workers counted {min(windows):.1f}-{max(windows):.1f} s")
        near = [n / r["window_s"] * duration for r in counted for n in r["near"]]
        far = [n / r["window_s"] * duration for r in counted for n in r["far"]]
        result.near_loss, result.near_worst = loss(near, duration)
        result.far_loss, result.far_worst = loss(far, duration)
        near_rtp = [n / r["window_s"] * duration for r in counted for n in r["near_rtp"]]
        result.near_rtp_loss = loss(near_rtp, duration)[0]
        expected = PACKETS_PER_SECOND * duration * max(1, len(near))
        result.near_seq_lost = sum(r["near_seq_lost"] for r in counted) / expected
        if spy is not None:
            spy.wait(30)
        try:  # hanging up and signing out: the figures are already taken
            gather(TEARDOWN_TIMEOUT_S)
        except (TimeoutError, EOFError, OSError) as error:
            notes.append(f"after the window, teardown: {type(error).__name__}: {error}")
    except (TimeoutError, EOFError, OSError) as error:
        notes.append(f"{type(error).__name__}: {error}")
    finally:
        for process in processes:
            process.join(20)
            if process.is_alive():
                process.kill()
                process.join()
    result.note = "; ".join(notes[:3])
    return result


def provisioning(operators: int, workers: int, trunk_ports: list[int]) -> dict[str, object]:
    users = [
        {
            "username": operator_name(i),
            "role": "operator",
            "team": "load",
            "extension": f"{2000 + i}",
            "sip_password": SIP_PASSWORD,
            "password": WEB_PASSWORD,
        }
        for i in range(operators)
    ]
    queues = [
        {
            "name": f"line-{w}",
            "number": queue_number(w),
            "team": "load",
            "members": [operator_name(i) for i in range(operators) if i % workers == w],
            "wrap_up_seconds": 0,
            "recording": "none",
            "announce_seconds": None,
        }
        for w in range(workers)
    ]
    trunks = [
        {
            "name": f"customers-{w}",
            "host": customer_host(w),
            "port": trunk_ports[w],
            "inbound_numbers": [{"number": inbound_number(w), "destination": queue_number(w)}],
            "outbound_patterns": [],
        }
        for w in range(workers)
    ]
    return {"teams": [{"name": "load"}], "users": users, "queues": queues, "trunks": trunks}


def provision(callwarden: Callwarden, document: dict[str, object]) -> None:
    """`callwarden provision` of the document, given its time: hashing a web and a SIP
    password per operator takes minutes for hundreds of them on a loaded machine."""
    path = callwarden.data_dir.parent / "provision.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    command = [str(callwarden.executable), "provision", str(path)]
    try:
        done = subprocess.run(
            [*command, "--data-dir", str(callwarden.data_dir)],
            capture_output=True,
            timeout=900,
            check=False,
            env=callwarden.env,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CallwardenUnavailableError(f"callwarden provision: {error}") from error
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
        raise CallwardenUnavailableError(f"callwarden provision: {tail[-1:] or done.returncode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--legs", default="25,50,100", help="steps: concurrent calls")
    parser.add_argument("--kinds", default="sip,webrtc", help="operator legs, in this order")
    parser.add_argument("--workers", type=int, default=2, help="load worker processes")
    parser.add_argument("--duration", type=float, default=10.0, help="counted window, s")
    parser.add_argument("--repeat", type=int, default=1, help="runs of every step")
    parser.add_argument(
        "--callwarden", type=Path, default=Path(sys.executable).parent / "callwarden"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="sample the node's main process with py-spy during the largest WebRTC step and "
        "write the raw stacks next to this path (a summary is printed)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the node's work directory")
    options = parser.parse_args()
    steps = [int(n) for n in options.legs.split(",")]
    kinds = options.kinds.split(",")
    if unknown := set(kinds) - {"sip", "webrtc"}:
        parser.error(f"unknown kinds {sorted(unknown)}")
    workers = options.workers
    trunk_ports = [free_port(customer_host(w)) for w in range(workers)]
    print(f"machine: {machine_description()}")
    workdir = Path(tempfile.mkdtemp(prefix="webrtc_calls-"))
    trusted = ",".join(
        f"{host}/32" for w in range(workers) for host in (customer_host(w), phone_host(w))
    )
    env = {
        "CALLWARDEN_HTTP_PLAINTEXT": "true",
        "CALLWARDEN_ALLOWED_ORIGINS": ORIGIN,
        "CALLWARDEN_SIP_TRUSTED_NETWORKS": f"127.0.0.1/32,{trusted}",
        "CALLWARDEN_LOG_LEVEL": "WARNING",
    }
    callwarden = Callwarden(options.callwarden, workdir, "30000-34999", env)
    try:
        provision(callwarden, provisioning(max(steps), workers, trunk_ports))
        callwarden.start()
        _wait_http(callwarden.http_port)
        assert callwarden.process is not None
        print(f"node pid {callwarden.process.pid}, work dir {workdir}, window {options.duration} s")
        print(HEADER)
        results: list[Result] = []
        for legs in steps:
            for run in range(options.repeat):
                done = []
                for kind in kinds:
                    profile = None
                    if options.profile is not None and kind == "webrtc" and legs == steps[-1]:
                        profile = options.profile.with_suffix(f".{kind}-{legs}-{run + 1}.txt")
                    done.append(
                        run_step(
                            profile, callwarden, kind, legs, workers, options.duration, trunk_ports
                        )
                    )
                    if profile is not None and profile.exists():
                        print(summarize_profile(profile), flush=True)
                for result in done:
                    print(result.line(), flush=True)
                results += done
                by = {r.kind: r for r in done}
                if "sip" in by and "webrtc" in by and by["sip"].up and by["webrtc"].up:
                    ratio = (by["webrtc"].node_cpu / by["webrtc"].up) / max(
                        1e-9, by["sip"].node_cpu / by["sip"].up
                    )
                    print(
                        f"        {legs} legs, run {run + 1}: a WebRTC leg costs the node "
                        f"{ratio:.1f}x the CPU of a SIP leg; load avg "
                        f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}",
                        flush=True,
                    )
    except CallwardenUnavailableError as error:
        print(f"callwarden unavailable: {error}")
        return 1
    finally:
        callwarden.stop()
        if options.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"machine after: {machine_description()}")
    return 0


PROFILE_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("aiortc RTP/RTCP, sender, receiver", ("(aiortc/rtc", "(aiortc/rtp", "(aiortc/jitter")),
    ("aiortc codecs (G.711 via PyAV)", ("(aiortc/codecs/",)),
    ("DTLS / SRTP (pylibsrtp, OpenSSL)", ("rtcdtlstransport", "pylibsrtp", "OpenSSL")),
    ("ICE (aioice)", ("(aioice/",)),
    ("callwarden.webrtc (track, relay, ice guard)", ("(callwarden/webrtc/",)),
    ("database (SQLAlchemy)", ("sqlalchemy",)),
    ("callwarden, the rest", ("(callwarden/",)),
    ("web server (uvicorn, starlette)", ("uvicorn", "starlette", "fastapi")),
    ("PyAV frames and resampling", ("(av/",)),
)
ENTRY_FRAMES = ("(callwarden/cli.py", "run_node (callwarden/app.py")
FALLBACK_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("thread hand-offs (thread pool workers, submit, locks)", ("concurrent/futures", "threading")),
    ("event loop (uvloop, asyncio: polling, callbacks, sockets)", ("asyncio", "uvloop")),
)


def _group(frames: list[str]) -> str:
    """The innermost named group of a stack; thread and loop machinery only when no other."""
    fallback = ""
    for frame in reversed(frames):
        if any(mark in frame for mark in ENTRY_FRAMES):
            break  # the process's start: `callwarden serve` running its event loop
        for name, marks in PROFILE_GROUPS:
            if any(mark in frame for mark in marks):
                return name
        if not fallback:
            for name, marks in FALLBACK_GROUPS:
                if any(mark in frame for mark in marks):
                    fallback = name
                    break
    return fallback or "other"


def summarize_profile(path: Path, top: int = 15) -> str:
    """py-spy's raw stacks (`frame;frame;... count`): the share of the samples under each group
    of modules, and the functions with the most samples of their own."""
    leaves: dict[str, int] = {}
    groups: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaves[frames[-1]] = leaves.get(frames[-1], 0) + count
        group = _group(frames)
        groups[group] = groups.get(group, 0) + count
    if not total:
        return f"profile {path}: no samples"
    lines = [f"profile of the node's main process, {total} samples ({path}):"]
    for name, count in sorted(groups.items(), key=lambda item: -item[1]):
        lines.append(f"  {100 * count / total:5.1f} %  {name}")
    lines.append("  own samples, top functions:")
    for name, count in sorted(leaves.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"  {100 * count / total:5.1f} %  {name[:110]}")
    return "\n".join(lines)


def _wait_http(port: int, timeout_s: float = 30.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{NODE_HOST}:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise CallwardenUnavailableError("the web application did not answer /healthz")


if __name__ == "__main__":
    sys.exit(main())
