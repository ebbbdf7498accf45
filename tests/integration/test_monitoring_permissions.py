"""Who may not monitor, through a real node: a supervisor of another team, an operator, an
auditor and an admin (whose role holds no monitoring permission) are refused by the API and by
the feature codes dialled from their own phones, each refusal is audited, and the call goes on
untouched. Another team's call reads exactly like a call id that does not exist.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from monitoring_api import ApiClient
from node import Node, start_node
from phones import CallState, Phone, PhoneBook

PASSWORD = "refusal-sip-secret"
WEB_PASSWORD = "refusal-web-password-1"
REFUSED = ("south_sup", "north_op", "auditor1", "admin1")


def _user(name: str, role: str, team: str, extension: str) -> str:
    return (
        f"  - {{username: {name}, role: {role}, team: {team}, extension: '{extension}',"
        f" sip_password: {PASSWORD}, password: {WEB_PASSWORD}}}\n"
    )


PROVISIONING = (
    "teams: [{name: north}, {name: south}, {name: street}]\nusers:\n"
    + _user("cust", "operator", "street", "1001")
    + _user("op", "operator", "north", "2001")
    + _user("north_sup", "supervisor", "north", "3001")
    + _user("south_sup", "supervisor", "south", "3002")
    + _user("north_op", "operator", "north", "2002")
    + _user("auditor1", "auditor", "north", "4001")
    + _user("admin1", "admin", "north", "4002")
    + """queues:
  - {name: line, number: "5001", team: north, members: [op], wrap_up_seconds: 1}
"""
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    started = start_node(
        tmp_path_factory.mktemp("monitoring-refusals"),
        PROVISIONING,
        rtp_ports=(36500, 36999),
        extra_env={
            "CALLWARDEN_AUTH_FAILURES_BEFORE_THROTTLE": "1000",
            "CALLWARDEN_ACD_AUTO_SIGN_IN": "true",
        },
    )
    yield started
    code = started.stop()
    assert code == 0, started.log()


def _phone(phones: PhoneBook, node: Node, name: str, tone: Path | None = None) -> Phone:
    phone = phones.create(name, password=PASSWORD, registrar=node.registrar)
    assert phone.register() == 200
    if tone is not None:
        phone.play(tone)
    return phone


def _denials(node: Node) -> list[tuple[str, dict[str, object]]]:
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        rows = db.execute(
            "SELECT actor_name, details FROM audit_log"
            " WHERE action = 'permission.denied' AND outcome = 'denied' ORDER BY sequence"
        ).fetchall()
    return [(str(actor), json.loads(details)) for actor, details in rows]


def _monitoring_denials(node: Node, actor: str) -> list[dict[str, object]]:
    return [
        details
        for who, details in _denials(node)
        if who == actor and str(details.get("permission", "")).startswith("monitor.")
    ]


@pytest.fixture
def api_clients() -> Iterator[list[ApiClient]]:
    """Clients to close whatever the test's outcome (an open one leaks its TLS sockets into a
    later test's unraisable-exception check)."""
    clients: list[ApiClient] = []
    yield clients
    for client in clients:
        client.close()


# Twelve refused calls from four phones after a node start: over the default 120 s on a
# loaded CI machine once.
@pytest.mark.timeout(300)
@pytest.mark.integration
def test_other_team_operator_auditor_and_admin_are_refused_by_api_and_phone(
    phones: PhoneBook, node: Node, tones: dict[int, Path], api_clients: list[ApiClient]
) -> None:
    op = _phone(phones, node, "op", tones[880])
    customer_phone = _phone(phones, node, "cust", tones[440])
    call = customer_phone.dial("5001")
    call.wait_confirmed()
    op.wait_incoming().wait_confirmed()
    call_id = call.call_id

    clients = {name: ApiClient(node, name, WEB_PASSWORD) for name in REFUSED}
    api_clients.extend(clients.values())
    for client in clients.values():
        client.sign_in()
    body = {"call_id": call_id, "mode": "listen", "reason": "curious"}
    answers = {
        name: client.request("POST", "/api/v1/monitoring", body) for name, client in clients.items()
    }
    # Another team's supervisor: the call does not exist for them ...
    assert answers["south_sup"].status_code == 404
    guessed = clients["south_sup"].request(
        "POST", "/api/v1/monitoring", {**body, "call_id": "guessed-call-id@192.0.2.1"}
    )
    # ... exactly as a guessed id that names no call: same status, same body but the id.
    assert guessed.status_code == 404
    assert answers["south_sup"].json()["error_id"] == guessed.json()["error_id"] == "not_found"
    for mode in ("whisper", "barge", "takeover"):
        other = clients["south_sup"].request("POST", "/api/v1/monitoring", {**body, "mode": mode})
        assert other.status_code == 404, other.text
    # No monitoring permission at all: refused at the route.
    for name in ("north_op", "auditor1", "admin1"):
        assert answers[name].status_code == 403, answers[name].text
        assert answers[name].json()["error_id"] == "forbidden"

    # The same people dial the codes from their own phones.
    expected = {"south_sup": 404, "north_op": 404, "auditor1": 403, "admin1": 403}
    for name, status in expected.items():
        phone = _phone(phones, node, name)
        for code in ("*91", "*92", "*93"):
            attempt = phone.dial(f"{code}2001")
            attempt.wait_disconnected()
            assert attempt.last_status == status, (name, code, attempt.last_status)
            attempt.release()
            # Let pjsua free the call's slot before the next INVITE: the wheel has only a few
            # (a full run of the suite aborted in makeCall without this pause).
            phones.run_for(0.3)
        # One refused person's phone at a time: the wheel's account and transport tables
        # hold 8, and the previous test's may still be closing.
        phones.endpoint.close_phone(phone)

    # Every refusal is audited, by the API and by phone.
    def audited() -> bool:
        return all(len(_monitoring_denials(node, name)) >= 4 for name in REFUSED)

    phones.wait_until(audited, 5.0, "every refusal in the audit log")
    south = _monitoring_denials(node, "south_sup")
    assert {d["via"] for d in south if "via" in d} == {"api", "phone"}
    assert {d["decision"] for d in south} == {"deny_not_found"}
    assert {d["permission"] for d in south} >= {
        "monitor.listen",
        "monitor.whisper",
        "monitor.barge",
        "monitor.takeover",
    }
    phone_decisions = {
        name: {d["decision"] for d in _monitoring_denials(node, name) if d.get("via") == "phone"}
        for name in REFUSED
    }
    assert phone_decisions == {
        "south_sup": {"deny_not_found"},
        "north_op": {"deny_not_found"},
        "auditor1": {"deny_forbidden"},
        "admin1": {"deny_forbidden"},
    }
    # Nobody got in: the call goes on between its two parties.
    assert call.state is CallState.CONFIRMED
    assert all(c.state is CallState.CONFIRMED for c in op.incoming)
    north = ApiClient(node, "north_sup", WEB_PASSWORD)
    api_clients.append(north)
    assert north.sign_in().request("GET", "/api/v1/monitoring").json()["items"] == []
    call.hangup()
    call.wait_disconnected()
