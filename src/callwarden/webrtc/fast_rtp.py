"""A lean G.711 media path through aiortc's peer connection, both ways.

aiortc handles each RTP packet with several awaits and objects: a packet from the browser is
queued by aioice, woken up in the DTLS transport's task, parsed into an `RtpPacket`, routed and
handed to the receiver; a packet to the browser is paced by one task and one timer per sender,
built as an `RtpPacket`, serialized, protected and sent through two awaits. With G.711 on a
node carrying a hundred browser legs this is most of the node's CPU.

`FastReceiver` takes, in the local socket's `datagram_received` itself, the SRTP packets of the
negotiated G.711 payload type that come from the nominated pair's remote address (a validated
pair: the ICE guard's rule holds): it unprotects them, reads the header's bounds, sequence
number and timestamp, feeds aiortc's receive statistics (what its RTCP receiver reports say)
and hands the payload over. Everything else (STUN, DTLS, SRTCP, other payload types, packets
before SRTP is keyed or from another address) takes aiortc's path as before.

`SenderPacer` sends, for every G.711 sender of the node, one packet a 20 ms tick from one task:
the bridge's payload (`BridgeAudioTrack.take_encoded`) behind the header aiortc would write
(same header extensions, marker and payload type), protected with the sender's SRTP session and
sent on the nominated pair's socket; it keeps the sender's counts that aiortc's RTCP sender
reports carry. aiortc's RTCP tasks, DTLS and ICE consent are untouched.

Both rely on aiortc's and aioice's internals (checked for aiortc 1.16, aioice 0.13): when they
are missing, `install_receiver` and `install_sender` log a warning and leave aiortc's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time
import weakref
from collections.abc import Callable
from typing import Any

import pylibsrtp
from aioice import Connection
from aioice.ice import CandidatePair, StunProtocol
from aiortc import RTCRtpReceiver, RTCRtpSender, clock
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import RtpPacket
from aiortc.utils import random32

from callwarden.media.rtp import RtpParseError, payload_bounds
from callwarden.webrtc.audio import FRAME_SAMPLES, SAMPLE_RATE, BridgeAudioTrack

__all__ = [
    "FastReceiver",
    "PacedSender",
    "SenderPacer",
    "install_receiver",
    "install_sender",
    "loop_pacer",
]

logger = logging.getLogger(__name__)

_SEQUENCE_TIMESTAMP_SSRC = struct.Struct("!HII")
_SEQUENCE_TIMESTAMP = struct.Struct("!HI")
_NTP_EPOCH_OFFSET = 2_208_988_800
"""Seconds from the NTP epoch (1900) to the Unix epoch (RFC 5905 6)."""
_TICK = FRAME_SAMPLES / SAMPLE_RATE
_MAX_LATE = 0.06
"""As `BridgeAudioTrack`: beyond this (a stalled loop) missed frames are skipped, not burst."""
_SOURCE_REFRESH = 50
"""Packets between two updates of the receiver's active-source time (one a second)."""

_RECEIVER_ATTRIBUTES = ("_RTCRtpReceiver__remote_streams", "_RTCRtpReceiver__active_ssrc")
_DTLS_ATTRIBUTES = (
    "_RTCDtlsTransport__rx_bytes",
    "_RTCDtlsTransport__rx_packets",
    "_RTCDtlsTransport__tx_bytes",
    "_RTCDtlsTransport__tx_packets",
    "_rx_srtp",
    "_tx_srtp",
    "_state",
)
_SENDER_ATTRIBUTES = (
    "_RTCRtpSender__rtp_started",
    "_RTCRtpSender__rtp_exited",
    "_RTCRtpSender__mid",
    "_RTCRtpSender__rtp_header_extensions_map",
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
    "_run_rtp",
)


def ntp_time() -> int:
    """Now as a 64-bit NTP timestamp (RFC 3550 4), without aiortc's datetime arithmetic."""
    return int((time.time() + _NTP_EPOCH_OFFSET) * (1 << 32)) & 0xFFFFFFFFFFFFFFFF


def _connection(dtls: RTCDtlsTransport) -> Connection | None:
    connection = getattr(getattr(dtls, "transport", None), "_connection", None)
    if (
        connection is None
        or not hasattr(connection, "_nominated")
        or not hasattr(connection, "_protocols")
    ):
        return None
    return connection  # type: ignore[no-any-return]


def _missing(owner: object, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if not hasattr(owner, name)]


class _Header:
    """The two fields of a received packet that aiortc's `StreamStatistics.add` reads."""

    __slots__ = ("sequence_number", "timestamp")

    def __init__(self) -> None:
        self.sequence_number = 0
        self.timestamp = 0


class FastReceiver:
    """The browser's G.711 packets, taken in the socket's callback (see the module)."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        dtls: RTCDtlsTransport,
        connection: Connection,
        payload_type: int,
        clock_rate: int,
        on_payload: Callable[[bytes], None],
    ) -> None:
        self._receiver = receiver
        self._dtls = dtls
        self._connection = connection
        self._payload_type = payload_type
        self._clock_rate = clock_rate
        self._on_payload = on_payload
        self._streams: dict[int, StreamStatistics] = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
        self._active: dict[int, Any] = receiver._RTCRtpReceiver__active_ssrc  # type: ignore[attr-defined]
        self._header = _Header()
        self._pair: CandidatePair | None = None
        self._remote: tuple[str, int] | None = None
        self._until_refresh = 0
        self._hooked: set[int] = set()
        self.packets = 0
        """Packets taken by this path (the rest went through aiortc)."""
        self.dropped = 0
        """Packets taken but dropped: failed SRTP authentication or bad RTP framing."""

    def hook(self) -> None:
        """Wrap each local socket's callback (the ICE guard's, when installed before)."""
        for protocol in self._connection._protocols:
            if id(protocol) in self._hooked:
                continue
            self._hooked.add(id(protocol))
            wrapped = self._wrap(protocol, protocol.datagram_received)
            protocol.datagram_received = wrapped  # type: ignore[method-assign,assignment]

    def _wrap(
        self, protocol: StunProtocol, original: Callable[[Any, tuple[Any, ...]], None]
    ) -> Callable[[Any, tuple[Any, ...]], None]:
        take = self._take

        def datagram_received(data: Any, addr: tuple[Any, ...]) -> None:
            if not take(protocol, data, addr):
                original(data, addr)

        return datagram_received

    def _take(self, protocol: StunProtocol, data: Any, addr: tuple[Any, ...]) -> bool:
        """True when the packet was handled here (RFC 7983 demultiplexing: 128-191 is RTP)."""
        if (
            not isinstance(data, bytes)
            or len(data) < 12
            or not 127 < data[0] < 192
            or data[1] & 0x7F != self._payload_type
            or 191 < data[1] < 224  # RTCP's packet types (RFC 5761 4)
        ):
            return False
        dtls = self._dtls
        srtp = dtls._rx_srtp
        if srtp is None or dtls._state is not State.CONNECTED:
            return False
        pair = self._connection._nominated.get(1)
        if pair is not self._pair:  # a pair's remote address is fixed: read it once
            self._pair, self._remote = pair, None if pair is None else pair.remote_addr
        if pair is None or pair.protocol is not protocol or self._remote != addr[:2]:
            return False
        dtls._RTCDtlsTransport__rx_bytes += len(data)  # type: ignore[attr-defined]
        dtls._RTCDtlsTransport__rx_packets += 1  # type: ignore[attr-defined]
        self.packets += 1
        try:
            packet = srtp.unprotect(data)
            start, end = payload_bounds(packet)
        except (pylibsrtp.Error, RtpParseError):
            self.dropped += 1
            return True
        if not self._receiver._enabled:
            return True
        sequence_number, timestamp, ssrc = _SEQUENCE_TIMESTAMP_SSRC.unpack_from(packet, 2)
        statistics = self._streams.get(ssrc)
        if statistics is None:
            statistics = self._streams[ssrc] = StreamStatistics(self._clock_rate)
        header = self._header
        header.sequence_number, header.timestamp = sequence_number, timestamp
        statistics.add(header)  # type: ignore[arg-type]
        self._until_refresh -= 1
        if self._until_refresh < 0:
            self._until_refresh = _SOURCE_REFRESH
            self._active[ssrc] = clock.current_datetime()
        self._on_payload(packet[start:end])
        return True


def install_receiver(
    receiver: RTCRtpReceiver, codec: RTCRtpCodecParameters, on_payload: Callable[[bytes], None]
) -> FastReceiver | None:
    """Take `codec`'s packets from the browser on the lean path; None (and a warning) when
    aiortc's or aioice's internals are not what this module knows."""
    dtls = receiver.transport
    connection = _connection(dtls)
    missing = _missing(receiver, _RECEIVER_ATTRIBUTES) + _missing(dtls, _DTLS_ATTRIBUTES)
    if connection is None or missing or codec.payloadType is None:
        logger.warning(
            "aiortc's receiver has changed (%s): G.711 from the browser takes aiortc's path",
            ", ".join(missing) or "no ICE connection",
        )
        return None
    fast = FastReceiver(receiver, dtls, connection, codec.payloadType, codec.clockRate, on_payload)
    fast.hook()
    return fast


class PacedSender:
    """One sender's G.711 stream, sent by the shared pacer (see the module)."""

    def __init__(self, sender: RTCRtpSender, track: BridgeAudioTrack, header: bytes) -> None:
        self._sender = sender
        self._track = track
        self._dtls = sender.transport
        self._connection = _connection(sender.transport)
        self._pair: CandidatePair | None = None
        self._remote: tuple[str, int] | None = None
        self._head = header[:2]
        self._extension = header[12:]
        self._ssrc = sender._ssrc.to_bytes(4, "big")
        self._sequence_number = random_sequence_number()
        self._timestamp = random32()
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def skip(self, frames: int) -> None:
        """The pacer missed `frames` ticks: the timestamps move on over the gap."""
        self._timestamp = (self._timestamp + frames * FRAME_SAMPLES) & 0xFFFFFFFF
        self._track.frames_skipped += frames

    def send(self, ntp_timestamp: int) -> None:
        """The next 20 ms to the browser (what aiortc's `_run_rtp` does for one packet)."""
        payload = self._track.take_encoded()
        sender, dtls = self._sender, self._dtls
        if not sender._enabled:
            return
        pair = self._connection._nominated.get(1) if self._connection is not None else None
        if dtls._state is not State.CONNECTED or pair is None:
            self.end()  # aiortc's sender stops on ConnectionError
            return
        sequence_number, timestamp = self._sequence_number, self._timestamp
        packet = (
            self._head
            + _SEQUENCE_TIMESTAMP.pack(sequence_number, timestamp)
            + self._ssrc
            + self._extension
            + payload
        )
        data = dtls._tx_srtp.protect(packet)
        if pair is not self._pair:  # a pair's remote address is fixed: read it once
            self._pair, self._remote = pair, pair.remote_addr
        pair.protocol.transport.sendto(data, self._remote)  # aioice's send_data, not awaited
        dtls._RTCDtlsTransport__tx_bytes += len(data)  # type: ignore[attr-defined]
        dtls._RTCDtlsTransport__tx_packets += 1  # type: ignore[attr-defined]
        sender._RTCRtpSender__ntp_timestamp = ntp_timestamp  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_timestamp = timestamp  # type: ignore[attr-defined]
        sender._RTCRtpSender__octet_count += len(payload)  # type: ignore[attr-defined]
        sender._RTCRtpSender__packet_count += 1  # type: ignore[attr-defined]
        self._sequence_number = (sequence_number + 1) & 0xFFFF
        self._timestamp = (timestamp + FRAME_SAMPLES) & 0xFFFFFFFF

    def end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


class SenderPacer:
    """One task and one timer for every paced sender of the node, a packet each per 20 ms.

    The task runs while a sender is registered and ends with the last one."""

    def __init__(self) -> None:
        self._senders: list[PacedSender] = []
        self._task: asyncio.Task[None] | None = None
        self.ticks_skipped = 0

    def __len__(self) -> int:
        return len(self._senders)

    def add(self, sender: PacedSender) -> None:
        self._senders.append(sender)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def remove(self, sender: PacedSender) -> None:
        with contextlib.suppress(ValueError):
            self._senders.remove(sender)

    async def close(self) -> None:
        for sender in list(self._senders):
            sender.end()
        self._senders.clear()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start, tick = loop.time(), 0
        while self._senders:
            tick += 1
            wait = start + tick * _TICK - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            else:
                if wait < -_MAX_LATE:  # a stalled loop: skip what was missed, as the track did
                    skipped = int(-wait / _TICK)
                    tick += skipped
                    self.ticks_skipped += skipped
                    for sender in self._senders:
                        sender.skip(skipped)
                await asyncio.sleep(0)
            ntp_timestamp = ntp_time()
            for sender in list(self._senders):
                try:
                    sender.send(ntp_timestamp)
                except Exception:  # one sender's failure must not stop the others'
                    logger.exception("a paced sender failed and stopped")
                    sender.end()
                if sender.ended.done():
                    self.remove(sender)


_LOOP_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SenderPacer] = (
    weakref.WeakKeyDictionary()
)


def loop_pacer() -> SenderPacer:
    """The pacer the browser peers of the running event loop share (one per node process):
    like the loop's own timers, it is the loop's and goes with it."""
    loop = asyncio.get_running_loop()
    pacer = _LOOP_PACERS.get(loop)
    if pacer is None:
        pacer = _LOOP_PACERS[loop] = SenderPacer()
    return pacer


def _template(sender: RTCRtpSender, codec: RTCRtpCodecParameters) -> bytes:
    """The header aiortc's `_run_rtp` writes for `codec` (marker set, mid extension)."""
    packet = RtpPacket(payload_type=codec.payloadType or 0, sequence_number=0, timestamp=0)
    packet.ssrc = sender._ssrc
    packet.marker = 1
    packet.extensions.mid = sender._RTCRtpSender__mid  # type: ignore[attr-defined]
    extensions_map = sender._RTCRtpSender__rtp_header_extensions_map  # type: ignore[attr-defined]
    return bytes(packet.serialize(extensions_map))


def _varying_extensions(sender: RTCRtpSender) -> bool:
    """True when the sender writes a header extension that changes per packet (abs-send-time,
    transport-wide sequence number, time offset): the template cannot stand for it. (aiortc
    writes the audio level only for frames it encodes, never for the packets paced here.)"""
    extensions_map = sender._RTCRtpSender__rtp_header_extensions_map  # type: ignore[attr-defined]
    ids = getattr(extensions_map, "_HeaderExtensionsMap__ids", None)
    if ids is None:
        return True
    return bool(
        getattr(ids, "abs_send_time", 1)
        or getattr(ids, "transport_sequence_number", 1)
        or getattr(ids, "transmission_offset", 1)
    )


def install_sender(
    sender: RTCRtpSender, track: BridgeAudioTrack, pacer: SenderPacer, mime_types: tuple[str, ...]
) -> bool:
    """Have `pacer` send `track` for `sender` once aiortc starts it with one of `mime_types`
    (any other codec: aiortc's own loop). False (and a warning) when aiortc's sender is not
    what this module knows."""
    missing = _missing(sender, _SENDER_ATTRIBUTES) + _missing(sender.transport, _DTLS_ATTRIBUTES)
    if missing or _connection(sender.transport) is None:
        logger.warning(
            "aiortc's sender has changed (%s): the browser's audio is paced by aiortc",
            ", ".join(missing) or "no ICE connection",
        )
        return False
    original = sender._run_rtp
    wanted = {mime.lower() for mime in mime_types}

    async def run_rtp(codec: RTCRtpCodecParameters) -> None:
        if codec.mimeType.lower() not in wanted or track.encoded is None:
            await original(codec)
            return
        if _varying_extensions(sender):
            logger.warning("aiortc's sender writes per-packet header extensions: it paces itself")
            await original(codec)
            return
        sender._RTCRtpSender__rtp_started.set()  # type: ignore[attr-defined]
        paced: PacedSender | None = None
        try:  # aiortc's stop() cancels this task and waits for __rtp_exited
            paced = PacedSender(sender, track, _template(sender, codec))
            pacer.add(paced)
            await paced.ended
        finally:
            if paced is not None:
                pacer.remove(paced)
                paced.end()
            # Unlike aiortc's loop, the track is not stopped: it is the phone's, and a page that
            # comes back gets a new peer connection sending the same track.
            sender._RTCRtpSender__rtp_exited.set()  # type: ignore[attr-defined]

    sender._run_rtp = run_rtp  # type: ignore[method-assign]
    return True
