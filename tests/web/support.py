"""The web tests' world: one organisation provisioned into a real database, every service the
application needs built over it, an HTTP client without sockets, and a WebSocket driver.

The organisation: teams `north` (with `north-east` nested below it) and `south`; one user per
built-in role in `north` (`operator`, `supervisor` supervising `north`, `admin`, `auditor`),
`colleague` (an operator of `north`), `stranger` (an operator of `south`), `exporter`, who
holds a custom role with `audit.export`, `deputy`, a second supervisor of `north`, and `keeper`
of `north`, whose custom role `records` holds what no built-in role does for recordings
(download and delete in their team, legal holds, retention).
`quality` is a custom role anyone holding `reports.view` may give.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
from fastapi import FastAPI
from sqlalchemy import select

from callwarden.acd.engine import AcdEngine
from callwarden.acd.queue import OverflowAction
from callwarden.bus.claims import InProcessAgentClaims
from callwarden.bus.in_process import InProcessBus
from callwarden.domain.directory import DirectorySnapshot
from callwarden.domain.ids import CallId, QueueId, UserId
from callwarden.domain.models import User
from callwarden.provisioning import Provisioner
from callwarden.recording.commands import RecordingTools, catalogue_locator
from callwarden.security.audit import AuditLog
from callwarden.security.audit_writer import AuditWriter
from callwarden.security.devices import KnownDevices
from callwarden.security.login import LoginService
from callwarden.security.mfa import MfaService, time_step
from callwarden.security.network_policy import NetworkPolicy
from callwarden.security.password_policy import PasswordPolicy
from callwarden.security.passwords import PasswordHasher
from callwarden.security.secret_box import SecretBox
from callwarden.security.sessions import (
    AuthLevel,
    IssuedSession,
    SessionRevocations,
    SessionService,
)
from callwarden.security.throttle import LoginThrottle
from callwarden.sip.clock import FakeClock as SipFakeClock
from callwarden.store.database import Database
from callwarden.store.directory import UserDirectory
from callwarden.store.schema import AuditLogRow
from callwarden.web.access import CSRF_HEADER, SESSION_COOKIE
from callwarden.web.app import create_app
from callwarden.web.services import WebAudit, WebServices, WebSettings
from web.live_recording_support import LiveRecordingWorld, build_live_recording
from web.monitoring_support import MonitoringWorld, build_monitoring
from web.recording_support import RecordingWorld, build_recordings

T0 = datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)
PASSWORD = "lantern-quartz-meadow-1987"
REALM = "callwarden.test"
ORIGIN = "https://cc.example.test"
BASE_URL = "https://callwarden.test"
ROLE_USERS = ("operator", "supervisor", "admin", "auditor")

ORGANISATION: dict[str, Any] = {
    "roles": [
        {"name": "quality", "grants": ["reports.view:team"]},
        {"name": "audit_exporter", "grants": ["audit.view:all", "audit.export:all"]},
        {
            "name": "records",
            "grants": [
                "recordings.play:all",
                "recordings.download:team",
                "recordings.delete:team",
                "recordings.legal_hold:all",
                "retention.manage",
                "numbers.view:all",
            ],
        },
    ],
    "teams": [
        {"name": "north"},
        {"name": "north-east", "parent": "north"},
        {"name": "south"},
    ],
    "users": [
        {"username": "operator", "role": "operator", "team": "north", "extension": "1001"},
        {"username": "supervisor", "role": "supervisor", "team": "north", "supervises": ["north"]},
        {"username": "admin", "role": "admin", "team": "north"},
        {"username": "auditor", "role": "auditor", "team": "north"},
        {"username": "colleague", "role": "operator", "team": "north", "extension": "1002"},
        {"username": "stranger", "role": "operator", "team": "south", "extension": "2001"},
        {"username": "exporter", "role": "audit_exporter"},
        {"username": "deputy", "role": "supervisor", "team": "north", "supervises": ["north"]},
        {"username": "keeper", "role": "records", "team": "north"},
    ],
    "dispositions": [
        {"code": "resolved", "label_ja": "解決", "label_en": "Resolved"},
        {"code": "callback", "label_ja": "折り返し", "label_en": "Call back"},
    ],
}


def cheap_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost_kib=64, parallelism=1)


def provision_organisation(database: Database) -> None:
    document = {
        **ORGANISATION,
        "users": [{**user, "password": PASSWORD} for user in ORGANISATION["users"]],
    }
    Provisioner(database.sessions, REALM, password_hasher=cheap_hasher()).apply_document(
        document, "organisation"
    )


class FakeClock:
    """Stands still until told to move."""

    def __init__(self, start: datetime = T0) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, **amount: float) -> None:
        self.current += timedelta(**amount)


@dataclass
class Env:
    """A running application over one database."""

    database: Database
    clock: FakeClock
    services: WebServices
    app: FastAPI
    writer: AuditWriter
    box: SecretBox
    acd: AcdEngine
    closers: list[Any] = field(default_factory=list)
    recordings: RecordingWorld | None = None
    monitoring: MonitoringWorld | None = None
    live_recording: LiveRecordingWorld | None = None

    async def start(self) -> None:
        """What needs the running loop: the live recordings' calls (see live_recording_support)."""
        if self.live_recording is not None:
            await self.live_recording.start(self.snapshot)

    @property
    def snapshot(self) -> DirectorySnapshot:
        return self.services.directory.snapshot

    def user(self, username: str) -> User:
        user = self.snapshot.user_by_username(username)
        assert user is not None, username
        return user

    def sign_in_directly(self, username: str, *, mfa_complete: bool = True) -> IssuedSession:
        """A session as the sign-in service makes it, without the HTTP steps."""
        return self.services.sessions.create(
            self.user(username).id,
            auth_level=AuthLevel.MFA if mfa_complete else AuthLevel.PASSWORD,
            mfa_required=True,
            client_address="127.0.0.1",
            user_agent="tests",
        )

    @asynccontextmanager
    async def client(
        self, session: IssuedSession | None = None, *, address: str = "127.0.0.1"
    ) -> AsyncIterator[httpx.AsyncClient]:
        """A client of the application (from `address`); with `session`, its cookie and CSRF
        header are set. Cookies the application sets are kept, as a browser keeps them."""
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            if session is not None:
                client.cookies.set(SESSION_COOKIE, session.token, domain="callwarden.test")
                client.headers[CSRF_HEADER] = session.session.csrf_token
            yield client

    def audit_actions(self) -> list[tuple[str, str, str | None]]:
        """(action, outcome, object id) of every audit entry, oldest first."""
        with self.database.sessions() as session:
            rows = session.scalars(select(AuditLogRow).order_by(AuditLogRow.sequence))
            return [(row.action, row.outcome, row.object_id) for row in rows]

    def audit_details(self, action: str) -> list[dict[str, Any]]:
        with self.database.sessions() as session:
            rows = session.scalars(
                select(AuditLogRow)
                .where(AuditLogRow.action == action)
                .order_by(AuditLogRow.sequence)
            )
            return [dict(row.details) for row in rows]

    def totp(self, secret: str, *, steps_ahead: int = 0) -> str:
        step = time_step(self.clock.now()) + steps_ahead
        return pyotp.TOTP(secret).generate_otp(step)

    async def close(self) -> None:
        if self.monitoring is not None:
            await self.monitoring.service.close()
        if self.live_recording is not None:
            await self.live_recording.close()
        if self.recordings is not None and self.recordings._directory is not None:
            self.recordings._directory.cleanup()  # not left to the garbage collector's warning
        await self.acd.close()
        await self.writer.close()


def build_env(
    database: Database,
    clock: FakeClock,
    *,
    policy: PasswordPolicy,
    settings: WebSettings | None = None,
) -> Env:
    factory = database.sessions
    hasher = cheap_hasher()
    directory = UserDirectory(factory)
    directory.reload()
    revocations = SessionRevocations()
    sessions = SessionService(factory, clock, revocations)
    box = SecretBox.generate()
    mfa = MfaService(factory, box, clock)
    throttle = LoginThrottle(factory, clock)
    login = LoginService(
        factory,
        clock=clock,
        hasher=hasher,
        sessions=sessions,
        mfa=mfa,
        throttle=throttle,
        network_policy=NetworkPolicy(factory),
        devices=KnownDevices(factory, clock),
    )
    log = AuditLog(factory, clock)
    writer = AuditWriter(log)
    writer.start()
    recordings = build_recordings(factory, directory.snapshot, writer, clock.now)
    tools = RecordingTools(
        catalogue_locator(database, recordings.storage),
        recordings.sealer.keyring,
        recordings.signing_key_path,
    )
    monitoring = build_monitoring(lambda: directory.snapshot, writer)
    bus = InProcessBus()
    acd = build_acd(directory.snapshot, bus)
    live = build_live_recording(factory, lambda: directory.snapshot, writer.submit, bus, clock.now)
    services = WebServices(
        database=factory,
        directory=directory,
        audit=WebAudit(writer, log),
        sessions=sessions,
        revocations=revocations,
        login=login,
        mfa=mfa,
        throttle=throttle,
        password_policy=policy,
        password_hasher=hasher,
        clock=clock,
        realm=REALM,
        settings=settings or WebSettings(allowed_origins=frozenset({ORIGIN})),
        bus=bus,
        acd=lambda: acd,
        recordings=lambda: recordings.service,
        monitoring=lambda: monitoring.service,
        recording_control=lambda: live.control,
        recording_tools=lambda: tools,
    )
    env = Env(database, clock, services, create_app(services), writer, box, acd)
    env.recordings = recordings
    env.monitoring = monitoring
    env.live_recording = live
    return env


def build_acd(directory: DirectorySnapshot, bus: InProcessBus) -> AcdEngine:
    """An ACD engine over `directory` on a fake clock; not started (the agent routes read it,
    and asking an offline agent to sign out needs no running engine)."""
    clock = SipFakeClock()
    return AcdEngine(
        directory=directory,
        bus=bus,
        claims=InProcessAgentClaims(clock.now),
        calls=NoTelephony(),
        clock=clock,
        wall_clock=lambda: T0 + timedelta(seconds=clock.now()),
        node_id="web-tests",
    )


class NoTelephony:
    """The ACD's owner in the web tests: no phones, so offers are only recorded."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def offer_call(self, call_id: CallId, agent_id: UserId, queue_id: QueueId) -> None:
        self.requests.append(f"offer {call_id} to {agent_id}")

    def withdraw_offer(self, call_id: CallId, agent_id: UserId) -> None:
        self.requests.append(f"withdraw {call_id} from {agent_id}")

    def overflow_call(self, call_id: CallId, queue_id: QueueId, action: OverflowAction) -> None:
        self.requests.append(f"overflow {call_id}")


# WebSocket


@dataclass
class WebSocketResult:
    """What the application sent over one WebSocket connection."""

    accepted: bool
    close_code: int | None
    close_reason: str
    messages: list[Any]


class WebSocketSession:
    """Drives the application's ASGI WebSocket interface directly (no sockets): the
    handshake, messages both ways, and the application's close."""

    def __init__(self, app: FastAPI, path: str, headers: Mapping[str, str]) -> None:
        self._app = app
        self._incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "wss",
            "http_version": "1.1",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 40001),
            "server": ("callwarden.test", 443),
            "subprotocols": [],
            "state": {},
        }
        self._task: asyncio.Task[None] | None = None
        self.accepted = False
        self.close_code: int | None = None
        self.close_reason = ""

    async def _receive(self) -> dict[str, Any]:
        return await self._incoming.get()

    async def _send(self, message: MutableMapping[str, Any]) -> None:
        await self._outgoing.put(dict(message))

    async def connect(self) -> bool:
        """The handshake: True if accepted, False if refused (closed before accept)."""
        self._task = asyncio.create_task(self._app(self._scope, self._receive, self._send))
        await self._incoming.put({"type": "websocket.connect"})
        message = await asyncio.wait_for(self._outgoing.get(), 5)
        if message["type"] == "websocket.accept":
            self.accepted = True
            return True
        self._closed(message)
        await asyncio.wait_for(self._task, 5)
        return False

    def _closed(self, message: dict[str, Any]) -> None:
        assert message["type"] == "websocket.close", message
        self.close_code = message.get("code", 1000)
        self.close_reason = message.get("reason") or ""

    async def receive_json(self) -> Any:
        """The next message, or None once the application has closed the connection."""
        message = await asyncio.wait_for(self._outgoing.get(), 5)
        if message["type"] == "websocket.close":
            self._closed(message)
            return None
        return json.loads(message["text"])

    async def send_json(self, data: Any) -> None:
        await self._incoming.put({"type": "websocket.receive", "text": json.dumps(data)})

    async def disconnect(self) -> None:
        await self._incoming.put({"type": "websocket.disconnect", "code": 1000})
        if self._task is not None:
            await asyncio.wait_for(self._task, 5)

    async def wait_closed(self) -> None:
        """Until the application closes the connection (and its handler returns)."""
        while self.close_code is None:
            if await self.receive_json() is None:
                break
        await self.disconnect()


def websocket_headers(session: IssuedSession | None, origin: str | None = ORIGIN) -> dict[str, str]:
    headers = {"host": "callwarden.test"}
    if origin is not None:
        headers["origin"] = origin
    if session is not None:
        headers["cookie"] = f"{SESSION_COOKIE}={session.token}"
    return headers


def user_id(env: Env, username: str) -> UserId:
    return env.user(username).id


async def sign_in(
    client: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    """POST the credentials; on success the client keeps the cookie and sends the CSRF token."""
    response = await client.post(
        "/api/v1/sessions", json={"username": username, "password": password}
    )
    if response.status_code == 200:
        client.headers[CSRF_HEADER] = response.json()["csrf_token"]
    return response


async def finish_mfa(client: httpx.AsyncClient, path: str, code: str) -> httpx.Response:
    """POST a code to an MFA step; on success the client sends the new CSRF token."""
    response = await client.post(path, json={"code": code})
    if response.status_code == 200:
        body = response.json()
        state = body.get("session", body) if "recovery_codes" in body else body
        if state is not None:
            client.headers[CSRF_HEADER] = state["csrf_token"]
    return response


def session_token(client: httpx.AsyncClient) -> str | None:
    return client.cookies.get(SESSION_COOKIE)
