"""The recording routes over HTTP: the access matrix of every recording route for every role,
playback with a reason, ranges, downloads with a watermark, holds and deletion, each in the
audit trail."""

from __future__ import annotations

import io
import wave
from collections import Counter
from datetime import timedelta

import httpx
import numpy as np
import pytest
import soundfile  # type: ignore[import-untyped]

from callwarden.recording.models import Recording, RecordingStatus
from callwarden.security.sessions import IssuedSession
from web import matrix
from web.recording_support import RecordingWorld
from web.support import Env

PREFIXES = (
    "/api/v1/recordings",
    "/api/v1/playback",
    "/api/v1/legal-holds",
    "/api/v1/retention-policies",
)


def recordings_of(env: Env) -> RecordingWorld:
    assert env.recordings is not None
    return env.recordings


def keeper_session(env: Env) -> IssuedSession:
    """`keeper` (web/support.py) may download and delete their team's recordings and hold
    any, which no built-in role may."""
    return env.sign_in_directly("keeper")


async def test_every_recording_route_answers_as_the_policy_says(env: Env) -> None:
    failures: list[str] = []
    seen: Counter[str] = Counter()
    cases = [case for case in matrix.cases(env.app) if case.path_template.startswith(PREFIXES)]
    assert len({case.path_template for case in cases}) == 14  # with POST {id}/verify
    for case in cases:
        parameter = matrix._path_parameter(case.route)
        session = matrix.session_for(env, case.caller)
        value = None
        if parameter is not None:
            value = matrix.path_value(env, parameter, case.placement, None)
        path_params = {} if parameter is None else {parameter: str(value)}
        want = matrix.expected(env, case, path_params)
        seen[str(want)] += 1
        path = matrix.fill(case.path_template, parameter, value)
        status, error_id = await matrix.send(env, case, session, path)
        if not want.met_by(status, error_id):
            failures.append(f"{case}: expected {want}, got {status} {error_id}")
    assert not failures, "\n".join(failures)
    for outcome in ("2xx", "404 not_found", "403 forbidden", "401 unauthenticated"):
        assert seen[outcome] >= 3, (outcome, seen)


async def play(client: httpx.AsyncClient, recording: Recording, **body: object) -> httpx.Response:
    return await client.post(f"/api/v1/recordings/{recording.id}/play", json=body)


async def test_play_needs_a_reason_and_is_audited(env: Env) -> None:
    north = recordings_of(env).by_team["north"]
    session = env.sign_in_directly("supervisor")
    async with env.client(session) as client:
        for body in ({}, {"reason": ""}, {"reason": "   "}):
            refused = await play(client, north, **body)
            assert refused.status_code == 422, refused.text
        assert not [a for a in env.audit_actions() if a[0] == "recording.play"]
        granted = await play(client, north, reason="dispute #123", mode="stereo")
        assert granted.status_code == 200, granted.text
    plays = [a for a in env.audit_actions() if a[0] == "recording.play"]
    assert plays == [("recording.play", "success", north.id)]
    assert env.audit_details("recording.play")[0]["mode"] == "stereo"


async def test_other_teams_recordings_are_not_found(env: Env) -> None:
    south = recordings_of(env).by_team["south"]
    session = env.sign_in_directly("supervisor")
    async with env.client(session) as client:
        for response in (
            await client.get(f"/api/v1/recordings/{south.id}"),
            await play(client, south, reason="curious"),
            await client.get("/api/v1/recordings/" + "0" * 32),
        ):
            assert response.status_code == 404
            assert response.json()["error_id"] == "not_found"
        listed = await client.get("/api/v1/recordings")
    assert [item["id"] for item in listed.json()["items"]] == [
        recordings_of(env).by_team["north"].id
    ]
    assert ("permission.denied", "denied", south.id) in env.audit_actions()


async def test_stream_whole_and_ranges(env: Env) -> None:
    north = recordings_of(env).by_team["north"]
    session = env.sign_in_directly("auditor")
    async with env.client(session) as client:
        grant = (await play(client, north, reason="QA", mode="stereo")).json()
        whole = await client.get(grant["stream_url"])
        assert whole.status_code == 200
        assert whole.headers["content-type"] == "audio/wav"
        assert whole.headers["accept-ranges"] == "bytes"
        assert int(whole.headers["content-length"]) == len(whole.content)
        with wave.open(io.BytesIO(whole.content)) as parsed:
            assert (parsed.getnchannels(), parsed.getnframes()) == (2, 8000)
        size = len(whole.content)
        for header, first, last in (
            ("bytes=0-99", 0, 99),
            ("bytes=1001-20000", 1001, 20000),
            ("bytes=-10", size - 10, size - 1),
            (f"bytes={size - 5}-", size - 5, size - 1),
        ):
            part = await client.get(grant["stream_url"], headers={"Range": header})
            assert part.status_code == 206, header
            assert part.headers["content-range"] == f"bytes {first}-{last}/{size}"
            assert part.content == whole.content[first : last + 1]
        beyond = await client.get(grant["stream_url"], headers={"Range": f"bytes={size}-"})
        assert beyond.status_code == 416
        assert beyond.headers["content-range"] == f"bytes */{size}"
        shape = await client.get(grant["waveform_url"], params={"buckets": 20})
        assert shape.status_code == 200 and len(shape.json()["maximum"]) == 20
    # The link is this session's only, and expires.
    other = env.sign_in_directly("auditor")
    async with env.client(other) as client:
        stolen = await client.get(grant["stream_url"])
        assert (stolen.status_code, stolen.json()["error_id"]) == (404, "playback_grant_not_found")
    env.clock.advance(minutes=16)
    async with env.client(session) as client:
        late = await client.get(grant["stream_url"])
        assert late.status_code == 404
    async with env.client(None) as client:
        assert (await client.get(grant["stream_url"])).status_code == 401


async def test_download_is_watermarked_and_audited(env: Env) -> None:
    north = recordings_of(env).by_team["north"]
    supervisor = env.sign_in_directly("supervisor")
    async with env.client(supervisor) as client:
        refused = await client.post(f"/api/v1/recordings/{north.id}/download", json={"reason": "x"})
        assert refused.status_code == 403
    keeper = keeper_session(env)
    async with env.client(keeper) as client:
        no_reason = await client.post(f"/api/v1/recordings/{north.id}/download", json={})
        assert no_reason.status_code == 422
        response = await client.post(
            f"/api/v1/recordings/{north.id}/download",
            json={"reason": "court order 42", "mode": "track", "track": "customer"},
        )
    assert response.status_code == 200, response.text
    assert f"recording-{north.id}.wav" in response.headers["content-disposition"]
    data = response.content
    assert b"LIST" in data and b"INFO" in data
    stamp = env.clock.now().isoformat()
    assert f"downloaded by keeper (user {env.user('keeper').id}) at {stamp}".encode() in data
    assert b"court order 42" in data
    with wave.open(io.BytesIO(data)) as parsed:
        assert parsed.getnchannels() == 1 and parsed.getnframes() == 8000
    downloads = [a for a in env.audit_actions() if a[0] == "recording.download"]
    assert downloads == [("recording.download", "success", north.id)]


async def test_a_flac_download_is_watermarked_in_its_tags_and_audited(env: Env) -> None:
    north = recordings_of(env).by_team["north"]
    keeper = keeper_session(env)
    async with env.client(keeper) as client:
        wrong = await client.post(
            f"/api/v1/recordings/{north.id}/download",
            json={"reason": "court order 43", "format": "mp3"},
        )
        assert wrong.status_code == 422
        response = await client.post(
            f"/api/v1/recordings/{north.id}/download",
            json={"reason": "court order 43", "mode": "stereo", "format": "flac"},
        )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/flac"
    assert f"recording-{north.id}.flac" in response.headers["content-disposition"]
    with soundfile.SoundFile(io.BytesIO(response.content)) as decoded:
        assert (decoded.format, decoded.channels, decoded.samplerate) == ("FLAC", 2, 8000)
        comment, title = decoded.comment, decoded.title
        frames = decoded.read(dtype="int16", always_2d=True)
    stamp = env.clock.now().isoformat()
    assert comment == (
        f"downloaded by keeper (user {env.user('keeper').id}) at {stamp}; reason: court order 43"
    )
    assert title == f"callwarden recording {north.id}"
    assert frames.shape == (8000, 2)
    spectrum = np.abs(np.fft.rfft(frames.astype(np.float64), axis=0))
    bins = np.fft.rfftfreq(8000, 1 / 8000)
    assert [bins[int(np.argmax(spectrum[:, channel]))] for channel in (0, 1)] == [440.0, 880.0]
    assert env.audit_details("recording.download")[-1]["format"] == "flac"


async def test_holds_block_deletion_and_everything_is_audited(env: Env) -> None:
    world = recordings_of(env)
    north = world.by_team["north"]
    keeper = keeper_session(env)
    async with env.client(keeper) as client:
        base = f"/api/v1/recordings/{north.id}"
        held = await client.post(f"{base}/holds", json={"reason": "dispute #7"})
        assert held.status_code == 201, held.text
        no_reason = await client.request("DELETE", base, json={})
        assert no_reason.status_code == 422
        blocked = await client.request("DELETE", base, json={"reason": "erasure request"})
        assert blocked.status_code == 409
        assert blocked.json()["error_id"] == "recording_on_legal_hold"
        assert world.file(north).exists()
        listed = await client.get("/api/v1/legal-holds")
        assert [h["id"] for h in listed.json()["items"]] == [held.json()["id"]]
        released = await client.post(
            "/api/v1/legal-holds/release",
            json={"hold_id": held.json()["id"], "reason": "settled"},
        )
        assert released.status_code == 200 and released.json()["released_at"] is not None
        deleted = await client.request("DELETE", base, json={"reason": "erasure request"})
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["rule"] == "manual"
        after = await client.get(base)
        assert after.json()["status"] == RecordingStatus.PURGED.value
        replay = await play(client, north, reason="again")
        assert replay.json()["error_id"] == "recording_not_playable"
        # Deleting is held at team scope: another team's recording (visible to the keeper,
        # who may play all) is forbidden, and stays.
        south = world.by_team["south"]
        refused = await client.request(
            "DELETE", f"/api/v1/recordings/{south.id}", json={"reason": "x"}
        )
        assert refused.status_code == 403
        assert world.file(south).exists()
    assert not world.file(north).exists()
    actions = [(a[0], a[2]) for a in env.audit_actions() if a[0].startswith("recording.")]
    assert actions == [
        ("recording.hold", north.id),
        ("recording.release", north.id),
        ("recording.delete", north.id),
    ]
    assert env.audit_details("recording.delete")[0]["key_destroyed"] is True


async def test_search_filters_tags_notes_and_policies(env: Env) -> None:
    world = recordings_of(env)
    later = world.make(env.user("colleague"), env.clock.now() - timedelta(minutes=5), seconds=0.5)
    session = env.sign_in_directly("supervisor")
    async with env.client(session) as client:
        tagged = await client.put(
            f"/api/v1/recordings/{later.id}/tags", json={"tag": "training example"}
        )
        assert tagged.json()["tags"] == ["training example"]
        note = await client.post(
            f"/api/v1/recordings/{later.id}/notes", json={"text": "nice close"}
        )
        assert note.status_code == 201
        found = await client.get("/api/v1/recordings", params={"tag": "training example"})
        assert [item["id"] for item in found.json()["items"]] == [later.id]
        by_operator = await client.get(
            "/api/v1/recordings", params={"operator_id": env.user("operator").id}
        )
        assert [item["id"] for item in by_operator.json()["items"]] == [world.by_team["north"].id]
        page = await client.get("/api/v1/recordings", params={"limit": 1})
        assert page.json()["next_cursor"] is not None
        rest = await client.get(
            "/api/v1/recordings", params={"limit": 1, "cursor": page.json()["next_cursor"]}
        )
        assert [i["id"] for i in page.json()["items"] + rest.json()["items"]] == [
            later.id,
            world.by_team["north"].id,
        ]
        assert page.json()["items"][0]["caller_number"] == "+49 30 1234567"
        bad = await client.get("/api/v1/recordings", params={"cursor": "%%%"})
        assert bad.status_code == 422
    keeper = keeper_session(env)
    async with env.client(keeper) as client:
        response = await client.put(
            "/api/v1/retention-policies", json={"scope": "default", "days": 90}
        )
        assert response.json()["items"][0]["rule"] == "default:90d"
        invalid = await client.put("/api/v1/retention-policies", json={"scope": "team", "days": 90})
        assert invalid.status_code == 422


@pytest.mark.parametrize("bad", ["..%2F..%2Fetc%2Fpasswd", "ABC", "0" * 31, "g" * 32])
async def test_malformed_recording_ids_never_reach_the_files(env: Env, bad: str) -> None:
    session = env.sign_in_directly("auditor")
    async with env.client(session) as client:
        response = await client.get(f"/api/v1/recordings/{bad}")
    assert response.status_code in (404, 422)


async def test_a_purge_started_by_hand_reports_its_progress(env: Env) -> None:
    world = recordings_of(env)
    async with env.client(keeper_session(env)) as client:
        before = await client.get("/api/v1/retention-policies/purge")
        assert before.json()["running"] is False and before.json()["done"] is False
        await client.put("/api/v1/retention-policies", json={"scope": "default", "days": 1})
    env.clock.advance(days=2)  # (sessions do not last that long: sign in again)
    async with env.client(keeper_session(env)) as client:
        started = await client.post("/api/v1/retention-policies/purge")
        assert started.status_code == 202, started.text
        await world.runs.wait()
        after = (await client.get("/api/v1/retention-policies/purge")).json()
    assert after["done"] is True and after["running"] is False
    assert (after["examined"], after["purged"], after["held"]) == (2, 2, 0)
    assert all(not world.file(recording).exists() for recording in world.by_team.values())
    actions = [a[0] for a in env.audit_actions() if a[0].startswith("recording.")]
    assert actions == ["recording.purge_started", "recording.purge", "recording.purge"]
    supervisor = env.sign_in_directly("supervisor")
    async with env.client(supervisor) as client:
        refused = await client.post("/api/v1/retention-policies/purge")
    assert refused.status_code == 403
