"""The provisioning service: a declarative file in, one transaction out.

A run reads and validates the whole file, loads the stored configuration, checks every
reference and number against the state the run would leave, and only then writes, all in one
transaction. Any problem rejects the file as a whole (`ProvisioningError`, listing each problem
with its line) and nothing is changed. Running the same file again changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callwarden.domain.errors import Conflict
from callwarden.provisioning.apply import Applier, Ha1Function
from callwarden.provisioning.checks import cross_reference_problems, password_problems
from callwarden.provisioning.errors import ProvisioningError
from callwarden.provisioning.report import ProvisionReport
from callwarden.provisioning.source import LoadedDocument, Locator, parse_text, read_file, validate
from callwarden.provisioning.state import StoredState, TargetState
from callwarden.security.password_policy import PasswordPolicy
from callwarden.security.passwords import PasswordHasher
from callwarden.sip.digest import compute_ha1
from callwarden.store.database import WRITE_TRANSACTION

logger = logging.getLogger(__name__)


class Provisioner:
    """Applies provisioning documents to the database behind `session_factory`.

    `realm` is the SIP realm the HA1s are computed for (from the node's settings); users whose
    `sip_password` the file states get HA1s for MD5 and SHA-256 in that realm.
    """

    def __init__(
        self,
        session_factory: Callable[[], Session],
        realm: str,
        *,
        password_hasher: PasswordHasher | None = None,
        password_policy: PasswordPolicy | None = None,
        ha1_function: Ha1Function = compute_ha1,
    ) -> None:
        if not realm:
            raise ValueError("the SIP realm must not be empty")
        self._session_factory = session_factory
        self._realm = realm
        self._hasher = password_hasher if password_hasher is not None else PasswordHasher()
        self._policy = password_policy if password_policy is not None else PasswordPolicy.default()
        self._compute_ha1 = ha1_function

    def apply_file(self, path: Path | str, *, dry_run: bool = False) -> ProvisionReport:
        """Apply the YAML file at `path`; problems are reported as `path:line: field: ...`."""
        return self._apply(read_file(Path(path)), dry_run=dry_run)

    def apply_text(self, text: str, source_name: str, *, dry_run: bool = False) -> ProvisionReport:
        """Apply YAML text; `source_name` is what problems are reported against."""
        return self._apply(parse_text(text, source_name), dry_run=dry_run)

    def apply_document(
        self,
        document: Mapping[str, object],
        source_name: str = "<document>",
        *,
        dry_run: bool = False,
    ) -> ProvisionReport:
        """Apply an already parsed document (problems carry no line numbers)."""
        locator = Locator(source_name, None)
        return self._apply(
            LoadedDocument(validate(dict(document), locator), locator), dry_run=dry_run
        )

    def _apply(self, loaded: LoadedDocument, *, dry_run: bool) -> ProvisionReport:
        source = loaded.locator.source
        with self._session_factory() as session:
            try:
                session.connection(execution_options=WRITE_TRANSACTION)
                target = TargetState(loaded.document, StoredState(session))
                problems = [
                    *cross_reference_problems(target, loaded.locator),
                    *password_problems(target, loaded.locator, self._policy),
                ]
                if problems:
                    raise ProvisioningError(source, problems)
                applier = Applier(
                    session,
                    target,
                    realm=self._realm,
                    hasher=self._hasher,
                    compute_ha1=self._compute_ha1,
                )
                report = applier.run().build(source, dry_run=dry_run)
                if dry_run:
                    session.rollback()
                else:
                    session.commit()
            except IntegrityError as error:
                session.rollback()
                logger.warning("provisioning %s failed in the database: %s", source, error.orig)
                raise Conflict(
                    f"{source}: the configuration changed while it was being provisioned, "
                    "or the database refused it; nothing was changed",
                    error_id="provisioning_conflict",
                ) from error
        logger.info(
            "provisioned %s: %d created, %d updated, %d deleted, %d unchanged%s",
            source,
            report.created,
            report.updated,
            report.deleted,
            report.unchanged,
            " (dry run)" if dry_run else "",
        )
        return report
