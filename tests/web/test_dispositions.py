"""`/api/v1/calls/{call_id}/disposition`: the call's own operator sets its disposition code and
note (during the call, in wrap-up and after it); the team's supervisor, admins and auditors read
it; everyone else finds nothing; bad input is refused with nothing stored; each change is
audited. The access matrix walks the same routes for every role."""

from __future__ import annotations

from typing import Any

import pytest

from callwarden.acd.agent import AgentState
from callwarden.domain.ids import CallId
from callwarden.web.dispositions.store import NOTE_LIMIT, DispositionStore
from web.desk_support import NORTH_QUEUE, connect, serve_acd
from web.support import Env

PATH = "/api/v1/calls/{}/disposition"


def _recorded_call(env: Env, team: str) -> str:
    assert env.live_recording is not None
    return env.live_recording.call_ids[team]


async def _send(
    env: Env, username: str | None, method: str, call_id: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    session = None if username is None else env.sign_in_directly(username)
    async with env.client(session) as client:
        response = await client.request(method, PATH.format(call_id), json=body)
    return response.status_code, response.json()


def _stored(env: Env, call_id: str) -> tuple[str, str] | None:
    found = DispositionStore(env.database.sessions).of_call(call_id)
    return None if found is None else (found.code, found.note)


async def test_the_operator_sets_and_changes_the_disposition_of_their_call(env: Env) -> None:
    call_id = _recorded_call(env, "north")
    status, body = await _send(env, "operator", "PUT", call_id, {"code": "callback"})
    assert status == 200, body
    assert (body["code"], body["note"], body["user_id"]) == (
        "callback",
        "",
        env.user("operator").id,
    )
    note = "折り返し希望\nwants a call back at 15:00"
    status, body = await _send(env, "operator", "PUT", call_id, {"code": "resolved", "note": note})
    assert (status, body["code"], body["note"]) == (200, "resolved", note)
    assert _stored(env, call_id) == ("resolved", note)
    status, body = await _send(env, "supervisor", "GET", call_id)
    assert (status, body["code"], body["note"]) == (200, "resolved", note)
    assert body["team_id"] == env.user("operator").team_id
    details = env.audit_details("call.disposition")
    assert [(d["code"], d["previous_code"]) for d in details] == [
        ("callback", None),
        ("resolved", "callback"),
    ]
    # The audit trail keeps control characters escaped (a line break reads \u000a).
    assert details[-1]["note"] == note.replace("\n", "\\u000a")
    audited = [entry for entry in env.audit_actions() if entry[0] == "call.disposition"]
    assert audited == [("call.disposition", "success", call_id)] * 2


@pytest.mark.parametrize(
    ("username", "method", "team", "status"),
    [
        ("operator", "PUT", "south", 404),  # another team's call
        ("colleague", "PUT", "north", 404),  # a colleague's call: not theirs to see
        ("supervisor", "PUT", "north", 403),  # sees the team's calls, sets only their own
        ("admin", "PUT", "north", 403),  # takes no calls at all
        (None, "PUT", "north", 401),
        ("operator", "GET", "north", 403),  # reads no reports
        ("supervisor", "GET", "south", 404),  # another team's call
        (None, "GET", "north", 401),
    ],
)
async def test_who_may_not_touch_which_call(
    env: Env, username: str | None, method: str, team: str, status: int
) -> None:
    call_id = _recorded_call(env, team)
    body = {"code": "resolved", "note": "x"} if method == "PUT" else None
    got, answer = await _send(env, username, method, call_id, body)
    assert got == status, answer
    assert _stored(env, call_id) is None
    assert not [entry for entry in env.audit_actions() if entry[0] == "call.disposition"]


@pytest.mark.parametrize("username", ["admin", "auditor", "supervisor"])
async def test_readers_see_a_call_without_a_disposition_as_empty(env: Env, username: str) -> None:
    call_id = _recorded_call(env, "north")
    status, body = await _send(env, username, "GET", call_id)
    assert (status, body["code"], body["note"], body["updated_at"]) == (200, None, None, None)


@pytest.mark.parametrize(
    ("body", "error_id"),
    [
        ({"code": "unheard-of"}, "disposition_unknown"),
        ({"code": "resolved", "note": "x" * (NOTE_LIMIT + 1)}, "validation_failed"),
        ({"code": ""}, "validation_failed"),
        ({"note": "no code"}, "validation_failed"),
        ({"code": "resolved", "note": 7}, "validation_failed"),
        ({"code": "resolved", "note": "robert\x00"}, "validation_failed"),
        ({"code": "resolved", "note": "bell\x07"}, "validation_failed"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(
    env: Env, body: dict[str, Any], error_id: str
) -> None:
    call_id = _recorded_call(env, "north")
    status, answer = await _send(env, "operator", "PUT", call_id, body)
    assert (status, answer["error_id"]) == (422, error_id)
    assert _stored(env, call_id) is None


async def test_unknown_and_malformed_calls(env: Env) -> None:
    status, body = await _send(
        env, "operator", "PUT", "never-seen-1@example.test", {"code": "resolved"}
    )
    assert (status, body["error_id"]) == (404, "not_found")
    status, body = await _send(env, "operator", "PUT", "0", {"code": "resolved"})
    assert (status, body["error_id"]) == (422, "validation_failed")


async def test_a_queue_call_in_wrap_up_and_after_it(env: Env) -> None:
    """An unrecorded queue call is known from the ACD while the operator has it; once wrap-up
    is over, by the disposition already stored."""
    engine = await serve_acd(env)
    call_id = "queue-call-7@198.51.100.7"
    await connect(env, engine, "operator", call_id, NORTH_QUEUE, "+81312345678")
    await engine.call_ended(CallId(call_id))
    await engine.settled()
    operator = env.user("operator").id
    assert engine.agent(operator).state is AgentState.WRAP_UP
    status, body = await _send(env, "colleague", "PUT", call_id, {"code": "resolved"})
    assert status == 404, body
    status, body = await _send(env, "operator", "PUT", call_id, {"code": "resolved"})
    assert status == 200, body
    await engine.make_available(operator)
    await engine.settled()
    assert engine.agent(operator).call_id is None
    status, body = await _send(env, "operator", "PUT", call_id, {"code": "callback", "note": "n"})
    assert (status, body["code"]) == (200, "callback")
    status, body = await _send(env, "colleague", "PUT", call_id, {"code": "resolved"})
    assert status == 404, body
    assert _stored(env, call_id) == ("callback", "n")
    await engine.close()
