"""Audio between aiortc's frames and the bridge's 8 kHz G.711 packets.

`BridgeAudioTrack` is what the browser hears: a track whose `recv()` is paced in real time
(20 ms frames) and returns the newest audio the bridge sent, or silence. `FrameEncoder` turns
the browser's decoded frames (8 kHz mono for PCMU/PCMA, 48 kHz for Opus) into 20 ms G.711
payloads for the bridge.
"""

from __future__ import annotations

import asyncio
import collections
import fractions

import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, AudioResampler

from callwarden.media.g711 import Encoding, decode, encode

__all__ = ["FRAME_SAMPLES", "SAMPLE_RATE", "BridgeAudioTrack", "FrameEncoder"]

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
"""20 ms at 8 kHz: one RTP packet of the bridge."""
_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
_MAX_QUEUED = 6
"""Frames kept for the browser (120 ms): older ones are dropped so the delay stays bounded."""


class BridgeAudioTrack(MediaStreamTrack):
    """The audio the browser hears: the bridge's packets, decoded, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._frames: collections.deque[npt.NDArray[np.int16]] = collections.deque(
            maxlen=_MAX_QUEUED
        )
        self._silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._started: float | None = None
        self._pts = 0
        self.frames_sent = 0
        self.frames_from_bridge = 0

    def push_payload(self, payload: bytes, encoding: Encoding) -> None:
        """One packet's G.711 payload from the bridge (any length; split into 20 ms)."""
        pcm = decode(payload, encoding)
        for start in range(0, len(pcm) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            self._frames.append(pcm[start : start + FRAME_SAMPLES])

    def clear(self) -> None:
        self._frames.clear()

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        loop = asyncio.get_running_loop()
        if self._started is None:
            self._started = loop.time()
        else:
            wait = self._started + self._pts / SAMPLE_RATE - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
        if self._frames:
            samples = self._frames.popleft()
            self.frames_from_bridge += 1
        else:
            samples = self._silence
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = _TIME_BASE
        self._pts += FRAME_SAMPLES
        self.frames_sent += 1
        return frame


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
