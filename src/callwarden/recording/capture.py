"""Capture: the recording sink that runs where the media runs (inside a media worker process).

The media engine builds one :class:`CaptureProvider` per process (``MediaConfig.recording_sinks
= CAPTURE_PROVIDER``) and asks it for a :class:`CaptureSink` per recorded bridge. The sink is
called on the media event loop every 20 ms with each participant's own frame; it only sorts the
frames into tracks by the participant's role and hands batches of them to the provider's one
**writer thread** through a bounded queue. In the usual recorded call (RTP legs only, nobody
mixed) the bridge taps its participants in C instead (``media.bridge.TapSink``): the mixer's
tick gathers each participant's µ-law frames in its :class:`~callwarden.media.fastpath.Tap`
without any Python, and the sink runs only when a tap holds a whole batch. The frames are
G.711 µ-law as the mixer taps them (a PCMU leg's payloads as received), gathered per track in
1.2 s batches, handed to the thread in groups every 0.1 s. The thread feeds the
sealed writer, which encrypts and appends the chunks, and makes them durable by **group
commit**: one ``syncfs`` for every recording appended to in the last ``GROUP_COMMIT_SECONDS``
(one fdatasync each if the files are on several file systems or syncfs is not available). No
file I/O and no encryption on the event loop (PERFORMANCE-NOTES), and plaintext audio never
leaves the process's memory.

In the node the writer is not a thread but a **process** of its own beside the media worker
(``CAPTURE_PROVIDER``, :mod:`callwarden.recording.capture_process`): the same work, the same
group commit, without taking the GIL from the media loop. The thread remains for providers
given another writer (tests, tools); the writer's half of a recording is
:class:`~callwarden.recording.capture_slot.WriterSlot` in both.

Tracks: each participant with a recorded role (customer, operator, supervisor) is a track of
its own, named by its role (a second participant with the same role gets ``operator-2``, ...).
Players (hold music, tones) are not recorded.

Pause (PCI DSS): :meth:`CaptureSink.pause` takes effect before it returns, on the media loop;
frames after it are dropped unseen until :meth:`CaptureSink.resume`, so a paused stretch holds
no audio at all, not even encrypted. The pause and resume sample times go to the writer (and
the summary) as markers.

Failures: when the writer raises (disk full, I/O error) the recording stops there, what was
written stays as written, and the sink reports a ``failed`` RecordingEvent; the call goes on.
A writer thread that falls behind by more than the queue bound fails the recordings it cannot
keep up with rather than grow without bound or block the media loop.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

from callwarden.media.fastpath import Tap
from callwarden.media.recording_sink import RecordingContext, RecordingSummary
from callwarden.recording.capture_io import (
    BATCH_SAMPLES,
    DEFAULT_TRACKS,
    FLUSH_INTERVAL_SECONDS,
    GroupCommitWriter,
    Pcm,
    SealedTrackWriter,
    SealSpec,
    TrackWriter,
    WriterOpener,
    open_sealed,
    track_names,
)
from callwarden.recording.capture_process import WriterProcess
from callwarden.recording.capture_slot import WriterSlot, group_commit
from callwarden.recording.container import encode_pcm

__all__ = [
    "BATCH_SAMPLES",
    "CAPTURE_PROVIDER",
    "DEFAULT_TRACKS",
    "FLUSH_INTERVAL_SECONDS",
    "GROUP_COMMIT_SECONDS",
    "SAMPLE_RATE",
    "CaptureProvider",
    "CaptureSink",
    "GroupCommitWriter",
    "Pcm",
    "SealSpec",
    "SealedTrackWriter",
    "TrackWriter",
    "WriterOpener",
    "track_names",
]

logger = logging.getLogger(__name__)

CAPTURE_PROVIDER = "callwarden.recording.capture:sealing_process_provider"
"""The import path the composition root gives the media engine (``MediaConfig``): recordings
sealed by a writer process beside the media worker (see capture_process)."""
RECORDED_ROLES = frozenset({"customer", "operator", "supervisor"})
MAX_SAME_ROLE = 3
SAMPLE_RATE = 8000
GROUP_COMMIT_SECONDS = 0.25
"""The writer thread makes sealed batches durable together at most this long after the first."""
HANDOVER_SECONDS = 0.1
"""Work for the writer thread is handed over in groups at most this long after the first."""
QUEUE_BOUND = 5_000
"""Batches waiting for the writer thread, all recordings of the process together (~12 s of
audio at 500 recorded calls, ~100 MB); beyond that a recording fails instead of memory growing."""
WRITER_SWITCH_INTERVAL = 0.0005
"""The GIL switch interval of a process that records (Python's default is 5 ms). The writer
thread gives the GIL up at each write and hash of a chunk and must get it back from a busy media
loop each time: with 5 ms waits it fell behind at 500 recorded calls (recordings failed as "too
far behind"); at 0.5 ms it kept up. Only a thread that waits for the GIL causes a switch."""


@dataclass(slots=True)
class _Track:
    name: str
    role: str
    participant_id: str
    first_sample: int


@dataclass(slots=True)
class _Run:
    """Consecutive µ-law samples of one track, from sample ``start`` to ``end``."""

    track: str
    start: int
    end: int
    codes: bytearray


@dataclass(slots=True)
class _Batch:
    runs: list[_Run] = field(default_factory=list)
    last: dict[str, _Run] = field(default_factory=dict)
    start: int = -1


_Work = tuple["CaptureSink", str, object]
_NOTHING: list[_Work] = []  # a queue wait timed out: time for the group commit


class CaptureSink:
    """One bridge's recording: a media ``RecordingSink`` (see media.recording_sink)."""

    def __init__(self, provider: CaptureProvider, context: RecordingContext) -> None:
        self._provider = provider
        self._context = context
        self.recording_id = str(context.spec.get("recording_id", context.bridge_id))
        self._start = context.sample_clock()
        self._tracks: dict[str, _Track | None] = {}
        self._declared = frozenset(track_names(context.spec))
        self._batch = _Batch()
        #: The first batch is shorter by a stagger, so the recordings of a process (often
        #: started together) hand over their batches in different ticks, not all in one.
        self._batch_samples = BATCH_SAMPLES - provider.stagger()
        self._paused_at: int | None = None
        self.pauses: list[tuple[int, int]] = []
        #: Set by the writer thread (a plain bool: read on the loop without a lock).
        self.failed = False
        self.failure: str | None = None
        #: Its writer, on the writer thread (not used when the writer is a process).
        self.slot = WriterSlot(self.recording_id, self.fail)
        #: Its number for the writer process.
        self.key = provider.next_key()
        #: The participants the bridge taps in C, with their tracks (None: not recorded).
        self._taps: list[tuple[Tap, _Track | None]] = []

    # --- on the media loop ----------------------------------------------------------------

    def on_frame(self, participant_id: str, pcm: Pcm, timestamp: int) -> None:
        """One participant's PCM frame (a sink without the µ-law path: encoded here)."""
        self.on_codes(((participant_id, encode_pcm(pcm)),), timestamp)

    def on_codes(self, frames: Iterable[tuple[str, bytes | None]], timestamp: int) -> None:
        """This tick's µ-law frame of every participant (None: silence), as the mixer taps
        them: RTP payloads as received, nothing decoded."""
        if self._paused_at is not None or self.failed:
            return
        relative = timestamp - self._start
        batch = self._batch
        if batch.start >= 0 and relative - batch.start >= self._batch_samples:
            self._send_batch()
            self._batch_samples = BATCH_SAMPLES
        for participant_id, codes in frames:
            track = self._track(participant_id, timestamp)
            if track is not None:
                self._add_run(track.name, relative, _SILENT_FRAME if codes is None else codes)

    def on_taps(self, taps: Sequence[Tap]) -> None:
        """The bridge taps its participants in C from the next tick on (media.bridge.TapSink):
        take what the previous taps hold, then gather a batch in each new tap."""
        self._take_taps()
        gathered = self._batch.start
        if gathered >= 0:  # the batch under way goes on: the taps fill the rest of it
            now = self._context.sample_clock() - self._start
            capacity = max(160, self._batch_samples - (now - gathered))
        else:
            capacity = self._batch_samples
        recording = self._paused_at is None and not self.failed
        self._taps = []
        for tap in taps:
            track = self._track(tap.participant_id, tap.clock)
            tap.recording = recording and track is not None
            tap.capacity = capacity
            tap.owner = self._tap_full
            self._taps.append((tap, track))

    def _tap_full(self, tap: Tap) -> None:
        """A tap holds a whole batch (called by the mixer): send the bridge's batch."""
        if self.failed:  # the writer failed: gather nothing more
            for each, _ in self._taps:
                each.recording = False
                each.take()
            return
        self._send_batch()
        self._batch_samples = BATCH_SAMPLES
        for each, _ in self._taps:
            each.capacity = BATCH_SAMPLES

    def _take_taps(self) -> None:
        """Move what the taps gathered into the batch."""
        for tap, track in self._taps:
            taken = tap.take()
            if taken is not None and track is not None:
                start, codes = taken
                self._add_run(track.name, start - self._start, codes)

    def _track(self, participant_id: str, timestamp: int) -> _Track | None:
        track = self._tracks.get(participant_id, _UNKNOWN)
        if track is _UNKNOWN:
            track = self._new_track(participant_id, timestamp)
        return track

    def _add_run(self, name: str, start: int, codes: bytes) -> None:
        """µ-law samples of track ``name`` from sample ``start`` (since the recording's)."""
        batch = self._batch
        if batch.start < 0:
            batch.start = start
        run = batch.last.get(name)
        if run is not None and run.end == start:
            run.codes += codes
            run.end += len(codes)
        else:
            run = _Run(name, start, start + len(codes), bytearray(codes))
            batch.last[name] = run
            batch.runs.append(run)

    def _new_track(self, participant_id: str, timestamp: int) -> _Track | None:
        """The track of a participant seen for the first time: its role's track, or the
        role's next declared one (``supervisor-2``) while another participant holds it."""
        role = self._context.role_of(participant_id)
        track: _Track | None = None
        if role in RECORDED_ROLES:
            assert role is not None
            held = {
                t.name
                for t in self._tracks.values()
                if t is not None and self._context.role_of(t.participant_id) is not None
            }
            names = [role, *(f"{role}-{n}" for n in range(2, MAX_SAME_ROLE + 1))]
            free = [name for name in names if name in self._declared and name not in held]
            if free:
                track = _Track(free[0], role, participant_id, timestamp - self._start)
            else:
                logger.warning(
                    "recording %s: no free %s track for participant %s",
                    self.recording_id,
                    role,
                    participant_id,
                )
        self._tracks[participant_id] = track
        return track

    def _send_batch(self) -> None:
        self._take_taps()
        batch, self._batch = self._batch, _Batch()
        if batch.runs:
            self._provider.submit(self, "frames", batch.runs)

    def pause(self) -> int:
        """No frame from the next tick on is recorded (confirmed by returning)."""
        now = self._context.sample_clock() - self._start
        if self._paused_at is None:
            self._send_batch()
            for tap, _ in self._taps:
                tap.recording = False
            self._paused_at = now
            self._provider.submit(self, "pause", now)
        return now

    def resume(self) -> int:
        now = self._context.sample_clock() - self._start
        if self._paused_at is not None:
            self.pauses.append((self._paused_at, now))
            self._paused_at = None
            self._provider.submit(self, "resume", now)
            for tap, track in self._taps:
                tap.recording = track is not None and not self.failed
                tap.capacity = self._batch_samples
        return now

    async def stop(self) -> RecordingSummary:
        """Resume if paused (the call's end ends a pause), write the rest, close the file."""
        end = self._context.sample_clock() - self._start
        if self._paused_at is not None:
            self.resume()
        self._send_batch()
        done: asyncio.Future[Mapping[str, object]] = asyncio.get_running_loop().create_future()
        self._provider.submit(self, "close", (end, done), force=True)
        try:
            written = await done
        finally:
            self._provider.forget(self)
        return {
            "recording_id": self.recording_id,
            "sample_rate": SAMPLE_RATE,
            "samples": end,
            "tracks": list(track_names(self._context.spec)),
            "participants": [
                {
                    "track": track.name,
                    "role": track.role,
                    "participant_id": track.participant_id,
                    "first_sample": track.first_sample,
                }
                for track in self._tracks.values()
                if track is not None
            ],
            "pauses": [list(pause) for pause in self.pauses],
            "failed": self.failed,
            "failure": self.failure,
            "writer": dict(written),
        }

    def fail(self, reason: str) -> None:
        """Stop recording (from either thread); reported once as a ``failed`` event."""
        if self.failed:
            return
        self.failed = True
        self.failure = reason
        logger.error("recording %s failed: %s", self.recording_id, reason)
        self._context.report("failed", reason)

    # --- on the writer thread ---------------------------------------------------------------

    def run(self, kind: str, payload: object) -> bool:
        """One piece of work from the queue, in the order the loop submitted them; True when
        it left sealed audio to make durable (see :attr:`unsynced`)."""
        if kind == "close":
            end, done = cast("tuple[int, asyncio.Future[Mapping[str, object]]]", payload)
            self._provider.resolve(done, self.slot.close(end))
            return False
        if kind == "open":
            self.slot.open(self._provider.open_writer, self._context.spec)
            return False
        if kind == "frames":
            payload = [(r.track, r.start, r.codes) for r in cast("list[_Run]", payload)]
        return self.slot.run(kind, payload)

    @property
    def writer(self) -> TrackWriter | None:
        return self.slot.writer

    @property
    def unsynced(self) -> bool:
        """Its writer appended sealed chunks that no fsync covers yet (group commit)."""
        return self.slot.unsynced


_UNKNOWN = _Track("", "", "", -1)
_SILENT_FRAME = b"\xff" * 160  # µ-law zero samples


class CaptureProvider:
    """The media process's recording sinks and their one writer thread."""

    def __init__(
        self,
        open_writer: WriterOpener | None = None,
        *,
        queue_bound: int = QUEUE_BOUND,
        switch_interval: float | None = WRITER_SWITCH_INTERVAL,
        process: bool = False,
    ) -> None:
        if process and open_writer is not None:
            raise ValueError("a writer process opens the sealed writer; no other opener")
        self.open_writer: WriterOpener = open_writer if open_writer is not None else open_sealed
        self._queue: queue.SimpleQueue[list[_Work] | None] = queue.SimpleQueue()
        #: Work submitted on the loop since the last hand-over to the writer thread.
        self._outbox: list[_Work] = []
        self._handover: asyncio.TimerHandle | None = None
        self._submitted = 0  # written on the loop only
        self._done = 0  # written on the writer thread only
        self._bound = queue_bound
        self._switch_interval = switch_interval
        self._opened = 0
        self._keys = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: A writer process instead of the thread (the node's default; see capture_process).
        self._use_process = process
        self._process: WriterProcess | None = None
        #: The open recordings by key (writer process only: its replies name the key).
        self._sinks: dict[int, CaptureSink] = {}

    def stagger(self) -> int:
        """Samples to take off a new recording's first batch: successive recordings spread
        over the ticks of a batch (a multiple of 160, less than a batch)."""
        self._opened += 1
        return (self._opened * 7 % (BATCH_SAMPLES // 160)) * 160

    @property
    def pending(self) -> int:
        """Pieces of work waiting for the writer thread (all recordings of the process)."""
        return self._submitted - self._done

    def next_key(self) -> int:
        self._keys += 1
        return self._keys

    @property
    def writer_pid(self) -> int | None:
        """The writer process's id, while it runs (None: a writer thread, or none yet)."""
        return self._process.pid if self._process is not None and self._process.alive else None

    def open(self, context: RecordingContext) -> CaptureSink:
        """A sink for one bridge; its file is opened on the writer thread or process."""
        if self._use_process:
            self._loop = asyncio.get_running_loop()
            if self._process is None or not self._process.alive:
                self._process = WriterProcess(self._loop, self._sinks, self._count_done)
            sink = CaptureSink(self, context)
            self._sinks[sink.key] = sink
            self.submit(sink, "open", context.spec)
            return sink
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            interval = self._switch_interval
            if interval is not None and sys.getswitchinterval() > interval:
                logger.info("recording writer: GIL switch interval %.1f ms", interval * 1000)
                sys.setswitchinterval(interval)
            self._thread = threading.Thread(
                target=self._serve, name="callwarden-recording-writer", daemon=True
            )
            self._thread.start()
        sink = CaptureSink(self, context)
        self.submit(sink, "open", context.spec)
        return sink

    def _count_done(self, count: int) -> None:
        """Work handed to the writer process (on its sender thread only)."""
        self._done += count

    def submit(self, sink: CaptureSink, kind: str, payload: object, *, force: bool = False) -> None:
        """Queue work for the writer thread; never blocks the loop. Beyond the bound the
        recording fails instead (``force``: a close, which always gets through).

        Batches of frames are handed over in groups, at most HANDOVER_SECONDS after the first
        of a group: one wake-up of the writer thread (and one burst of its work on the GIL)
        for all the batches of the process's recordings that came due meanwhile, not one
        each. Anything else (open, pause, resume, close) goes at once, with what waits."""
        if not force and self._submitted - self._done >= self._bound:
            sink.fail("the recording writer is too far behind")
            return
        self._outbox.append((sink, kind, payload))
        self._submitted += 1
        if kind != "frames":  # opening, markers and closing go at once
            self._hand_over()
        elif self._handover is None:
            assert self._loop is not None
            self._handover = self._loop.call_later(HANDOVER_SECONDS, self._hand_over)

    def _hand_over(self) -> None:
        if self._handover is not None:
            self._handover.cancel()
            self._handover = None
        if self._outbox:
            if self._process is not None:
                self._process.put(self._outbox)
            else:
                self._queue.put(self._outbox)
            self._outbox = []

    def resolve(
        self, done: asyncio.Future[Mapping[str, object]], value: Mapping[str, object]
    ) -> None:
        """Hand a close's result back to the loop (from the writer thread)."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_set_result, done, value)

    def _serve(self) -> None:
        """Work in queue order; batches are appended unsynced and made durable together (group
        commit: one ``syncfs`` for every recording written since, at most GROUP_COMMIT_SECONDS
        after the first of them, or when the queue is empty and the thread would sleep)."""
        dirty: dict[CaptureSink, None] = {}
        oldest = 0.0
        while True:
            wait = None if not dirty else max(0.0, oldest + GROUP_COMMIT_SECONDS - time.monotonic())
            try:
                group = self._queue.get(timeout=wait)
            except queue.Empty:
                group = _NOTHING
            if group is None:
                group_commit(s.slot for s in dirty)
                return
            for sink, kind, payload in group:
                try:
                    if sink.run(kind, payload) and not dirty:
                        oldest = time.monotonic()
                    if sink.unsynced:
                        dirty[sink] = None
                except Exception:  # a bug must not stop every other recording of the process
                    logger.exception("recording %s: %s failed", sink.recording_id, kind)
                self._done += 1
            if dirty and time.monotonic() - oldest >= GROUP_COMMIT_SECONDS:
                group_commit(s.slot for s in dirty)
                dirty = {}

    def forget(self, sink: CaptureSink) -> None:
        """A sink has stopped (its close answered)."""
        self._sinks.pop(sink.key, None)

    async def close(self) -> None:
        """Let the writer thread or process finish what is queued, then stop it."""
        if self._process is not None:
            self._hand_over()
            process, self._process = self._process, None
            await process.close()
        thread, self._thread = self._thread, None
        if thread is not None:
            self._hand_over()
            self._queue.put(None)
            await asyncio.to_thread(thread.join)


def _set_result(done: asyncio.Future[Mapping[str, object]], value: Mapping[str, object]) -> None:
    if not done.done():
        done.set_result(value)


def sealing_process_provider() -> CaptureProvider:
    """The node's provider: sealed files, written by a process of their own."""
    return CaptureProvider(process=True)
