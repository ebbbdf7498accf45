"""The monitoring feature codes and the DTMF keys of a monitoring session (pure).

From a phone, a supervisor dials a code and an operator's extension: by default `*91` + ext
listens, `*92` + ext whispers and `*93` + ext barges into that operator's current call. During
a session the keys follow Asterisk ChanSpy's `d` option: 4 listen, 5 whisper, 6 barge, and `*`
leaves. All of it is configurable (`MonitoringCodes`, from the node's settings); the codes are
served through the dial plan's feature-code extension point (`callwarden.telephony.features`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from callwarden.telephony.features import check_feature_code

__all__ = ["DtmfAction", "Leave", "MonitorMode", "MonitoringCodes", "SwitchTo"]


class MonitorMode(enum.Enum):
    """What a supervisor does on a call; the values are stable (API, audit, events)."""

    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"
    TAKEOVER = "takeover"


@dataclass(frozen=True, slots=True)
class SwitchTo:
    mode: MonitorMode


@dataclass(frozen=True, slots=True)
class Leave:
    pass


DtmfAction = SwitchTo | Leave


@dataclass(frozen=True, slots=True)
class MonitoringCodes:
    """The configured codes and keys; `check()` refuses a clash or a malformed code."""

    listen: str = "*91"
    whisper: str = "*92"
    barge: str = "*93"
    key_listen: str = "4"
    key_whisper: str = "5"
    key_barge: str = "6"
    key_leave: str = "*"

    def __post_init__(self) -> None:
        codes = (self.listen, self.whisper, self.barge)
        for code in codes:
            check_feature_code(code)
        if len(set(codes)) != len(codes):
            raise ValueError(f"monitoring codes must differ: {', '.join(codes)}")
        keys = (self.key_listen, self.key_whisper, self.key_barge, self.key_leave)
        for key in keys:
            if len(key) != 1 or key not in "0123456789*#":
                raise ValueError(f"monitoring key {key!r}: one of 0-9, * and #")
        if len(set(keys)) != len(keys):
            raise ValueError(f"monitoring keys must differ: {', '.join(keys)}")

    @property
    def codes(self) -> tuple[str, ...]:
        return (self.listen, self.whisper, self.barge)

    def mode_of(self, code: str) -> MonitorMode:
        """The mode a dialled code starts (KeyError for a code that is not ours)."""
        return {
            self.listen: MonitorMode.LISTEN,
            self.whisper: MonitorMode.WHISPER,
            self.barge: MonitorMode.BARGE,
        }[code]

    def action_of(self, digit: str) -> DtmfAction | None:
        """What a key pressed during a session does (None: nothing)."""
        if digit == self.key_leave:
            return Leave()
        mode = {
            self.key_listen: MonitorMode.LISTEN,
            self.key_whisper: MonitorMode.WHISPER,
            self.key_barge: MonitorMode.BARGE,
        }.get(digit)
        return None if mode is None else SwitchTo(mode)
