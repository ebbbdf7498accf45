"""Audio between aiortc's frames and the bridge's 8 kHz G.711 packets.

`BridgeAudioTrack` is what the browser hears: a track whose `recv()` is paced in real time
(20 ms frames) and returns the newest audio the bridge sent, or silence. When the browser
negotiated G.711 (`pass_encoded`), `recv()` returns the bridge's payloads as encoded packets
(`av.Packet`), which aiortc's sender only packs: no decoding here, and no resampling or encoding
on aiortc's executor thread; otherwise (Opus) it returns decoded frames. `FrameEncoder` turns
the browser's decoded frames (8 kHz mono for PCMU/PCMA, 48 kHz for Opus) into 20 ms G.711
payloads for the bridge.
"""

from __future__ import annotations

import asyncio
import collections
import fractions

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, AudioResampler, Packet
from av.stream import Stream

from callwarden.media.g711 import Encoding, decode, encode

__all__ = ["FRAME_SAMPLES", "SAMPLE_RATE", "BridgeAudioTrack", "FrameEncoder"]

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
"""20 ms at 8 kHz: one RTP packet of the bridge."""
_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
_MAX_QUEUED = 6
"""Frames kept for the browser (120 ms): older ones are dropped so the delay stays bounded."""
_MAX_LATE = 0.06
"""How far (s) the track may fall behind real time and catch up by sending without pause;
beyond it (a stalled event loop) the missed frames are skipped, not sent in a burst."""


class BridgeAudioTrack(MediaStreamTrack):
    """The audio the browser hears: the bridge's packets, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._payloads: collections.deque[tuple[bytes, Encoding]] = collections.deque(
            maxlen=_MAX_QUEUED
        )
        self._silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._encoded: Encoding | None = None
        self._encoded_silence = b""
        self._started: float | None = None
        self._pts = 0
        self.frames_sent = 0
        self.frames_from_bridge = 0
        self.frames_skipped = 0

    def pass_encoded(self, encoding: Encoding) -> None:
        """The browser negotiated `encoding`: `recv()` returns its payloads as packets."""
        self._encoded = encoding
        self._encoded_silence = bytes([encoding.silence_code]) * FRAME_SAMPLES

    @property
    def encoded(self) -> Encoding | None:
        """The G.711 law `recv()` and `take_encoded()` return (`pass_encoded`), or None."""
        return self._encoded

    def push_payload(self, payload: bytes, encoding: Encoding) -> None:
        """One packet's G.711 payload from the bridge (any length; split into 20 ms).

        G.711 is one byte a sample, so the payload is split as it is, not decoded."""
        if len(payload) == FRAME_SAMPLES:
            self._payloads.append((payload, encoding))
            return
        for start in range(0, len(payload) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            self._payloads.append((payload[start : start + FRAME_SAMPLES], encoding))

    def clear(self) -> None:
        self._payloads.clear()

    async def recv(self) -> AudioFrame | Packet[Stream]:
        if self.readyState != "live":
            raise MediaStreamError
        now = asyncio.get_running_loop().time()
        if self._started is None:
            self._started = now
        else:
            wait = self._started + self._pts / SAMPLE_RATE - now
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -_MAX_LATE:  # the timestamps move on over the gap, as real time did
                skipped = int(-wait * SAMPLE_RATE) // FRAME_SAMPLES
                self._pts += skipped * FRAME_SAMPLES
                self.frames_skipped += skipped
        media: AudioFrame | Packet[Stream]
        pts = self._pts
        if self._encoded is not None:
            media = Packet(self.take_encoded())
        else:
            queued = self._payloads.popleft() if self._payloads else None
            if queued is not None:
                self.frames_from_bridge += 1
            samples = self._silence if queued is None else decode(*queued)
            media = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
            media.sample_rate = SAMPLE_RATE
            self._pts += FRAME_SAMPLES
            self.frames_sent += 1
        media.pts = pts
        media.time_base = _TIME_BASE
        return media

    def take_encoded(self) -> bytes:
        """The next 20 ms in the negotiated G.711 law (`pass_encoded`), or its silence, without
        pacing: `recv()` paces it for aiortc's sender, the node's `SenderPacer` for many."""
        wanted = self._encoded
        if wanted is None:
            raise RuntimeError("take_encoded() before pass_encoded()")
        queued = self._payloads.popleft() if self._payloads else None
        if queued is None:
            payload = self._encoded_silence
        else:
            self.frames_from_bridge += 1
            payload = queued[0] if queued[1] is wanted else encode(decode(*queued), wanted)
        self._pts += FRAME_SAMPLES
        self.frames_sent += 1
        return payload


class FrameEncoder:
    """The browser's decoded frames as 20 ms G.711 payloads (resampled to 8 kHz mono)."""

    def __init__(self) -> None:
        self._resampler = AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        self._pending = np.zeros(0, dtype=np.int16)

    def payloads(self, frame: AudioFrame, encoding: Encoding) -> list[bytes]:
        if (
            frame.sample_rate == SAMPLE_RATE
            and frame.format.name == "s16"
            and (frame.layout.name == "mono")
        ):  # G.711 from the browser: already 8 kHz mono
            decoded = [frame.to_ndarray().reshape(-1)]
        else:
            decoded = [
                resampled.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                for resampled in self._resampler.resample(frame)
            ]
        pcm = np.concatenate([self._pending, *decoded])
        if len(pcm) == FRAME_SAMPLES:
            self._pending = pcm[:0]
            return [encode(pcm, encoding)]
        whole = len(pcm) - len(pcm) % FRAME_SAMPLES
        self._pending = pcm[whole:].copy()
        return [
            encode(pcm[start : start + FRAME_SAMPLES], encoding)
            for start in range(0, whole, FRAME_SAMPLES)
        ]
