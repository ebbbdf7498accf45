"""Signing in over HTTP: MFA that cannot be skipped or replayed, throttling that grows, new
session ids at each step, CSRF, and sessions that end with their user."""

from __future__ import annotations

import httpx

from callwarden.security.sessions import SessionEndReason
from callwarden.web.access import CSRF_HEADER, SESSION_COOKIE
from web.support import (
    PASSWORD,
    Env,
    WebSocketSession,
    finish_mfa,
    session_token,
    sign_in,
    websocket_headers,
)


async def _enrol(env: Env, client: httpx.AsyncClient, username: str) -> str:
    """Sign in as `username` (MFA required, not set up), set up TOTP: the seed."""
    response = await sign_in(client, username)
    assert response.status_code == 200
    state = response.json()
    assert state["mfa_complete"] is False and state["mfa_enrolment_needed"] is True
    enrolment = await client.post("/api/v1/mfa/enroll", json={})
    assert enrolment.status_code == 200, enrolment.text
    secret = str(enrolment.json()["secret"])
    assert enrolment.json()["provisioning_uri"].startswith("otpauth://totp/")
    done = await finish_mfa(client, "/api/v1/mfa/confirm", env.totp(secret))
    assert done.status_code == 200, done.text
    assert len(done.json()["recovery_codes"]) == 10
    assert done.json()["session"]["mfa_complete"] is True
    return secret


async def test_mfa_is_required_and_cannot_be_skipped(env: Env) -> None:
    async with env.client() as client:
        response = await sign_in(client, "supervisor")
        assert response.status_code == 200
        assert response.json()["mfa_complete"] is False
        for path in ("/api/v1/users", "/api/v1/sessions", "/api/v1/audit/entries", "/api/v1/mfa"):
            refused = await client.get(path)
            assert refused.status_code == 401, path
            assert refused.json()["error_id"] == "mfa_required"
            assert refused.json()["details"] == {"enrolment_needed": True}
        made = await client.post("/api/v1/teams", json={"name": "shortcut"})
        assert made.status_code == 401 and made.json()["error_id"] == "mfa_required"
        # What a password alone may still do: the MFA step, reading its state, signing out.
        current = await client.get("/api/v1/sessions/current")
        assert current.status_code == 200 and current.json()["mfa_complete"] is False
    assert env.snapshot.teams == tuple(t for t in env.snapshot.teams if t.name != "shortcut")
    denied = env.audit_details("permission.denied")
    assert [entry["decision"] for entry in denied] == ["mfa_required"] * 5


async def test_a_password_alone_cannot_replace_an_existing_second_factor(env: Env) -> None:
    async with env.client() as owner:
        await _enrol(env, owner, "supervisor")
    async with env.client() as thief:  # knows the password, not the authenticator
        assert (await sign_in(thief, "supervisor")).json()["mfa_enrolment_needed"] is False
        again = await thief.post("/api/v1/mfa/enroll", json={})
        assert again.status_code == 409
        assert again.json()["error_id"] == "mfa_already_enrolled"
        assert (await thief.get("/api/v1/users")).json()["error_id"] == "mfa_required"


async def test_a_totp_code_is_accepted_once(env: Env) -> None:
    async with env.client() as client:
        secret = await _enrol(env, client, "supervisor")
        await client.post("/api/v1/sessions/logout")
    env.clock.advance(seconds=30)
    code = env.totp(secret)
    async with env.client() as first:
        await sign_in(first, "supervisor")
        accepted = await finish_mfa(first, "/api/v1/sessions/mfa/verify", code)
        assert accepted.status_code == 200 and accepted.json()["mfa_complete"] is True
        assert (await first.get("/api/v1/users")).status_code == 403  # signed in; not an admin
    async with env.client() as second:  # the same code, seen over a shoulder
        await sign_in(second, "supervisor")
        replayed = await finish_mfa(second, "/api/v1/sessions/mfa/verify", code)
        assert replayed.status_code == 401
        assert replayed.json() == {
            "error_id": "mfa_code_rejected",
            "message": "the code is not valid",
            "details": {},
        }
        wrong = await finish_mfa(second, "/api/v1/sessions/mfa/verify", "000000")
        assert wrong.json() == replayed.json()  # a replay looks like any wrong code
        assert (await second.get("/api/v1/users")).json()["error_id"] == "mfa_required"
        env.clock.advance(seconds=30)
        fresh = await finish_mfa(second, "/api/v1/sessions/mfa/verify", env.totp(secret))
        assert fresh.status_code == 200
    reasons = [d.get("reason") for d in env.audit_details("auth.login.failed")]
    assert reasons == ["mfa_code_replayed", "mfa_bad_code"]


async def test_a_recovery_code_signs_in_once(env: Env) -> None:
    async with env.client() as client:
        await sign_in(client, "supervisor")
        enrolment = await client.post("/api/v1/mfa/enroll", json={})
        done = await finish_mfa(client, "/api/v1/mfa/confirm", env.totp(enrolment.json()["secret"]))
        recovery = done.json()["recovery_codes"][0]
    for expected in (200, 401):
        async with env.client() as client:
            await sign_in(client, "supervisor")
            used = await finish_mfa(client, "/api/v1/sessions/mfa/verify", recovery)
            assert used.status_code == expected
    assert ("auth.mfa.recovery_used", "success", str(env.user("supervisor").id)) in (
        env.audit_actions()
    )


async def test_new_session_id_at_sign_in_and_again_at_mfa(env: Env) -> None:
    planted = env.sign_in_directly("stranger").token  # an attacker's own, valid session
    async with env.client() as client:
        client.cookies.set(SESSION_COOKIE, planted, domain="callwarden.test")
        await sign_in(client, "supervisor")
        at_password = session_token(client)
        assert at_password not in (None, planted)
        enrolment = await client.post("/api/v1/mfa/enroll", json={})
        done = await finish_mfa(client, "/api/v1/mfa/confirm", env.totp(enrolment.json()["secret"]))
        at_mfa = session_token(client)
        assert at_mfa not in (None, planted, at_password)
        assert (
            done.json()["session"]["session_id"]
            == (await client.get("/api/v1/sessions/current")).json()["session_id"]
        )
    async with env.client() as old:  # the password-step token died when MFA completed
        old.cookies.set(SESSION_COOKIE, at_password or "", domain="callwarden.test")
        assert (await old.get("/api/v1/sessions/current")).status_code == 401
    cookie_attributes = done.headers["set-cookie"].lower()
    for attribute in (
        "__host-callwarden_session=",
        "secure",
        "httponly",
        "samesite=strict",
        "path=/",
    ):
        assert attribute in cookie_attributes
    assert "domain=" not in cookie_attributes


async def test_failed_sign_ins_get_one_answer_and_growing_delays(env: Env) -> None:
    answers = []
    async with env.client() as client:
        for username in ("operator", "nobody-here", "operator"):
            response = await sign_in(client, username, "not-the-password-at-all")
            answers.append((response.status_code, response.json()))
        assert (
            answers[0]
            == answers[1]
            == answers[2]
            == (
                401,
                {
                    "error_id": "sign_in_failed",
                    "message": "The username or password is incorrect.",
                    "details": {},
                },
            )
        )
        await sign_in(client, "operator", "not-the-password-at-all")  # third free failure
        waits = []
        for _ in range(4):
            throttled = await sign_in(client, "operator", PASSWORD)  # even the right one waits
            assert throttled.status_code == 429
            assert throttled.json()["error_id"] == "sign_in_throttled"
            seconds = int(throttled.headers["Retry-After"])
            assert throttled.json()["details"] == {"retry_after": seconds}
            waits.append(seconds)
            env.clock.advance(seconds=seconds)
            assert (await sign_in(client, "operator", "still-not-the-password")).status_code == 401
        assert waits == [2, 4, 8, 16], waits
    async with env.client(address="198.51.100.20") as elsewhere:  # the real user, at home
        assert (await sign_in(elsewhere, "operator")).status_code == 200
    failed = env.audit_details("auth.login.failed")
    assert sum(1 for d in failed if "throttled" in d) == 4
    assert {d.get("reason") for d in failed if "reason" in d} == {"bad_password", "unknown_user"}


async def test_state_changes_need_the_csrf_token(env: Env) -> None:
    session = env.sign_in_directly("admin")
    async with env.client(session) as client:
        del client.headers[CSRF_HEADER]
        missing = await client.post("/api/v1/teams", json={"name": "csrf-made"})
        assert missing.status_code == 403 and missing.json()["error_id"] == "csrf_token_invalid"
        client.headers[CSRF_HEADER] = "x" * 43
        wrong = await client.patch(
            f"/api/v1/users/{env.user('colleague').id}", json={"display_name": "CSRF"}
        )
        assert wrong.status_code == 403 and wrong.json()["error_id"] == "csrf_token_invalid"
        assert (await client.get("/api/v1/teams")).status_code == 200  # reads need no token
        client.headers[CSRF_HEADER] = session.session.csrf_token
        assert (await client.post("/api/v1/teams", json={"name": "csrf-made"})).status_code == 201
    assert env.user("colleague").display_name == "colleague"
    assert [d["decision"] for d in env.audit_details("permission.denied")] == [
        "csrf_token_invalid",
        "csrf_token_invalid",
    ]


async def test_disabling_a_user_ends_their_sessions_and_live_connections_at_once(env: Env) -> None:
    victim = env.sign_in_directly("colleague")
    other = env.sign_in_directly("colleague")
    live = WebSocketSession(env.app, "/api/v1/live", websocket_headers(victim))
    assert await live.connect()
    assert (await live.receive_json())["type"] == "welcome"
    async with env.client(env.sign_in_directly("admin")) as admin:
        response = await admin.post(f"/api/v1/users/{env.user('colleague').id}/disable")
        assert response.status_code == 200 and response.json()["enabled"] is False
    assert await live.receive_json() is None  # closed by the server, no further message
    assert (live.close_code, live.close_reason) == (4401, SessionEndReason.DISABLED.value)
    await live.disconnect()
    for session in (victim, other):
        async with env.client(session) as client:
            assert (await client.get("/api/v1/sessions")).status_code == 401
    async with env.client() as client:
        assert (await sign_in(client, "colleague")).status_code == 401
    ended = env.audit_details("auth.session.ended")
    assert ended[-1]["reason"] == "disabled" and len(ended[-1]["sessions"]) == 2


async def test_role_and_password_changes_end_sessions(env: Env) -> None:
    colleague = env.user("colleague").id
    async with env.client(env.sign_in_directly("admin")) as admin:
        target = env.sign_in_directly("colleague")
        admin_role = env.snapshot.role_by_name("admin")
        assert admin_role is not None
        changed = await admin.put(
            f"/api/v1/users/{colleague}/role", json={"role_id": admin_role.id}
        )
        assert changed.status_code == 200 and changed.json()["role"] == "admin"
        async with env.client(target) as client:
            assert (await client.get("/api/v1/sessions")).status_code == 401
        target = env.sign_in_directly("colleague")
        new_password = "orchard-violet-compass-2231"
        reset = await admin.patch(f"/api/v1/users/{colleague}", json={"password": new_password})
        assert reset.status_code == 200
        async with env.client(target) as client:
            assert (await client.get("/api/v1/sessions")).status_code == 401
    async with env.client() as client:
        assert (await sign_in(client, "colleague")).status_code == 401
        assert (await sign_in(client, "colleague", new_password)).status_code == 200
    reasons = [d["reason"] for d in env.audit_details("auth.session.ended")]
    assert reasons == ["role_changed", "password_changed"]


async def test_the_live_connection_checks_origin_and_session(env: Env) -> None:
    session = env.sign_in_directly("operator")
    for origin, expected_reason in (
        ("https://evil.example", "origin_refused"),
        ("https://cc.example.test.evil.example", "origin_refused"),
        (None, "origin_refused"),
    ):
        refused = WebSocketSession(env.app, "/api/v1/live", websocket_headers(session, origin))
        assert not await refused.connect()
        assert (refused.close_code, refused.close_reason) == (4403, expected_reason)
    anonymous = WebSocketSession(env.app, "/api/v1/live", websocket_headers(None))
    assert not await anonymous.connect()
    assert anonymous.close_reason == "unauthenticated"
    pending = env.sign_in_directly("supervisor", mfa_complete=False)
    half = WebSocketSession(env.app, "/api/v1/live", websocket_headers(pending))
    assert not await half.connect()
    assert half.close_reason == "mfa_required"
    live = WebSocketSession(env.app, "/api/v1/live", websocket_headers(session))
    assert await live.connect()
    assert (await live.receive_json()) == {"type": "welcome", "user_id": env.user("operator").id}
    await live.send_json({"type": "ping"})
    assert await live.receive_json() == {"type": "pong"}
    async with env.client(session) as client:  # signing out closes it too
        assert (await client.post("/api/v1/sessions/logout")).status_code == 204
    assert await live.receive_json() is None
    assert (live.close_code, live.close_reason) == (4401, "logout")
    await live.disconnect()


async def test_own_sessions_are_listed_and_ended_one_by_one_or_all(env: Env) -> None:
    first = env.sign_in_directly("operator")
    env.clock.advance(minutes=1)
    second = env.sign_in_directly("operator")
    stranger = env.sign_in_directly("stranger")
    async with env.client(first) as client:
        listed = (await client.get("/api/v1/sessions")).json()
        assert [(s["id"], s["current"]) for s in listed] == [
            (second.session.id, False),
            (first.session.id, True),
        ]
        assert all("token" not in key for s in listed for key in s)
        foreign = await client.delete(f"/api/v1/sessions/{stranger.session.id}")
        assert foreign.status_code == 404
        assert (await client.delete(f"/api/v1/sessions/{second.session.id}")).status_code == 204
        gone = await client.post("/api/v1/sessions/logout-everywhere")
        assert gone.status_code == 204
        assert "max-age=0" in gone.headers["set-cookie"].lower()
        assert (await client.get("/api/v1/sessions")).status_code == 401
    async with env.client(stranger) as client:
        assert (await client.get("/api/v1/sessions")).status_code == 200


async def test_changing_the_second_factor_needs_the_password_again(env: Env) -> None:
    async with env.client() as client:
        assert (await sign_in(client, "operator")).json()["mfa_complete"] is True  # optional
        refused = await client.post("/api/v1/mfa/enroll", json={"password": "a-wrong-password"})
        assert refused.status_code == 403
        assert refused.json()["error_id"] == "reauthentication_failed"
        assert refused.json()["details"] == {"field": "password"}
        assert (await client.post("/api/v1/mfa/enroll", json={})).status_code == 403
        other = env.sign_in_directly("operator")
        enrolment = await client.post("/api/v1/mfa/enroll", json={"password": PASSWORD})
        assert enrolment.status_code == 200
        done = await finish_mfa(client, "/api/v1/mfa/confirm", env.totp(enrolment.json()["secret"]))
        assert done.status_code == 200 and done.json()["session"] is None
        status = (await client.get("/api/v1/mfa")).json()
        assert status["enrolled"] is True and status["recovery_codes_left"] == 10
        assert (await client.get("/api/v1/sessions")).status_code == 200  # this one stays
        codes = await client.post("/api/v1/mfa/recovery-codes", json={"password": PASSWORD})
        assert codes.status_code == 200
        assert set(codes.json()["codes"]).isdisjoint(done.json()["recovery_codes"])
    async with env.client(other) as client:  # the others ended with the change
        assert (await client.get("/api/v1/sessions")).status_code == 401
    async with env.client() as client:  # and from now on the operator needs the code
        assert (await sign_in(client, "operator")).json()["mfa_complete"] is False


async def test_a_browser_on_a_foreign_origin_cannot_sign_in(env: Env) -> None:
    credentials = {"username": "operator", "password": PASSWORD}
    async with env.client() as client:
        foreign = await client.post(
            "/api/v1/sessions", json=credentials, headers={"origin": "https://evil.example"}
        )
        assert foreign.status_code == 403 and foreign.json()["error_id"] == "origin_refused"
        assert "set-cookie" not in foreign.headers
        own = await client.post(
            "/api/v1/sessions", json=credentials, headers={"origin": "https://cc.example.test"}
        )
        assert own.status_code == 200
        scripted = await client.post("/api/v1/sessions", json=credentials)  # no Origin: no browser
        assert scripted.status_code == 200
