"""One browser's peer connection (aiortc): the browser offers, the node answers.

The node answers with the first codec of its preference (`webrtc_codecs`, by default PCMU,
PCMA, Opus) that the browser offered. With G.711 nothing is transcoded but the 8 kHz framing;
with Opus, aiortc decodes to PCM frames that `FrameEncoder` resamples, and encodes the bridge's
8 kHz frames. G.711 from the browser skips aiortc's decoder: its payloads go to the relay as they
arrive (`_bypass_decoder`), and the bridge's payloads go to aiortc's sender as encoded packets
(`BridgeAudioTrack.pass_encoded`), so it neither resamples nor encodes; the packets themselves
take a lean path (`fast_rtp`: taken in the socket's callback, sent by one pacer for all the
node's peers) when aiortc's internals are the known ones. The node uses no STUN
or TURN server itself: it offers its host candidates. The answer is complete (every local
candidate gathered: no trickle from the node); the browser may trickle its candidates
(`add_candidate`). Once the description is set, the ICE connection's sockets accept DTLS only
from validated pairs (`DtlsSourceGuard`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription, candidate_from_sdp
from av import AudioFrame

from callwarden.media.g711 import Encoding, decode
from callwarden.webrtc.audio import FRAME_SAMPLES, SAMPLE_RATE, BridgeAudioTrack, FrameEncoder
from callwarden.webrtc.codecs import BROWSER_CODECS, DEFAULT_CODECS, codec_preference
from callwarden.webrtc.fast_rtp import (
    FastReceiver,
    SenderPacer,
    install_receiver,
    install_sender,
    loop_pacer,
)
from callwarden.webrtc.ice_guard import DtlsSourceGuard
from callwarden.webrtc.opus import VoiceOpusEncoder
from callwarden.webrtc.relay import RtpRelay

__all__ = ["BrowserPeer", "SignallingError"]

logger = logging.getLogger(__name__)

_G711 = ("audio/PCMU", "audio/PCMA")
_MAX_SDP = 20_000


class SignallingError(ValueError):
    """The browser's offer or candidate cannot be used; `error_id` is sent back."""

    def __init__(self, error_id: str, detail: str) -> None:
        super().__init__(detail)
        self.error_id = error_id


class BrowserPeer:
    """The peer connection and the relay of its audio to the bridge."""

    def __init__(
        self,
        relay: RtpRelay,
        track: BridgeAudioTrack,
        *,
        on_connected: Callable[[], None],
        on_closed: Callable[[], None],
        codecs: Sequence[str] = DEFAULT_CODECS,
        pacer: SenderPacer | None = None,
        lean_path: bool = True,
    ) -> None:
        self._relay = relay
        self._mime_types = [BROWSER_CODECS[name] for name in codec_preference(codecs)]
        self._track = track
        # No ICE servers of its own (aiortc's default would ask a public STUN server): the node
        # offers its host candidates; a browser behind strict NAT relays through TURN.
        self._pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self._on_connected = on_connected
        self._on_closed = on_closed
        self._guards: list[DtlsSourceGuard] = []
        self._reader: asyncio.Task[None] | None = None
        self.codec: str | None = None
        self._negotiated = False
        self._pacer = pacer
        self._lean_path = lean_path
        self._framer = FrameEncoder()
        self.fast_receiver: FastReceiver | None = None
        self.frames_received = 0

        @self._pc.on("connectionstatechange")
        def _state_changed() -> None:
            state = self._pc.connectionState
            logger.info("browser peer connection %s", state)
            if state == "connected":
                self._on_connected()
            elif state in ("failed", "closed"):
                self._on_closed()

        @self._pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "audio" and self._reader is None:
                self._reader = asyncio.get_running_loop().create_task(self._read(track))

    @property
    def state(self) -> str:
        return str(self._pc.connectionState)

    @property
    def dtls_dropped(self) -> int:
        return sum(guard.dropped for guard in self._guards)

    async def answer(self, offer_sdp: str) -> str:
        """The node's complete answer to the browser's offer (one audio stream)."""
        if not offer_sdp or len(offer_sdp) > _MAX_SDP or "m=audio" not in offer_sdp:
            raise SignallingError("bad_offer", "the offer needs one audio stream")
        if self._negotiated:
            raise SignallingError("already_negotiated", "this phone has already negotiated")
        self._negotiated = True
        transceiver = self._pc.addTransceiver(self._track, direction="sendrecv")
        if self._lean_path:  # False: aiortc's own RTP path (to compare)
            pacer = self._pacer if self._pacer is not None else loop_pacer()
            install_sender(transceiver.sender, self._track, pacer, _G711)
        transceiver.setCodecPreferences(self._answer_codecs(offer_sdp))
        try:
            await self._pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
            await self._pc.setLocalDescription(await self._pc.createAnswer())
        except (ValueError, KeyError, LookupError) as error:  # aiortc's parse/negotiation errors
            raise SignallingError("bad_offer", str(error)) from error
        except Exception as error:  # aiortc raises OperationError (an Exception) on no codec
            if type(error).__name__ != "OperationError":
                raise
            raise SignallingError("no_common_codec", str(error)) from error
        codecs = transceiver._codecs
        self.codec = codecs[0].mimeType if codecs else None
        if self.codec in _G711 and codecs[0].payloadType is not None:
            self._track.pass_encoded(self._g711_encoding())
            self._bypass_decoder(transceiver.receiver, codecs[0].payloadType)
        if self.codec == "audio/opus":
            self._voice_opus(transceiver.sender)
        self._guard()
        if self._lean_path and self.codec in _G711:  # after the guard: validated sources only
            self.fast_receiver = install_receiver(transceiver.receiver, codecs[0], self._payload)
        description = self._pc.localDescription
        return str(description.sdp)

    def _answer_codecs(self, offer_sdp: str) -> list[RTCRtpCodecCapability]:
        """The answer's one codec: the first of the node's preference that the offer names
        (when it names none, all of them, and aiortc refuses the offer: `no_common_codec`)."""
        try:
            offer = SessionDescription.parse(offer_sdp)
        except (ValueError, KeyError, IndexError) as error:
            raise SignallingError("bad_offer", str(error)) from error
        offered = {
            codec.mimeType.lower()
            for media in offer.media
            if media.kind == "audio"
            for codec in media.rtp.codecs
        }
        capabilities = {c.mimeType.lower(): c for c in RTCRtpSender.getCapabilities("audio").codecs}
        preferred = [capabilities[mime_type.lower()] for mime_type in self._mime_types]
        for codec in preferred:
            if codec.mimeType.lower() in offered:
                return [codec]
        return preferred

    def _voice_opus(self, sender: RTCRtpSender) -> None:
        """Toward the browser, Opus as mono voice at 32 kbit/s with in-band FEC
        (`VoiceOpusEncoder`) instead of aiortc's stereo 96 kbit/s: the sender makes its encoder
        when its first frame is sent, unless it has one already."""
        if getattr(sender, "_RTCRtpSender__encoder", False) is not None:
            logger.warning("aiortc's sender has changed: Opus is encoded as aiortc does")
            return
        sender._RTCRtpSender__encoder = VoiceOpusEncoder()  # type: ignore[attr-defined]

    def _guard(self) -> None:
        for transceiver in self._pc.getTransceivers():
            guard = DtlsSourceGuard(transceiver.sender.transport.transport._connection)
            guard.install()
            self._guards.append(guard)

    def _g711_encoding(self) -> Encoding:
        return Encoding.PCMU if self.codec == "audio/PCMU" else Encoding.PCMA

    def _bypass_decoder(self, receiver: RTCRtpReceiver, payload_type: int) -> None:
        """G.711 from the browser goes to the relay as it arrives: no jitter buffer, decoder
        thread or resampling in aiortc (the bridge has its own jitter buffer). aiortc keeps its
        receive statistics and RTCP; only the hand-over to its decoder is replaced."""
        jitter = getattr(receiver, "_RTCRtpReceiver__jitter_buffer", None)
        if jitter is None or not hasattr(jitter, "add"):
            logger.warning("aiortc's receiver has changed: G.711 goes through its decoder")
            return
        original = jitter.add

        def add(packet: RtpPacket) -> tuple[bool, None]:
            if packet.payload_type != payload_type:
                return original(packet)  # type: ignore[no-any-return]
            self._payload(packet.payload)
            return False, None

        jitter.add = add

    def _payload(self, payload: bytes) -> None:
        """One G.711 payload from the browser, to the relay (from `_bypass_decoder` or the
        lean receive path of `fast_rtp`)."""
        self.frames_received += 1
        target = self._relay.target
        if target is None or not payload:
            return
        encoding = self._g711_encoding()
        if target.encoding is encoding and len(payload) == FRAME_SAMPLES:
            self._relay.send_payload(payload)
            return
        pcm = decode(payload, encoding)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for encoded in self._framer.payloads(frame, target.encoding):
            self._relay.send_payload(encoded)

    async def add_candidate(self, candidate: str, sdp_mid: str | None) -> None:
        """A trickled remote candidate (`candidate:...` of RFC 8839 5.1); empty: no more."""
        if not self._negotiated:
            raise SignallingError("no_offer", "a candidate before the offer")
        if not candidate:
            return
        text = candidate.removeprefix("candidate:")
        try:
            parsed = candidate_from_sdp(text)
        except (ValueError, IndexError) as error:
            raise SignallingError("bad_candidate", str(error)) from error
        parsed.sdpMid = sdp_mid
        parsed.sdpMLineIndex = 0
        await self._pc.addIceCandidate(parsed)
        for guard in self._guards:
            guard.install()

    async def _read(self, track: MediaStreamTrack) -> None:
        encoder = FrameEncoder()
        relay = self._relay
        try:
            while True:
                frame = await track.recv()
                self.frames_received += 1
                target = relay.target
                if target is None:
                    continue
                for payload in encoder.payloads(frame, target.encoding):  # type: ignore[arg-type]
                    relay.send_payload(payload)
        except MediaStreamError:
            return

    async def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await self._pc.close()
