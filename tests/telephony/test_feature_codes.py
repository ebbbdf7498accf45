"""The monitoring codes and session keys (telephony.feature_codes), and the settings that
configure them."""

from __future__ import annotations

import pytest

from callwarden.config import ConfigError, load_settings
from callwarden.telephony.feature_codes import Leave, MonitoringCodes, MonitorMode, SwitchTo


def test_defaults_follow_chanspy() -> None:
    codes = MonitoringCodes()
    assert codes.codes == ("*91", "*92", "*93")
    assert [codes.mode_of(code) for code in codes.codes] == [
        MonitorMode.LISTEN,
        MonitorMode.WHISPER,
        MonitorMode.BARGE,
    ]
    assert codes.action_of("4") == SwitchTo(MonitorMode.LISTEN)
    assert codes.action_of("5") == SwitchTo(MonitorMode.WHISPER)
    assert codes.action_of("6") == SwitchTo(MonitorMode.BARGE)
    assert codes.action_of("*") == Leave()
    assert codes.action_of("1") is None


def test_configured_codes_and_keys() -> None:
    codes = MonitoringCodes(listen="*71", whisper="*72", barge="*73", key_leave="#")
    assert codes.mode_of("*72") is MonitorMode.WHISPER
    assert codes.action_of("#") == Leave()
    assert codes.action_of("*") is None
    with pytest.raises(KeyError):
        codes.mode_of("*91")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"listen": "91"}, "feature code '91'"),
        ({"whisper": "*91"}, "monitoring codes must differ"),
        ({"key_barge": "4"}, "monitoring keys must differ"),
        ({"key_leave": "ab"}, "monitoring key 'ab'"),
    ],
)
def test_bad_codes_are_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MonitoringCodes(**options)  # type: ignore[arg-type]


def test_settings_carry_the_codes_and_refuse_bad_ones() -> None:
    settings = load_settings(
        environ={
            "CALLWARDEN_MONITOR_LISTEN_CODE": "*71",
            "CALLWARDEN_MONITOR_KEYS": "123#",
            "CALLWARDEN_MONITOR_NOTIFY_TEAMS": "north, south:tone",
        }
    )
    assert settings.monitor_listen_code == "*71"
    assert settings.monitor_keys == "123#"
    assert settings.monitor_notify_teams == ("north", "south:tone")
    with pytest.raises(ConfigError, match="monitor_barge_code"):
        load_settings(environ={"CALLWARDEN_MONITOR_BARGE_CODE": "93"})
    with pytest.raises(ConfigError, match="monitor_keys"):
        load_settings(environ={"CALLWARDEN_MONITOR_KEYS": "4456"})
    with pytest.raises(ConfigError, match="monitor_notify_teams"):
        load_settings(environ={"CALLWARDEN_MONITOR_NOTIFY_TEAMS": "north:beep"})
