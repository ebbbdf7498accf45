"""The one error provisioning raises: every problem of a rejected file, each with its place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from callwarden.domain.errors import ValidationFailed


@dataclass(frozen=True)
class Problem:
    """One fault: `source:line: path: message` (the line is unknown for in-memory documents)."""

    source: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        place = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{place}: {self.path}: {self.message}" if self.path else f"{place}: {self.message}"


class ProvisioningError(ValidationFailed):
    """The file was rejected as a whole; nothing was changed."""

    default_error_id = "provisioning_rejected"

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        ordered = tuple(
            sorted(problems, key=lambda problem: (problem.line or 0, problem.path, problem.message))
        )
        count = len(ordered)
        heading = f"{source}: {count} problem{'s' if count != 1 else ''}, nothing was changed"
        super().__init__(
            "\n".join([heading, *(str(problem) for problem in ordered)]),
            details={
                "source": source,
                "problems": [
                    {"line": problem.line, "path": problem.path, "message": problem.message}
                    for problem in ordered
                ],
            },
        )
        self.source = source
        self.problems = ordered
