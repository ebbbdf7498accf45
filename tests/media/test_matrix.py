"""Hearing presets (DESIGN.md idea 1) as pure functions of roles."""

import pytest

from callwarden.media.matrix import Mode, preset

ROLES = {"c": "customer", "o": "operator", "s": "supervisor", "m": "player"}
F = frozenset


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (Mode.NORMAL, {"c": F("o"), "o": F("c"), "s": F(), "m": F()}),
        (Mode.LISTEN, {"c": F("o"), "o": F("c"), "s": F("co"), "m": F()}),
        (Mode.WHISPER, {"c": F("o"), "o": F("cs"), "s": F("co"), "m": F()}),
        (Mode.BARGE, {"c": F("os"), "o": F("cs"), "s": F("co"), "m": F()}),
        (Mode.TAKEOVER, {"c": F("s"), "o": F(), "s": F("c"), "m": F()}),
    ],
)
def test_presets(mode: Mode, expected: dict[str, frozenset[str]]) -> None:
    assert preset(mode, ROLES) == expected


@pytest.mark.parametrize("mode", list(Mode))
def test_nobody_hears_themselves_and_whisper_never_reaches_a_customer(mode: Mode) -> None:
    roles = {
        "c1": "customer",
        "c2": "customer",
        "o": "operator",
        "s1": "supervisor",
        "s2": "supervisor",
    }
    matrix = preset(mode, roles)
    assert all(pid not in sources for pid, sources in matrix.items())
    if mode is not Mode.BARGE and mode is not Mode.TAKEOVER:
        assert not (matrix["c1"] | matrix["c2"]) & {"s1", "s2"}
