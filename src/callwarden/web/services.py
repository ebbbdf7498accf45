"""What the web application needs from the rest of the node, handed to `create_app` in one value.

The composition root (`callwarden.app`) builds a `WebServices`; tests build one over a real
database. Nothing here is created at import time; the application keeps its `WebServices` in
`app.state.services` and routes read it through `services_of`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from callwarden.acd.engine import AcdEngine
from callwarden.bus.in_process import InProcessBus
from callwarden.bus.protocol import EventBus
from callwarden.domain.directory import DirectorySnapshot
from callwarden.recording.commands import RecordingTools
from callwarden.recording.service import RecordingService
from callwarden.security.audit import AuditEntry, AuditEvent, AuditLog, AuditUnavailable
from callwarden.security.clock import Clock
from callwarden.security.login import LoginService
from callwarden.security.mfa import MfaService
from callwarden.security.password_policy import PasswordPolicy
from callwarden.security.passwords import PasswordHasher
from callwarden.security.sessions import SessionRevocations, SessionService
from callwarden.security.throttle import LoginThrottle
from callwarden.telephony.monitoring import MonitoringService
from callwarden.telephony.recording_control import RecordingControl
from callwarden.telephony.source_guard import SourceGuard
from callwarden.web.body_limit import DEFAULT_MAX_BODY_BYTES
from callwarden.webrtc.phones import BrowserPhones

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeStatus:
    active_calls: int
    registered_phones: int
    media_endpoints: int


class DirectoryProvider(Protocol):
    """The current configuration snapshot, and a way to reread it after a change
    (`callwarden.store.directory.UserDirectory` is one)."""

    @property
    def snapshot(self) -> DirectorySnapshot: ...

    def reload(self) -> DirectorySnapshot: ...


class AuditSink(Protocol):
    """Appends one event from async code (`callwarden.security.audit_writer.AuditWriter`)."""

    async def append(self, event: AuditEvent) -> AuditEntry: ...


class WebAudit:
    """The web layer's hook into the audit log.

    `record` is for acts: it raises `AuditUnavailable` (503) when the entry cannot be written,
    so the caller does not go ahead unrecorded. `record_quietly` is for refusals, which happen
    anyway: a failure to log one is logged, and the refusal stands.
    """

    def __init__(self, sink: AuditSink, log: AuditLog) -> None:
        self.sink = sink
        self.log = log

    async def record(self, event: AuditEvent) -> AuditEntry:
        return await self.sink.append(event)

    async def record_quietly(self, event: AuditEvent) -> None:
        try:
            await self.sink.append(event)
        except AuditUnavailable as error:
            logger.error("audit entry %s by %r lost: %s", event.action, event.actor.name, error)


@dataclass(frozen=True)
class WebSettings:
    """`allowed_origins`: the exact origins (`https://cc.example.com`) a live WebSocket may be
    opened from; empty refuses every handshake. `live_queue`: how many events a live connection
    may fall behind before its oldest are dropped; `live_recheck_seconds`: how often an idle
    live connection checks that its user's principal (role grants, teams) is unchanged;
    `time_zone`: the center's (pages, reports, the wallboard's midnight);
    `sip_trusted_networks`: the node's configured SIP trusted networks, shown (read-only) on the
    admin console's network page."""

    allowed_origins: frozenset[str] = frozenset()
    time_zone: str = "Asia/Tokyo"
    sip_trusted_networks: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    live_queue: int = 256
    live_recheck_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.live_queue < 1 or not self.live_recheck_seconds > 0:
            raise ValueError("live_queue must be at least 1 and live_recheck_seconds positive")
        try:  # an unknown name fails here, not at the first report
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.time_zone!r}") from None
        object.__setattr__(
            self,
            "allowed_origins",
            frozenset(origin.rstrip("/") for origin in self.allowed_origins),
        )


async def _no_status() -> NodeStatus:
    return NodeStatus(active_calls=0, registered_phones=0, media_endpoints=0)


def _no_acd() -> AcdEngine | None:
    return None


def _no_sip_guard() -> SourceGuard | None:
    return None


def _no_monitoring() -> MonitoringService | None:
    return None


def _no_recordings() -> RecordingService | None:
    return None


def _no_recording_control() -> RecordingControl | None:
    return None


def _no_recording_tools() -> RecordingTools | None:
    return None


def _no_browser_phones() -> BrowserPhones | None:
    return None


@dataclass(frozen=True)
class WebServices:
    """Everything the routes call. `database` opens a unit of work on the configuration store;
        `realm` is the SIP realm HA1s are computed for when a user's SIP password is set; `bus` is
        the node's event bus (the live WebSocket subscribes to it, sign-in publishes on it); `acd`
    gives the node's ACD engine once it runs (None before: the agent routes answer 409);
    `monitoring` the node's monitoring service likewise."""

    database: Callable[[], Session]
    directory: DirectoryProvider
    audit: WebAudit
    sessions: SessionService
    revocations: SessionRevocations
    login: LoginService
    mfa: MfaService
    throttle: LoginThrottle
    password_policy: PasswordPolicy
    password_hasher: PasswordHasher
    clock: Clock
    realm: str
    settings: WebSettings = field(default_factory=WebSettings)
    status: Callable[[], Awaitable[NodeStatus]] = _no_status
    bus: EventBus = field(default_factory=InProcessBus)
    acd: Callable[[], AcdEngine | None] = _no_acd
    sip_guard: Callable[[], SourceGuard | None] = _no_sip_guard
    """The node's SIP source guard once SIP runs (its bans are listed to admins)."""
    monitoring: Callable[[], MonitoringService | None] = _no_monitoring
    recordings: Callable[[], RecordingService | None] = _no_recordings
    """The recordings catalogue and playback once configured (the recording routes answer
    409 recordings_not_configured before)."""
    recording_control: Callable[[], RecordingControl | None] = _no_recording_control
    """Pause, resume, start and stop of live calls' recordings once calls run."""
    recording_tools: Callable[[], RecordingTools | None] = _no_recording_tools
    """The sealed files, key ring and node key, to verify recordings once configured."""
    browser_phones: Callable[[], BrowserPhones | None] = _no_browser_phones
    """The browser phones (WebRTC) once the node runs them (`/api/v1/phone` closes 4503
    before)."""


SERVICES_STATE_KEY = "services"


def services_of(connection: HTTPConnection) -> WebServices:
    """The services of the application serving `connection`."""
    services = getattr(connection.app.state, SERVICES_STATE_KEY)
    assert isinstance(services, WebServices)
    return services


_Item = TypeVar("_Item")


def app_part(connection: HTTPConnection, kind: type[_Item]) -> _Item:
    """The application's instance of `kind` (a feature's use cases), set up by `create_app`."""
    part = getattr(connection.app.state, f"part_{kind.__name__}")
    assert isinstance(part, kind)
    return part


def part_name(kind: type[object]) -> str:
    return f"part_{kind.__name__}"
