"""The 20 ms tick of all bridges: decode, tap, mix, encode, send, batched with numpy.

One :class:`Mixer` serves every bridge of an engine and is driven by one timer (the engine's
ticker, or a test calling :meth:`Mixer.tick` with a fake time). Per tick it

1. takes one frame from every source that a mixed listener hears or a track sink records
   (jitter buffers for RTP sources, ``read_frame`` for players),
2. decodes all G.711 frames of all bridges in one table lookup,
3. hands each participant's own frame to its bridge's track sink,
4. sums each mixed listener's sources in int32 with one ``np.add.reduceat`` over all
   listeners of all bridges, clips to int16 and encodes all of them in one lookup,
5. sends each listener its frame through its own outgoing stream, and silence to listeners
   with nothing to hear (see :mod:`callwarden.media.bridge` for why silence is sent).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from callwarden.media.bridge import FRAME_SAMPLES, Bridge, Member
from callwarden.media.g711 import Encoding, PcmArray, decode_frames, encode_frames

_SILENT_PCM: PcmArray = np.zeros(FRAME_SAMPLES, dtype=np.int16)
_SILENT_PCM.flags.writeable = False
_SWITCH_GUARD_SECONDS = 0.015
_SILENCE = {encoding: bytes((encoding.silence_code,)) * FRAME_SAMPLES for encoding in Encoding}


class Mixer:
    """Ticks every registered bridge; holds no audio between ticks (the buffers do)."""

    __slots__ = ("_bridges", "ticks")

    def __init__(self) -> None:
        self._bridges: dict[str, Bridge] = {}
        self.ticks = 0

    def add(self, bridge: Bridge) -> None:
        self._bridges[bridge.id] = bridge

    def discard(self, bridge_id: str) -> None:
        self._bridges.pop(bridge_id, None)

    def __len__(self) -> int:
        return len(self._bridges)

    def tick(self, now: float) -> None:
        """Produce and send one 20 ms frame for every listener that needs one."""
        self.ticks += 1
        bridges = list(self._bridges.values())
        pcm = self._collect(bridges)
        for bridge in bridges:
            sink = bridge.track_sink
            if sink is not None:
                timestamp = bridge.sample_clock
                for member in bridge.frame_members:
                    row = member.row
                    sink.on_frame(member.id, pcm[row] if row >= 0 else _SILENT_PCM, timestamp)
            bridge.sample_clock += FRAME_SAMPLES
        self._mix(bridges, pcm, now)

    @staticmethod
    def _collect(bridges: list[Bridge]) -> PcmArray:
        """Pull this tick's frame of every needed source; return all of them decoded, by row."""
        codes: list[bytes] = []
        code_encodings: list[int] = []
        players: list[tuple[Member, PcmArray]] = []
        for bridge in bridges:
            for member in bridge.frame_members:
                member.row = -1
                buffer = member.buffer
                if buffer is not None:
                    frame = buffer.pop()
                    stream = member.stream
                    if frame is not None and stream is not None:
                        member.row = len(codes)
                        codes.append(frame)
                        code_encodings.append(stream.encoding.index)
                elif member.frame_source is not None:
                    samples = member.frame_source.read_frame()
                    if samples is not None:
                        players.append((member, samples))
        rows: list[PcmArray] = []
        if codes:
            frames = np.frombuffer(b"".join(codes), dtype=np.uint8).reshape(-1, FRAME_SAMPLES)
            rows.append(decode_frames(frames, np.array(code_encodings, dtype=np.intp)))
        if players:
            base = len(codes)
            for index, (member, _) in enumerate(players):
                member.row = base + index
            rows.append(np.stack([samples for _, samples in players]).astype(np.int16))
        if not rows:
            return np.empty((0, FRAME_SAMPLES), dtype=np.int16)
        pcm = rows[0] if len(rows) == 1 else np.concatenate(rows)
        pcm.flags.writeable = False
        return pcm

    @staticmethod
    def _mix(bridges: list[Bridge], pcm: PcmArray, now: float) -> None:
        gather: list[int] = []
        starts: list[int] = []
        listeners: list[Member] = []
        encodings: list[int] = []
        # A listener that just left the fast path already got this period's packet: skip it
        # once rather than send two frames within one 20 ms period.
        forwarded_before = now - _SWITCH_GUARD_SECONDS
        for bridge in bridges:
            for listener in bridge.mix_listeners:
                stream = listener.stream
                if stream is None or not stream.sending or stream.forwarded_after(forwarded_before):
                    continue
                rows = [source.row for source in listener.sources if source.row >= 0]
                if rows:
                    starts.append(len(gather))
                    gather.extend(rows)
                    listeners.append(listener)
                    encodings.append(stream.encoding.index)
                else:
                    stream.send_frame(_SILENCE[stream.encoding], now)
            idle_before = now - bridge.fast_idle
            for listener in bridge.fast_path_listeners:
                source = listener.fast_source
                stream = listener.stream
                if source is not None and stream is not None and source.last_active < idle_before:
                    stream.send_frame(_SILENCE[stream.encoding], now)
        if not listeners:
            return
        sums: npt.NDArray[np.int32] = np.add.reduceat(
            pcm[gather], np.array(starts, dtype=np.intp), axis=0, dtype=np.int32
        )
        mixed = np.clip(sums, -32768, 32767).astype(np.int16)
        encoded = encode_frames(mixed, np.array(encodings, dtype=np.intp))
        for index, listener in enumerate(listeners):
            stream = listener.stream
            if stream is not None:
                stream.send_frame(encoded[index].tobytes(), now)
