"""The composition root: the one place that builds concrete parts and wires them together.

`Node` is a running callwarden node (database, directory, event bus, SIP transport, transaction
layer, media engine, SIP application, CDR writer); `run_node` runs one on uvloop until
SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import os
import random
import secrets
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import uvicorn
import uvloop
from fastapi import FastAPI
from redis.asyncio import Redis
from sqlalchemy.exc import SQLAlchemyError

from callwarden.acd.engine import AcdEngine
from callwarden.acd.events import ACD_EVENT_TYPES
from callwarden.acd.history import AcdHistory, RecordedBus
from callwarden.acd.retention import HistoryRetention
from callwarden.acd.round_robin import RedisRoundRobin
from callwarden.acd.today import DailyCounts, stored_history
from callwarden.bus import Event, EventBus, EventCodec, InProcessBus
from callwarden.bus.claims import AgentClaims, InProcessAgentClaims
from callwarden.bus.redis_bus import RedisBus
from callwarden.bus.redis_claims import RedisAgentClaims
from callwarden.config import ConfigError, Settings
from callwarden.domain.directory import DirectorySnapshot
from callwarden.media.control import MediaConfig
from callwarden.media.engine import MediaEngine
from callwarden.media.workers import MediaWorkerPool
from callwarden.provisioning import Provisioner, ProvisionReport
from callwarden.recording.capture import CAPTURE_PROVIDER
from callwarden.recording.capture_events import CAPTURE_EVENT_TYPES
from callwarden.recording.catalogue_events import CATALOGUE_EVENT_TYPES
from callwarden.recording.commands import RecordingTools, catalogue_locator
from callwarden.recording.keyring import FileKeyRing
from callwarden.recording.numbers import SealedNumbers, catalogue_secret
from callwarden.recording.playback import PlaybackGrants
from callwarden.recording.purge import Purger, Shredder
from callwarden.recording.purge_runs import PurgeRuns, ScheduledPurge
from callwarden.recording.recorder import Recorder, RecorderSettings
from callwarden.recording.recovery import (
    RecoveryServices,
    node_identity,
    recover_open_recordings,
)
from callwarden.recording.service import RecordingService
from callwarden.recording.signing import NodeSigningKey
from callwarden.recording.storage import LocalStorage
from callwarden.recording.storage_s3 import S3Storage, open_recording_storage
from callwarden.security.account_events import ACCOUNT_EVENT_TYPES
from callwarden.security.audit import AuditLog
from callwarden.security.audit_writer import AuditWriter
from callwarden.security.certificates import (
    FORWARD_SECRET_TLS12_CIPHERS,
    CertificateError,
    TlsIdentity,
    load_or_create,
    server_context,
)
from callwarden.security.clock import SystemClock
from callwarden.security.devices import KnownDevices
from callwarden.security.login import LoginService
from callwarden.security.mfa import MfaService
from callwarden.security.network_policy import NetworkPolicy
from callwarden.security.password_policy import PasswordPolicy
from callwarden.security.passwords import PasswordHasher
from callwarden.security.secret_box import SecretBox
from callwarden.security.sessions import SessionRevocations, SessionService
from callwarden.security.throttle import LoginThrottle
from callwarden.sip.clock import LoopClock
from callwarden.sip.digest import DigestAuthenticator, NonceManager
from callwarden.sip.transaction import LayerLimits, TransactionLayer
from callwarden.sip.transport import SipTransport, TransportConfig
from callwarden.store.database import Database
from callwarden.store.directory import UserDirectory
from callwarden.store.migrations import upgrade
from callwarden.telephony.account_guard import AccountGuard
from callwarden.telephony.acd_bridge import QueueCalls
from callwarden.telephony.agent_codes import AgentCodes, AgentFeatures
from callwarden.telephony.application import ApplicationSettings, SipApplication
from callwarden.telephony.cdr_process import CdrWriterProcess
from callwarden.telephony.direct_recording import DirectCallRecording
from callwarden.telephony.edge_audit import EdgeReporter
from callwarden.telephony.feature_codes import MonitoringCodes
from callwarden.telephony.features import FeatureCodes
from callwarden.telephony.media_policy import MediaPolicy
from callwarden.telephony.monitor_phone import MonitorFeatures
from callwarden.telephony.monitored_call import LiveCalls
from callwarden.telephony.monitoring import MonitoringService, TeamTransparency, phone_targets
from callwarden.telephony.monitoring_events import MONITORING_EVENT_TYPES
from callwarden.telephony.prompts import Prompts
from callwarden.telephony.recording_control import (
    RecordingControl,
    RecordingControlSettings,
)
from callwarden.telephony.registrar import Registrar
from callwarden.telephony.security_events import SIP_SECURITY_EVENT_TYPES
from callwarden.telephony.shared_bans import SharedBans
from callwarden.telephony.sip_auth import SipAuthGuard
from callwarden.telephony.source_guard import SourceGuard, SourceGuardSettings
from callwarden.telephony.throttle import FailureThrottle, ThrottleSettings
from callwarden.telephony.toll_guard import TollGuard, TollGuardSettings
from callwarden.web.app import NodeStatus, WebServices, WebSettings, create_app
from callwarden.web.pages.figures import start_page_figures
from callwarden.web.recordings.audit import RecordingAuditPort
from callwarden.web.reports.history_audit import HistoryPurgeAudit
from callwarden.web.services import WebAudit
from callwarden.web.ws_protocol import WebSocketProtocol
from callwarden.webrtc.contacts import BrowserContacts
from callwarden.webrtc.phones import BrowserPhones, WebRtcSettings
from callwarden.webrtc.turn import IceSettings

logger = logging.getLogger(__name__)

NONCE_KEY_FILE = "sip-nonce.key"
MFA_KEY_FILE = "mfa-seeds.key"
SIGN_IN_SWEEP_SECONDS = 60.0
NODE_EVENT_TYPES: tuple[type[Event], ...] = (
    *ACD_EVENT_TYPES,
    *ACCOUNT_EVENT_TYPES,
    *MONITORING_EVENT_TYPES,
    *CAPTURE_EVENT_TYPES,
    *SIP_SECURITY_EVENT_TYPES,
    *CATALOGUE_EVENT_TYPES,
)
"""Every event a node carries between nodes on a shared bus."""

GC_THRESHOLDS = (50_000, 20, 100)
"""Cyclic GC thresholds for a running node (CPython's defaults are 700, 10, 10).

A call's objects die by reference counting within a second or so, and what lingers after it
(its transactions, Timers J/L/M) is small; the collector only ever finds a few dozen cycles.
With the defaults it still walked every call's objects several times and full collections of
the whole heap paused the node for up to 450 ms. Measured with sip_cps.py at 200 calls/s for
40 s (one media worker, start-up objects frozen): (5000, 10, 10) 150 young and 14 older
collections, 4.6 s; (20000, 20, 50) 1.8 s; these values 16 young collections, 0.96 s (longest
86 ms), none older - main-process CPU per call 4.0 -> 3.25 ms."""


def _prepare_data_dir(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "keys").mkdir(mode=0o700, exist_ok=True)


def _secret(path: Path) -> bytes:
    """A 32-byte node secret kept in the data directory (created on first start, mode 0600)."""
    if path.exists():
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    data = secrets.token_bytes(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    return data


def _tls_identity(settings: Settings) -> TlsIdentity | None:
    """The node's certificate for SIP over TLS and HTTPS: the configured one, else the
    self-signed one callwarden made in the data directory. None when nothing listens with TLS
    (no `sip_tls_port` and `http_plaintext`)."""
    if settings.sip_tls_port is None and settings.http_plaintext:
        return None
    try:
        identity = load_or_create(
            settings.data_dir / "tls",
            certificate=settings.tls_certificate,
            private_key=settings.tls_private_key,
            hostnames=["localhost", *_named_addresses(settings)],
        )
        server_context(identity)  # a certificate the TLS library refuses fails the start here
    except CertificateError as error:
        raise ConfigError(str(error)) from error
    logger.info(
        "TLS certificate %s (SIP over TLS, HTTPS), SHA-256 fingerprint %s",
        identity.certificate_path,
        identity.fingerprint_sha256,
    )
    return identity


def _ice_settings(settings: Settings) -> IceSettings:
    """The browser phones' STUN and TURN servers (docs/webrtc.md)."""
    secret = b""
    if settings.webrtc_turn_secret_file is not None:
        try:
            secret = settings.webrtc_turn_secret_file.read_bytes().strip()
        except OSError as error:
            raise ConfigError(f"webrtc_turn_secret_file: {error}") from error
    try:
        return IceSettings(
            settings.webrtc_stun_urls,
            settings.webrtc_turn_urls,
            secret,
            transport_policy=settings.webrtc_ice_transport_policy,
        )
    except ValueError as error:
        raise ConfigError(f"webrtc: {error}") from error


def _named_addresses(settings: Settings) -> list[str]:
    """The node's specific addresses (bind, SDP), for the generated certificate's names."""
    addresses = {settings.bind, settings.sdp_address}
    return sorted(a for a in addresses if not ipaddress.ip_address(a).is_unspecified)


def provision_file(settings: Settings, file: Path) -> ProvisionReport:
    """Migrate the database, then apply a provisioning file to it."""
    _prepare_data_dir(settings)
    url = settings.effective_database_url
    upgrade(url)
    database = Database(url)
    try:
        return Provisioner(database.sessions, realm=settings.realm).apply_file(file)
    finally:
        database.close()


def _monitoring_codes(settings: Settings) -> MonitoringCodes:
    keys = settings.monitor_keys
    return MonitoringCodes(
        listen=settings.monitor_listen_code,
        whisper=settings.monitor_whisper_code,
        barge=settings.monitor_barge_code,
        key_listen=keys[0],
        key_whisper=keys[1],
        key_barge=keys[2],
        key_leave=keys[3],
    )


def _media_engine(settings: Settings) -> MediaEngine | MediaWorkerPool:
    """The media engine in this process, or `media_workers` engine processes behind the same
    MediaControl interface (each owning whole bridges)."""
    config = MediaConfig(
        host=settings.bind,
        ports=f"{settings.rtp_port_low}-{settings.rtp_port_high}",
        recording_sinks=CAPTURE_PROVIDER,  # recordings are sealed where the media runs
        log_level=settings.log_level,
    )
    workers = settings.media_workers
    if workers is None:
        workers = 1 if (os.cpu_count() or 1) > 1 else 0
    if workers > 0:
        return MediaWorkerPool(config, workers)
    # SSRCs, sequence numbers and timestamps need unpredictable starts, not a syscall per call:
    # one generator seeded from the OS (RFC 3550 5.1, 8).
    return MediaEngine(config, rng=random.Random(secrets.token_bytes(32)))


async def _start_event_bus(settings: Settings) -> tuple[EventBus, Redis | None]:
    """The in-process bus, or with `redis_url` a RedisBus shared with the other nodes (and the
    Redis client it uses, for the caller to close after the bus)."""
    if settings.redis_url is None:
        return InProcessBus(), None
    client = Redis.from_url(settings.redis_url)
    # One stable id per node, the one its recordings carry: `node_id`, else `<data_dir>/node-id`.
    node_id = await asyncio.to_thread(node_identity, settings.data_dir, settings.node_id)
    bus = RedisBus(client, EventCodec(NODE_EVENT_TYPES), node_id=node_id)
    try:
        await bus.start()
    except BaseException:
        await client.aclose()
        raise
    return bus, client


def _source_guard(
    settings: Settings,
    clock: LoopClock,
    report: EdgeReporter,
    directory: UserDirectory,
    bus: EventBus,
) -> SourceGuard:
    """The per-source SIP guard: limits and bans from the settings; enabled trunks' hosts
    trusted like the configured networks; its bans stamped with the node's id on the bus."""

    def is_trunk_host(host: str) -> bool:
        return any(trunk.enabled and trunk.host == host for trunk in directory.snapshot.trunks)

    return SourceGuard(
        clock,
        settings=SourceGuardSettings(
            requests_per_second=settings.sip_requests_per_second,
            burst=settings.sip_request_burst,
            ban_threshold=settings.sip_ban_threshold,
            offence_window=settings.sip_ban_window_seconds,
            ban_seconds=settings.sip_ban_seconds,
            max_ban_seconds=max(settings.sip_ban_max_seconds, settings.sip_ban_seconds),
            trusted_networks=settings.sip_trusted_networks,
        ),
        publish=report,
        wall_clock=partial(datetime.now, UTC),
        is_trusted_host=is_trunk_host,
        node_id=bus.node_id if isinstance(bus, RedisBus) else "local",
    )


def _toll_guard(settings: Settings, clock: LoopClock, report: EdgeReporter) -> TollGuard:
    return TollGuard(
        clock,
        settings=TollGuardSettings(
            max_calls_per_user=settings.max_calls_per_user,
            max_calls_per_trunk=settings.max_calls_per_trunk,
            user_outbound_per_minute=settings.user_outbound_calls_per_minute,
            trunk_outbound_per_minute=settings.trunk_outbound_calls_per_minute,
            burst_alert_calls=settings.outbound_burst_alert_calls,
        ),
        publish=report,
        wall_clock=partial(datetime.now, UTC),
    )


class _EmbeddedHttpServer(uvicorn.Server):
    """uvicorn inside the node's loop: the node, not uvicorn, owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class Node:
    """A callwarden node; `await start()`, then `await close()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.database: Database | None = None
        self.directory: UserDirectory | None = None
        self.bus: EventBus | None = None
        self._redis: Redis | None = None
        self.media: MediaEngine | MediaWorkerPool | None = None
        self.transport: SipTransport | None = None
        self.layer: TransactionLayer | None = None
        self.source_guard: SourceGuard | None = None
        self.shared_bans: SharedBans | None = None
        self.application: SipApplication | None = None
        self.monitoring: MonitoringService | None = None
        self.queue_calls: QueueCalls | None = None
        self.agent_features: AgentFeatures | None = None
        self.recorder: Recorder | None = None
        self.recording_storage: LocalStorage | S3Storage | None = None
        self.recording_control: RecordingControl | None = None
        self.acd: AcdEngine | None = None
        self.acd_history: AcdHistory | None = None
        self.acd_daily_counts: DailyCounts | None = None
        self.acd_retention: HistoryRetention | None = None
        self.browser_phones: BrowserPhones | None = None
        self.cdr_writer: CdrWriterProcess | None = None
        self.http: _EmbeddedHttpServer | None = None
        self.tls_identity: TlsIdentity | None = None
        self._http_task: asyncio.Task[None] | None = None
        self.audit_writer: AuditWriter | None = None
        self._sweep_task: asyncio.Task[None] | None = None
        self.recordings: RecordingService | None = None
        self.recording_tools: RecordingTools | None = None
        self.purge_runs: PurgeRuns | None = None
        self.purge_schedule: ScheduledPurge | None = None

    async def start(self) -> None:
        settings = self.settings
        _prepare_data_dir(settings)
        url = settings.effective_database_url
        await asyncio.to_thread(upgrade, url)
        self.database = Database(url)
        self.directory = UserDirectory(self.database.sessions)
        await asyncio.to_thread(self.directory.reload)
        self.bus, self._redis = await _start_event_bus(settings)
        web_services = await asyncio.to_thread(self._web_services)
        # Where sealed recordings go: the data directory, or an object store (checked now).
        self.recording_storage = await asyncio.to_thread(
            open_recording_storage,
            settings.data_dir,
            settings.recording_storage,
            endpoint=settings.recording_s3_endpoint,
            region=settings.recording_s3_region,
        )
        self._start_recordings_catalogue()
        # In a process of its own: inserts would otherwise take the GIL from calls.
        self.cdr_writer = CdrWriterProcess(url)
        self.cdr_writer.start()
        loop = asyncio.get_running_loop()
        clock = LoopClock(loop)
        self.media = _media_engine(settings)
        await self.media.start()
        self.tls_identity = await asyncio.to_thread(_tls_identity, settings)
        tls_context = None
        if settings.sip_tls_port is not None and self.tls_identity is not None:
            tls_context = server_context(self.tls_identity)
        assert self.bus is not None and self.directory is not None
        assert self.audit_writer is not None
        # The SIP edge's bans, refusals and alerts: to the bus (admins) and the audit log.
        report = EdgeReporter(self.bus.publish, self.audit_writer.submit)
        self.source_guard = _source_guard(settings, clock, report, self.directory, self.bus)
        # The other nodes' bans, heard on the bus, apply here too.
        self.shared_bans = SharedBans(self.bus, self.source_guard, partial(datetime.now, UTC))
        self.shared_bans.start()
        self.transport = SipTransport(
            clock,
            host=settings.bind,
            port=settings.sip_port,
            advertised_host=settings.sdp_address,
            config=TransportConfig(udp_buffer_bytes=4 * 1024 * 1024),
            tls_context=tls_context,
            tls_port=settings.sip_tls_port,
            source_filter=self.source_guard,
        )
        nonces = NonceManager(_secret(settings.data_dir / "keys" / NONCE_KEY_FILE), time.time)
        threshold = settings.auth_failures_before_throttle
        guard = SipAuthGuard(
            DigestAuthenticator(settings.realm, nonces),
            per_account=FailureThrottle(clock, ThrottleSettings(threshold=threshold)),
            per_address=FailureThrottle(clock, ThrottleSettings(threshold=threshold * 10)),
            on_failure=self.source_guard.on_auth_failure,
            per_user=AccountGuard(clock, publish=report, wall_clock=partial(datetime.now, UTC)),
        )
        directory = self.directory
        registrar = Registrar(clock)

        def drop_disabled_phones(snapshot: DirectorySnapshot) -> None:
            def enabled(username: str) -> bool:
                user = snapshot.user_by_username(username)
                return user is not None and user.enabled

            loop.call_soon_threadsafe(registrar.retain_users, enabled)

        # A disabled (or deleted) user's phones are unregistered as soon as the directory
        # reloads; the guard refuses them from then on (RFC 3261 10.3 bindings, issue 3).
        directory.on_reload(drop_disabled_phones)
        prompts = await asyncio.to_thread(Prompts.synthesise, settings.data_dir / "prompts")
        self.recording_control = await self._start_recording(clock)
        self.queue_calls = QueueCalls(
            registrar=registrar,
            directory=lambda: directory.snapshot,
            sdp_address=settings.sdp_address,
            clock=clock,
            prompts=prompts,
            auto_sign_in=settings.acd_auto_sign_in,
            recordings=self.recording_control,
            media_policy=MediaPolicy.of(
                settings.encrypted_media_roles, settings.encrypted_media_teams
            ),
        )
        monitor_features = MonitorFeatures(_monitoring_codes(settings))
        assert self.audit_writer is not None
        self.agent_features = AgentFeatures(
            AgentCodes(
                settings.agent_sign_in_code,
                settings.agent_sign_out_code,
                settings.agent_break_code,
                settings.agent_available_code,
            ),
            clock=clock,
            directory=lambda: directory.snapshot,
            audit=self.audit_writer,
        )
        self.application = SipApplication(
            settings=ApplicationSettings(
                sdp_address=settings.sdp_address, trunk_realms=settings.trunk_realm_by_name
            ),
            transport=self.transport,
            media=self.media,
            registrar=registrar,
            guard=guard,
            directory=lambda: directory.snapshot,
            write_cdr=self.cdr_writer.submit,
            queues=self.queue_calls,
            features=FeatureCodes([monitor_features, self.agent_features]),
            toll=_toll_guard(settings, clock, report),
            media_policy=MediaPolicy.of(
                settings.encrypted_media_roles, settings.encrypted_media_teams
            ),
            recording=DirectCallRecording(self.recording_control, lambda: directory.snapshot),
        )
        self._start_monitoring(monitor_features, registrar)
        web_app = create_app(web_services)
        # The wallboard's today: the day's stored events, then the bus, before the ACD runs.
        await start_page_figures(web_app)
        await self._start_acd(clock)
        # Finished transactions linger 32 s (Timers J, K over UDP): a trunk at 300 calls/s
        # holds ~20,000 of them, so the per-source bound sits well above that.
        self.layer = TransactionLayer(
            self.transport,
            clock,
            self.application,
            limits=LayerLimits(max_server_transactions_per_source=50_000),
        )
        self.application.bind(self.layer)
        self.source_guard.bind(self.layer)
        await self.transport.start(self.source_guard)
        # Browser phones: one more contact of their users, a SIP agent on loopback (webrtc).
        self.browser_phones = BrowserPhones(
            BrowserContacts(clock, host="127.0.0.1"),
            registrar,
            web_services.revocations,
            WebRtcSettings(
                ice=_ice_settings(settings),
                codecs=settings.webrtc_codecs,
                rejoin_grace_seconds=settings.webrtc_rejoin_grace_seconds,
            ),
            clock=clock,
        )
        await self.browser_phones.start()
        await self._start_http(web_services, web_app)
        logger.info(
            "callwarden node up: SIP %s:%d (UDP, TCP), web %s://%s:%d/, media %s ports %d-%d, "
            "data in %s",
            settings.bind,
            self.transport.port,
            "http" if self.tls_identity is None else "https",
            settings.bind,
            settings.http_port,
            settings.sdp_address,
            settings.rtp_port_low,
            settings.rtp_port_high,
            settings.data_dir,
        )

    def _start_monitoring(self, features: MonitorFeatures, registrar: Registrar) -> None:
        """Live monitoring over the application's calls; its feature codes answer once bound."""
        assert self.application is not None and self.directory is not None
        assert self.bus is not None and self.audit_writer is not None
        application, directory = self.application, self.directory
        self.monitoring = MonitoringService(
            services=application,
            live_calls=LiveCalls(application.calls, lambda: directory.snapshot),
            targets=phone_targets(
                registrar.bindings,
                self.settings.sdp_address,
                encrypted=lambda user: application.media_policy.requires_srtp(
                    user, directory.snapshot
                ),
            ),
            directory=lambda: directory.snapshot,
            audit=self.audit_writer,
            bus=self.bus,
            transparency=TeamTransparency(
                frozenset(self.settings.monitor_notify_teams), lambda: directory.snapshot
            ),
            codes=features.monitoring_codes,
        )
        features.bind(self.monitoring)
        application.on_call_ended(self.monitoring.on_call_ended)

    async def _start_acd(self, clock: LoopClock) -> None:
        """The ACD over the node's bus, with agent claims in Redis when the bus is there."""
        assert self.directory is not None and self.bus is not None
        assert self.queue_calls is not None
        claims: AgentClaims = (
            InProcessAgentClaims(clock.now)
            if self._redis is None
            else RedisAgentClaims(self._redis)
        )
        node_id = self.bus.node_id if isinstance(self.bus, RedisBus) else "local"
        # What this node's engine publishes is also kept in the database, for the reports.
        assert self.database is not None
        self.acd_history = AcdHistory(self.database.sessions)
        self.acd_history.start()
        # Older than acd_history_days: deleted every hour, each purge audited.
        assert self.audit_writer is not None
        self.acd_retention = HistoryRetention(
            self.database.sessions,
            days=self.settings.acd_history_days,
            now=partial(datetime.now, UTC),
            audit=HistoryPurgeAudit(self.audit_writer),
        )
        self.acd_retention.start()
        self.acd = AcdEngine(
            directory=self.directory.snapshot,
            bus=RecordedBus(self.bus, self.acd_history.record),
            claims=claims,
            calls=self.queue_calls,
            clock=clock,
            wall_clock=lambda: datetime.now(UTC),
            node_id=node_id,
            round_robin=None if self._redis is None else RedisRoundRobin(self._redis),
        )
        self.queue_calls.bind(self.acd)
        if self.agent_features is not None:
            self.agent_features.bind(self.acd)
        await self.acd.start()
        # Calls taken today: from the stored history since local midnight, zero at midnight.
        directory = self.directory
        self.acd_daily_counts = DailyCounts(
            self.acd,
            stored_history(self.database.sessions),
            lambda: directory.snapshot.queues,
            self.settings.time_zone,
            partial(datetime.now, UTC),
        )
        await self.acd_daily_counts.start()
        # Queues and members edited through the API or provisioning reach the running ACD.
        loop, acd = asyncio.get_running_loop(), self.acd

        def follow(snapshot: DirectorySnapshot) -> None:
            loop.call_soon_threadsafe(acd.follow_directory, snapshot)

        self.directory.on_reload(follow)

    async def status(self) -> NodeStatus:
        assert self.application is not None and self.media is not None
        media = await self.media.engine_stats()
        return NodeStatus(
            active_calls=self.application.active_calls,
            registered_phones=self.application.registrar.binding_count(),
            media_endpoints=media.endpoints,
        )

    def _web_services(self) -> WebServices:
        """Sign-in, sessions, MFA and the audit log over the node's database, for the API."""
        assert self.database is not None and self.directory is not None and self.bus is not None
        settings = self.settings
        factory = self.database.sessions
        clock = SystemClock()
        hasher = PasswordHasher()
        revocations = SessionRevocations()
        sessions = SessionService(factory, clock, revocations)
        box = SecretBox.from_key_file(settings.data_dir / "keys" / MFA_KEY_FILE)
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
        self.audit_writer = AuditWriter(log)
        self.audit_writer.start()
        return WebServices(
            database=factory,
            directory=self.directory,
            audit=WebAudit(self.audit_writer, log),
            sessions=sessions,
            revocations=revocations,
            login=login,
            mfa=mfa,
            throttle=throttle,
            password_policy=PasswordPolicy.default(),
            password_hasher=hasher,
            clock=clock,
            realm=settings.realm,
            settings=WebSettings(
                allowed_origins=frozenset(settings.allowed_origins),
                time_zone=settings.time_zone,
                sip_trusted_networks=tuple(settings.sip_trusted_networks),
            ),
            status=self.status,
            bus=self.bus,
            acd=lambda: self.acd,
            monitoring=lambda: self.monitoring,
            sip_guard=lambda: self.source_guard,
            recordings=lambda: self.recordings,
            recording_control=lambda: self.recording_control,
            recording_tools=lambda: self.recording_tools,
            browser_phones=lambda: self.browser_phones,
        )

    def _start_recordings_catalogue(self) -> None:
        """Search, playback, holds and deletion of recordings (the web routes), and the
        scheduled purge of expired ones, which writes its audit entries through the writer."""
        assert self.database is not None and self.audit_writer is not None
        assert self.bus is not None
        settings, sessions, bus = self.settings, self.database.sessions, self.bus
        loop = asyncio.get_running_loop()

        def alert(event: Event) -> None:  # called from worker threads
            loop.call_soon_threadsafe(bus.publish, event)

        secret = catalogue_secret(settings.data_dir)
        numbers = SealedNumbers(secret)
        storage = self.recording_storage
        assert storage is not None
        now = partial(datetime.now, UTC)
        shredder = Shredder(sessions, numbers, storage, RecordingAuditPort(self.audit_writer), now)
        lifetime = timedelta(minutes=settings.recording_playback_link_minutes)
        self.purge_runs = PurgeRuns(Purger(sessions, numbers, shredder, now), now)
        self.recordings = RecordingService(
            sessions,
            numbers,
            FileKeyRing.for_data_dir(settings.data_dir),
            storage,
            shredder,
            PlaybackGrants(secret, lifetime=lifetime),
            now,
            # Playback trusts the manifests this node's key signed, as `verify` does.
            signers=(NodeSigningKey.for_data_dir(settings.data_dir).public_key(),),
            alert=alert,
            purges=self.purge_runs,
        )
        self.recording_tools = RecordingTools(
            catalogue_locator(self.database, storage),
            FileKeyRing.for_data_dir(settings.data_dir),
            settings.data_dir / "keys" / "node-signing.key",
        )
        interval = settings.recording_purge_interval_seconds
        if interval > 0:
            self.purge_schedule = ScheduledPurge(self.purge_runs.run, interval)
            self.purge_schedule.start()

    async def _start_http(self, services: WebServices, app: FastAPI) -> None:
        settings, identity = self.settings, self.tls_identity
        self._sweep_task = asyncio.create_task(
            _sweep_sign_in(services.sessions, services.throttle), name="sign-in-sweep"
        )
        config = uvicorn.Config(
            app,
            host=settings.bind,
            port=settings.http_port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            # Live frames are small JSON: per-connection zlib state would cost ~35 % more CPU
            # per message sent (benchmarks/live.py) and memory for every open live socket.
            ws_per_message_deflate=False,
            ws=WebSocketProtocol,
            ssl_certfile=None if identity is None else identity.certificate_path,
            ssl_keyfile=None if identity is None else identity.private_key_path,
            ssl_ciphers=FORWARD_SECRET_TLS12_CIPHERS,
        )
        if identity is not None:
            config.load()
            # The SIP listener's context: TLS 1.2 minimum, forward-secret AEAD suites only.
            config.ssl = server_context(identity)
        else:
            logger.warning(
                "serving the web application over plain HTTP on %s:%d (http_plaintext: for "
                "development only)",
                settings.bind,
                settings.http_port,
            )
        self.http = _EmbeddedHttpServer(config)
        self._http_task = asyncio.create_task(self.http.serve(), name="http")
        while not self.http.started:
            if self._http_task.done():
                await self._http_task  # raises what stopped it (port taken, ...)
                raise OSError(f"HTTP server on port {settings.http_port} did not start")
            await asyncio.sleep(0.01)

    async def _start_recording(self, clock: LoopClock) -> RecordingControl:
        """Close what a crash left open (before any call), then the recorder of calls."""
        assert self.database is not None and self.media is not None
        assert self.directory is not None and self.audit_writer is not None
        settings, sessions, directory = self.settings, self.database.sessions, self.directory
        numbers = SealedNumbers(await asyncio.to_thread(catalogue_secret, settings.data_dir))
        keys = FileKeyRing.for_data_dir(settings.data_dir)
        storage = self.recording_storage
        assert storage is not None
        signing_key = await asyncio.to_thread(NodeSigningKey.for_data_dir, settings.data_dir)
        wall_clock = partial(datetime.now, UTC)
        # Rows name their node: recovery closes only this node's (others may be recording).
        node_id = await asyncio.to_thread(node_identity, settings.data_dir, settings.node_id)
        await asyncio.to_thread(
            recover_open_recordings,
            RecoveryServices(
                sessions, numbers, keys, storage, signing_key, wall_clock, node_id=node_id
            ),
        )
        self.recorder = Recorder(
            media=self.media,
            sessions=sessions,
            numbers=numbers,
            keys=keys,
            storage=storage,
            signing_key=signing_key,
            settings=RecorderSettings(
                pause_confirm_seconds=settings.recording_pause_confirm_seconds
            ),
            wall_clock=wall_clock,
            bus=self.bus,
            node_id=node_id,
        )
        return RecordingControl(
            recorder=self.recorder,
            media=self.media,
            directory=lambda: directory.snapshot,
            settings=RecordingControlSettings(
                pause_code=settings.recording_pause_code,
                resume_code=settings.recording_resume_code,
                pause_timeout_seconds=settings.recording_pause_timeout_seconds,
            ),
            clock=clock,
            audit=self.audit_writer.submit,
            bus=self.bus,
        )

    async def close(self) -> None:
        if self.http is not None and self._http_task is not None:
            self.http.should_exit = True
            await self._http_task
        if self._sweep_task is not None:
            self._sweep_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweep_task
        if self.purge_schedule is not None:
            await self.purge_schedule.close()
        if self.purge_runs is not None:
            await self.purge_runs.close()
        if self.acd_retention is not None:
            await self.acd_retention.close()
        # Supervisors leave before the calls end, calls (telling the ACD) before the ACD, the
        # ACD before its bus and Redis.
        if self.monitoring is not None:
            await self.monitoring.close()
        if self.browser_phones is not None:
            await self.browser_phones.close()
        if self.application is not None:
            await self.application.close()
        if self.queue_calls is not None:
            await self.queue_calls.close()
        if self.recording_control is not None:  # calls stopped theirs; what is left
            await self.recording_control.close()
        if self.recorder is not None:
            await self.recorder.close()
        if self.recording_storage is not None:  # an object store ships what is left
            await asyncio.to_thread(self.recording_storage.close)
        if self.acd_daily_counts is not None:
            await self.acd_daily_counts.close()
        if self.acd is not None:
            await self.acd.close()
        if self.shared_bans is not None:
            await self.shared_bans.close()
        if self.acd_history is not None:
            await self.acd_history.close()
        if self.bus is not None:
            await self.bus.close()
        if self._redis is not None:
            await self._redis.aclose()
        if self.audit_writer is not None:
            await self.audit_writer.close()
        if self.transport is not None:
            await self.transport.close()
        if self.source_guard is not None:
            self.source_guard.close()
        if self.media is not None:
            await self.media.close()
        if self.cdr_writer is not None:
            await self.cdr_writer.close()
        if self.database is not None:
            self.database.close()


async def _sweep_sign_in(sessions: SessionService, throttle: LoginThrottle) -> None:
    """End timed-out sessions (closing their live connections) and forget old sign-in
    failures, once a minute."""
    while True:
        await asyncio.sleep(SIGN_IN_SWEEP_SECONDS)
        try:
            await asyncio.to_thread(sessions.sweep)
            await asyncio.to_thread(throttle.sweep)
        except SQLAlchemyError:
            logger.exception("sweeping sessions and sign-in throttles failed")


def _settle_heap() -> None:
    """Move everything built at start-up (modules, ORM mappings, the directory...) out of the
    collector's reach and set the running node's GC thresholds (see GC_THRESHOLDS)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def serve(settings: Settings) -> None:
    """Run a node until SIGINT or SIGTERM."""
    node = Node(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await node.start()
    _settle_heap()
    try:
        await stop.wait()
    finally:
        logger.info("shutting down")
        await node.close()


def run_node(settings: Settings) -> None:
    uvloop.run(serve(settings))
