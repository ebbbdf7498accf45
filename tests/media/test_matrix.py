"""Hearing presets (DESIGN.md idea 1) as pure functions of roles."""

import pytest

from callwarden.media.matrix import Mode, monitored, preset

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


SUPERVISED = {"c": "customer", "o": "operator", "a": "supervisor", "b": "supervisor", "m": "player"}


@pytest.mark.parametrize("mode", [Mode.LISTEN, Mode.WHISPER, Mode.BARGE, Mode.TAKEOVER])
def test_monitored_with_every_supervisor_in_one_mode_is_that_preset(mode: Mode) -> None:
    assert monitored(SUPERVISED, {"a": mode, "b": mode}) == preset(mode, SUPERVISED)


def test_a_listening_supervisor_never_hears_another_supervisors_whisper() -> None:
    matrix = monitored(SUPERVISED, {"a": Mode.LISTEN, "b": Mode.WHISPER})
    assert matrix == {"c": F("o"), "o": F("cb"), "a": F("co"), "b": F("co"), "m": F()}


def test_a_whisper_reaches_a_barging_supervisor_but_not_the_customer() -> None:
    matrix = monitored(SUPERVISED, {"a": Mode.BARGE, "b": Mode.WHISPER})
    assert matrix["c"] == F("oa")
    assert matrix["a"] == F("cob")
    assert matrix["b"] == F("coa")
    assert matrix["o"] == F("cab")


def test_takeover_by_one_supervisor_cuts_the_operator_out_for_everyone() -> None:
    matrix = monitored(SUPERVISED, {"a": Mode.TAKEOVER, "b": Mode.LISTEN})
    assert matrix == {"c": F("a"), "o": F(), "a": F("c"), "b": F("ca"), "m": F()}


def test_a_supervisor_without_a_mode_listens() -> None:
    assert monitored(SUPERVISED, {}) == preset(Mode.LISTEN, SUPERVISED)
