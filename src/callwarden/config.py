"""Settings of a callwarden node: defaults, a config file, CALLWARDEN_* variables, then flags.

The embedded defaults (SQLite in the data directory, local files, in-process bus) let `make run`
start a working node with no configuration at all.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from callwarden.webrtc.codecs import DEFAULT_CODECS, codec_preference

ENV_PREFIX = "CALLWARDEN_"
_NODE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_FEATURE_CODE = re.compile(r"\*[0-9*#]{1,8}")


class ConfigError(Exception):
    """The configuration cannot be used; the message names the source and the field."""


class Settings(BaseModel):
    """Everything a node needs to start. Field names are the config-file keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Path("data")
    bind: str = "127.0.0.1"
    sip_port: int = Field(default=5060, ge=1, le=65535)
    http_port: int = Field(default=8080, ge=1, le=65535)
    rtp_port_low: int = Field(default=20000, ge=1024, le=65534)
    rtp_port_high: int = Field(default=29999, ge=1025, le=65535)
    media_address: str | None = None
    database_url: str | None = None
    realm: str = "callwarden"
    log_level: str = "INFO"
    max_calls_per_user: int = Field(default=4, ge=1)
    auth_failures_before_throttle: int = Field(default=5, ge=1)
    media_workers: int | None = Field(default=None, ge=0, le=64)
    """RTP media engine processes; 0 runs the engine inside the node's process. Unset: one
    worker when the machine has two or more cores (SIP then has a core to itself: 300 calls/s
    instead of 200 on 2 cores, docs/benchmarks.md), else 0."""
    redis_url: str | None = None
    """Redis (`redis://127.0.0.1:6379/0`) carrying the event bus between nodes; unset, the node
    uses the in-process bus."""
    node_id: str | None = None
    """This node's name on a shared bus (unique among the nodes); unset, a random one per
    process."""
    acd_auto_sign_in: bool = False
    """Sign a queue member in to all their queues (available) when a phone of theirs registers
    while they are offline: for the demo and tests; operators otherwise sign in themselves."""
    allowed_origins: tuple[str, ...] = ()
    """Origins (`https://cc.example.com`) the browser UI is served from: the only ones a live
    WebSocket may be opened from, and the only ones a browser may sign in from."""
    time_zone: str = "Asia/Tokyo"
    """The center's time zone (IANA name): the pages' dates and times, the reports' days,
    weeks and hours, the wallboard's and the desk's midnight."""
    acd_history_days: int = Field(default=400, ge=1, le=36_500)
    """How long the ACD's event history (`acd_events`, what the reports read) is kept: the
    node deletes older events every hour (`callwarden acd purge-history` does it at once)."""
    sip_tls_port: int | None = Field(default=None, ge=1, le=65535)
    """SIP over TLS port; unset, no TLS listener (`callwarden demo` listens on 5061)."""
    tls_certificate: Path | None = None
    """PEM certificate (chain) for SIP over TLS; unset, a self-signed one is made in
    `<data_dir>/tls/` on first start and its fingerprint logged."""
    tls_private_key: Path | None = None
    """PEM private key of `tls_certificate`; the two are set together."""
    http_plaintext: bool = False
    """Serve the web application over plain HTTP instead of HTTPS (with `tls_certificate`,
    else the generated certificate): for development and tests only, and refused unless `bind`
    is a loopback address."""
    sip_requests_per_second: float = Field(default=20.0, gt=0)
    """SIP messages one address may send per second on average (the source guard drops the
    rest, each counting as an offence); trusted networks and trunk hosts are not limited."""
    sip_request_burst: int = Field(default=100, ge=1)
    """Messages one address may send at once above that rate."""
    sip_ban_threshold: int = Field(default=20, ge=1)
    """Offences (over-rate messages, unparseable ones, failed authentications; a scanner user
    agent counts 10) within `sip_ban_window_seconds` that ban an address."""
    sip_ban_window_seconds: float = Field(default=60.0, gt=0)
    sip_ban_seconds: float = Field(default=600.0, gt=0)
    """A first ban's length; each further ban of the same address lasts twice as long."""
    sip_ban_max_seconds: float = Field(default=86_400.0, gt=0)
    sip_trusted_networks: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    """Networks (`10.0.0.0/8`, `192.0.2.7`) never rate-limited nor banned: the office, the
    carrier; by default the node's own loopback address (as fail2ban's `ignoreip`, but not the
    rest of 127.0.0.0/8). Enabled trunks' hosts are trusted as well."""
    encrypted_media_roles: tuple[str, ...] = ()
    """Roles (`operator,supervisor`) whose users must use SIP over TLS and SRTP: a REGISTER over
    UDP/TCP is refused 403, an INVITE offering plain RTP 488 (telephony/media_policy.py)."""
    encrypted_media_teams: tuple[str, ...] = ()
    """Teams (and their sub-teams) whose members must use SIP over TLS and SRTP."""
    trunk_realms: tuple[str, ...] = ()
    """`trunk-name:realm` pairs (`carrier:sip.carrier.example`): the only digest realm whose
    challenges callwarden answers for that trunk; a challenge for another realm fails the call
    (503 to the caller, a log line). A trunk not listed answers the realm it is challenged
    with, and only ever a challenge from the trunk's own address."""
    max_calls_per_trunk: int = Field(default=500, ge=1)
    """Concurrent calls through one trunk (in and out); beyond, 503."""
    user_outbound_calls_per_minute: int = Field(default=10, ge=1)
    """Calls one user may place out through trunks per minute (toll-fraud spend rate)."""
    trunk_outbound_calls_per_minute: int = Field(default=1200, ge=1)
    outbound_burst_alert_calls: int = Field(default=5, ge=1)
    """A user's outbound calls within a minute that raise a call-burst alert for admins."""
    monitor_listen_code: str = "*91"
    """Dialled with an operator's extension (`*91201`): listen to their current call."""
    monitor_whisper_code: str = "*92"
    """Dialled with an extension: whisper to the operator (the customer never hears it)."""
    monitor_barge_code: str = "*93"
    """Dialled with an extension: join the conversation."""
    agent_sign_in_code: str = "*51"
    """Dialled by an operator: sign in to all own queues (docs/acd.md, agent codes)."""
    agent_sign_out_code: str = "*52"
    agent_break_code: str = "*53"
    """Break for the first provisioned reason; with a digit N after it, the N-th reason."""
    agent_available_code: str = "*54"
    monitor_keys: str = "456*"
    """The keys of a monitoring session, in order: listen, whisper, barge, leave."""
    webrtc_stun_urls: tuple[str, ...] = ()
    """STUN servers (`stun:host:3478`) given to the browser phones' pages (docs/webrtc.md)."""
    webrtc_turn_urls: tuple[str, ...] = ()
    """TURN servers (`turn:host:3478?transport=udp`, `turns:host:5349`) for browsers behind
    strict NAT; they need `webrtc_turn_secret_file` (docs/webrtc.md)."""
    webrtc_turn_secret_file: Path | None = None
    """The TURN server's shared secret (coturn `static-auth-secret`), in a file of its own."""
    webrtc_ice_transport_policy: Literal["all", "relay"] = "all"
    """`relay`: the browser phones use only their TURN relay (the node never sees an operator's
    home address; no media without TURN); needs `webrtc_turn_urls` (docs/webrtc.md)."""
    webrtc_codecs: tuple[str, ...] = DEFAULT_CODECS
    """The browser phones' codecs in order of preference (`pcmu`, `pcma`, `opus`): the first the
    browser offers is used. G.711 costs the node least; `opus` first suits operators on lossy
    home networks, at more CPU per call (docs/webrtc.md)."""
    webrtc_rejoin_grace_seconds: float = Field(default=15.0, ge=0, le=60)
    """How long a browser phone's call in progress waits for its page after the page's
    connection dropped (a network change); 0: the call ends with the page (docs/webrtc.md)."""
    monitor_notify_teams: tuple[str, ...] = ()
    """Teams (by name) whose operators are told when they are monitored (an event their screen
    shows); `name:tone` also plays them a short tone only they hear. Every other team's policy
    is silent. The customer is never told."""
    recording_purge_interval_seconds: float = Field(default=3600.0, ge=0)
    """How often the node deletes the recordings whose retention ran out (0: never; then run
    `callwarden recording purge` from cron)."""
    recording_playback_link_minutes: float = Field(default=15.0, gt=0, le=1440)
    """How long a playback link (made by `POST /recordings/{id}/play`) stays valid."""
    recording_pause_code: str = "*1"
    """Keyed by the operator during a recorded call (DTMF): pause the recording (card data)."""
    recording_resume_code: str = "*2"
    """Keyed by the operator during a paused recording: resume it."""
    recording_pause_timeout_seconds: float = Field(default=300.0, gt=0)
    """A pause nobody ends is ended (the recording resumes) after this long."""
    recording_storage: str | None = None
    """Where sealed recordings are kept: unset, `<data_dir>/recordings`; `s3://bucket/prefix`
    for an S3-compatible object store shared by several nodes (docs/recording.md, "Storage").
    Its credentials come from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` or the AWS
    credentials file (`AWS_SHARED_CREDENTIALS_FILE`), never from this file."""
    recording_s3_endpoint: str | None = None
    """The object store's URL (`https://minio.example.com:9000`); unset: AWS S3."""
    recording_s3_region: str | None = None
    """The object store's region (`us-east-1`); unset: the AWS configuration's."""
    recording_pause_confirm_seconds: float = Field(default=1.0, gt=0, le=10)
    """How long a pause may take to be confirmed by the media process; beyond, recording
    stops (fail closed)."""

    @field_validator("bind", "media_address")
    @classmethod
    def _is_ip_address(cls, value: str | None) -> str | None:
        if value is not None:
            ipaddress.ip_address(value)
        return value

    @field_validator(
        "monitor_listen_code",
        "monitor_whisper_code",
        "monitor_barge_code",
        "agent_sign_in_code",
        "agent_sign_out_code",
        "agent_break_code",
        "agent_available_code",
        "recording_pause_code",
        "recording_resume_code",
    )
    @classmethod
    def _is_feature_code(cls, value: str) -> str:
        if not _FEATURE_CODE.fullmatch(value):
            raise ValueError("must be '*' followed by 1 to 8 digits, '*' or '#'")
        return value

    @field_validator("monitor_notify_teams")
    @classmethod
    def _are_team_policies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            name, _, policy = entry.partition(":")
            if not name or policy not in ("", "tone"):
                raise ValueError(f"{entry!r}: a team name, or a team name and ':tone'")
        return value

    @field_validator("monitor_keys")
    @classmethod
    def _are_keys(cls, value: str) -> str:
        if len(value) != 4 or len(set(value)) != 4 or any(k not in "0123456789*#" for k in value):
            raise ValueError("must be four different keys of 0-9, * and #")
        return value

    @field_validator(
        "allowed_origins",
        "monitor_notify_teams",
        "sip_trusted_networks",
        "encrypted_media_roles",
        "encrypted_media_teams",
        "webrtc_stun_urls",
        "webrtc_turn_urls",
        "webrtc_codecs",
        mode="before",
    )
    @classmethod
    def _origin_list(cls, value: object) -> object:
        """A comma-separated string (from the environment) or a list."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("webrtc_codecs")
    @classmethod
    def _are_browser_codecs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return codec_preference(value)

    @field_validator("trunk_realms", mode="before")
    @classmethod
    def _trunk_realm_list(cls, value: object) -> object:
        """A comma-separated string (from the environment) or a list."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("trunk_realms")
    @classmethod
    def _are_trunk_realms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        names: set[str] = set()
        for entry in value:
            name, _, realm = (part.strip() for part in entry.partition(":"))
            if not name or not realm or '"' in realm or "\\" in realm:
                raise ValueError(f"{entry!r}: a trunk name, ':' and its realm")
            if name in names:
                raise ValueError(f"{entry!r}: trunk {name!r} is given a realm twice")
            names.add(name)
        return value

    @property
    def trunk_realm_by_name(self) -> dict[str, str]:
        """`trunk_realms` as trunk name -> realm."""
        pairs = (entry.partition(":") for entry in self.trunk_realms)
        return {name.strip(): realm.strip() for name, _, realm in pairs}

    @field_validator("sip_trusted_networks")
    @classmethod
    def _are_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names it
        return value

    @field_validator("time_zone")
    @classmethod
    def _is_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone name like Asia/Tokyo") from None
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _are_origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            scheme, separator, rest = origin.partition("://")
            if scheme not in ("http", "https") or not separator or not rest or "/" in rest:
                raise ValueError(f"{origin!r} is not an origin like https://cc.example.com")
        return value

    @field_validator(
        "recording_storage", "recording_s3_endpoint", "recording_s3_region", mode="before"
    )
    @classmethod
    def _storage_empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("recording_storage")
    @classmethod
    def _is_storage_url(cls, value: str | None) -> str | None:
        """The scheme here; the bucket and prefix when the node opens the store."""
        if value is not None and not value.startswith("s3://"):
            raise ValueError(
                "must be s3://bucket/prefix (unset keeps recordings in DATA_DIR/recordings)"
            )
        return value

    @field_validator("recording_s3_endpoint")
    @classmethod
    def _is_endpoint(cls, value: str | None) -> str | None:
        if value is not None and value.partition("://")[0] not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("redis_url", "node_id", "tls_certificate", "tls_private_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """`CALLWARDEN_REDIS_URL=` (empty) means unset."""
        return None if value == "" else value

    @field_validator("redis_url")
    @classmethod
    def _is_redis_url(cls, value: str | None) -> str | None:
        if value is not None and value.partition("://")[0] not in ("redis", "rediss", "unix"):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("node_id")
    @classmethod
    def _is_node_id(cls, value: str | None) -> str | None:
        if value is not None and not _NODE_ID.fullmatch(value):
            raise ValueError("must be 1 to 64 letters, digits, '.', '_' or '-'")
        return value

    @field_validator("log_level")
    @classmethod
    def _is_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @model_validator(mode="after")
    def _rtp_range(self) -> Settings:
        if self.rtp_port_high - self.rtp_port_low < 3:
            raise ValueError("rtp port range must hold at least two port pairs")
        return self

    @model_validator(mode="after")
    def _plaintext_on_loopback_only(self) -> Settings:
        if self.http_plaintext and not ipaddress.ip_address(self.bind).is_loopback:
            raise ValueError(
                f"http_plaintext serves the web application unencrypted: allowed only with a "
                f"loopback bind (127.0.0.1, ::1), not {self.bind}; leave it off to serve HTTPS"
            )
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_certificate is None) != (self.tls_private_key is None):
            raise ValueError("tls_certificate and tls_private_key must be set together")
        return self

    @property
    def sdp_address(self) -> str:
        """The address written into SDP: the media address, else the bind address."""
        if self.media_address is not None:
            return self.media_address
        if ipaddress.ip_address(self.bind).is_unspecified:
            raise ConfigError("--bind is a wildcard address: set --media-address for SDP")
        return self.bind

    @property
    def effective_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'callwarden.db').resolve()}"


def parse_port_range(text: str) -> tuple[int, int]:
    """`LOW-HIGH` as given to --rtp-ports."""
    low, sep, high = text.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ConfigError(f"rtp ports: expected LOW-HIGH, got {text!r}")
    return int(low), int(high)


def _from_environment(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in environ:
            values[name] = environ[key]
    if ENV_PREFIX + "RTP_PORTS" in environ:
        values["rtp_port_low"], values["rtp_port_high"] = parse_port_range(
            environ[ENV_PREFIX + "RTP_PORTS"]
        )
    return values


def _from_file(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: {error}") from error
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    return {str(key): value for key, value in document.items()}


def load_settings(
    *,
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge the sources in order of precedence; a bad value is a ConfigError naming it."""
    environment = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    file_path = config_file
    if file_path is None and ENV_PREFIX + "CONFIG" in environment:
        file_path = Path(environment[ENV_PREFIX + "CONFIG"])
    if file_path is not None:
        values.update(_from_file(file_path))
    values.update(_from_environment(environment))
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    try:
        return Settings(**values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'settings'}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from error
