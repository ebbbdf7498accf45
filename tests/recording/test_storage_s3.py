"""The S3-compatible object-store backend against a real S3 server process (moto's standalone
server, see s3_server.py): records shipped in whole-record parts while written (within 2 s of
the writer's flush), the file and manifest stored on commit, a node lost mid-recording recovered
from the parts by another node's start-up recovery (incomplete, playable up to the last part),
no key beside the objects, idempotent delete, and the setting validated with clear errors."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session, sessionmaker

from callwarden.config import Settings
from callwarden.domain.errors import ValidationFailed
from callwarden.recording.commands import (
    RecordingCommandError,
    RecordingTools,
    catalogue_locator,
    verify_command,
)
from callwarden.recording.keyring import FileKeyRing, new_data_key
from callwarden.recording.manifest import SignedManifest, seal_manifest
from callwarden.recording.models import RecordingStatus
from callwarden.recording.reader import SealedReader
from callwarden.recording.recovery import RecoveryServices, recover_open_recordings
from callwarden.recording.repository import RecordingRepository
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.storage import LocalStorage, recording_storage_key
from callwarden.recording.storage_s3 import (
    S3Location,
    S3Storage,
    StorageConfigError,
    check_endpoint,
    open_recording_storage,
    s3_client,
    whole_records_end,
)
from callwarden.recording.verify import verify_recording
from callwarden.recording.writer import SealedWriter
from callwarden.store.database import Database

from .catalogued import NUMBERS, START, open_row
from .conftest import Center
from .s3_server import REGION, S3Server, credentials_env, running_s3_server
from .sealed import FRAME, SAMPLE_RATE, tone


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with running_s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    credentials_env(monkeypatch)
    name = f"rec-{uuid.uuid4().hex[:12]}"
    s3_client(s3_server.endpoint, REGION).create_bucket(Bucket=name)
    return name


def _connect(server: S3Server, bucket: str, spool: Path) -> S3Storage:
    return S3Storage.connect(
        f"s3://{bucket}/calls/center-1",
        spool,
        endpoint=server.endpoint,
        region=REGION,
        ship_interval=0.1,
    )


@pytest.fixture
def storage(s3_server: S3Server, bucket: str, tmp_path: Path) -> Iterator[S3Storage]:
    opened = _connect(s3_server, bucket, tmp_path / "spool")
    yield opened
    opened.close()


def _objects(server: S3Server, bucket: str) -> dict[str, bytes]:
    client = s3_client(server.endpoint, REGION)
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {
        item["Key"]: client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        for item in listed
    }


def _level(samples: np.ndarray, frequency: float) -> float:
    """Share of the signal's energy within 10 Hz of `frequency`."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    bins = np.fft.rfftfreq(samples.size, 1 / SAMPLE_RATE)
    return float(spectrum[np.abs(bins - frequency) < 10].sum() / max(spectrum.sum(), 1.0))


def _write(writer: SealedWriter, start_s: float, seconds: float) -> None:
    start, samples = round(start_s * SAMPLE_RATE), round(seconds * SAMPLE_RATE)
    audio = tone(440.0, start, samples)
    for offset in range(0, samples, FRAME):
        writer.write("customer", start + offset, audio[offset : offset + FRAME])


def _wait_shipped(storage: S3Storage, key: str, size: int, within: float) -> float:
    began = time.monotonic()
    while storage.shipped_bytes(key) != size:
        assert time.monotonic() - began < within, (storage.shipped_bytes(key), size)
        time.sleep(0.02)
    return time.monotonic() - began


def test_records_are_shipped_as_written_and_the_file_is_stored_on_commit(
    storage: S3Storage, s3_server: S3Server, bucket: str, tmp_path: Path
) -> None:
    keys = FileKeyRing(tmp_path / "keys")
    recording_id = uuid.uuid4().hex
    data_key = new_data_key()
    wrapped = keys.wrap(data_key, recording_id)
    key = recording_storage_key(recording_id, START)
    path = storage.path_for_writing(key)
    assert path.is_relative_to(tmp_path / "spool")
    writer = SealedWriter.create(path, recording_id, data_key, ["customer", "operator"])
    for second in range(3):  # each flush is in the store within 2 s
        _write(writer, second, 1.0)
        writer.flush()
        assert _wait_shipped(storage, key, path.stat().st_size, within=2.0) < 2.0
    objects = _objects(s3_server, bucket)
    parts = sorted(name for name in objects if ".parts/" in name)
    assert len(parts) >= 3
    shipped = b"".join(objects[name] for name in parts)
    assert shipped == path.read_bytes()
    offsets = [int(name.rsplit("/", 1)[1]) for name in parts]
    for offset, name in zip(offsets, parts, strict=True):  # each part: whole records
        body = objects[name]
        assert whole_records_end(body, at_start=offset == 0) == len(body)

    writer.close()
    signing = NodeSigningKey.generate()
    seal_manifest(path, recording_id, data_key, signing, sealed_at=START, call={})
    storage.commit(key)
    objects = _objects(s3_server, bucket)
    stored = f"calls/center-1/{key}"
    assert set(objects) == {stored, f"{stored}.manifest.json", f"{stored}.manifest.sig"}
    assert not path.exists()  # the spool copy is gone
    for body in objects.values():  # no key beside the objects
        assert data_key not in body and wrapped.blob not in body
        assert wrapped.encode().encode() not in body
        for kek in (tmp_path / "keys").iterdir():
            assert kek.read_bytes() not in body

    with storage.local_copy(key) as copy:
        assert copy.read_bytes() == objects[stored]
        reader = SealedReader.open(copy, recording_id, data_key)
        assert reader.complete and reader.duration_samples == 3 * SAMPLE_RATE
        assert _level(reader.pcm("customer"), 440.0) > 0.99
        result = verify_recording(
            copy, recording_id, data_key, SignedManifest.load(copy), signing.public_key()
        )
        assert result.complete
    [cached] = (tmp_path / "spool" / ".cache").rglob("*.cwr")  # a ciphertext copy, private
    assert cached.read_bytes() == objects[stored] and cached.stat().st_mode & 0o077 == 0


def test_a_node_lost_mid_recording_is_recovered_from_its_parts(
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
    sessions: sessionmaker[Session],
    center: Center,
) -> None:
    """Node A records 3 s and dies with its disk; node B's recovery rebuilds the file from the
    parts, closes it INCOMPLETE with 3 s playable and stores it with its manifest."""
    keys, numbers = FileKeyRing(tmp_path / "keys"), NUMBERS
    row = open_row(sessions, keys, center.support, operator_id=center.alice)
    recording_id, data_key, key = row.recording_id, row.data_key, row.storage_key
    node_a = _connect(s3_server, bucket, tmp_path / "spool-a")
    path = node_a.path_for_writing(key)
    writer = SealedWriter.create(path, recording_id, data_key, ["customer", "operator"])
    _write(writer, 0, 3.0)
    writer.flush()
    _wait_shipped(node_a, key, path.stat().st_size, within=2.0)
    node_a.close()
    writer.abort()
    path.unlink()  # the node's disk is gone with it

    node_b = _connect(s3_server, bucket, tmp_path / "spool-b")
    try:
        signing = NodeSigningKey.generate()
        services = RecoveryServices(sessions, numbers, keys, node_b, signing, lambda: START)
        report = recover_open_recordings(services)
        assert report.incomplete == (recording_id,) and report.failed == ()
        with sessions() as session:
            row = RecordingRepository(session, numbers).get(recording_id)
        assert row.status is RecordingStatus.INCOMPLETE and row.duration_ms == 3000
        assert row.ended_at == START + timedelta(seconds=3)
        objects = _objects(s3_server, bucket)
        assert not any(".parts/" in name for name in objects)  # the parts are gone
        with node_b.local_copy(key) as copy:
            reader = SealedReader.open(copy, recording_id, data_key)
            assert not reader.complete and reader.duration_samples == 3 * SAMPLE_RATE
            assert _level(reader.pcm("customer"), 440.0) > 0.99
            assert SignedManifest.load(copy).fields()["complete"] is False
            assert row.size_bytes == copy.stat().st_size
    finally:
        node_b.close()


def test_a_recording_without_any_part_is_marked_failed(
    storage: S3Storage, sessions: sessionmaker[Session], tmp_path: Path, center: Center
) -> None:
    keys, numbers = FileKeyRing(tmp_path / "keys"), NUMBERS
    recording_id = open_row(sessions, keys, center.support).recording_id
    services = RecoveryServices(
        sessions, numbers, keys, storage, NodeSigningKey.generate(), lambda: START
    )
    assert recover_open_recordings(services).failed == (recording_id,)


def test_exists_delete_and_a_missing_object(
    storage: S3Storage, s3_server: S3Server, bucket: str
) -> None:
    recording_id = uuid.uuid4().hex
    data_key = new_data_key()
    key = recording_storage_key(recording_id, START)
    path = storage.path_for_writing(key)
    writer = SealedWriter.create(path, recording_id, data_key, ["customer"])
    _write(writer, 0, 0.5)
    writer.close()
    seal_manifest(path, recording_id, data_key, NodeSigningKey.generate(), sealed_at=START, call={})
    storage.commit(key)
    assert storage.exists(key)
    assert storage.delete(key) is True
    assert _objects(s3_server, bucket) == {}
    assert not storage.exists(key)
    assert storage.delete(key) is False  # idempotent
    with pytest.raises(FileNotFoundError, match="no sealed object"), storage.local_copy(key):
        pass
    with pytest.raises(ValidationFailed, match="invalid storage key"):
        storage.path_for_writing("../../etc/passwd")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/var/recordings", "expected s3://bucket/prefix"),
        ("https://bucket/prefix", "expected s3://bucket/prefix"),
        ("s3://Bad_Bucket/x", "not a valid bucket name"),
        ("s3://ab/x", "not a valid bucket name"),
        ("s3://bucket/a/../b", "prefix segment '..'"),
        ("s3://bucket/a b", "prefix segment 'a b'"),
        ("s3://key:secret@bucket/x", "no credentials"),
        ("s3://bucket/x?versionId=1", "no credentials, port, query"),
    ],
)
def test_a_wrong_storage_url_is_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(StorageConfigError, match=message.replace("?", r"\?")):
        S3Location.parse(url)


def test_the_location_keeps_bucket_and_prefix() -> None:
    assert S3Location.parse("s3://recordings.example-1/a/b/") == S3Location(
        "recordings.example-1", "a/b/"
    )
    assert S3Location.parse("s3://recordings").prefix == ""
    with pytest.raises(StorageConfigError, match="expected http"):
        check_endpoint("ftp://minio:9000")


def test_the_store_is_checked_at_connect(
    s3_server: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(StorageConfigError, match="bucket 'no-such-bucket' does not exist"):
        _connect(s3_server, "no-such-bucket", tmp_path / "spool")
    with pytest.raises(StorageConfigError, match="store unreachable"):
        S3Storage.connect(
            f"s3://{bucket}", tmp_path / "spool", endpoint="http://127.0.0.1:9", region=REGION
        )
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(variable)
    empty = tmp_path / "empty-aws-file"
    empty.write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(StorageConfigError, match="no S3 credentials"):
        _connect(s3_server, bucket, tmp_path / "spool")


def test_the_settings_name_the_backend(tmp_path: Path) -> None:
    assert isinstance(open_recording_storage(tmp_path, None), LocalStorage)
    with pytest.raises(StorageConfigError, match="not a valid bucket name"):
        open_recording_storage(tmp_path, "s3://Not_A_Bucket/x", endpoint="http://127.0.0.1:9")
    with pytest.raises(ValidationError, match="must be s3://bucket/prefix"):
        Settings(recording_storage="/srv/recordings")
    with pytest.raises(ValidationError, match="must be an http:// or https:// URL"):
        Settings(recording_s3_endpoint="minio:9000")
    settings = Settings(recording_storage="", recording_s3_endpoint="https://minio.example:9000")
    assert settings.recording_storage is None


def test_verify_reads_a_catalogued_recording_from_the_store(
    storage: S3Storage,
    database: Database,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    center: Center,
) -> None:
    """`callwarden recording verify ID` with the object store as the catalogue's backend."""
    keys = FileKeyRing(tmp_path / "keys")
    row = open_row(sessions, keys, center.support)
    recording_id, data_key, key = row.recording_id, row.data_key, row.storage_key
    path = storage.path_for_writing(key)
    writer = SealedWriter.create(path, recording_id, data_key, ["customer", "operator"])
    _write(writer, 0, 1.0)
    writer.close()
    signing_path = tmp_path / "keys" / "node-signing.key"
    signing = NodeSigningKey.load_or_create(signing_path)
    seal_manifest(path, recording_id, data_key, signing, sealed_at=START, call={})
    storage.commit(key)
    tools = RecordingTools(catalogue_locator(database, storage), keys, signing_path)
    out = io.StringIO()
    assert verify_command(tools, recording_id, out) == 0
    report = json.loads(out.getvalue())
    assert report["verified"] is True and report["duration_seconds"] == 1.0
    storage.delete(key)
    with pytest.raises(RecordingCommandError, match="no file"):
        verify_command(tools, recording_id, io.StringIO())


def _stored(storage: S3Storage, seconds: float) -> tuple[str, str, bytes]:
    """A closed recording committed to the store: (recording id, storage key, data key)."""
    recording_id, data_key = uuid.uuid4().hex, new_data_key()
    key = recording_storage_key(recording_id, START)
    path = storage.path_for_writing(key)
    writer = SealedWriter.create(path, recording_id, data_key, ["customer"])
    _write(writer, 0, seconds)
    writer.close()
    seal_manifest(path, recording_id, data_key, NodeSigningKey.generate(), sealed_at=START, call={})
    storage.commit(key)
    return recording_id, key, data_key


def test_reads_come_from_a_cache_checked_against_the_store(
    s3_server: S3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = S3Storage.connect(
        f"s3://{bucket}/calls",
        tmp_path / "spool",
        endpoint=s3_server.endpoint,
        region=REGION,
    )
    try:
        storage._cache_bytes = 200_000  # room for two 10 s one-track recordings (~81 kB each)
        first, first_key, first_data_key = _stored(storage, 10.0)
        _, second_key, _ = _stored(storage, 10.0)
        fetched: list[str] = []
        download = storage._client.download_file

        def counted(bucket: str, key: str, filename: str, **options: object) -> None:
            fetched.append(key)
            download(bucket, key, filename, **options)  # type: ignore[arg-type]

        monkeypatch.setattr(storage._client, "download_file", counted)
        for _ in range(3):  # a player's range requests: one fetch
            with storage.local_copy(first_key) as copy:
                reader = SealedReader.open(copy, first, first_data_key)
                assert reader.duration_samples == 10 * SAMPLE_RATE
                assert SignedManifest.load(copy).fields()["recording_id"] == first
        assert fetched == [f"calls/{first_key}"]
        with storage.local_copy(second_key):
            pass
        _, third_key, _ = _stored(storage, 10.0)
        with storage.local_copy(third_key):
            pass  # the cache is over its size: the least recently used (first) went
        entries = sorted(p.name for p in (tmp_path / "spool" / ".cache").iterdir())
        assert len(entries) == 2 and len(fetched) == 3
        # A deleted recording is never served from a cache, this node's or another's.
        other = s3_client(s3_server.endpoint, REGION)
        other.delete_object(Bucket=bucket, Key=f"calls/{third_key}")
        with pytest.raises(FileNotFoundError), storage.local_copy(third_key):
            pass
        assert storage.delete(second_key)
        assert len(list((tmp_path / "spool" / ".cache").iterdir())) == 1  # its copy went
    finally:
        storage.close()


def test_a_refused_commit_is_finished_at_the_next_start(
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
    sessions: sessionmaker[Session],
) -> None:
    """The store refused the commit (here: the bucket's name was wrong, so every call fails):
    the closed file and its manifest stay in the spool, and the next start's recovery stores
    them."""
    spool = tmp_path / "spool"
    refusing = S3Storage(s3_client(s3_server.endpoint, REGION), S3Location("no-bucket", ""), spool)
    recording_id, data_key = uuid.uuid4().hex, new_data_key()
    key = recording_storage_key(recording_id, START)
    path = refusing.path_for_writing(key)
    writer = SealedWriter.create(path, recording_id, data_key, ["customer"])
    _write(writer, 0, 1.0)
    writer.close()
    seal_manifest(path, recording_id, data_key, NodeSigningKey.generate(), sealed_at=START, call={})
    with pytest.raises(OSError, match="object store s3://no-bucket/"):
        refusing.commit(key)
    refusing.close()
    assert path.is_file()  # nothing lost
    restarted = S3Storage.connect(
        f"s3://{bucket}", spool, endpoint=s3_server.endpoint, region=REGION
    )
    try:
        services = RecoveryServices(
            sessions,
            NUMBERS,
            FileKeyRing(tmp_path / "keys"),
            restarted,
            NodeSigningKey.generate(),
            lambda: START,
        )
        assert recover_open_recordings(services).incomplete == ()
        assert sorted(_objects(s3_server, bucket)) == [
            key,
            f"{key}.manifest.json",
            f"{key}.manifest.sig",
        ]
        assert not path.exists()
        assert restarted.finish_pending() == []  # nothing left
    finally:
        restarted.close()
