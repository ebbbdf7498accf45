"""A signed-in client of a running node's HTTP API, for the monitoring integration tests.

The node serves HTTPS with its self-signed certificate, which this client verifies against
(`Node.tls_context`). The session cookie is `Secure` and `__Host-`; this client reads it from
`Set-Cookie` and sends it itself, with the CSRF header, as a browser would. Users whose role
needs MFA set up TOTP on first sign-in (the seed is kept here).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

import httpx
import pyotp
from node import Node

SESSION_COOKIE = "__Host-callwarden_session"
CSRF_HEADER = "X-CSRF-Token"


@dataclass
class ApiClient:
    node: Node
    username: str
    password: str
    token: str = ""
    csrf: str = ""
    secret: str | None = None
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(
            base_url=self.node.base_url, timeout=10, verify=self.node.tls_context()
        )

    def _keep(self, response: httpx.Response, state: dict[str, Any] | None) -> None:
        token = response.cookies.get(SESSION_COOKIE)
        if token:
            self.token = token
        if state is not None and "csrf_token" in state:
            self.csrf = str(state["csrf_token"])

    def request(self, method: str, path: str, json: object = None) -> httpx.Response:
        headers = {"Cookie": f"{SESSION_COOKIE}={self.token}"} if self.token else {}
        if self.csrf:
            headers[CSRF_HEADER] = self.csrf
        return self.http.request(method, path, json=json, headers=headers)

    def sign_in(self) -> ApiClient:
        """Sign in, setting up TOTP first if the role needs MFA; returns self."""
        response = self.request(
            "POST", "/api/v1/sessions", {"username": self.username, "password": self.password}
        )
        assert response.status_code == 200, response.text
        state = response.json()
        self._keep(response, state)
        if state["mfa_complete"]:
            return self
        enrolment = self.request("POST", "/api/v1/mfa/enroll", {})
        assert enrolment.status_code == 200, enrolment.text
        self.secret = str(enrolment.json()["secret"])
        done = self.request("POST", "/api/v1/mfa/confirm", {"code": pyotp.TOTP(self.secret).now()})
        assert done.status_code == 200, done.text
        self._keep(done, done.json()["session"])
        return self

    def close(self) -> None:
        self.http.close()


def audit_rows(node: Node, action: str) -> list[tuple[str, str, str | None, str | None]]:
    """(actor, outcome, object id, reason) of the node's audit entries with `action`."""
    with sqlite3.connect(node.data_dir / "callwarden.db") as db:
        rows = db.execute(
            "SELECT actor_name, outcome, object_id, reason FROM audit_log"
            " WHERE action = ? ORDER BY sequence",
            (action,),
        ).fetchall()
    return [tuple(row) for row in rows]
