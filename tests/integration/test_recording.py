"""Recording of queue calls through a real node (media in its worker process), with independent
phones (pjsua2): the customer plays 440 Hz, the operator 880 Hz; the sealed recording, opened
with its unwrapped data key, has each tone on its own track and nothing of the other, lasts as
long as the call (its CDR) within 100 ms, and a pause keyed by the operator (``*1`` ... ``*2``)
leaves nothing at all in the paused stretch. A node killed with SIGKILL mid-call leaves a
recording that the restarted node closes as incomplete, playable up to less than 2 s before
the kill. A recording directory that fills up (a small tmpfs) fails the recording, not the call.

The module's node serves the first two tests; the supervisor test comes before the crash test
because pjsua holds at most 4 calls per process and calls to a killed node linger until their
BYE times out.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from audio import read_wav, tone_snr_db
from node import Node, start_node
from phones import MediaState, Phone, PhoneBook, PhoneCall

from callwarden.recording.keyring import FileKeyRing, WrappedKey
from callwarden.recording.manifest import SignedManifest
from callwarden.recording.reader import SealedReader
from callwarden.recording.storage import LocalStorage

PASSWORD = "recording-test-sip-secret"
RATE = 8000
SETTLE_S = 0.3


PROVISIONING = (
    "teams: [{name: support}]\nusers:\n"
    + "".join(
        f"  - {{username: {name}, role: operator, team: support, extension: '{ext}',"
        f" sip_password: {PASSWORD}}}\n"
        for name, ext in (("cust1", "1101"), ("ann", "2101"))
    )
    + f"  - {{username: sue, role: supervisor, team: support, extension: '3101',"
    f" sip_password: {PASSWORD}}}\n"
    + "queues:\n  - {name: rec, number: '5101', team: support, members: [ann],"
    " wrap_up_seconds: 1, recording: all}\n"
)


ENV = {"CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000", "CALLWARDEN_ACD_AUTO_SIGN_IN": "true"}


@dataclass
class Opened:
    reader: SealedReader
    status: str
    duration_ms: int | None
    started_at: datetime
    failure: str | None
    path: Path


def _rows(node: Node) -> list[tuple[str, ...]]:
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        return db.execute(
            "SELECT id, status, storage_key, kek_id, wrapped_key, duration_ms, started_at,"
            " failure_reason FROM recordings ORDER BY started_at"
        ).fetchall()


def _open(node: Node, row: tuple[str, ...]) -> Opened:
    recording_id, status, key, kek_id, wrapped, duration_ms, started_at, failure = row
    data_key = FileKeyRing.for_data_dir(node.data_dir).unwrap(
        WrappedKey(str(kek_id), bytes(wrapped)),
        str(recording_id),  # type: ignore[arg-type]
    )
    path = LocalStorage.for_data_dir(node.data_dir).path_for_writing(str(key))
    started = datetime.fromisoformat(str(started_at))
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return Opened(
        SealedReader.open(path, str(recording_id), data_key),
        str(status),
        int(duration_ms) if duration_ms is not None else None,  # type: ignore[arg-type]
        started,
        str(failure) if failure is not None else None,
        path,
    )


def _cdr_talk_seconds(node: Node) -> float | None:
    """The operator's leg of the latest queue call's CDR, answered to ended: the conversation
    as the node saw it, from the operator's 200 to the BYE (None until the CDR is written)."""
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        row = db.execute(
            "SELECT l.answered_at, l.ended_at FROM cdr_legs l JOIN cdrs c ON c.id = l.cdr_id"
            " WHERE c.route_kind = 'queue' AND l.role = 'callee' ORDER BY c.id DESC LIMIT 1"
        ).fetchone()
    if row is None:
        return None
    return (datetime.fromisoformat(row[1]) - datetime.fromisoformat(row[0])).total_seconds()


def _children(pid: int) -> list[int]:
    """The node's child processes (its media workers, its CDR writer)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()]


def _phone(phones: PhoneBook, node: Node, name: str, **options: object) -> Phone:
    phone = phones.create(name, password=PASSWORD, registrar=node.registrar, **options)  # type: ignore[arg-type]
    assert phone.register() == 200
    return phone


def _connect(phones: PhoneBook, node: Node, tones: dict[int, Path]) -> tuple[PhoneCall, PhoneCall]:
    """Customer (440 Hz) calls the queue; the operator (880 Hz) answers."""
    agent = _phone(phones, node, "ann", answer_code=None)
    agent.play(tones[880])
    customer = _phone(phones, node, "cust1")
    customer.play(tones[440])
    call = customer.dial("5101")
    call.wait_confirmed()
    ringing = agent.wait_incoming()
    ringing.answer(200)
    ringing.wait_media(MediaState.ACTIVE)
    return call, ringing


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = start_node(
        tmp_path_factory.mktemp("recording-node"),
        PROVISIONING,
        rtp_ports=(38000, 38499),
        extra_env=ENV,
    )
    yield started
    code = started.stop()
    assert code == 0, started.log()


@pytest.mark.integration
def test_tracks_hold_their_own_tone_length_matches_and_pause_is_empty(
    phones: PhoneBook, node: Node, tones: dict[int, Path]
) -> None:
    call, operator = _connect(phones, node, tones)
    phones.run_for(2.0)
    operator.send_dtmf("*1")  # pause (card data)
    phones.run_for(2.0)
    operator.send_dtmf("*2")  # resume
    phones.run_for(1.5)
    call.hangup()
    call.wait_disconnected()
    operator.wait_disconnected()
    phones.wait_until(
        lambda: bool(_rows(node)) and _rows(node)[-1][1] != "recording", 10.0, "the closed row"
    )
    opened = _open(node, _rows(node)[-1])
    reader = opened.reader
    assert opened.status == "complete" and reader.complete, opened.failure
    # Length: the call as the node saw it (answered to ended, the CDR) within 100 ms.
    phones.wait_until(lambda: _cdr_talk_seconds(node) is not None, 10.0, "the call's CDR")
    talk_s = _cdr_talk_seconds(node)
    assert talk_s is not None and abs(reader.duration_samples / RATE - talk_s) < 0.1
    assert opened.duration_ms == reader.duration_samples * 1000 // RATE
    [pause] = reader.pauses
    assert pause.end is not None and 1.5 < (pause.end - pause.start) / RATE < 2.6
    customer, agent = reader.pcm("customer"), reader.pcm("operator")
    talk = slice(round(SETTLE_S * RATE), pause.start)
    assert tone_snr_db(customer[talk], RATE, 440, [880]) > 30.0
    assert tone_snr_db(agent[talk], RATE, 880, [440]) > 30.0
    # Nothing of the other party: each tone is far below its own track's tone.
    assert tone_snr_db(customer[talk], RATE, 880, [440]) < 10.0
    assert tone_snr_db(agent[talk], RATE, 440, [880]) < 10.0
    # The paused stretch holds no audio at all (not stored: the reader gives zeros).
    assert not customer[pause.start : pause.end].any()
    assert not agent[pause.start : pause.end].any()
    after = slice(pause.end + round(SETTLE_S * RATE), None)
    assert tone_snr_db(customer[after], RATE, 440, [880]) > 30.0
    # The manifest beside the file, and no digit of the feature codes in the node's log.
    assert SignedManifest.load(opened.path).fields()["recording_id"] == reader.recording_id
    assert re.search(r"DTMF\W+[0-9*#]", node.log()) is None
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        (pauses,) = db.execute("SELECT count(*) FROM recording_pauses").fetchone()
    assert pauses == 1


@pytest.mark.integration
def test_a_whispering_supervisor_is_a_track_of_its_own(
    phones: PhoneBook, node: Node, tones: dict[int, Path]
) -> None:
    call, operator = _connect(phones, node, tones)
    supervisor = _phone(phones, node, "sue")
    supervisor.play(tones[1300])
    phones.run_for(1.0)
    whisper = supervisor.dial("*922101")  # whisper to ann (monitoring's feature code)
    whisper.wait_confirmed()
    phones.run_for(2.5)
    call.hangup()
    call.wait_disconnected()
    operator.wait_disconnected()
    whisper.wait_disconnected()
    phones.wait_until(lambda: _rows(node)[-1][1] != "recording", 10.0, "the closed row")
    opened = _open(node, _rows(node)[-1])
    reader = opened.reader
    assert "supervisor" in reader.tracks and opened.status == "complete"
    supervisor_track = reader.pcm("supervisor")
    joined = next(i for i in range(0, len(supervisor_track), 160) if supervisor_track[i:].any())
    heard = slice(joined + round(SETTLE_S * RATE), None)
    assert tone_snr_db(supervisor_track[heard], RATE, 1300, [440, 880]) > 30.0
    # Each party's track holds that party only: no whisper on the customer's or operator's.
    for track, own in (("customer", 440), ("operator", 880)):
        samples = reader.pcm(track)[heard]
        assert tone_snr_db(samples, RATE, own, [1300]) > 30.0
        assert tone_snr_db(samples, RATE, 1300, [440, 880]) < 10.0
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        (monitored,) = db.execute(
            "SELECT monitored FROM recordings WHERE id = ?", (reader.recording_id,)
        ).fetchone()
    assert monitored


@pytest.mark.integration
def test_sigkill_mid_call_leaves_a_recording_closed_incomplete_at_restart(
    phones: PhoneBook, tmp_path: Path, tones: dict[int, Path]
) -> None:
    directory = tmp_path / "crash"
    directory.mkdir()
    first = start_node(directory, PROVISIONING, rtp_ports=(38500, 38999), extra_env=ENV)
    try:
        call, operator = _connect(phones, first, tones)
        phones.run_for(4.3)
        # SIGKILL to the node and its media worker (where the recording is written), as in a
        # power loss: nobody gets to write a trailer or flush what is still in memory.
        for pid in (*_children(first.process.pid), first.process.pid):
            os.kill(pid, signal.SIGKILL)
        killed_at = datetime.now(UTC)
        first.process.wait()
    finally:
        if first.process.poll() is None:
            first.process.kill()
    assert [row[1] for row in _rows(first)] == ["recording"]
    call.hangup()
    operator.hangup()
    second = start_node(directory, PROVISIONING, rtp_ports=(38500, 38999), extra_env=ENV)
    try:
        [row] = _rows(second)
        opened = _open(second, row)
        assert opened.status == "incomplete" and not opened.reader.complete
        recorded_s = opened.reader.duration_samples / RATE
        lost_s = (killed_at - opened.started_at).total_seconds() - recorded_s
        assert 0.0 <= lost_s < 2.0, (recorded_s, lost_s)
        assert tone_snr_db(opened.reader.pcm("customer")[RATE:], RATE, 440, [880]) > 30.0
        assert SignedManifest.load(opened.path).fields()["complete"] is False
    finally:
        assert second.stop() == 0, second.log()


@pytest.mark.integration
def test_full_disk_fails_the_recording_not_the_call(
    phones: PhoneBook, tmp_path: Path, tones: dict[int, Path]
) -> None:
    directory = tmp_path / "full"
    recordings = directory / "data" / "recordings"
    recordings.mkdir(parents=True)
    # ~2.5 s of two µ-law tracks: the sealed file fills it up during the call.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(recordings)], check=True)
    try:
        node = start_node(directory, PROVISIONING, rtp_ports=(39000, 39499), extra_env=ENV)
        try:
            call, operator = _connect(phones, node, tones)
            phones.wait_until(lambda: "No space left" in node.log(), 15.0, "the disk to fill")
            heard = phones.wav("after-full")
            operator.record(heard)
            phones.run_for(1.0)
            wav = read_wav(operator.stop_recording())
            assert tone_snr_db(wav.between(SETTLE_S), wav.rate, 440, [880]) > 30.0  # call goes on
            call.hangup()
            operator.wait_disconnected()
            phones.wait_until(
                lambda: _rows(node)[-1][1] != "recording", 10.0, "the recording closed"
            )
            opened = _open(node, _rows(node)[-1])
            assert opened.status == "incomplete"
            assert opened.reader.duration_samples > RATE  # what was written stays readable
            # The alert (a RecordingFailed event on the bus) is logged with its reason.
            assert re.search(r"recording \w+ failed: .*No space left", node.log())
        finally:
            assert node.stop() == 0, node.log()
    finally:
        subprocess.run(["umount", str(recordings)], check=True)
