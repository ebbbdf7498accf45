"""The node's STUN/TURN settings for the browser phones: read, checked, refused clearly."""

from __future__ import annotations

from pathlib import Path

import pytest

from callwarden.app import _ice_settings
from callwarden.config import ConfigError, Settings


def test_turn_from_the_settings_with_the_secret_from_its_file(tmp_path: Path) -> None:
    secret = tmp_path / "turn.secret"
    secret.write_bytes(b"a-long-shared-turn-secret\n")
    settings = Settings(
        webrtc_stun_urls="stun:turn.example:3478",  # type: ignore[arg-type]
        webrtc_turn_urls=("turn:turn.example:3478?transport=udp", "turns:turn.example:5349"),
        webrtc_turn_secret_file=secret,
    )
    ice = _ice_settings(settings)
    assert ice.stun_urls == ("stun:turn.example:3478",)
    assert ice.turn_secret == b"a-long-shared-turn-secret"
    assert [server["urls"] for server in ice.for_page("3", 0.0)][1][1] == "turns:turn.example:5349"


def test_bad_turn_settings_stop_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="webrtc_turn_secret_file"):
        _ice_settings(
            Settings(webrtc_turn_urls=("turn:x",), webrtc_turn_secret_file=tmp_path / "none")
        )
    with pytest.raises(ConfigError, match="shared secret"):
        _ice_settings(Settings(webrtc_turn_urls=("turn:x",)))
    with pytest.raises(ConfigError, match="STUN URL"):
        _ice_settings(Settings(webrtc_stun_urls=("http://x",)))
