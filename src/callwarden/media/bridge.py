"""A bridge: participants and the hearing matrix saying who hears whom (DESIGN.md idea 1).

The bridge owns topology, not timing: from the matrix it works out, for each listener, whether
it takes the **fast path** (it hears exactly one RTP source in its own encoding: that source's
packets are forwarded the moment they arrive, with the listener's own header) or is **mixed**
every 20 ms tick by :class:`callwarden.media.mixer.Mixer`. A source is buffered (reordered and
paced into frames) only while a mixed listener hears it or a track sink records the bridge.

A recorded bridge whose sink takes taps (:class:`TapSink`) is tapped in C whatever its topology
(two parties, hold music, a supervisor listening, whispering or barging): every participant has
a :class:`~callwarden.media.fastpath.Tap` for as long as it is in the bridge, kept across changes
of the matrix, so a switch of topology moves no frame between two paths.

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

    When every RTP leg of the bridge is paced by the extension's jitter buffer, the bridge taps
    each participant in C (an RTP leg's tap pops its buffer; a player's is fed its frames) and
    hands the sink the taps with :meth:`on_taps`: again whenever the list changes (a participant
    joins or leaves, a leg changes encoding; a tap kept across a change is the same object, and
    a new one starts at the bridge's sample clock), an empty list when the bridge goes back to
    ``on_codes``/``on_frame``. Before adopting the new list the sink takes what the old taps
    still hold. The sink sets each tap's ``capacity``, ``owner`` and ``recording`` (False for a
    participant it does not record: the tap then gathers nothing): the mixer calls
    ``owner(tap)`` on the loop when the tap holds ``capacity`` samples.
    """

    def on_taps(self, taps: Sequence[Tap]) -> None: ...


class Member(MemberCore):
    """One participant inside a bridge; also the :class:`RtpSink` of its endpoint."""

    # last_active, fast_listeners and buffer live in MemberCore, where the C pump reads them:
    # see callwarden.media.fastpath.
    __slots__ = ("fast_source", "frame_source", "id", "role", "row", "sources", "stream", "tap")
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
        #: Its tap in C while the bridge is tapped in C (see :class:`TapSink`).
        self.tap: Tap | None = None

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
        #: Every participant's tap in C, as handed to the track sink (see :class:`TapSink`);
        #: then ``frame_members`` holds only what the mixer mixes, and the players.
        self.taps: list[Tap] = []
        #: The taps of RTP legs (``tap_frames`` pops their buffers each tick).
        self.buffer_taps: list[Tap] = []
        #: The sink the taps were handed to (a new sink gets new taps).
        self._taps_sink: TrackSink | None = None
        #: The track sink takes taps in C: the mixer hands it nothing per tick.
        self.tapped_in_c = False

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
        for member in members.values():
            if tapped or member.id in needed:
                if member.stream is not None and member.buffer is None:
                    member.buffer = JitterBuffer(self.jitter_depth, self.jitter_max_depth)
            else:
                member.buffer = None
        in_c = self._taps_in_c()
        # Mixed sources; when tapped, every participant (the Python tap) or, tapped in C, the
        # players too (their frames feed their taps).
        self.frame_members = [
            member
            for member in members.values()
            if member.id in needed or (tapped and (not in_c or member.frame_source is not None))
        ]
        self.mix_listeners = mixed
        self.fast_path_listeners = fast
        self._retap(in_c)
        logger.debug(
            "bridge %s: %d fast-path, %d mixed listeners, %d sources read by the mixer, %d taps",
            self.id,
            len(fast),
            len(mixed),
            len(self.frame_members),
            len(self.taps),
        )

    def _taps_in_c(self) -> bool:
        """The sink takes taps and every RTP leg is paced by the C jitter buffer."""
        return (
            getattr(self.track_sink, "on_taps", None) is not None
            and Tap is not None
            and all(m.stream is None or _in_c(m.buffer) for m in self.members.values())
        )

    def _retap(self, in_c: bool) -> None:
        """Tap every participant in C (``in_c``) or none, and tell the sink (see
        :class:`TapSink`).

        A participant keeps its tap while it stays (same buffer, same encoding, same sink), so
        a change of matrix or of who is in the bridge moves no frame between taps; a new tap
        starts at the bridge's sample clock, where the tick that follows will put its frame.
        """
        sink = self.track_sink
        on_taps = getattr(sink, "on_taps", None)
        members = self.members.values()
        taps: list[Tap] = []
        if in_c:
            kept = {tap.participant_id: tap for tap in self.taps} if sink is self._taps_sink else {}
            for member in members:
                table = ALAW_TO_ULAW if member.encoding is Encoding.PCMA else None
                buffer = cast("CJitterBuffer | None", member.buffer)  # checked: _taps_in_c
                tap = kept.get(member.id)
                if tap is None or tap.buffer is not buffer or tap.table != table:
                    tap = Tap(buffer, member.id, self.sample_clock, _UNBOUNDED, table)
                member.tap = tap
                taps.append(tap)
        else:
            for member in members:
                member.tap = None
        if on_taps is not None and taps != self.taps:
            on_taps(taps)
        self.taps = taps
        self.buffer_taps = [tap for tap in taps if tap.buffer is not None]
        self._taps_sink = sink if taps else None
        self.tapped_in_c = in_c


def _in_c(buffer: object) -> bool:
    """The extension's jitter buffer (a tap pops it in C)."""
    return CJitterBuffer is not None and type(buffer) is CJitterBuffer
