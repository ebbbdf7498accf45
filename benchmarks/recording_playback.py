"""Recording playback and purge: what listening and deleting cost.

Usage: .venv/bin/python benchmarks/recording_playback.py [--minutes N] [--purge N]

* open: `SealedReader.open` of one recording of N minutes (two tracks): reads and authenticates
  every chunk (what the playback route did once per HTTP request before chunk-by-chunk
  verification, and still does for a recording without a manifest);
* indexed open: `SealedReader.open_indexed` against the manifest's chunk digests (what the
  playback route does now: headers only; each chunk is verified as it is read);
* first 64 KiB: open + the first 64 KiB of the stereo WAV, each way (a player's first request);
* with the manifest: the same indexed first 64 KiB, the manifest beside the file read for its
  chunk digests without checking its signature (what the route did before) and with its
  Ed25519 signature checked (`manifest_chunk_digests`, what it does now);
* range: one 64 KiB byte range of the stereo WAV (what a browser asks for while playing);
* whole: the whole stereo WAV streamed, decrypted block by block;
* waveform: 500 buckets of the mix;
* purge: N expired one-second recordings deleted by one `Purger.run` on SQLite (key shredded,
  tombstone, file deleted, audit record through a port that keeps it in memory).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from callwarden.domain.cdr import CallDirection
from callwarden.domain.ids import CallId, RecordingId
from callwarden.recording.holds import RetentionPolicyRepository
from callwarden.recording.keyring import FileKeyRing, new_data_key
from callwarden.recording.manifest import SignedManifest, seal_manifest
from callwarden.recording.models import (
    NewRecording,
    RecordingStatus,
    RetentionPolicy,
    RetentionScope,
)
from callwarden.recording.numbers import SealedNumbers
from callwarden.recording.playback import (
    ByteRange,
    PlaybackMode,
    RecordingAudio,
    Rendition,
    manifest_chunk_digests,
    parse_range,
    waveform,
)
from callwarden.recording.purge import AuditRecord, Purger, Shredder
from callwarden.recording.reader import SealedReader
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.storage import LocalStorage, recording_storage_key
from callwarden.recording.writer import SealedWriter
from callwarden.store.database import Database, sqlite_url
from callwarden.store.migrations import upgrade

FRAME = 160
RATE = 8000


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = " ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{os.cpu_count()} cores, {model}, load average {load}"


def seal(path: Path, recording_id: str, key: bytes, seconds: float) -> None:
    writer = SealedWriter.create(path, recording_id, key, ["customer", "operator"])
    t = np.arange(FRAME) / RATE
    customer = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    operator = (8000 * np.sin(2 * np.pi * 880 * t)).astype(np.int16)
    for start in range(0, int(seconds * RATE), FRAME):
        writer.write("customer", start, customer)
        writer.write("operator", start, operator)
    writer.close(int(seconds * RATE))


def timed(work, repeat: int) -> float:  # type: ignore[no-untyped-def]
    """The median wall time of `repeat` calls, in ms."""
    times = []
    for _ in range(repeat):
        begin = time.perf_counter()
        work()
        times.append((time.perf_counter() - begin) * 1000)
    return statistics.median(times)


def playback(directory: Path, minutes: float) -> None:
    key, path = new_data_key(), directory / "long.cwr"
    seal(path, "long", key, minutes * 60)
    size = path.stat().st_size
    reader = SealedReader.open(path, "long", key)
    audio = RecordingAudio(reader, Rendition(PlaybackMode.STEREO))
    middle = parse_range(f"bytes={audio.size // 2}-{audio.size // 2 + 65535}", audio.size)
    print(f"recording: {minutes:g} min, 2 tracks, sealed file {size / 1e6:.1f} MB")
    digests = reader.chunk_digests
    first = parse_range("bytes=0-65535", audio.size)

    def first_bytes(indexed: bool) -> None:
        opened = (
            SealedReader.open_indexed(path, "long", key, digests)
            if indexed
            else SealedReader.open(path, "long", key)
        )
        RecordingAudio(opened, Rendition(PlaybackMode.STEREO)).read(first)

    full, indexed, full_first, indexed_first = [], [], [], []
    for _ in range(7):  # interleaved: the same machine load for both ways
        full.append(timed(lambda: SealedReader.open(path, "long", key), 1))
        indexed.append(timed(lambda: SealedReader.open_indexed(path, "long", key, digests), 1))
        full_first.append(timed(lambda: first_bytes(False), 1))
        indexed_first.append(timed(lambda: first_bytes(True), 1))
    opened, quick = statistics.median(full), statistics.median(indexed)
    print(f"  open (authenticate every chunk): {opened:.1f} ms")
    print(f"  indexed open (manifest digests): {quick:.1f} ms ({opened / quick:.1f}x faster)")
    print(
        f"  open + first 64 KiB:            {statistics.median(full_first):.1f} ms full,"
        f" {statistics.median(indexed_first):.1f} ms indexed"
    )
    signed_first(path, key, first)
    print(f"  64 KiB range of the stereo WAV:  {timed(lambda: audio.read(middle), 20):.2f} ms")
    whole = timed(lambda: sum(len(b) for b in audio.iter_bytes()), 3)
    print(f"  whole stereo WAV ({audio.size / 1e6:.1f} MB):    {whole:.0f} ms")
    print(f"  waveform, 500 buckets:          {timed(lambda: waveform(reader, 500), 3):.0f} ms")


def signed_first(path: Path, key: bytes, first: ByteRange | None) -> None:
    """The indexed first 64 KiB with the manifest read from beside the file: its signature
    unchecked (before) and checked (now), interleaved."""
    signing = NodeSigningKey.generate()
    seal_manifest(path, "long", key, signing, sealed_at=datetime.now(UTC), call={})
    signers = (signing.public_key(),)

    def unsigned() -> None:
        digests = tuple(SignedManifest.load(path).fields()["chunk_sha256"])
        opened = SealedReader.open_indexed(path, "long", key, digests)
        RecordingAudio(opened, Rendition(PlaybackMode.STEREO)).read(first)

    def signed() -> None:
        digests = manifest_chunk_digests(path, "long", signers)
        assert digests is not None
        opened = SealedReader.open_indexed(path, "long", key, digests)
        RecordingAudio(opened, Rendition(PlaybackMode.STEREO)).read(first)

    before, after, check = [], [], []
    for _ in range(7):
        before.append(timed(unsigned, 1))
        after.append(timed(signed, 1))
        check.append(timed(lambda: manifest_chunk_digests(path, "long", signers), 1))
    size = len(SignedManifest.load(path).body)
    print(
        f"  first 64 KiB with the manifest:  {statistics.median(before):.1f} ms signature"
        f" unchecked, {statistics.median(after):.1f} ms checked (manifest {size / 1e3:.0f} kB;"
        f" reading and checking it alone {statistics.median(check):.2f} ms)"
    )


class Kept:
    def __init__(self) -> None:
        self.records: list[AuditRecord] = []

    async def record(self, entry: AuditRecord) -> None:
        self.records.append(entry)


def purge(directory: Path, count: int) -> None:
    url = sqlite_url(directory / "bench.db")
    upgrade(url)
    numbers = SealedNumbers(os.urandom(32))
    storage = LocalStorage(directory / "recordings")
    keys = FileKeyRing(directory / "keys")
    started = datetime(2026, 1, 1, tzinfo=UTC)
    with Database(url) as database:
        with database.sessions() as session, session.begin():
            RetentionPolicyRepository(session).set(
                RetentionPolicy(scope=RetentionScope.DEFAULT, days=30), by=None, at=started
            )
        for index in range(count):
            recording_id = RecordingId(uuid.uuid4().hex)
            at = started + timedelta(seconds=index)
            storage_key = recording_storage_key(recording_id, at)
            data_key = new_data_key()
            seal(storage.path_for_writing(storage_key), recording_id, data_key, 1.0)
            wrapped = keys.wrap(data_key, recording_id)
            with database.sessions() as session, session.begin():
                repository = RecordingRepository(session, numbers)
                repository.create(
                    NewRecording(
                        recording_id=recording_id,
                        call_id=CallId(f"call-{index}"),
                        direction=CallDirection.INBOUND,
                        started_at=at,
                        storage_key=storage_key,
                        kek_id=wrapped.key_id,
                        wrapped_key=wrapped.blob,
                        caller_number="+49 30 1234567",
                    )
                )
                repository.close(
                    recording_id,
                    status=RecordingStatus.COMPLETE,
                    ended_at=at + timedelta(seconds=1),
                    duration_ms=1000,
                    manifest_digest=None,
                )
        now = lambda: started + timedelta(days=400)  # noqa: E731
        audit = Kept()
        shredder = Shredder(database.sessions, numbers, storage, audit, now)
        purger = Purger(database.sessions, numbers, shredder, now)
        begin = time.perf_counter()
        report = asyncio.run(purger.run())
        elapsed = time.perf_counter() - begin
    print(f"purge: {report.purged} recordings in {elapsed:.2f} s = {report.purged / elapsed:.0f}/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--purge", type=int, default=200)
    options = parser.parse_args(argv)
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as name:
        playback(Path(name), options.minutes)
        purge(Path(name), options.purge)
    print(f"machine after: {machine()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
