"""What a provisioning run did (or, on a dry run, would do), object by object."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


class ObjectKind(enum.Enum):
    ROLE = "roles"
    TEAM = "teams"
    USER = "users"
    TRUNK = "trunks"
    QUEUE = "queues"


class Outcome(enum.Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"


@dataclass(frozen=True)
class ProvisionReport:
    """The outcome of every object the run touched, by kind and name."""

    source: str
    outcomes: Mapping[ObjectKind, Mapping[str, Outcome]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    dry_run: bool = False

    def names(self, kind: ObjectKind, outcome: Outcome) -> tuple[str, ...]:
        found = self.outcomes.get(kind, {})
        return tuple(sorted(name for name, result in found.items() if result is outcome))

    def count(self, outcome: Outcome, kind: ObjectKind | None = None) -> int:
        kinds = list(ObjectKind) if kind is None else [kind]
        return sum(len(self.names(each, outcome)) for each in kinds)

    @property
    def created(self) -> int:
        return self.count(Outcome.CREATED)

    @property
    def updated(self) -> int:
        return self.count(Outcome.UPDATED)

    @property
    def unchanged(self) -> int:
        return self.count(Outcome.UNCHANGED)

    @property
    def deleted(self) -> int:
        return self.count(Outcome.DELETED)

    @property
    def changed(self) -> bool:
        return self.created + self.updated + self.deleted > 0

    def summary(self) -> str:
        """One line per kind with changes, e.g. `users: 2 created, 1 unchanged`."""
        verb = "would be" if self.dry_run else "were"
        lines = [
            f"{self.source}: {self.created} created, {self.updated} updated, "
            f"{self.deleted} deleted, {self.unchanged} unchanged"
            + (" (dry run: nothing was changed)" if self.dry_run else "")
        ]
        for kind in ObjectKind:
            parts = [
                f"{self.count(outcome, kind)} {outcome.value}"
                for outcome in Outcome
                if self.count(outcome, kind)
            ]
            if parts:
                lines.append(f"  {kind.value}: {', '.join(parts)}")
        for kind in ObjectKind:
            deleted = self.names(kind, Outcome.DELETED)
            if deleted:
                lines.append(f"  {kind.value} that {verb} deleted: {', '.join(deleted)}")
        return "\n".join(lines)


class ReportBuilder:
    """Collects outcomes while a run applies; an object's first change decides its outcome."""

    def __init__(self) -> None:
        self._outcomes: dict[ObjectKind, dict[str, Outcome]] = {kind: {} for kind in ObjectKind}

    def record(self, kind: ObjectKind, name: str, outcome: Outcome) -> None:
        current = self._outcomes[kind].get(name)
        if current is None or current is Outcome.UNCHANGED:
            self._outcomes[kind][name] = outcome

    def build(self, source: str, *, dry_run: bool) -> ProvisionReport:
        frozen = {kind: MappingProxyType(dict(names)) for kind, names in self._outcomes.items()}
        return ProvisionReport(source=source, outcomes=MappingProxyType(frozen), dry_run=dry_run)
