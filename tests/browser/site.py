"""A callwarden web application served for a real browser: the application of `create_app`
(API, live WebSockets and pages) over a real SQLite database, with the ACD engine running, served
over HTTPS by uvicorn on a free loopback port from a thread of its own (its own event loop), with
a certificate made like a node's (`security.certificates`; the browser pins it) and the node's
TLS context (TLS 1.2 minimum, forward-secret suites). It has no
telephony: calls exist as the ACD and monitoring events a test publishes (`Site.publish`), and
the monitoring routes answer 409 `monitoring_not_running`.

The organisation is the web tests' (`web.support`) plus one queue of team `north`
(`north-line`, members `operator` and `colleague`, answered within 1 s counts for the service
level, so that a test sees a long wait after a second). The security clock is a `FakeClock` that the
test moves (TOTP codes are computed from it, so a test can step past a used code).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import uvicorn

from callwarden.bus.event import Event
from callwarden.provisioning import Provisioner
from callwarden.security.certificates import (
    FORWARD_SECRET_TLS12_CIPHERS,
    TlsIdentity,
    load_or_create,
    server_context,
)
from callwarden.security.password_policy import PasswordPolicy
from callwarden.store.database import Database, sqlite_url
from callwarden.store.migrations import upgrade
from callwarden.web.app import create_app
from callwarden.web.services import WebSettings
from callwarden.web.ws_protocol import WebSocketProtocol
from web.support import ORGANISATION, PASSWORD, REALM, Env, FakeClock, build_env, cheap_hasher

logger = logging.getLogger(__name__)

QUEUE_DOCUMENT = {
    "queues": [
        {
            "name": "north-line",
            "number": "5000",
            "team": "north",
            "members": ["operator", "colleague"],
            "service_level_seconds": 1,
        }
    ]
}


def _no_monitoring() -> None:
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Site:
    base_url: str
    env: Env
    loop: asyncio.AbstractEventLoop
    certificate: Path
    """The PEM certificate the site serves (self-signed: a client trusts exactly it)."""

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def publish(self, event: Event) -> None:
        """Publishes `event` on the application's bus, from the application's own loop (what
        the ACD or telephony of a node would publish)."""
        self.loop.call_soon_threadsafe(self.env.services.bus.publish, event)


def _provision(database: Database) -> None:
    document = {
        **ORGANISATION,
        **QUEUE_DOCUMENT,
        "users": [{**user, "password": PASSWORD} for user in ORGANISATION["users"]],
    }
    Provisioner(database.sessions, REALM, password_hasher=cheap_hasher()).apply_document(
        document, "browser"
    )


def certificate(directory: Path) -> TlsIdentity:
    """A self-signed certificate for 127.0.0.1, made as a node makes its own."""
    return load_or_create(directory, hostnames=("127.0.0.1", "localhost"))


@contextmanager
def serve(directory: Path, identity: TlsIdentity) -> Iterator[Site]:
    """Serves the application over HTTPS with `identity` until the block ends."""
    url = sqlite_url(directory / "browser.db")
    upgrade(url)
    port = free_port()
    origin = f"https://127.0.0.1:{port}"
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def run(database: Database) -> None:
        env = build_env(
            database,
            FakeClock(),
            policy=PasswordPolicy.default(),
            settings=WebSettings(allowed_origins=frozenset({origin})),
        )
        # No telephony here, so no live monitoring: the monitoring routes answer 409.
        env.services = replace(env.services, monitoring=_no_monitoring)
        env.app = create_app(env.services)
        await env.acd.start()
        config = uvicorn.Config(
            env.app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
            ws=WebSocketProtocol,
            ssl_certfile=identity.certificate_path,
            ssl_keyfile=identity.private_key_path,
            ssl_ciphers=FORWARD_SECRET_TLS12_CIPHERS,
        )
        config.load()
        config.ssl = server_context(identity)  # as the node does (callwarden.app)
        server = uvicorn.Server(config)
        holder["env"], holder["server"] = env, server
        holder["loop"] = asyncio.get_running_loop()
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():  # noqa: ASYNC110 (a flag, no event)
            await asyncio.sleep(0.02)
        ready.set()
        try:
            await serving
        finally:
            await env.close()

    with Database(url) as database:
        _provision(database)
        thread = threading.Thread(
            target=lambda: asyncio.run(run(database)), name="browser-site", daemon=True
        )
        thread.start()
        if not ready.wait(30):
            raise RuntimeError("the web application did not start within 30 s")
        server = holder["server"]
        env = holder["env"]
        loop = holder["loop"]
        assert isinstance(server, uvicorn.Server) and isinstance(env, Env)
        assert isinstance(loop, asyncio.AbstractEventLoop)
        try:
            yield Site(origin, env, loop, identity.certificate_path)
        finally:
            server.should_exit = True
            thread.join(30)
