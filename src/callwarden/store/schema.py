"""The database schema as typed SQLAlchemy ORM classes.

The tables are created only by the Alembic migrations in `callwarden.store.migrations`; a test
checks that the migrated schema and this metadata agree. Enums are stored as short strings
(their values) with CHECK constraints, never as native database enum types, so migrations stay
portable between SQLite and PostgreSQL. Timestamps are stored in UTC and read back aware.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from callwarden.domain.cdr import CallDirection, Disposition, HangupSide, LegRole, RouteKind
from callwarden.domain.models import (
    HoldMusic,
    MonitoringTransparency,
    QueueOverflow,
    QueueStrategy,
    RecordingPolicy,
    Transport,
)
from callwarden.domain.permissions import Scope

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

NAME_LENGTH = 64
DISPLAY_NAME_LENGTH = 128
NUMBER_LENGTH = 32
CDR_TEXT_LENGTH = 255
URI_LENGTH = 512

# SQLite gives autoincrement only to INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT for CDRs.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored as UTC (naive UTC text on SQLite, timestamptz elsewhere)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("naive datetime given to a UTC column")
        as_utc = value.astimezone(UTC)
        return as_utc.replace(tzinfo=None) if dialect.name == "sqlite" else as_utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _enum(enum_class: type[enum.Enum], name: str) -> Enum:
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        validate_strings=True,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UtcDateTime()}  # noqa: RUF012


class TeamRow(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    display_name: Mapped[str] = mapped_column(String(DISPLAY_NAME_LENGTH))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="RESTRICT"), index=True
    )
    recording: Mapped[RecordingPolicy | None] = mapped_column(
        _enum(RecordingPolicy, "recording"), nullable=True
    )
    """Direct calls' recording policy (revision 0007); None: the parent team's."""
    monitoring_transparency: Mapped[MonitoringTransparency | None] = mapped_column(
        _enum(MonitoringTransparency, "monitoring_transparency"), nullable=True
    )
    """Whether its operators are told they are monitored (revision 0010); None: as the node's
    `monitor_notify_teams` setting."""


class RoleRow(Base):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    outbound_patterns: Mapped[list[str]] = mapped_column(JSON, default=list)
    builtin: Mapped[bool] = mapped_column(Boolean, default=False)

    grants: Mapped[list[RoleGrantRow]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="RoleGrantRow.permission"
    )


class RoleGrantRow(Base):
    """One permission a role holds, at one scope. The permission is a plain string (the catalogue
    grows without a migration); one the code no longer knows is ignored when read."""

    __tablename__ = "role_grants"

    role_id: Mapped[int] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True
    )
    permission: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    scope: Mapped[Scope] = mapped_column(_enum(Scope, "scope"))


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    display_name: Mapped[str] = mapped_column(String(DISPLAY_NAME_LENGTH))
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"), index=True)
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="RESTRICT"), index=True
    )
    extension: Mapped[str | None] = mapped_column(String(NUMBER_LENGTH), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    sip_realm: Mapped[str | None] = mapped_column(String(DISPLAY_NAME_LENGTH))
    sip_ha1_md5: Mapped[str | None] = mapped_column(String(32))
    sip_ha1_sha256: Mapped[str | None] = mapped_column(String(64))
    recording: Mapped[RecordingPolicy | None] = mapped_column(
        _enum(RecordingPolicy, "recording"), nullable=True
    )
    """Direct calls' recording policy (revision 0007); None: the team's."""

    supervised: Mapped[list[TeamSupervisorRow]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="TeamSupervisorRow.team_id"
    )


class TeamSupervisorRow(Base):
    """Which teams a user supervises (a supervisor may supervise several)."""

    __tablename__ = "team_supervisors"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class TrunkRow(Base):
    __tablename__ = "trunks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    transport: Mapped[Transport] = mapped_column(_enum(Transport, "transport"))
    outbound_patterns: Mapped[list[str]] = mapped_column(JSON, default=list)
    username: Mapped[str | None] = mapped_column(String(DISPLAY_NAME_LENGTH))
    # Plain text for now; to be sealed with the key ring when it exists.
    password: Mapped[str | None] = mapped_column(String(255))
    register: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)

    inbound_numbers: Mapped[list[TrunkInboundNumberRow]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="TrunkInboundNumberRow.number"
    )


class TrunkInboundNumberRow(Base):
    __tablename__ = "trunk_inbound_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    trunk_id: Mapped[int] = mapped_column(ForeignKey("trunks.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(NUMBER_LENGTH), unique=True)
    destination: Mapped[str | None] = mapped_column(String(NUMBER_LENGTH))


class QueueRow(Base):
    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    display_name: Mapped[str] = mapped_column(String(DISPLAY_NAME_LENGTH))
    number: Mapped[str] = mapped_column(String(NUMBER_LENGTH), unique=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="RESTRICT"), index=True)
    strategy: Mapped[QueueStrategy] = mapped_column(_enum(QueueStrategy, "strategy"))
    wrap_up_seconds: Mapped[int] = mapped_column(Integer)
    ring_timeout_seconds: Mapped[int] = mapped_column(Integer)
    max_no_answer: Mapped[int] = mapped_column(Integer)
    max_wait_seconds: Mapped[int | None] = mapped_column(Integer)
    service_level_seconds: Mapped[int] = mapped_column(Integer)
    service_level_percent: Mapped[int] = mapped_column(Integer)
    required_skill_level: Mapped[int] = mapped_column(Integer)
    recording: Mapped[RecordingPolicy] = mapped_column(_enum(RecordingPolicy, "recording"))
    overflow: Mapped[QueueOverflow] = mapped_column(
        _enum(QueueOverflow, "overflow"), server_default="hangup"
    )
    overflow_queue_id: Mapped[int | None] = mapped_column(
        ForeignKey("queues.id", ondelete="SET NULL")
    )
    overflow_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # No server default here (the migration fills existing rows): None means "no announcements".
    announce_seconds: Mapped[int | None] = mapped_column(Integer)
    music_on_hold: Mapped[HoldMusic] = mapped_column(
        _enum(HoldMusic, "music_on_hold"), server_default="tones"
    )

    members: Mapped[list[QueueMemberRow]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="QueueMemberRow.user_id"
    )


class BreakReasonRow(Base):
    """The provisioned break reasons; `position` (1-based) is also the phone digit."""

    __tablename__ = "break_reasons"

    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    code: Mapped[str] = mapped_column(String(32), unique=True)


class DispositionCodeRow(Base):
    """The provisioned wrap-up disposition codes, in order, with their labels."""

    __tablename__ = "disposition_codes"

    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    label_ja: Mapped[str] = mapped_column(String(DISPLAY_NAME_LENGTH))
    label_en: Mapped[str] = mapped_column(String(DISPLAY_NAME_LENGTH))


class CallDispositionRow(Base):
    """A call's disposition code and note, as its operator set them (one per Call-ID)."""

    __tablename__ = "call_dispositions"

    call_id: Mapped[str] = mapped_column(String(CDR_TEXT_LENGTH), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    code: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(String(1000))
    updated_at: Mapped[datetime]


class QueueMemberRow(Base):
    __tablename__ = "queue_members"

    queue_id: Mapped[int] = mapped_column(
        ForeignKey("queues.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    penalty: Mapped[int] = mapped_column(Integer, default=0)
    skill_level: Mapped[int] = mapped_column(Integer, default=1)


class CdrRow(Base):
    __tablename__ = "cdrs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(CDR_TEXT_LENGTH), index=True)
    direction: Mapped[CallDirection] = mapped_column(_enum(CallDirection, "direction"))
    caller: Mapped[str] = mapped_column(String(CDR_TEXT_LENGTH))
    callee: Mapped[str] = mapped_column(String(CDR_TEXT_LENGTH))
    dialled_number: Mapped[str] = mapped_column(String(NAME_LENGTH))
    route_kind: Mapped[RouteKind | None] = mapped_column(_enum(RouteKind, "route_kind"))
    started_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime]
    duration_ms: Mapped[int] = mapped_column(BigInteger)
    disposition: Mapped[Disposition] = mapped_column(_enum(Disposition, "disposition"))
    hangup_cause: Mapped[str | None] = mapped_column(String(CDR_TEXT_LENGTH))
    sip_status: Mapped[int | None] = mapped_column(Integer)
    hangup_side: Mapped[HangupSide | None] = mapped_column(_enum(HangupSide, "hangup_side"))
    caller_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    callee_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    queue_id: Mapped[int | None] = mapped_column(
        ForeignKey("queues.id", ondelete="SET NULL"), index=True
    )
    trunk_id: Mapped[int | None] = mapped_column(
        ForeignKey("trunks.id", ondelete="SET NULL"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )

    legs: Mapped[list[CdrLegRow]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="CdrLegRow.position"
    )


class CdrLegRow(Base):
    __tablename__ = "cdr_legs"
    __table_args__ = (UniqueConstraint("cdr_id", "position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cdr_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("cdrs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    role: Mapped[LegRole] = mapped_column(_enum(LegRole, "role"))
    sip_call_id: Mapped[str] = mapped_column(String(CDR_TEXT_LENGTH))
    uri: Mapped[str] = mapped_column(String(URI_LENGTH))
    started_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime]
    sip_status: Mapped[int | None] = mapped_column(Integer)
    hangup_cause: Mapped[str | None] = mapped_column(String(CDR_TEXT_LENGTH))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    trunk_id: Mapped[int | None] = mapped_column(
        ForeignKey("trunks.id", ondelete="SET NULL"), index=True
    )


AUDIT_ACTOR_KINDS = ("user", "system", "sip", "anonymous")
AUDIT_OUTCOMES = ("success", "denied", "failed")


def _string_enum(name: str, *values: str) -> Enum:
    return Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


class AuditLogRow(Base):
    """One entry of the hash-chained audit log (`callwarden.security.audit`), written once.

    No foreign keys: an entry outlives the users and objects it names, and nothing may change
    it afterwards (the migration adds triggers that refuse UPDATE and DELETE).
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_kind", "object_id"),)

    sequence: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    recorded_at: Mapped[datetime] = mapped_column(index=True)
    actor_kind: Mapped[str] = mapped_column(_string_enum("actor_kind", *AUDIT_ACTOR_KINDS))
    actor_user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor_name: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_kind: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(_string_enum("outcome", *AUDIT_OUTCOMES))
    source_address: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(String(1000))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    previous_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64), unique=True)
    format_version: Mapped[int] = mapped_column(Integer)


SESSION_AUTH_LEVELS = ("password", "mfa")
SESSION_END_REASONS = (
    "logout",
    "logout_all",
    "disabled",
    "role_changed",
    "password_changed",
    "mfa_changed",
    "admin_revoked",
    "idle_timeout",
    "expired",
)


class WebSessionRow(Base):
    """A signed-in browser (`callwarden.security.sessions`). The cookie's token is stored only as
    its SHA-256, so reading this table yields no usable cookie."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    auth_level: Mapped[str] = mapped_column(_string_enum("auth_level", *SESSION_AUTH_LEVELS))
    mfa_required: Mapped[bool] = mapped_column(Boolean)
    client_address: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str] = mapped_column(String(512))
    csrf_token: Mapped[str] = mapped_column(String(64))
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(_string_enum("end_reason", *SESSION_END_REASONS))


class MfaTotpRow(Base):
    """A user's TOTP seed (RFC 6238), sealed with AES-GCM (`callwarden.security.secret_box`);
    `last_used_step` refuses a code's second use and any older code."""

    __tablename__ = "mfa_totp"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    last_used_step: Mapped[int | None] = mapped_column(BigInteger)


class MfaRecoveryCodeRow(Base):
    """One single-use recovery code, stored as a SHA-256 of the user id and the 80-bit code."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class KnownDeviceRow(Base):
    """An (address, browser) a user completed sign-in from; a new one is reported to them."""

    __tablename__ = "known_devices"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_agent_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_agent: Mapped[str] = mapped_column(String(255))
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class SignInNetworkRow(Base):
    """An address range a role's or a team's members may sign in from (none: anywhere)."""

    __tablename__ = "sign_in_networks"
    __table_args__ = (CheckConstraint("(role_id IS NULL) <> (team_id IS NULL)", name="one_target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    role_id: Mapped[int | None] = mapped_column(
        ForeignKey("roles.id", ondelete="CASCADE"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    network: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255), default="")


class LoginThrottleRow(Base):
    """Recent failed sign-in or MFA attempts under one key (account, address, or both)."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    first_failure_at: Mapped[datetime]
    last_failure_at: Mapped[datetime] = mapped_column(index=True)


RECORDING_ID_LENGTH = 36
RECORDING_STATUSES = ("recording", "complete", "incomplete", "failed", "purged")
HOLD_TARGET_KINDS = ("recording", "call", "user", "queue")
RETENTION_SCOPES = ("default", "team", "queue")
TOMBSTONE_KINDS = ("retention", "manual")


class RecordingRow(Base):
    """One sealed recording (`callwarden.recording`, docs/recording.md).

    The caller's number is stored sealed (AES-GCM) and as an HMAC for exact search, never in
    clear. The data key is stored only wrapped by a key-encryption key of the key ring;
    purging sets it to NULL (crypto-shredding) and the row stays as status `purged`.
    """

    __tablename__ = "recordings"
    __table_args__ = (Index("ix_recordings_status_started_at", "status", "started_at"),)

    id: Mapped[str] = mapped_column(String(RECORDING_ID_LENGTH), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(CDR_TEXT_LENGTH), index=True)
    queue_id: Mapped[int | None] = mapped_column(
        ForeignKey("queues.id", ondelete="SET NULL"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    operator_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    direction: Mapped[CallDirection] = mapped_column(_enum(CallDirection, "direction"))
    caller_number_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    caller_number_hmac: Mapped[str | None] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(_string_enum("status", *RECORDING_STATUSES))
    storage_key: Mapped[str] = mapped_column(String(255), unique=True)
    kek_id: Mapped[str | None] = mapped_column(String(64))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    has_pauses: Mapped[bool] = mapped_column(Boolean, default=False)
    monitored: Mapped[bool] = mapped_column(Boolean, default=False)
    manifest_digest: Mapped[str | None] = mapped_column(String(128))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    failure_reason: Mapped[str | None] = mapped_column(String(255))
    node_id: Mapped[str | None] = mapped_column(String(64))
    """The node recording it (revision 0011): its start-up recovery closes it after a crash."""


class RecordingPauseRow(Base):
    """A stretch of a recording with no audio at all (PCI DSS pause); open while paused."""

    __tablename__ = "recording_pauses"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), index=True
    )
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class RecordingTagRow(Base):
    __tablename__ = "recording_tags"

    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True, index=True)
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    added_at: Mapped[datetime]


class RecordingNoteRow(Base):
    __tablename__ = "recording_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime]
    text: Mapped[str] = mapped_column(String(2000))


class LegalHoldRow(Base):
    """A legal hold on a recording, a call, a user or a queue (any number of them); a hold
    is never deleted, only released (who, when, why stay on record)."""

    __tablename__ = "legal_holds"
    __table_args__ = (Index("ix_legal_holds_target", "target_kind", "target_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    target_kind: Mapped[str] = mapped_column(_string_enum("target_kind", *HOLD_TARGET_KINDS))
    target_id: Mapped[str] = mapped_column(String(CDR_TEXT_LENGTH))
    reason: Mapped[str] = mapped_column(String(1000))
    placed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    placed_at: Mapped[datetime]
    released_at: Mapped[datetime | None] = mapped_column(index=True)
    released_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    release_reason: Mapped[str | None] = mapped_column(String(1000))


class RetentionPolicyRow(Base):
    """How many days recordings are kept: by default, for a team's, or for a queue's."""

    __tablename__ = "retention_policies"
    __table_args__ = (
        CheckConstraint(
            "(scope = 'default' AND team_id IS NULL AND queue_id IS NULL)"
            " OR (scope = 'team' AND team_id IS NOT NULL AND queue_id IS NULL)"
            " OR (scope = 'queue' AND queue_id IS NOT NULL AND team_id IS NULL)",
            name="one_target",
        ),
        CheckConstraint("days > 0", name="positive_days"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(_string_enum("scope", *RETENTION_SCOPES))
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), unique=True
    )
    queue_id: Mapped[int | None] = mapped_column(
        ForeignKey("queues.id", ondelete="CASCADE"), unique=True
    )
    days: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime]
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class RecordingTombstoneRow(Base):
    """What is left of a purged recording: which rule deleted it, when, by whom. No foreign
    keys: it outlives users and queues. `storage_key` is kept until the file is gone, so an
    interrupted purge is finished by the next run."""

    __tablename__ = "recording_tombstones"

    recording_id: Mapped[str] = mapped_column(String(RECORDING_ID_LENGTH), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(CDR_TEXT_LENGTH))
    kind: Mapped[str] = mapped_column(_string_enum("kind", *TOMBSTONE_KINDS))
    rule: Mapped[str] = mapped_column(String(255))
    retention_days: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(1000))
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(255))
    purged_at: Mapped[datetime] = mapped_column(index=True)
    storage_key: Mapped[str | None] = mapped_column(String(255))
    file_deleted_at: Mapped[datetime | None]
    audited_at: Mapped[datetime | None]


class AcdEventRow(Base):
    """One event a node's ACD published, in the bus's wire form (`body`, decoded with the
    node's `EventCodec`); the columns beside it are for selecting (revision 0009). No foreign
    keys: the history outlives what it names."""

    __tablename__ = "acd_events"
    __table_args__ = (Index("ix_acd_events_user_kind_at", "user_id", "kind", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(Integer)
    queue_id: Mapped[int | None] = mapped_column(Integer)
    call_id: Mapped[str | None] = mapped_column(String(CDR_TEXT_LENGTH))
    body: Mapped[str] = mapped_column(Text)
