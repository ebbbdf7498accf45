"""The `callwarden` command: serve, demo (a node plus the traffic simulator), provision, audit."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from callwarden.config import ConfigError, Settings, load_settings, parse_port_range

if TYPE_CHECKING:
    from callwarden.simulator import SimulatorSettings
    from callwarden.store.database import Database

logger = logging.getLogger("callwarden")


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML settings file")
    parser.add_argument("--data-dir", type=Path, help="database, recordings, keys (created)")
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in data dir)")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR")


def _add_node_flags(parser: argparse.ArgumentParser) -> None:
    _add_settings_flags(parser)
    parser.add_argument("--bind", help="SIP, RTP and HTTP listen address")
    parser.add_argument("--sip-port", type=int, help="SIP port (UDP and TCP)")
    parser.add_argument("--sip-tls-port", type=int, help="SIP over TLS port (default: none)")
    parser.add_argument("--http-port", type=int, help="HTTPS port of the web application")
    parser.add_argument(
        "--http-plaintext",
        action="store_true",
        default=None,
        help="serve plain HTTP, not HTTPS (development only; loopback --bind only)",
    )
    parser.add_argument("--rtp-ports", help="RTP port range LOW-HIGH")
    parser.add_argument("--media-address", help="address put into SDP (default: --bind)")


def _settings(arguments: argparse.Namespace) -> Settings:
    # Commands other than the node's (audit, user) take only the settings flags.
    overrides: dict[str, Any] = {
        "data_dir": arguments.data_dir,
        "bind": getattr(arguments, "bind", None),
        "sip_port": getattr(arguments, "sip_port", None),
        "sip_tls_port": getattr(arguments, "sip_tls_port", None),
        "http_port": getattr(arguments, "http_port", None),
        "http_plaintext": getattr(arguments, "http_plaintext", None),
        "media_address": getattr(arguments, "media_address", None),
        "database_url": arguments.database_url,
        "log_level": arguments.log_level,
    }
    rtp_ports = getattr(arguments, "rtp_ports", None)
    if rtp_ports is not None:
        overrides["rtp_port_low"], overrides["rtp_port_high"] = parse_port_range(rtp_ports)
    return load_settings(config_file=arguments.config, overrides=overrides)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callwarden", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run a node")
    _add_node_flags(serve)
    demo = commands.add_parser(
        "demo", help="provision the demo center, run a node and the traffic simulator"
    )
    _add_node_flags(demo)
    _add_demo_flags(demo)
    provision = commands.add_parser("provision", help="apply a provisioning file")
    provision.add_argument("file", type=Path)
    _add_node_flags(provision)
    _add_audit_commands(commands)
    _add_recording_commands(commands)
    _add_user_commands(commands)
    acd = commands.add_parser("acd", help="the ACD's stored event history")
    acd_commands = acd.add_subparsers(dest="acd_command", required=True)
    purge = acd_commands.add_parser(
        "purge-history", help="delete the ACD events older than acd_history_days (audited)"
    )
    _add_settings_flags(purge)
    return parser


def _add_demo_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-simulator", action="store_true", help="run the node alone")
    parser.add_argument(
        "--calls-per-minute", type=float, default=10.0, help="new simulated calls a minute"
    )
    parser.add_argument("--talk-seconds", default="20-90", help="simulated talk time LOW-HIGH")
    parser.add_argument(
        "--simulator-port",
        type=int,
        default=5090,
        help="SIP port simulated customers call from (the demo-carrier trunk)",
    )


def _add_audit_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = commands.add_parser("audit", help="verify the audit log, export its head")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify", help="recompute the hash chain; exit 1 naming the first broken entry"
    )
    verify.add_argument("--head", type=Path, help="a head exported earlier: detect truncation")
    _add_settings_flags(verify)
    export = audit_commands.add_parser("export-head", help="verify, then export the newest hash")
    export.add_argument("--out", type=Path, help="write the head to this file, not stdout")
    _add_settings_flags(export)


def _add_recording_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    recording = commands.add_parser(
        "recording", help="verify, export, purge or recover sealed recordings"
    )
    recording_commands = recording.add_subparsers(dest="recording_command", required=True)
    verify = recording_commands.add_parser(
        "verify", help="check the manifest signature, every digest and decryption; exit 1 if not"
    )
    _add_recording_flags(verify)
    export = recording_commands.add_parser(
        "export", help="verify, then write a chain-of-custody export (a directory or .zip)"
    )
    _add_recording_flags(export)
    export.add_argument("out", type=Path, help="new directory, or a file ending in .zip")
    export.add_argument("--reason", required=True, help="why (recorded in the export and log)")
    export.add_argument("--by", help="who exports (default: the system user)")
    purge = recording_commands.add_parser(
        "purge", help="delete the recordings whose retention ran out (crypto-shredding)"
    )
    purge.add_argument("--batch-size", type=int, default=100, help="recordings per batch")
    _add_settings_flags(purge)
    recover = recording_commands.add_parser(
        "recover",
        help="close the recordings a node that is gone for good left open (incomplete)",
    )
    recover.add_argument("--node", required=True, help="the node id of the node that is gone")
    _add_settings_flags(recover)


def _recover_recordings(settings: Settings, node_id: str) -> int:
    """`callwarden recording recover --node ID`: a node's start-up recovery, for a node that
    will not start again (its machine lost), run from another node's data directory."""
    from datetime import UTC, datetime
    from functools import partial

    from callwarden.recording.keyring import FileKeyRing
    from callwarden.recording.numbers import SealedNumbers, catalogue_secret
    from callwarden.recording.recovery import (
        RecoveryServices,
        node_identity,
        recover_open_recordings,
    )
    from callwarden.recording.signing import NodeSigningKey
    from callwarden.recording.storage_s3 import StorageConfigError, open_recording_storage
    from callwarden.store.database import Database

    try:
        node_identity(settings.data_dir, node_id)  # the id's form
    except ValueError as error:
        sys.stderr.write(f"callwarden: {error}\n")
        return 2
    if node_id == node_identity(settings.data_dir, settings.node_id):
        sys.stderr.write(
            f"callwarden: {node_id} is this data directory's node: its start recovers them\n"
        )
        return 2
    try:
        storage = open_recording_storage(
            settings.data_dir,
            settings.recording_storage,
            endpoint=settings.recording_s3_endpoint,
            region=settings.recording_s3_region,
        )
    except StorageConfigError as error:
        sys.stderr.write(f"callwarden: {error}\n")
        return 2
    try:
        with Database(settings.effective_database_url) as database:
            services = RecoveryServices(
                database.sessions,
                SealedNumbers(catalogue_secret(settings.data_dir)),
                FileKeyRing.for_data_dir(settings.data_dir),
                storage,
                NodeSigningKey.for_data_dir(settings.data_dir),
                partial(datetime.now, UTC),
                node_id=node_id,
            )
            report = recover_open_recordings(services)
    finally:
        storage.close()
    sys.stdout.write(
        f"node {node_id}: {len(report.incomplete)} recordings closed incomplete,"
        f" {len(report.failed)} failed\n"
    )
    return 1 if report.failed else 0


def _add_recording_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument("recording_id", metavar="ID")
    command.add_argument(
        "--storage-dir",
        type=Path,
        help="a recordings directory (default: the recording_storage setting, else"
        " DATA_DIR/recordings)",
    )
    command.add_argument("--file", type=Path, help="a sealed file outside the catalogue")
    command.add_argument("--wrapped-key", help="its wrapped key, KEK_ID:BASE64 (with --file)")
    _add_settings_flags(command)


def _purge_recordings(settings: Settings, batch_size: int) -> int:
    """`callwarden recording purge`: one purge run, a progress line per batch, audited."""
    import asyncio
    from datetime import UTC, datetime
    from functools import partial

    from callwarden.recording.numbers import SealedNumbers, catalogue_secret
    from callwarden.recording.purge import PurgeProgress, Purger, Shredder
    from callwarden.recording.storage_s3 import StorageConfigError, open_recording_storage
    from callwarden.security.audit import AuditLog
    from callwarden.security.audit_writer import AuditWriter
    from callwarden.store.database import Database
    from callwarden.web.recordings.audit import RecordingAuditPort

    def progress(state: PurgeProgress) -> None:
        sys.stdout.write(state.line() + "\n")
        sys.stdout.flush()

    async def run(database: Database) -> PurgeProgress:
        writer = AuditWriter(AuditLog(database.sessions))
        writer.start()
        try:
            numbers = SealedNumbers(catalogue_secret(settings.data_dir))
            now = partial(datetime.now, UTC)
            storage = open_recording_storage(
                settings.data_dir,
                settings.recording_storage,
                endpoint=settings.recording_s3_endpoint,
                region=settings.recording_s3_region,
            )
            shredder = Shredder(
                database.sessions, numbers, storage, RecordingAuditPort(writer), now
            )
            purger = Purger(database.sessions, numbers, shredder, now, batch_size=batch_size)
            return await purger.run(progress)
        finally:
            await writer.close()

    if batch_size < 1:
        sys.stderr.write("callwarden: --batch-size must be at least 1\n")
        return 2
    try:
        with Database(settings.effective_database_url) as database:
            report = asyncio.run(run(database))
    except StorageConfigError as error:
        sys.stderr.write(f"callwarden: {error}\n")
        return 2
    return 1 if report.failed else 0


def _purge_acd_history(settings: Settings) -> int:
    """`callwarden acd purge-history`: one retention run, audited; prints what went."""
    import asyncio
    from datetime import UTC, datetime
    from functools import partial

    from sqlalchemy.exc import SQLAlchemyError

    from callwarden.acd.retention import HistoryPurge, HistoryRetention
    from callwarden.security.audit import AuditLog, AuditUnavailable
    from callwarden.security.audit_writer import AuditWriter
    from callwarden.store.database import Database
    from callwarden.web.reports.history_audit import HistoryPurgeAudit

    async def run(database: Database) -> HistoryPurge:
        writer = AuditWriter(AuditLog(database.sessions))
        writer.start()
        try:
            retention = HistoryRetention(
                database.sessions,
                days=settings.acd_history_days,
                now=partial(datetime.now, UTC),
                audit=HistoryPurgeAudit(writer),
            )
            return await retention.run()
        finally:
            await writer.close()

    try:
        with Database(settings.effective_database_url) as database:
            purge = asyncio.run(run(database))
    except (AuditUnavailable, SQLAlchemyError) as error:
        sys.stderr.write(f"callwarden: the ACD history was not purged: {error}\n")
        return 1
    sys.stdout.write(
        f"{purge.events} ACD events before {purge.before.isoformat()} deleted"
        f" (acd_history_days: {purge.days})\n"
    )
    return 0


def _recording(settings: Settings, arguments: argparse.Namespace) -> int:
    import getpass
    from datetime import UTC, datetime

    from callwarden.recording.commands import (
        RecordingCommandError,
        RecordingTools,
        catalogue_locator,
        export_command,
        file_locator,
        verify_command,
    )
    from callwarden.recording.keyring import FileKeyRing
    from callwarden.recording.storage import LocalStorage
    from callwarden.recording.storage_s3 import StorageConfigError, open_recording_storage
    from callwarden.store.database import Database

    if arguments.recording_command == "purge":
        return _purge_recordings(settings, arguments.batch_size)
    if arguments.recording_command == "recover":
        return _recover_recordings(settings, arguments.node)
    database = None
    try:
        if arguments.file is not None:
            locate = file_locator(arguments.file, arguments.wrapped_key or "")
        else:
            database = Database(settings.effective_database_url)
            storage = (
                LocalStorage(arguments.storage_dir)
                if arguments.storage_dir is not None
                else open_recording_storage(
                    settings.data_dir,
                    settings.recording_storage,
                    endpoint=settings.recording_s3_endpoint,
                    region=settings.recording_s3_region,
                )
            )
            locate = catalogue_locator(database, storage)
        tools = RecordingTools(
            locate,
            FileKeyRing.for_data_dir(settings.data_dir),
            settings.data_dir / "keys" / "node-signing.key",
        )
        if arguments.recording_command == "verify":
            return verify_command(tools, arguments.recording_id, sys.stdout)
        exported_by = arguments.by or getpass.getuser()
        if database is None and (
            settings.database_url is not None or (settings.data_dir / "callwarden.db").is_file()
        ):
            database = Database(settings.effective_database_url)
        return export_command(
            tools,
            arguments.recording_id,
            arguments.out,
            exported_by=exported_by,
            reason=arguments.reason,
            now=datetime.now(UTC),
            out=sys.stdout,
            record=_export_auditor(database, exported_by, arguments.reason),
        )
    except (RecordingCommandError, StorageConfigError) as error:
        sys.stderr.write(f"callwarden: {error}\n")
        return 2
    finally:
        if database is not None:
            database.close()


def _add_user_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = commands.add_parser("user", help="break-glass user administration on this host")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    reset = user_commands.add_parser(
        "reset-mfa", help="remove a user's second factor (they enrol again) and end sessions"
    )
    reset.add_argument("username")
    reset.add_argument("--reason", required=True, help="why (kept in the audit trail)")
    _add_settings_flags(reset)


def _export_auditor(
    database: Database | None, exported_by: str, reason: str
) -> Callable[[str, bool, str], None]:
    """Writes `recording.export` to the audit log (a file with no database: a log line)."""
    from callwarden.security.audit import (
        ActorKind,
        AuditAction,
        AuditActor,
        AuditEvent,
        AuditLog,
        AuditOutcome,
    )

    def record(recording_id: str, succeeded: bool, detail: str) -> None:
        if database is None:
            logger.warning("recording %s export not audited: no database", recording_id)
            return
        AuditLog(database.sessions).append(
            AuditEvent(
                action=AuditAction.RECORDING_EXPORT,
                actor=AuditActor(kind=ActorKind.SYSTEM, name=f"cli:{exported_by}"),
                outcome=AuditOutcome.SUCCESS if succeeded else AuditOutcome.FAILED,
                object_kind="recording",
                object_id=recording_id,
                reason=reason,
                details={"destination" if succeeded else "error": detail},
            )
        )

    return record


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Alembic narrates every start-up at INFO; migrations that ran are what matters.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _provision(settings: Settings, file: Path) -> int:
    from callwarden.app import provision_file

    report = provision_file(settings, file)
    logger.info("%s", report.summary())
    return 0


def _audit(settings: Settings, arguments: argparse.Namespace) -> int:
    from callwarden.admin_commands import AdminCommandError, audit_export_head, audit_verify

    try:
        if arguments.audit_command == "verify":
            return audit_verify(settings, head_file=arguments.head, out=sys.stdout)
        return audit_export_head(settings, out_file=arguments.out, out=sys.stdout)
    except AdminCommandError as error:
        sys.stderr.write(f"callwarden: {error}\n")
        return 2


def _user(settings: Settings, arguments: argparse.Namespace) -> int:
    from callwarden.admin_commands import AdminCommandError, user_reset_mfa

    try:
        return user_reset_mfa(
            settings, username=arguments.username, reason=arguments.reason, out=sys.stdout
        )
    except AdminCommandError as error:
        sys.stderr.write(f"callwarden: {error}\n")
        return 2


def _serve(settings: Settings) -> int:
    from callwarden.app import run_node

    run_node(settings)
    return 0


def _demo(settings: Settings, arguments: argparse.Namespace) -> int:
    """Provision the demo center (its trunk at the simulator's address), then run the node and
    the traffic simulator in one event loop."""
    from callwarden.simulator import DEMO_OPERATORS, SecondsRange, SimulatorSettings
    from callwarden.simulator.demo import (
        demo_center,
        operator_accounts,
        queue_numbers,
        simulator_host,
    )
    from callwarden.simulator.settings import SimulatorConfigError

    host = simulator_host(settings.bind)
    try:
        text = demo_center(host, arguments.simulator_port)
        simulation = SimulatorSettings(
            node_host=host,
            node_port=settings.sip_port,
            operators=operator_accounts(text, DEMO_OPERATORS),
            host=host,
            trunk_port=arguments.simulator_port,
            realm=settings.realm,
            queue_numbers=queue_numbers(text),
            calls_per_minute=arguments.calls_per_minute,
            talk_seconds=SecondsRange.parse(arguments.talk_seconds, "--talk-seconds"),
        )
    except SimulatorConfigError as error:
        sys.stderr.write(f"callwarden: {error}\n")
        return 2
    # Queue members are signed in when their phone registers: the simulated operators, and
    # alice or bob as soon as a softphone signs in as them.
    update: dict[str, Any] = {"acd_auto_sign_in": True}
    if settings.sip_tls_port is None:
        update["sip_tls_port"] = settings.sip_port + 1  # 5061 beside the default 5060
    settings = settings.model_copy(update=update)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / "demo-center.yaml"
    path.write_text(text, encoding="utf-8")
    _provision(settings, path)
    if arguments.no_simulator:
        return _serve(settings)
    import uvloop

    uvloop.run(_run_demo(settings, simulation))
    return 0


async def _run_demo(settings: Settings, simulation: SimulatorSettings) -> None:
    from callwarden.app import serve
    from callwarden.simulator import Simulator

    simulator = Simulator(simulation)
    try:
        await simulator.start()  # its phones retry until the node below listens
    except OSError as error:
        await simulator.close()
        raise ConfigError(
            f"simulator: cannot listen on {simulation.host}:{simulation.trunk_port}"
            f" ({error.strerror}): pick another --simulator-port or use --no-simulator"
        ) from error
    try:
        await serve(settings)
    finally:
        await simulator.close()


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        settings = _settings(arguments)
    except ConfigError as error:
        sys.stderr.write(f"callwarden: {error}\n")
        return 2
    _configure_logging(settings.log_level)
    from callwarden.provisioning.errors import ProvisioningError

    if arguments.command == "audit":
        return _audit(settings, arguments)
    if arguments.command == "user":
        return _user(settings, arguments)
    if arguments.command == "recording":
        return _recording(settings, arguments)
    if arguments.command == "acd":
        return _purge_acd_history(settings)
    try:
        if arguments.command == "provision":
            return _provision(settings, arguments.file)
        if arguments.command == "demo":
            return _demo(settings, arguments)
        return _serve(settings)
    except (ConfigError, ProvisioningError) as error:
        sys.stderr.write(f"callwarden: {error}\n")
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
