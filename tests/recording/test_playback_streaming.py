"""Playback verifies a recording chunk by chunk as it streams (`SealedReader.open_indexed`
against the manifest's chunk digests): the same bytes as a full open, the first bytes without
reading the whole file, what the headers show (chunks swapped, removed, added, a cut file, the
trailer gone, a manifest of another length) refused at open, a chunk altered in place (a flipped
byte, another recording's chunk, a manifest digest edited) refused when it is reached; through
the service, a stream cut with "recording corrupted" and the alert."""

from __future__ import annotations

import shutil
import struct
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from callwarden.domain.errors import InvalidState
from callwarden.recording.catalogue_events import RecordingIntegrityAlert
from callwarden.recording.errors import RecordingCorrupted
from callwarden.recording.keyring import WrappedKey, new_data_key
from callwarden.recording.manifest import SignedManifest, manifest_paths, seal_manifest
from callwarden.recording.playback import PlaybackMode, RecordingAudio, Rendition
from callwarden.recording.reader import SealedReader
from callwarden.recording.service import stream_and_close
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.writer import SealedWriter

from .conftest import Center
from .sealed import CUSTOMER_HZ, FRAME, OPERATOR_HZ, SAMPLE_RATE, tone
from .test_service import T0, Setup, principal, setup

__all__ = ["setup"]  # the fixture, used by name

SECONDS = 12
KEY = new_data_key()


def _seal(path: Path, recording_id: str, key: bytes = KEY) -> tuple[str, ...]:
    """12 s of 440/880 Hz in 2 s chunks with its signed manifest; the chunk digests."""
    writer = SealedWriter.create(path, recording_id, key, ["customer", "operator"])
    total = SECONDS * SAMPLE_RATE
    for start in range(0, total, FRAME):
        writer.write("customer", start, tone(CUSTOMER_HZ, start, FRAME))
        writer.write("operator", start, tone(OPERATOR_HZ, start, FRAME))
    writer.close(total)
    seal_manifest(path, recording_id, key, NodeSigningKey.generate(), sealed_at=T0, call={})
    return tuple(SignedManifest.load(path).fields()["chunk_sha256"])


def _records(path: Path) -> list[tuple[int, int]]:
    """(offset, size) of every record after the header."""
    data = path.read_bytes()
    (header_length,) = struct.unpack(">I", data[10:14])
    offset, found = 14 + header_length, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        found.append((offset, 4 + length))
        offset += 4 + length
    return found


@pytest.fixture
def sealed(tmp_path: Path) -> tuple[Path, tuple[str, ...]]:
    path = tmp_path / "rec-1.cwr"
    return path, _seal(path, "rec-1")


def test_an_indexed_open_plays_the_same_bytes_as_a_full_one(
    sealed: tuple[Path, tuple[str, ...]],
) -> None:
    path, digests = sealed
    full = SealedReader.open(path, "rec-1", KEY)
    indexed = SealedReader.open_indexed(path, "rec-1", KEY, digests)
    assert (indexed.complete, indexed.duration_samples) == (True, SECONDS * SAMPLE_RATE)
    for mode in (PlaybackMode.MIX, PlaybackMode.STEREO):
        rendition = Rendition(mode)
        assert RecordingAudio(indexed, rendition).read() == RecordingAudio(full, rendition).read()
    assert indexed.chunk_digests == full.chunk_digests


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_chunk_altered_in_place_is_refused_when_it_is_reached(
    sealed: tuple[Path, tuple[str, ...]],
) -> None:
    path, digests = sealed
    records = _records(path)
    last_audio = records[-2]  # the trailer is last
    _flip(path, last_audio[0] + last_audio[1] - 5)  # inside its ciphertext
    reader = SealedReader.open_indexed(path, "rec-1", KEY, digests)  # the headers are intact
    audio = RecordingAudio(reader, Rendition(PlaybackMode.STEREO))
    first = next(audio.iter_bytes())  # the first bytes come
    assert first[:4] == b"RIFF"
    with pytest.raises(RecordingCorrupted, match="digest does not match the manifest"):
        audio.read()
    with pytest.raises(RecordingCorrupted):  # a full open refuses it at once
        SealedReader.open(path, "rec-1", KEY)


def test_another_recordings_chunk_is_refused_when_it_is_reached(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.cwr", tmp_path / "theirs.cwr"
    digests = _seal(ours, "ours")
    _seal(theirs, "theirs")  # the same key even: the recording id is in every chunk's AAD
    offset, size = _records(ours)[3]
    other_offset, other_size = _records(theirs)[3]
    assert size == other_size
    data = bytearray(ours.read_bytes())
    data[offset : offset + size] = theirs.read_bytes()[other_offset : other_offset + size]
    ours.write_bytes(bytes(data))
    reader = SealedReader.open_indexed(ours, "ours", KEY, digests)
    with pytest.raises(RecordingCorrupted, match="chunk 3 digest does not match"):
        reader.stereo()
    # With a manifest forged to match it (no signature is checked here), AES-GCM refuses it.
    forged = list(digests)
    forged[3] = SealedReader.open(theirs, "theirs", KEY).chunk_digests[3]
    reader = SealedReader.open_indexed(ours, "ours", KEY, forged)
    with pytest.raises(RecordingCorrupted, match="chunk 3 failed authentication when read"):
        reader.stereo()


def _swap(path: Path, first: int, second: int) -> None:
    records = _records(path)
    data = path.read_bytes()
    (a, a_size), (b, b_size) = records[first], records[second]
    assert a_size == b_size
    swapped = bytearray(data)
    swapped[a : a + a_size], swapped[b : b + b_size] = data[b : b + b_size], data[a : a + a_size]
    path.write_bytes(bytes(swapped))


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (lambda path: _swap(path, 1, 2), "chunk 1 is out of place"),
        (lambda path: path.write_bytes(path.read_bytes()[:-40]), "truncated"),
        (
            lambda path: path.write_bytes(path.read_bytes()[: _records(path)[-1][0]]),
            "file ends after chunk",
        ),
        (lambda path: path.write_bytes(path.read_bytes() + b"\x00" * 64), "data after the trailer"),
        (lambda path: _flip(path, _records(path)[-1][0] + 20), "chunk .* digest does not match"),
    ],
    ids=["swapped", "cut", "trailer-removed", "appended", "trailer-altered"],
)
def test_what_the_headers_show_is_refused_at_open(
    sealed: tuple[Path, tuple[str, ...]], tamper: Callable[[Path], None], message: str
) -> None:
    path, digests = sealed
    tamper(path)
    with pytest.raises(RecordingCorrupted, match=message):
        SealedReader.open_indexed(path, "rec-1", KEY, digests)


def test_a_manifest_of_another_length_is_refused_at_open(
    sealed: tuple[Path, tuple[str, ...]],
) -> None:
    path, digests = sealed
    with pytest.raises(RecordingCorrupted, match="not in the manifest"):
        SealedReader.open_indexed(path, "rec-1", KEY, digests[:-1])
    with pytest.raises(RecordingCorrupted, match="file ends after chunk"):
        SealedReader.open_indexed(path, "rec-1", KEY, (*digests, "0" * 64))


def test_the_service_streams_at_once_and_cuts_a_corrupted_stream_with_an_alert(
    setup: Setup, center: Center
) -> None:
    """A recording with its manifest: the stream is verified as it goes; a chunk altered in
    place stops it with "recording corrupted" and the alert, after the bytes before it."""
    world, recording = setup.world, setup.ours
    path = world.file(recording)
    assert recording.kek_id is not None and recording.wrapped_key is not None
    key = world.keyring.unwrap(WrappedKey(recording.kek_id, recording.wrapped_key), recording.id)
    seal_manifest(path, recording.id, key, setup.signing_key, sealed_at=T0, call={})
    auditor = principal(center, "auditor")
    grant = setup.service.start_playback(auditor, 1, recording.id, Rendition(PlaybackMode.MIX))
    whole = b"".join(stream_and_close(setup.service.open_grant(auditor, 1, grant.token), None))
    backup = path.with_name("backup")
    shutil.copy(path, backup)
    offset, size = _records(path)[-2]
    _flip(path, offset + size - 3)
    opened = setup.service.open_grant(auditor, 1, grant.token)  # opens: the headers are fine
    received = b""
    with pytest.raises(InvalidState) as refused:
        for block in stream_and_close(opened, None):
            received += block
    assert refused.value.error_id == "recording_corrupted"
    assert received and whole.startswith(received) and len(received) < len(whole)
    [alert] = setup.alerts
    assert isinstance(alert, RecordingIntegrityAlert) and alert.recording_id == recording.id
    assert "digest does not match the manifest" in alert.reason
    with pytest.raises(InvalidState):  # the waveform reads every chunk: refused too
        setup.service.waveform(auditor, 1, grant.token, 10)
    shutil.copy(backup, path)
    world.clock.current += timedelta(minutes=1)
    again = b"".join(stream_and_close(setup.service.open_grant(auditor, 1, grant.token), None))
    assert again == whole
    for manifest in manifest_paths(path):  # without a manifest: the whole file at open
        manifest.unlink()
    _flip(path, offset + size - 3)
    with pytest.raises(InvalidState):
        setup.service.open_grant(auditor, 1, grant.token)
