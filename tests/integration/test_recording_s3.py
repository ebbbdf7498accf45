"""A real node recording into an S3-compatible object store (moto's server, see
tests/recording/s3_server.py) with independent phones (pjsua2): a queue call's recording ends
up as one object with its signed manifest and no parts or spool copy left; a node killed with
SIGKILL mid-call whose disk is then lost (its spool deleted) is restarted, and its start-up
recovery rebuilds the recording from the parts shipped before the kill: incomplete, playable,
less than 2 s short of the kill, the customer's 440 Hz on its track."""

from __future__ import annotations

import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audio import tone_snr_db
from node import Node, start_node
from phones import PhoneBook
from test_recording import ENV, PROVISIONING, RATE, SETTLE_S, _children, _connect, _rows

from callwarden.recording.keyring import FileKeyRing, WrappedKey
from callwarden.recording.manifest import SignedManifest
from callwarden.recording.reader import SealedReader
from callwarden.recording.storage_s3 import s3_client
from recording.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, running_s3_server

PREFIX = "center/calls"


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with running_s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


def _environment(server: S3Server, bucket: str) -> dict[str, str]:
    return {
        **ENV,
        "CALLWARDEN_RECORDING_STORAGE": f"s3://{bucket}/{PREFIX}",
        "CALLWARDEN_RECORDING_S3_ENDPOINT": server.endpoint,
        "CALLWARDEN_RECORDING_S3_REGION": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }


def _objects(server: S3Server, bucket: str) -> list[str]:
    client = _client(server)
    return [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


def _client(server: S3Server):  # type: ignore[no-untyped-def]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    return s3_client(server.endpoint, REGION)


def _open_object(
    server: S3Server, bucket: str, node: Node, row: tuple[str, ...], into: Path
) -> tuple[SealedReader, Path]:
    recording_id, _status, key, kek_id, wrapped = row[:5]
    client = _client(server)
    path = into / Path(str(key)).name
    for suffix in ("", ".manifest.json", ".manifest.sig"):
        client.download_file(bucket, f"{PREFIX}/{key}{suffix}", f"{path}{suffix}")
    data_key = FileKeyRing.for_data_dir(node.data_dir).unwrap(
        WrappedKey(str(kek_id), bytes(wrapped)),  # type: ignore[arg-type]
        str(recording_id),
    )
    return SealedReader.open(path, str(recording_id), data_key), path


@pytest.mark.integration
def test_a_node_records_into_the_object_store_and_recovers_from_it_after_sigkill(
    phones: PhoneBook, tmp_path: Path, tones: dict[int, Path], s3_server: S3Server
) -> None:
    bucket = f"calls-{uuid.uuid4().hex[:10]}"
    _client(s3_server).create_bucket(Bucket=bucket)
    directory = tmp_path / "node"
    directory.mkdir()
    environment = _environment(s3_server, bucket)
    first = start_node(directory, PROVISIONING, rtp_ports=(37000, 37499), extra_env=environment)
    try:
        call, operator = _connect(phones, first, tones)
        phones.run_for(2.0)
        call.hangup()
        call.wait_disconnected()
        operator.wait_disconnected()
        phones.wait_until(
            lambda: bool(_rows(first)) and _rows(first)[-1][1] != "recording", 10.0, "closed"
        )
        [row] = _rows(first)
        assert row[1] == "complete", row
        key = f"{PREFIX}/{row[2]}"
        assert sorted(_objects(s3_server, bucket)) == [
            key,
            f"{key}.manifest.json",
            f"{key}.manifest.sig",
        ]
        spool = first.data_dir / "recording-spool"
        assert not [path for path in spool.rglob("*") if path.is_file()]
        assert not (first.data_dir / "recordings").exists()  # nothing kept locally
        reader, path = _open_object(s3_server, bucket, first, row, tmp_path)
        assert reader.complete
        talk = slice(round(SETTLE_S * RATE), None)
        assert tone_snr_db(reader.pcm("customer")[talk], RATE, 440, [880]) > 30.0
        assert SignedManifest.load(path).fields()["complete"] is True

        call, operator = _connect(phones, first, tones)
        phones.run_for(4.3)
        for pid in (*_children(first.process.pid), first.process.pid):
            os.kill(pid, signal.SIGKILL)
        killed_at = datetime.now(UTC)
        first.process.wait()
    finally:
        if first.process.poll() is None:
            first.process.kill()
    assert [row[1] for row in _rows(first)] == ["complete", "recording"]
    assert any(".parts/" in name for name in _objects(s3_server, bucket))
    shutil.rmtree(first.data_dir / "recording-spool")  # the node's disk is lost with it
    call.hangup()
    operator.hangup()
    second = start_node(directory, PROVISIONING, rtp_ports=(37000, 37499), extra_env=environment)
    try:
        row = _rows(second)[-1]
        assert row[1] == "incomplete", row
        assert not any(".parts/" in name for name in _objects(s3_server, bucket))
        reader, path = _open_object(s3_server, bucket, second, row, tmp_path)
        assert not reader.complete
        started = datetime.fromisoformat(str(row[6]))
        started = started if started.tzinfo else started.replace(tzinfo=UTC)
        recorded_s = reader.duration_samples / RATE
        lost_s = (killed_at - started).total_seconds() - recorded_s
        assert 0.0 <= lost_s < 2.0, (recorded_s, lost_s)
        assert tone_snr_db(reader.pcm("customer")[RATE:], RATE, 440, [880]) > 30.0
        assert SignedManifest.load(path).fields()["complete"] is False
    finally:
        assert second.stop() == 0, second.log()
