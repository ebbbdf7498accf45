"""`POST /api/v1/recordings/{id}/verify` (`callwarden.web.recordings.verify`): the manifest
check of `callwarden recording verify` for whoever may play the recording, over real sealed
files and signed manifests; every check is audited with its outcome. Who may call it is walked
by the access matrix (tests/web/test_access_matrix.py, test_recordings_api.py)."""

from __future__ import annotations

from datetime import timedelta

from callwarden.recording.keyring import WrappedKey
from callwarden.recording.manifest import SignedManifest, seal_manifest
from callwarden.recording.models import Recording
from callwarden.recording.signing import NodeSigningKey
from web.recording_support import RecordingWorld
from web.support import Env

MONITORING = {
    "monitoring_id": "m-1",
    "supervisor_id": 7,
    "via": "web",
    "started_at": "2026-12-01T08:30:00.200000+00:00",
    "ended_at": "2026-12-01T08:30:00.700000+00:00",
    "end_cause": "stopped",
    "modes": [{"mode": "listen", "from": "2026-12-01T08:30:00.200000+00:00"}],
}


def world_of(env: Env) -> RecordingWorld:
    assert env.recordings is not None
    return env.recordings


def sealed(env: Env, username: str = "colleague") -> Recording:
    world = world_of(env)
    made = world.make(env.user(username), env.clock.now() - timedelta(minutes=30), seconds=1.0)
    world.seal_manifest(made, (MONITORING,))
    return made


async def verify(env: Env, username: str, recording: Recording) -> tuple[int, dict[str, object]]:
    async with env.client(env.sign_in_directly(username)) as client:
        response = await client.post(f"/api/v1/recordings/{recording.id}/verify")
    return response.status_code, response.json()


async def test_a_sealed_recording_verifies_and_the_check_is_audited(env: Env) -> None:
    made = sealed(env)
    status, body = await verify(env, "auditor", made)
    assert status == 200, body
    assert body["verified"] is True and body["error"] is None
    assert body["checks"] == [
        "signature",
        "catalogue digest",
        "chunks authenticate and decrypt",
        "chunk digests",
        "file digest",
        "completeness",
        "audio digests",
    ]
    assert body["complete"] is True and body["duration_seconds"] == 1.0
    assert body["file_sha256"] == world_of(env).file_sha256(made)
    sessions = body["monitoring_sessions"]
    assert isinstance(sessions, list) and len(sessions) == 1
    assert sessions[0]["supervisor_id"] == 7 and sessions[0]["modes"] == ["listen"]
    assert ("recording.verify", "success", made.id) in env.audit_actions()
    assert env.audit_details("recording.verify")[-1]["verified"] is True


async def test_an_altered_file_fails_the_check_without_naming_a_path(env: Env) -> None:
    made = sealed(env)
    path = world_of(env).file(made)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    status, body = await verify(env, "supervisor", made)  # the supervisor's team: north
    assert status == 200, body
    assert body["verified"] is False and body["checks"] == []
    assert isinstance(body["error"], str) and body["error"]
    assert str(path.parent) not in str(body)
    assert ("recording.verify", "failed", made.id) in env.audit_actions()
    assert env.audit_details("recording.verify")[-1]["error"] == body["error"]


async def test_a_recording_without_its_manifest_does_not_verify(env: Env) -> None:
    north = world_of(env).by_team["north"]  # sealed without a manifest
    status, body = await verify(env, "auditor", north)
    assert status == 200
    assert body["verified"] is False
    assert body["error"] == "the signed manifest is missing"
    assert str(world_of(env).storage.root) not in str(body)


async def test_a_manifest_signed_by_another_key_does_not_verify(env: Env) -> None:
    made = sealed(env)
    world = world_of(env)
    world.signing_key_path.unlink()  # the node's key is replaced: its signature is not ours
    world.seal_manifest(made)
    world.signing_key_path.unlink()
    world.seal_manifest(sealed(env))  # a third key is now the node's
    status, body = await verify(env, "auditor", made)
    assert status == 200
    assert body["verified"] is False
    assert "signature" in str(body["error"])


async def test_another_teams_recording_is_not_found_and_nothing_is_checked(env: Env) -> None:
    south = sealed(env, "stranger")
    status, body = await verify(env, "supervisor", south)
    assert status == 404 and body["error_id"] == "not_found"
    status, body = await verify(env, "operator", south)
    assert status in (403, 404)
    assert not [a for a in env.audit_actions() if a[0] == "recording.verify"]


async def test_a_manifest_other_than_the_catalogued_one_does_not_verify(env: Env) -> None:
    """Signed by this very node for this file, but not the manifest whose digest the catalogue
    recorded at close: the check against the catalogue fails it."""
    made = sealed(env)
    world = world_of(env)
    path = world.file(made)
    catalogued = SignedManifest.load(path)
    assert made.kek_id is not None and made.wrapped_key is not None
    wrapped = WrappedKey(made.kek_id, made.wrapped_key)
    seal_manifest(
        path,
        made.id,
        world.sealer.keyring.unwrap(wrapped, made.id),
        NodeSigningKey.load_or_create(world.signing_key_path),
        sealed_at=env.clock.now(),
        call={"call_id": "another"},
    )
    status, body = await verify(env, "auditor", made)
    assert status == 200
    assert body["verified"] is False
    assert body["error"] == "manifest is not the one the catalogue recorded"
    catalogued.save(path)
    status, body = await verify(env, "auditor", made)
    assert body["verified"] is True, body
