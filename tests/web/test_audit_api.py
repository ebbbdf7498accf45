"""The audit log over HTTP: reading is allowed by `audit.view` and is itself audited, export
by `audit.export` only, and verification names an edited entry and catches truncation against
an exported head."""

from __future__ import annotations

import itertools
import json

from sqlalchemy import text

from web.support import Env


def _tamper(env: Env, statement: str) -> None:
    """What an owner of the database can do: drop the append-only triggers, then edit."""
    with env.database.engine.begin() as connection:
        connection.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        connection.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        connection.execute(text(statement))


async def test_reading_the_log_is_itself_logged_and_filtered(env: Env) -> None:
    async with env.client(env.sign_in_directly("operator")) as operator:
        assert (await operator.get("/api/v1/audit/entries")).status_code == 403
    async with env.client(env.sign_in_directly("auditor")) as auditor:
        response = await auditor.get(
            "/api/v1/audit/entries",
            params={"action_prefix": "permission", "outcome": "denied", "order": "asc"},
        )
        assert response.status_code == 200
        (entry,) = response.json()
        assert (entry["actor_name"], entry["action"]) == ("operator", "permission.denied")
        assert entry["details"]["permission"] == "audit.view"
        assert len(entry["entry_hash"]) == 64
        everything = (await auditor.get("/api/v1/audit/entries", params={"limit": 500})).json()
        assert everything[0]["action"] == "audit.read"  # the first read, newest first
        assert everything[0]["details"]["filters"] == {
            "action_prefix": "permission",
            "outcome": "denied",
        }
        naive = await auditor.get("/api/v1/audit/entries", params={"since": "2026-12-01T09:00:00"})
        assert naive.status_code == 422 and naive.json()["details"]["field"] == "since"
        window = await auditor.get(
            "/api/v1/audit/entries",
            params={"since": "2026-12-01T08:00:00Z", "until": "2026-12-01T08:30:00Z"},
        )
        assert window.json() == []


async def test_export_needs_its_own_permission_and_gives_a_verifiable_chain(env: Env) -> None:
    async with env.client(env.sign_in_directly("auditor")) as auditor:
        assert (await auditor.get("/api/v1/audit/export")).status_code == 403
        assert (await auditor.get("/api/v1/audit/head")).status_code == 403
    async with env.client(env.sign_in_directly("exporter")) as exporter:
        exported = await exporter.get("/api/v1/audit/export")
        assert exported.status_code == 200
        assert exported.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in exported.text.splitlines()]
        head = (await exporter.get("/api/v1/audit/head")).json()
        later = await exporter.get("/api/v1/audit/export", params={"after_sequence": 2})
    assert [entry["sequence"] for entry in lines] == list(range(1, len(lines) + 1))
    for previous, entry in itertools.pairwise(lines):
        assert entry["previous_hash"] == previous["entry_hash"]
    assert lines[-1]["action"] == "audit.export"  # recorded before the first line left
    assert head["sequence"] > lines[-1]["sequence"]  # the head read is an export too
    assert next(json.loads(line)["sequence"] for line in later.text.splitlines()) == 3


async def test_verification_names_an_edited_entry_and_catches_truncation(env: Env) -> None:
    async with env.client(env.sign_in_directly("exporter")) as exporter:
        for _ in range(3):
            await exporter.get("/api/v1/audit/entries")
        head = (await exporter.get("/api/v1/audit/head")).json()
        intact = (await exporter.post("/api/v1/audit/verify", json={"head": head})).json()
        assert intact["intact"] is True and intact["broken"] is None
        _tamper(env, "DELETE FROM audit_log WHERE sequence >= 4")
        truncated = (await exporter.post("/api/v1/audit/verify", json={"head": head})).json()
        assert truncated["intact"] is False
        assert truncated["broken"]["problem"] in {"truncated", "diverged"}
        assert (await exporter.post("/api/v1/audit/verify", json={})).json()["intact"] is True
        _tamper(env, "UPDATE audit_log SET actor_name = 'someone-else' WHERE sequence = 2")
        edited = (await exporter.post("/api/v1/audit/verify", json={})).json()
    assert edited["intact"] is False
    assert edited["broken"] == {
        "sequence": 2,
        "problem": "edited",
        "message": edited["broken"]["message"],
    }
    bad_head = {"hash": "z" * 64, "sequence": 1, "timestamp": "yesterday"}
    async with env.client(env.sign_in_directly("auditor")) as auditor:
        refused = await auditor.post("/api/v1/audit/verify", json={"head": bad_head})
    assert refused.status_code == 422 and refused.json()["details"]["field"].startswith("head")
