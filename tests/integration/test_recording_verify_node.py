"""`POST /api/v1/recordings/{id}/verify` on a real node: a queue call between independent
phones (pjsua2) is recorded and sealed by the node's recorder with its signed manifest; an
auditor signed in to the node's API verifies it (the composition root's catalogue, key ring and
node key); the sealed file altered on disk then fails the check; both checks are audited."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from monitoring_api import ApiClient, audit_rows
from node import Node, start_node
from phones import MediaState, PhoneBook
from test_recording import _rows

from callwarden.recording.storage import LocalStorage

PASSWORD = "verify-node-sip-secret"
WEB_PASSWORD = "verify-node-web-password-1"
PROVISIONING = (
    "teams: [{name: north}]\nusers:\n"
    f"  - {{username: cust, role: operator, team: north, extension: '1301',"
    f" sip_password: {PASSWORD}, password: {WEB_PASSWORD}}}\n"
    f"  - {{username: op, role: operator, team: north, extension: '2301',"
    f" sip_password: {PASSWORD}, password: {WEB_PASSWORD}}}\n"
    f"  - {{username: checker, role: auditor, team: north, password: {WEB_PASSWORD}}}\n"
    "queues:\n  - {name: line, number: '5301', team: north, members: [op],"
    " wrap_up_seconds: 1, recording: all}\n"
)
ENV = {"CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000", "CALLWARDEN_ACD_AUTO_SIGN_IN": "true"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = start_node(
        tmp_path_factory.mktemp("verify-node"),
        PROVISIONING,
        rtp_ports=(37500, 37999),
        extra_env=ENV,
    )
    yield started
    code = started.stop()
    assert code == 0, started.log()


def _recorded_call(phones: PhoneBook, node: Node, tones: dict[int, Path]) -> tuple[str, str, float]:
    """cust calls the queue, op answers, they talk 2 s: (recording id, storage key, the wall
    time from the answer to both ends hung up: an upper bound of what was recorded)."""
    operator = phones.create("op", password=PASSWORD, registrar=node.registrar, answer_code=None)
    assert operator.register() == 200
    operator.play(tones[880])
    customer = phones.create("cust", password=PASSWORD, registrar=node.registrar)
    assert customer.register() == 200
    customer.play(tones[440])
    call = customer.dial("5301")
    ringing = operator.wait_incoming()
    ringing.answer(200)
    answered_at = time.monotonic()
    call.wait_confirmed()
    ringing.wait_media(MediaState.ACTIVE)
    phones.run_for(2.0)
    call.hangup()
    call.wait_disconnected()
    ringing.wait_disconnected()
    elapsed = time.monotonic() - answered_at
    phones.wait_until(
        lambda: bool(_rows(node)) and _rows(node)[-1][1] == "complete", 10.0, "the sealed row"
    )
    recording_id, _status, storage_key, *_rest = _rows(node)[-1]
    return str(recording_id), str(storage_key), elapsed


@pytest.mark.integration
def test_an_auditor_verifies_a_recorded_call_and_an_altered_file_fails(
    phones: PhoneBook, node: Node, tones: dict[int, Path]
) -> None:
    recording_id, storage_key, elapsed = _recorded_call(phones, node, tones)
    api = ApiClient(node, "checker", WEB_PASSWORD).sign_in()
    try:
        checked = api.request("POST", f"/api/v1/recordings/{recording_id}/verify")
        assert checked.status_code == 200, checked.text
        body = checked.json()
        assert body["verified"] is True, body
        assert "signature" in body["checks"] and "audio digests" in body["checks"]
        # The recorder recorded its manifest's digest in the catalogue at close.
        assert "catalogue digest" in body["checks"]
        # At least the 2 s talked; at most the call's wall time (longer on a loaded machine).
        assert 1.5 < body["duration_seconds"] < elapsed + 0.5, (body, elapsed)
        path = LocalStorage.for_data_dir(node.data_dir).path_for_writing(storage_key)
        data = bytearray(path.read_bytes())
        data[-20] ^= 0x01  # inside the last chunk's ciphertext or tag
        path.write_bytes(bytes(data))
        altered = api.request("POST", f"/api/v1/recordings/{recording_id}/verify")
        assert altered.status_code == 200, altered.text
        assert altered.json()["verified"] is False
        assert str(node.data_dir) not in altered.text
    finally:
        api.close()
    outcomes = [
        (actor, outcome, object_id)
        for actor, outcome, object_id, _ in audit_rows(node, "recording.verify")
    ]
    assert outcomes == [
        ("checker", "success", recording_id),
        ("checker", "failed", recording_id),
    ]
