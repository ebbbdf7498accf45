"""The 20 ms tick of all bridges: decode, tap, mix, encode, send, batched with numpy.

One :class:`Mixer` serves every bridge of an engine and is driven by one timer (the engine's
ticker, or a test calling :meth:`Mixer.tick` with a fake time). Per tick it

1. pops, in one C call (``tap_frames``), the jitter buffer of every participant of every
   bridge tapped in C (:class:`~callwarden.media.bridge.TapSink`: a recorded bridge, whatever
   its topology), appending each frame's µ-law codes to the participant's tap; the sink hears
   of a tap only when it holds a whole batch,
2. takes one frame from every source that a mixed listener hears or a track sink records
   (the frame a tap popped in step 1, else the jitter buffer; ``read_frame`` for players, whose
   frames, µ-law encoded, also feed their taps) and decodes the G.711 frames of all bridges in
   one table lookup when something needs PCM,
3. in a recorded bridge not tapped in C, hands each participant's own frame to its bridge's
   track sink: a sink with ``on_codes`` (the recorder) gets one call per bridge with every
   participant's G.711 µ-law frame as received (A-law through a 256-byte table, players
   encoded); other sinks get ``on_frame`` with int16 PCM,
4. sums each mixed listener's sources in int32 with one ``np.add.reduceat`` over all
   listeners of all bridges, clips to int16 and encodes all of them in one lookup,
5. sends each listener its frame through its own outgoing stream, and silence to listeners
   with nothing to hear (see :mod:`callwarden.media.bridge` for why silence is sent).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from callwarden.media.bridge import ALAW_TO_ULAW, FRAME_SAMPLES, Bridge, Member, TrackSink
from callwarden.media.fastpath import Tap, tap_frames
from callwarden.media.g711 import ULAW_ENCODE, Encoding, PcmArray, decode_frames, encode_frames

_SILENT_PCM: PcmArray = np.zeros(FRAME_SAMPLES, dtype=np.int16)
_SILENT_PCM.flags.writeable = False
_SWITCH_GUARD_SECONDS = 0.015
_SILENCE = {encoding: bytes((encoding.silence_code,)) * FRAME_SAMPLES for encoding in Encoding}
_EMPTY_PCM: PcmArray = np.empty((0, FRAME_SAMPLES), dtype=np.int16)


class _Frames:
    """One tick's frames of every needed source, by row: G.711 codes of RTP sources first,
    then players' PCM; decoded (or, for µ-law taps, encoded) only when asked."""

    __slots__ = ("_pcm", "_ulaw", "codes", "encodings", "players")

    def __init__(self) -> None:
        self.codes: list[bytes] = []
        self.encodings: list[Encoding] = []
        self.players: list[PcmArray] = []
        self._pcm: PcmArray | None = None
        self._ulaw: list[bytes] | None = None

    def pcm(self) -> PcmArray:
        """Every row as int16 PCM (read-only)."""
        if self._pcm is None:
            rows: list[PcmArray] = []
            if self.codes:
                frames = np.frombuffer(b"".join(self.codes), dtype=np.uint8)
                frames = frames.reshape(-1, FRAME_SAMPLES)
                indices = np.array([encoding.index for encoding in self.encodings], dtype=np.intp)
                rows.append(decode_frames(frames, indices))
            if self.players:
                rows.append(np.stack(self.players).astype(np.int16))
            pcm = _EMPTY_PCM if not rows else rows[0] if len(rows) == 1 else np.concatenate(rows)
            pcm.flags.writeable = False
            self._pcm = pcm
        return self._pcm

    def ulaw(self) -> list[bytes]:
        """Every row as µ-law bytes: PCMU payloads as they came, A-law translated."""
        if self._ulaw is None:
            pcmu = Encoding.PCMU
            ulaw = [
                code if encoding is pcmu else code.translate(ALAW_TO_ULAW)
                for code, encoding in zip(self.codes, self.encodings, strict=True)
            ]
            if self.players:
                encoded = ULAW_ENCODE[np.stack(self.players).astype(np.int16).view(np.uint16)]
                ulaw.extend(row.tobytes() for row in encoded)
            self._ulaw = ulaw
        return self._ulaw


def _ulaw(samples: PcmArray) -> bytes:
    """A player's frame as µ-law codes (as :meth:`_Frames.ulaw` encodes it)."""
    return ULAW_ENCODE[np.asarray(samples, dtype=np.int16).view(np.uint16)].tobytes()


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
        taps: list[Tap] = []
        for bridge in bridges:
            if bridge.buffer_taps:
                taps += bridge.buffer_taps
        # Participants tapped in C (bridge.TapSink): one call pops and gathers all of them,
        # before the mixing, which takes the popped frames from the taps.
        full = tap_frames(taps) if taps else None
        frames, fed_full = self._collect(bridges)
        for bridge in bridges:
            sink = bridge.track_sink
            if sink is not None and not bridge.tapped_in_c:
                self._tap(bridge, sink, frames)
            bridge.sample_clock += FRAME_SAMPLES
        for batch in (full, fed_full):
            if batch:
                for tap in batch:
                    owner = tap.owner
                    if owner is not None:
                        owner(tap)
        self._mix(bridges, frames, now)

    @staticmethod
    def _tap(bridge: Bridge, sink: TrackSink, frames: _Frames) -> None:
        timestamp = bridge.sample_clock
        on_codes = getattr(sink, "on_codes", None)
        if on_codes is not None:
            ulaw = frames.ulaw()
            on_codes(
                [
                    (member.id, ulaw[member.row] if member.row >= 0 else None)
                    for member in bridge.frame_members
                ],
                timestamp,
            )
            return
        pcm = frames.pcm()
        for member in bridge.frame_members:
            row = member.row
            sink.on_frame(member.id, pcm[row] if row >= 0 else _SILENT_PCM, timestamp)

    @staticmethod
    def _collect(bridges: list[Bridge]) -> tuple[_Frames, list[Tap]]:
        """Pull this tick's frame of every needed source, by row (an RTP leg tapped in C: the
        frame its tap popped this tick); feed the players' frames to their taps. Returns the
        frames and the players' taps now full."""
        frames = _Frames()
        codes, code_encodings = frames.codes, frames.encodings
        players: list[tuple[Member, PcmArray]] = []
        full: list[Tap] = []
        for bridge in bridges:
            for member in bridge.frame_members:
                member.row = -1
                tap = member.tap
                stream = member.stream
                if stream is not None:
                    if tap is not None:
                        frame = tap.frame
                    else:
                        buffer = member.buffer
                        frame = buffer.pop() if buffer is not None else None
                    if frame is not None:
                        member.row = len(codes)
                        codes.append(frame)
                        code_encodings.append(stream.encoding)
                elif member.frame_source is not None:
                    samples = member.frame_source.read_frame()
                    if samples is not None:
                        players.append((member, samples))
                    if tap is not None and tap.feed(
                        _ulaw(samples) if samples is not None and tap.recording else None
                    ):
                        full.append(tap)
        base = len(codes)
        for index, (member, samples) in enumerate(players):
            member.row = base + index
            frames.players.append(samples)
        return frames, full

    @staticmethod
    def _mix(bridges: list[Bridge], frames: _Frames, now: float) -> None:
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
            frames.pcm()[gather], np.array(starts, dtype=np.intp), axis=0, dtype=np.int32
        )
        mixed = np.clip(sums, -32768, 32767).astype(np.int16)
        encoded = encode_frames(mixed, np.array(encodings, dtype=np.intp))
        for index, listener in enumerate(listeners):
            stream = listener.stream
            if stream is not None:
                stream.send_frame(encoded[index].tobytes(), now)
