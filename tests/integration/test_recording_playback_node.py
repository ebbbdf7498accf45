"""Playback on a real node checks the manifest's signature with the node's own key (the
composition root's wiring): a queue call between independent phones (pjsua2) is recorded and
sealed by the node's recorder; an auditor plays it through the API (stereo WAV: the customer's
440 Hz left, the operator's 880 Hz right); the manifest edited on disk, its chunk digests kept,
is then refused (409 `recording_corrupted`, no audio); with the manifest restored it plays
again, byte for byte."""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from audio import tone_snr_db
from monitoring_api import ApiClient
from node import Node, start_node
from phones import PhoneBook
from test_recording_verify_node import ENV, PROVISIONING, WEB_PASSWORD, _recorded_call

from callwarden.recording.container import canonical_json
from callwarden.recording.manifest import manifest_paths
from callwarden.recording.storage import LocalStorage


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    started = start_node(tmp_path, PROVISIONING, rtp_ports=(32800, 32999), extra_env=ENV)
    yield started
    assert started.stop() == 0, started.log()


def _play(api: ApiClient, recording_id: str) -> tuple[int, bytes, str]:
    granted = api.request(
        "POST",
        f"/api/v1/recordings/{recording_id}/play",
        {"reason": "dispute #5", "mode": "stereo"},
    )
    assert granted.status_code == 200, granted.text
    streamed = api.request("GET", granted.json()["stream_url"])
    return streamed.status_code, streamed.content, streamed.headers["content-type"]


@pytest.mark.integration
def test_playback_on_a_node_refuses_a_manifest_whose_signature_fails(
    phones: PhoneBook, node: Node, tones: dict[int, Path]
) -> None:
    recording_id, storage_key, _elapsed = _recorded_call(phones, node, tones)
    api = ApiClient(node, "checker", WEB_PASSWORD).sign_in()
    try:
        status, played, kind = _play(api, recording_id)
        assert (status, kind) == (200, "audio/wav")
        with wave.open(io.BytesIO(played)) as parsed:
            rate, channels = parsed.getframerate(), parsed.getnchannels()
            frames = np.frombuffer(parsed.readframes(parsed.getnframes()), "<i2")
        assert channels == 2 and len(frames) / 2 / rate > 1.5
        left, right = frames[0::2].astype(float), frames[1::2].astype(float)
        assert tone_snr_db(left, rate, 440, [880]) > 25
        assert tone_snr_db(right, rate, 880, [440]) > 25

        sealed = LocalStorage.for_data_dir(node.data_dir).path_for_writing(storage_key)
        body_path, _signature = manifest_paths(sealed)
        genuine = body_path.read_bytes()
        fields = json.loads(genuine)
        fields["complete"] = False  # edited; the chunk digests as they were
        body_path.write_bytes(canonical_json(fields))
        status, refused, kind = _play(api, recording_id)
        assert (status, kind) == (409, "application/json"), refused
        assert json.loads(refused)["error_id"] == "recording_corrupted"
        assert str(node.data_dir) not in refused.decode()

        body_path.write_bytes(genuine)
        status, again, _kind = _play(api, recording_id)
        assert status == 200 and again == played
    finally:
        api.close()
