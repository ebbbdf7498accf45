"""Simulator settings refuse what cannot work, naming the setting; the demo center gives the
simulator its trunk address and its operators' SIP passwords."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from callwarden.simulator import (
    DEMO_NUMBERS,
    DEMO_OPERATORS,
    DEMO_QUEUE_NUMBERS,
    OperatorAccount,
    SecondsRange,
    SimulatorConfigError,
    SimulatorSettings,
)
from callwarden.simulator.demo import (
    DEMO_TRUNK,
    demo_center,
    demo_center_text,
    operator_accounts,
    queue_numbers,
    simulator_host,
)


def _settings(**changes: Any) -> SimulatorSettings:
    values: dict[str, Any] = {"node_host": "127.0.0.1", "node_port": 5060, "operators": ()}
    return SimulatorSettings(**{**values, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"node_host": "node.example"}, "node_host: 'node.example' is not an IP address"),
        ({"host": "localhost"}, "host: 'localhost' is not an IP address"),
        ({"trunk_port": 70000}, "trunk_port: 70000 is not a port"),
        ({"numbers": ()}, "numbers: the customers need at least one number to call"),
        ({"numbers": ("5000", "sip:5000@x")}, "numbers: 'sip:5000@x' is not a phone number"),
        ({"queue_numbers": ("50 00",)}, "numbers: '50 00' is not a phone number"),
        ({"calls_per_minute": 0.0}, r"calls_per_minute: 0.0 is not within \(0, 600\]"),
        ({"max_concurrent_calls": 0}, "max_concurrent_calls: at least 1"),
        ({"customer_patience": 0.0}, "first_call_after and customer_patience: positive"),
        ({"register_expires": 30}, "register_expires: 60 to 3600 seconds"),
        (
            {"operators": (OperatorAccount("a", "secret-1"), OperatorAccount("a", "secret-2"))},
            "operators: a user is listed twice",
        ),
    ],
)
def test_unusable_settings_are_refused_by_name(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(SimulatorConfigError, match=message):
        _settings(**changes)


def test_the_call_interval_follows_the_rate() -> None:
    assert _settings().call_interval == SecondsRange(4.0, 8.0)
    assert _settings(calls_per_minute=60).call_interval == SecondsRange(2 / 3, 4 / 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20-90", SecondsRange(20, 90)),
        ("5", SecondsRange(5, 5)),
        ("0.5-1.5", SecondsRange(0.5, 1.5)),
    ],
)
def test_seconds_ranges_parse(text: str, expected: SecondsRange) -> None:
    assert SecondsRange.parse(text, "--talk-seconds") == expected


@pytest.mark.parametrize("text", ["90-20", "a-b", "-5", "", "1-2-3"])
def test_bad_seconds_ranges_name_the_flag(text: str) -> None:
    with pytest.raises(SimulatorConfigError, match="--talk-seconds: expected seconds LOW-HIGH"):
        SecondsRange.parse(text, "--talk-seconds")


def test_operator_accounts_need_a_name_and_a_password() -> None:
    with pytest.raises(SimulatorConfigError, match="operator user name '' is not usable"):
        OperatorAccount("", "secret")
    with pytest.raises(SimulatorConfigError, match="operator sim-op1: empty or oversized"):
        OperatorAccount("sim-op1", "")
    assert "demo-sip" not in repr(OperatorAccount("sim-op1", "demo-sip-sim-op1-2001"))


def test_the_demo_center_names_the_simulated_operators_and_routes_every_number() -> None:
    document = yaml.safe_load(demo_center_text())
    users = {user["username"]: user for user in document["users"]}
    for username in DEMO_OPERATORS:
        assert users[username]["role"] == "operator" and "password" not in users[username]
    trunk = next(trunk for trunk in document["trunks"] if trunk["name"] == DEMO_TRUNK)
    routed = {entry["number"]: entry["destination"] for entry in trunk["inbound_numbers"]}
    assert set(DEMO_NUMBERS) <= set(routed)
    assert routed["0312345000"] == "5000" and routed["0312345100"] == "5100"  # the queues
    assert {routed[number] for number in DEMO_NUMBERS} == {"5000", "5100"}  # the queues
    assert queue_numbers(demo_center_text()) == DEMO_QUEUE_NUMBERS
    extensions = {user.get("extension"): name for name, user in users.items()}
    direct = {extensions[routed[number]] for number in routed if routed[number][0] in "12"}
    assert direct == {*DEMO_OPERATORS, "alice", "bob"}  # the operators, straight
    members = {queue["name"]: queue["members"] for queue in document["queues"]}
    assert {"sim-op1", "sim-op2"} <= set(members["support-line"])
    assert "sim-op3" in members["sales-line"]


def test_operator_accounts_come_from_the_demo_file() -> None:
    accounts = operator_accounts(demo_center_text(), DEMO_OPERATORS)
    assert [account.username for account in accounts] == list(DEMO_OPERATORS)
    assert accounts[0].sip_password == "demo-sip-sim-op1-2001"
    with pytest.raises(SimulatorConfigError, match="user 'nobody' is missing or has no sip"):
        operator_accounts(demo_center_text(), ("nobody",))
    with pytest.raises(SimulatorConfigError, match="user 'ada' is missing or has no sip"):
        operator_accounts(demo_center_text(), ("ada",))


def test_the_demo_trunk_moves_to_the_simulator_address() -> None:
    packaged = demo_center_text()
    assert demo_center("127.0.0.1", 5090) == packaged  # as shipped: unchanged, comments too
    moved = demo_center("10.0.0.7", 6090)
    document = yaml.safe_load(moved)
    trunk = next(trunk for trunk in document["trunks"] if trunk["name"] == DEMO_TRUNK)
    assert (trunk["host"], trunk["port"]) == ("10.0.0.7", 6090)
    original = yaml.safe_load(packaged)
    for section in ("teams", "users", "queues"):
        assert document[section] == original[section]
    assert "&" not in moved and "*" not in moved  # no anchors or aliases (refused)


def test_queue_numbers_are_the_inbound_numbers_routed_to_a_queue() -> None:
    text = """
queues: [{name: q, number: "5000", team: t}]
trunks:
  - name: other
    inbound_numbers: [{number: "111", destination: "5000"}]
  - name: demo-carrier
    inbound_numbers: ["5000", "0312", {number: "0313", destination: "5000"},
                      {number: "0314", destination: "1001"}]
"""
    assert queue_numbers(text) == ("5000", "0313")


def test_a_demo_file_without_the_trunk_is_refused() -> None:
    with pytest.raises(SimulatorConfigError, match="no trunk 'demo-carrier'"):
        demo_center("127.0.0.1", 5090, "teams: []\n")
    with pytest.raises(SimulatorConfigError, match="expected a mapping"):
        demo_center("127.0.0.1", 5090, "- a\n")
    with pytest.raises(SimulatorConfigError, match="trunks must be a list of mappings"):
        demo_center("127.0.0.1", 5090, "trunks: 3\n")


@pytest.mark.parametrize(
    ("bind", "host"),
    [
        ("0.0.0.0", "127.0.0.1"),
        ("::", "::1"),
        ("192.0.2.5", "192.0.2.5"),
        ("127.0.0.1", "127.0.0.1"),
    ],
)
def test_the_simulator_lives_where_the_node_listens(bind: str, host: str) -> None:
    assert simulator_host(bind) == host
