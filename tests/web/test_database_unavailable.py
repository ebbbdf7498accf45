"""T30: the database goes away under a running application. Signing in and every guarded
route answer 503 `database_unavailable` (with Retry-After), never a success and never a 500
with database text: a guard that cannot check a session refuses (ASVS V16.5.3, fail closed)."""

from __future__ import annotations

import os
from pathlib import Path

from web.support import PASSWORD, Env


def _take_the_database_away(env: Env) -> None:
    """The SQLite file becomes unreachable (as a database host going down would be)."""
    url = env.database.url
    path = Path(url.removeprefix("sqlite:///"))
    env.database.engine.dispose()
    os.rename(path, path.with_suffix(".gone"))
    path.mkdir()


async def test_sign_in_and_guarded_routes_answer_503_when_the_database_is_gone(env: Env) -> None:
    session = env.sign_in_directly("admin")
    async with env.client(session) as client:
        assert (await client.get("/api/v1/users")).status_code == 200
        _take_the_database_away(env)
        guarded = await client.get("/api/v1/users")
    async with env.client() as anonymous:
        sign_in = await anonymous.post(
            "/api/v1/sessions", json={"username": "admin", "password": PASSWORD}
        )
    for response in (guarded, sign_in):
        assert response.status_code == 503, response.text
        assert response.json()["error_id"] == "database_unavailable"
        assert response.headers["Retry-After"] == "5"
        assert "sqlite" not in response.text.lower()
