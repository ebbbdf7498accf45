"""Playback checks the manifest's Ed25519 signature before a byte is served (through the API:
`POST /api/v1/recordings/{id}/play`, then `GET /api/v1/playback/{token}`).

A manifest edited with its chunk digests kept as they are (so the chunk-by-chunk check alone
would pass), one signed with another node's key, one without its signature and a genuine
manifest of another recording put in its place are each refused like any corruption: 409
`recording_corrupted` before any audio, the `recording.corrupted` alert; other recordings play
on, and the recording plays again once its own signed manifest is back. A manifest the
catalogue recorded at close that is deleted, or replaced by another one this node signed, is
refused the same way."""

from __future__ import annotations

import json
import shutil
import wave
from io import BytesIO
from pathlib import Path

import httpx

from callwarden.recording.catalogue_events import RecordingIntegrityAlert
from callwarden.recording.container import canonical_json
from callwarden.recording.keyring import WrappedKey
from callwarden.recording.manifest import SignedManifest, manifest_paths, seal_manifest
from callwarden.recording.models import Recording
from callwarden.recording.signing import NodeSigningKey
from web.conftest import clock, database, env, password_policy, web_template
from web.recording_support import RecordingWorld
from web.support import Env

__all__ = ["clock", "database", "env", "password_policy", "web_template"]  # fixtures, by name

SIGNATURE_FAILS = "manifest signature does not verify (altered, or signed by another key)"


def world_of(env: Env) -> RecordingWorld:
    assert env.recordings is not None
    return env.recordings


async def stream(client: httpx.AsyncClient, recording: Recording) -> httpx.Response:
    """Ask for a playback link (audited, with a reason) and fetch the whole WAV."""
    granted = await client.post(
        f"/api/v1/recordings/{recording.id}/play", json={"reason": "dispute #5", "mode": "stereo"}
    )
    assert granted.status_code == 200, granted.text
    return await client.get(granted.json()["stream_url"])


def assert_refused(response: httpx.Response, world: RecordingWorld, reason: str) -> None:
    """409 `recording_corrupted` (a JSON error, no audio) and one alert naming `reason`."""
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error_id"] == "recording_corrupted"
    alert = world.alerts[-1]
    assert isinstance(alert, RecordingIntegrityAlert)
    assert alert.reason == reason


def data_key(world: RecordingWorld, recording: Recording) -> bytes:
    assert recording.kek_id is not None and recording.wrapped_key is not None
    wrapped = WrappedKey(recording.kek_id, recording.wrapped_key)
    return world.sealer.keyring.unwrap(wrapped, recording.id)


def forge(path: Path, **changes: object) -> None:
    """Edit the manifest beside `path` (canonical JSON again), keeping its old signature and
    every chunk digest: only the signature can tell."""
    body_path, _ = manifest_paths(path)
    fields = json.loads(body_path.read_bytes())
    fields.update(changes)
    body_path.write_bytes(canonical_json(fields))


async def test_a_manifest_whose_signature_fails_is_refused_before_any_byte(env: Env) -> None:
    world = world_of(env)
    north, south = world.by_team["north"], world.by_team["south"]
    world.seal_manifest(north)
    world.seal_manifest(south)
    path = world.file(north)
    body_path, signature_path = manifest_paths(path)
    genuine = SignedManifest.load(path)
    session = env.sign_in_directly("auditor")
    async with env.client(session) as client:
        played = await stream(client, north)
        assert played.status_code == 200
        with wave.open(BytesIO(played.content)) as parsed:
            assert (parsed.getnchannels(), parsed.getnframes()) == (2, 8000)
        assert world.alerts == []

        # Edited: the chunk digests kept (the chunks all match them), the signature broken.
        forge(path, complete=False, call={"call_id": "another call"})
        assert (
            json.loads(body_path.read_bytes())["chunk_sha256"] == (genuine.fields()["chunk_sha256"])
        )
        assert_refused(await stream(client, north), world, SIGNATURE_FAILS)

        # A genuine manifest of this very file, but signed with another node's key.
        other_node = NodeSigningKey.generate()
        key = data_key(world, north)
        seal_manifest(path, north.id, key, other_node, sealed_at=north.started_at, call={})
        assert_refused(await stream(client, north), world, SIGNATURE_FAILS)

        # The signature removed.
        genuine.save(path)
        signature_path.unlink()
        assert_refused(await stream(client, north), world, "the manifest's signature is missing")

        # Another recording's manifest, signed by this node, put in its place.
        for mine, theirs in zip(
            manifest_paths(path), manifest_paths(world.file(south)), strict=True
        ):
            shutil.copy(theirs, mine)
        assert_refused(
            await stream(client, north), world, "manifest is for another recording or format"
        )
        assert len(world.alerts) == 4
        assert {alert.recording_id for alert in world.alerts} == {north.id}  # type: ignore[attr-defined]

        # The other recording plays on; this one plays again with its own manifest back.
        assert (await stream(client, south)).status_code == 200
        genuine.save(path)
        again = await stream(client, north)
        assert again.status_code == 200 and again.content == played.content
    assert len(world.alerts) == 4


async def test_a_deleted_or_replaced_manifest_is_refused_when_the_catalogue_records_one(
    env: Env,
) -> None:
    """The catalogue keeps the SHA-256 of the manifest signed at close: with the manifest
    deleted the recording is not played from the whole file as if it had never had one, and a
    manifest signed again by this node for the same file (a later, different one) is not the
    one recorded either. A recording closed without a manifest still plays."""
    world = world_of(env)
    north, south = world.by_team["north"], world.by_team["south"]
    world.seal_manifest(north)
    path = world.file(north)
    genuine = SignedManifest.load(path)
    session = env.sign_in_directly("auditor")
    async with env.client(session) as client:
        played = await stream(client, north)
        assert played.status_code == 200

        for manifest in manifest_paths(path):
            manifest.unlink()
        assert_refused(
            await stream(client, north),
            world,
            "the signed manifest is missing (the catalogue records one)",
        )

        # Signed by this very node, for this file, but not the manifest sealed at close.
        signing = NodeSigningKey.load_or_create(world.signing_key_path)
        key = data_key(world, north)
        seal_manifest(path, north.id, key, signing, sealed_at=north.started_at, call={})
        assert_refused(
            await stream(client, north), world, "manifest is not the one the catalogue recorded"
        )
        assert {alert.recording_id for alert in world.alerts} == {north.id}  # type: ignore[attr-defined]

        # South never had a manifest (closed with "manifest not written"): it plays, the
        # whole file authenticated.
        assert (await stream(client, south)).status_code == 200
        genuine.save(path)
        again = await stream(client, north)
        assert again.status_code == 200 and again.content == played.content
    assert len(world.alerts) == 2
