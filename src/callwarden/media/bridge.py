"""A bridge: participants and the hearing matrix saying who hears whom (DESIGN.md idea 1).

The bridge owns topology, not timing: from the matrix it works out, for each listener, whether
it takes the **fast path** (it hears exactly one RTP source in its own encoding: that source's
packets are forwarded the moment they arrive, with the listener's own header) or is **mixed**
every 20 ms tick by :class:`callwarden.media.mixer.Mixer`. A source is buffered (reordered and
paced into frames) only while a mixed listener hears it or a track sink records the bridge.

Decisions, so they are made once:

* Silence: a mixed listener gets a frame every tick, silence when none of its sources has audio;
  a fast-path listener whose source has sent nothing for ``fast_idle`` seconds (0.1 s) gets
  silence frames too, until the source resumes. Continuous RTP keeps the listener's jitter
  buffer steady, keeps NAT and firewall state of home routers alive, and keeps phones and SBCs
  that hang up after some seconds without RTP from doing so while a supervisor is silent or a
  party is on hold.
* DTMF: telephone-event packets are never mixed. They are forwarded (with the listener's own
  header and telephone-event payload type) only to a fast-path listener, i.e. the plain
  two-party case; digits are also always reported by the endpoint that received them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, cast

import numpy as np

from callwarden.media.fastpath import CJitterBuffer, MemberCore, Tap
from callwarden.media.g711 import ALAW_DECODE, ULAW_ENCODE, Encoding, PcmArray
from callwarden.media.jitter import JitterBuffer
from callwarden.media.matrix import Matrix, Mode, preset
from callwarden.media.stream import OutgoingStream

logger = logging.getLogger(__name__)

FRAME_SAMPLES = 160
#: ``bytes.translate`` table from A-law codes to the µ-law codes of the same samples.
ALAW_TO_ULAW = bytes(ULAW_ENCODE[ALAW_DECODE.view(np.uint16)])
#: A tap's capacity until its sink sets one: never full.
_UNBOUNDED = 1 << 62


class BridgeError(ValueError):
    """A bridge operation named a participant that is not there, or one that already is."""


class FrameSource(Protocol):
    """A PCM producer in a bridge (tone or file player): one frame per tick."""

    def read_frame(self) -> PcmArray | None:
        """160 int16 samples for this tick, or None for silence."""
        ...


class TrackSink(Protocol):
    """Receives each participant's own track, separately, every tick (for the recorder).

    ``pcm`` is 160 read-only int16 samples (zeros when the participant had nothing this tick);
    ``timestamp`` counts samples on the bridge's own 8 kHz timeline, common to all its tracks.
    Called on the event loop: hand the frame to a worker, never block.
    """

    def on_frame(self, participant_id: str, pcm: PcmArray, timestamp: int) -> None: ...


class TapSink(TrackSink, Protocol):
    """A track sink that also takes participants tapped in C (``callwarden.media.fastpath.Tap``).

    When every participant of the bridge is an RTP leg and every listener is on the fast path,
    the bridge taps its participants in C and hands the sink the taps with :meth:`on_taps`
    (again, with new taps, whenever the bridge is rebuilt; an empty list when it goes back to
    ``on_codes``/``on_frame``). Before adopting new taps the sink takes what the old ones still
    hold. The sink sets each tap's ``capacity`` and ``owner``: the mixer calls ``owner(tap)`` on
    the loop when the tap holds ``capacity`` samples.
    """

    def on_taps(self, taps: Sequence[Tap]) -> None: ...


class Member(MemberCore):
    """One participant inside a bridge; also the :class:`RtpSink` of its endpoint."""

    # last_active, fast_listeners and buffer live in MemberCore, where the C pump reads them:
    # see callwarden.media.fastpath.
    __slots__ = ("fast_source", "frame_source", "id", "role", "row", "sources", "stream")
    fast_listeners: list[OutgoingStream]
    buffer: JitterBuffer | None

    def __init__(
        self,
        participant_id: str,
        role: str,
        stream: OutgoingStream | None,
        frame_source: FrameSource | None,
    ) -> None:
        self.id = participant_id
        self.role = role
        #: What this participant hears is sent through this stream (None: a source only).
        self.stream = stream
        self.frame_source = frame_source
        self.last_active = float("-inf")
        #: Outgoing streams of the fast-path listeners hearing only this participant.
        self.fast_listeners = []
        self.fast_source: Member | None = None
        self.sources: list[Member] = []
        self.buffer = None
        self.row = -1

    @property
    def encoding(self) -> Encoding | None:
        return self.stream.encoding if self.stream is not None else None

    def on_audio(
        self, payload: bytes, marker: int, sequence_number: int, timestamp: int, now: float
    ) -> None:
        self.last_active = now
        for stream in self.fast_listeners:
            stream.forward(
                self, payload, marker, sequence_number, timestamp, now, stream.payload_type
            )
        buffer = self.buffer
        if buffer is not None:
            buffer.push(sequence_number, payload)

    def on_dtmf(
        self, payload: bytes, marker: int, sequence_number: int, timestamp: int, now: float
    ) -> None:
        self.last_active = now
        for stream in self.fast_listeners:
            payload_type = stream.dtmf_payload_type
            if payload_type is not None:
                stream.forward(self, payload, marker, sequence_number, timestamp, now, payload_type)


class Bridge:
    """Participants and their hearing matrix. Starts in ``Mode.NORMAL``."""

    def __init__(
        self,
        bridge_id: str,
        *,
        jitter_depth: int = 2,
        jitter_max_depth: int = 6,
        fast_idle: float = 0.1,
    ) -> None:
        self.id = bridge_id
        self.jitter_depth = jitter_depth
        self.jitter_max_depth = jitter_max_depth
        self.fast_idle = fast_idle
        self.members: dict[str, Member] = {}
        self._hearing: dict[str, frozenset[str]] = {}
        #: The preset re-applied when participants come and go; None once hearing is explicit.
        self.mode: Mode | None = Mode.NORMAL
        self.track_sink: TrackSink | None = None
        #: Samples since the bridge was created, on the bridge's own timeline (8 kHz).
        self.sample_clock = 0
        self.frame_members: list[Member] = []
        self.mix_listeners: list[Member] = []
        self.fast_path_listeners: list[Member] = []
        #: The participants tapped in C for the track sink (then ``frame_members`` is empty).
        self.taps: list[Tap] = []

    def add(
        self,
        participant_id: str,
        role: str,
        *,
        stream: OutgoingStream | None = None,
        frame_source: FrameSource | None = None,
    ) -> Member:
        """Add a participant: an RTP leg (``stream``) or a PCM source (``frame_source``)."""
        if participant_id in self.members:
            raise BridgeError(f"participant {participant_id!r} is already in bridge {self.id}")
        if (stream is None) == (frame_source is None):
            raise BridgeError("a participant is either an RTP leg or a frame source")
        member = Member(participant_id, role, stream, frame_source)
        self.members[participant_id] = member
        self._hearing[participant_id] = frozenset()
        self._reapply()
        return member

    def remove(self, participant_id: str) -> Member:
        member = self._member(participant_id)
        del self.members[participant_id]
        del self._hearing[participant_id]
        for listener, sources in self._hearing.items():
            if participant_id in sources:
                self._hearing[listener] = sources - {participant_id}
        self._reapply()
        return member

    def hearing(self, listener_id: str) -> frozenset[str]:
        """The sources the listener hears now."""
        self._member(listener_id)
        return self._hearing[listener_id]

    def set_hearing(self, listener_id: str, sources: Iterable[str]) -> None:
        """Set what one listener hears; the bridge leaves its preset mode for explicit hearing."""
        self._member(listener_id)
        wanted = frozenset(sources)
        for source in wanted:
            self._member(source)
        self._hearing[listener_id] = wanted - {listener_id}
        self.mode = None
        self.rebuild()

    def set_matrix(self, matrix: Matrix) -> None:
        """Replace the whole matrix; participants it does not name hear nothing."""
        for listener, sources in matrix.items():
            self._member(listener)
            for source in sources:
                self._member(source)
        self._hearing = {
            pid: frozenset(matrix.get(pid, frozenset())) - {pid} for pid in self.members
        }
        self.mode = None
        self.rebuild()

    def apply(self, mode: Mode) -> None:
        """Switch to a named preset (re-applied as participants join and leave)."""
        self.mode = mode
        self._reapply()

    def set_track_sink(self, sink: TrackSink | None) -> None:
        self.track_sink = sink
        self.rebuild()

    def roles(self) -> Mapping[str, str]:
        return {pid: member.role for pid, member in self.members.items()}

    def _member(self, participant_id: str) -> Member:
        member = self.members.get(participant_id)
        if member is None:
            raise BridgeError(f"no participant {participant_id!r} in bridge {self.id}")
        return member

    def _reapply(self) -> None:
        if self.mode is not None:
            matrix = preset(self.mode, self.roles())
            self._hearing = {pid: matrix.get(pid, frozenset()) for pid in self.members}
        self.rebuild()

    def rebuild(self) -> None:
        """Recompute fast paths, mixed listeners and buffers from the matrix.

        Call after a participant's encoding changed (the engine does on a new remote).
        """
        members = self.members
        for member in members.values():
            member.fast_listeners = []
            member.fast_source = None
            member.sources = []
        fast: list[Member] = []
        mixed: list[Member] = []
        needed: set[str] = set()
        for listener in members.values():
            if listener.stream is None:
                continue
            sources = [members[s] for s in self._hearing[listener.id] if s in members]
            listener.sources = sources
            only = sources[0] if len(sources) == 1 else None
            if only is not None and only.stream is not None and only.encoding is listener.encoding:
                listener.fast_source = only
                only.fast_listeners.append(listener.stream)
                fast.append(listener)
            else:
                mixed.append(listener)
                needed.update(source.id for source in sources)
        tapped = self.track_sink is not None
        frame_members = []
        for member in members.values():
            if tapped or member.id in needed:
                frame_members.append(member)
                if member.stream is not None and member.buffer is None:
                    member.buffer = JitterBuffer(self.jitter_depth, self.jitter_max_depth)
            else:
                member.buffer = None
        self.frame_members = frame_members
        self.mix_listeners = mixed
        self.fast_path_listeners = fast
        self._retap()
        logger.debug(
            "bridge %s: %d fast-path, %d mixed listeners, %d buffered sources, %d taps in C",
            self.id,
            len(fast),
            len(mixed),
            len(frame_members),
            len(self.taps),
        )

    def _retap(self) -> None:
        """Tap the participants in C when the sink takes taps, no mixed listener hears anyone
        (a lone party hears silence) and every participant is an RTP leg paced by the C jitter
        buffer (see :class:`TapSink`)."""
        on_taps = getattr(self.track_sink, "on_taps", None)
        members = self.frame_members
        taps: list[Tap] = []
        if (
            on_taps is not None
            and Tap is not None
            and members
            and not any(listener.sources for listener in self.mix_listeners)
            and all(m.stream is not None and _in_c(m.buffer) for m in members)
        ):
            for member in members:
                table = ALAW_TO_ULAW if member.encoding is Encoding.PCMA else None
                buffer = cast(CJitterBuffer, member.buffer)
                taps.append(Tap(buffer, member.id, self.sample_clock, _UNBOUNDED, table))
            self.frame_members = []
        if on_taps is not None and (taps or self.taps):
            on_taps(taps)
        self.taps = taps


def _in_c(buffer: object) -> bool:
    """The extension's jitter buffer (a tap pops it in C)."""
    return CJitterBuffer is not None and type(buffer) is CJitterBuffer
