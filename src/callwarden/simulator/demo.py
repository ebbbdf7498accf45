"""The demo center and the simulator's part in it.

``demo_center.yaml`` (package data) is the provisioning file ``callwarden demo`` applies. Its
trunk `demo-carrier` stands for the simulated customers' carrier: :func:`demo_center` points
it at the address the simulator really sends from, and :func:`operator_accounts` reads the SIP
passwords of the demo users the simulator plays from the same file.
"""

from __future__ import annotations

import ipaddress
from importlib import resources
from typing import Any

import yaml

from callwarden.simulator.settings import OperatorAccount, SimulatorConfigError

__all__ = [
    "DEMO_TRUNK",
    "demo_center",
    "demo_center_text",
    "operator_accounts",
    "queue_numbers",
    "simulator_host",
]

DEMO_TRUNK = "demo-carrier"


class _PlainDumper(yaml.SafeDumper):
    """Never writes anchors or aliases (the provisioning file refuses them)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def demo_center_text() -> str:
    """The packaged demo provisioning file."""
    return resources.files("callwarden").joinpath("demo_center.yaml").read_text("utf-8")


def _document(text: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SimulatorConfigError(f"demo center: {error}") from error
    if not isinstance(document, dict):
        raise SimulatorConfigError("demo center: expected a mapping")
    return document


def _entries(document: dict[str, Any], section: str) -> list[dict[str, Any]]:
    entries = document.get(section) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise SimulatorConfigError(f"demo center: {section} must be a list of mappings")
    return entries


def demo_center(trunk_host: str, trunk_port: int, text: str | None = None) -> str:
    """The demo provisioning file (``text``, else the packaged one) with the trunk
    `demo-carrier` at ``trunk_host``:``trunk_port``: the node trusts calls from there as the
    carrier's. Returned unchanged (comments and all) when it already says so."""
    source = demo_center_text() if text is None else text
    document = _document(source)
    trunk = next(
        (entry for entry in _entries(document, "trunks") if entry.get("name") == DEMO_TRUNK),
        None,
    )
    if trunk is None:
        raise SimulatorConfigError(f"demo center: no trunk {DEMO_TRUNK!r}")
    if trunk.get("host") == trunk_host and trunk.get("port") == trunk_port:
        return source
    trunk["host"] = trunk_host
    trunk["port"] = trunk_port
    header = "# The demo center, with demo-carrier at the simulator's address.\n"
    return header + yaml.dump(document, Dumper=_PlainDumper, sort_keys=False, width=100)


def operator_accounts(text: str, usernames: tuple[str, ...]) -> tuple[OperatorAccount, ...]:
    """The SIP accounts of ``usernames`` as the demo file provisions them."""
    users = {str(entry.get("username")): entry for entry in _entries(_document(text), "users")}
    accounts = []
    for username in usernames:
        entry = users.get(username)
        password = None if entry is None else entry.get("sip_password")
        if not isinstance(password, str):
            raise SimulatorConfigError(
                f"demo center: user {username!r} is missing or has no sip_password"
            )
        accounts.append(OperatorAccount(username, password))
    return tuple(accounts)


def queue_numbers(text: str) -> tuple[str, ...]:
    """The inbound numbers of `demo-carrier` that reach a queue (their destination is a queue
    number): calls to them wait on hold for an operator."""
    document = _document(text)
    queues = {str(entry.get("number")) for entry in _entries(document, "queues")}
    numbers = []
    for trunk in _entries(document, "trunks"):
        if trunk.get("name") != DEMO_TRUNK:
            continue
        for entry in trunk.get("inbound_numbers") or []:
            number, destination = (
                (entry.get("number"), entry.get("destination"))
                if isinstance(entry, dict)
                else (entry, entry)
            )
            if str(destination if destination is not None else number) in queues:
                numbers.append(str(number))
    return tuple(numbers)


def simulator_host(bind: str) -> str:
    """Where the simulator's phones live, given the node's ``--bind``: the same address, or
    loopback when the node listens on every address."""
    address = ipaddress.ip_address(bind)
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return bind
