"""The browser phones' codec preference and relay-only ICE as node settings: read, checked,
refused clearly, and honoured by the node's answer (an aiortc peer as the browser)."""

from __future__ import annotations

import fractions
from pathlib import Path

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import AudioStreamTrack
from av import AudioFrame

from callwarden.app import _ice_settings
from callwarden.config import ConfigError, Settings, load_settings
from callwarden.webrtc.audio import BridgeAudioTrack
from callwarden.webrtc.codecs import DEFAULT_CODECS, codec_preference
from callwarden.webrtc.opus import VoiceOpusEncoder
from callwarden.webrtc.peer import BrowserPeer, SignallingError
from callwarden.webrtc.phones import WebRtcSettings
from callwarden.webrtc.relay import RtpRelay
from callwarden.webrtc.turn import IceSettings

SECRET = b"0123456789abcdef-shared"


def test_the_codec_preference_from_the_environment_or_the_config_file(tmp_path: Path) -> None:
    assert load_settings(environ={}).webrtc_codecs == DEFAULT_CODECS == ("pcmu", "pcma", "opus")
    from_env = load_settings(environ={"CALLWARDEN_WEBRTC_CODECS": " Opus, PCMU "})
    assert from_env.webrtc_codecs == ("opus", "pcmu")
    config = tmp_path / "callwarden.yaml"
    config.write_text("webrtc_codecs: [pcma, opus]\n")
    assert load_settings(config_file=config, environ={}).webrtc_codecs == ("pcma", "opus")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "g729",
            r"webrtc_codecs: .*'g729' is not a browser phone codec \(one of pcmu, pcma, opus\)",
        ),
        ("opus,pcmu,OPUS", r"webrtc_codecs: .*codec 'opus' is listed twice"),
        (" , ", r"webrtc_codecs: .*at least one browser phone codec is needed"),
    ],
)
def test_unknown_or_repeated_codecs_stop_the_start(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ={"CALLWARDEN_WEBRTC_CODECS": value})


def test_the_phones_settings_check_their_codecs_too() -> None:
    assert WebRtcSettings(codecs=("OPUS",)).codecs == ("opus",)
    with pytest.raises(ValueError, match="'g722' is not a browser phone codec"):
        WebRtcSettings(codecs=("opus", "g722"))
    with pytest.raises(ValueError, match="'speex' is not"):
        codec_preference(["speex"])


def test_relay_only_needs_turn_and_reaches_the_page(tmp_path: Path) -> None:
    secret = tmp_path / "turn.secret"
    secret.write_bytes(SECRET + b"\n")
    settings = load_settings(
        environ={
            "CALLWARDEN_WEBRTC_TURN_URLS": "turn:127.0.0.1:3478?transport=udp",
            "CALLWARDEN_WEBRTC_TURN_SECRET_FILE": str(secret),
            "CALLWARDEN_WEBRTC_ICE_TRANSPORT_POLICY": "relay",
        }
    )
    assert _ice_settings(settings).transport_policy == "relay"
    assert _ice_settings(Settings()).transport_policy == "all"
    with pytest.raises(ConfigError, match="'relay' needs TURN servers"):
        _ice_settings(Settings(webrtc_ice_transport_policy="relay"))
    with pytest.raises(ConfigError, match="webrtc_ice_transport_policy: Input should be 'all' or"):
        load_settings(environ={"CALLWARDEN_WEBRTC_ICE_TRANSPORT_POLICY": "host"})
    with pytest.raises(ValueError, match="'all' or 'relay', not 'public'"):
        IceSettings(transport_policy="public")


async def _answered_codec(codecs: tuple[str, ...], offered: tuple[str, ...]) -> str | None:
    """The codec the node's answer chose, for a browser offering `offered` (media types)."""
    track = BridgeAudioTrack()
    relay = RtpRelay(track)
    node = BrowserPeer(
        relay, track, on_connected=lambda: None, on_closed=lambda: None, codecs=codecs
    )
    browser = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = browser.addTransceiver(AudioStreamTrack(), direction="sendrecv")
        capabilities = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences([c for c in capabilities if c.mimeType in offered])
        await browser.setLocalDescription(await browser.createOffer())
        await node.answer(browser.localDescription.sdp)
        return node.codec
    finally:
        await browser.close()
        await node.close()
        track.stop()


@pytest.mark.parametrize(
    ("codecs", "offered", "chosen"),
    [
        (DEFAULT_CODECS, ("audio/opus", "audio/PCMU", "audio/PCMA"), "audio/PCMU"),
        (("pcma", "pcmu"), ("audio/PCMU", "audio/PCMA"), "audio/PCMA"),
        (("opus", "pcmu"), ("audio/PCMU", "audio/opus"), "audio/opus"),
        (DEFAULT_CODECS, ("audio/opus",), "audio/opus"),
        (("pcmu", "pcma"), ("audio/PCMA", "audio/opus"), "audio/PCMA"),
    ],
)
async def test_the_answer_takes_the_first_preferred_codec_the_browser_offered(
    codecs: tuple[str, ...], offered: tuple[str, ...], chosen: str
) -> None:
    assert await _answered_codec(codecs, offered) == chosen


async def test_no_preferred_codec_offered_is_refused() -> None:
    with pytest.raises(SignallingError) as refused:
        await _answered_codec(("pcmu", "pcma"), ("audio/opus",))
    assert refused.value.error_id == "no_common_codec"


def test_the_nodes_opus_is_mono_voice_well_under_g711s_rate() -> None:
    """RFC 6716 3.1: the TOC byte's `s` bit (0x04) says stereo; aiortc's own encoder sends
    stereo at about 120 kbit/s for a tone, the node's mono at about 30."""
    encoder = VoiceOpusEncoder()
    samples = (8000 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)).astype(np.int16)
    payloads: list[bytes] = []
    for start in range(0, 8000, 160):
        frame = AudioFrame.from_ndarray(
            samples[start : start + 160].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 8000, start
        frame.time_base = fractions.Fraction(1, 8000)
        payloads += encoder.encode(frame)[0]
    assert len(payloads) >= 48
    assert all(payload[0] & 0x04 == 0 for payload in payloads)
    kbit_per_second = sum(len(p) for p in payloads) * 8 / (len(payloads) * 0.02) / 1000
    assert kbit_per_second < 48.0, kbit_per_second


async def test_an_opus_answer_installs_the_voice_encoder() -> None:
    track = BridgeAudioTrack()
    node = BrowserPeer(
        RtpRelay(track), track, on_connected=lambda: None, on_closed=lambda: None, codecs=("opus",)
    )
    browser = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        browser.addTransceiver(AudioStreamTrack(), direction="sendrecv")
        await browser.setLocalDescription(await browser.createOffer())
        await node.answer(browser.localDescription.sdp)
        (transceiver,) = node._pc.getTransceivers()
        assert isinstance(transceiver.sender._RTCRtpSender__encoder, VoiceOpusEncoder)  # type: ignore[attr-defined]
    finally:
        await browser.close()
        await node.close()
        track.stop()
