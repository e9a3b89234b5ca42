"""The exception hierarchy of plantops.

Every error a user can cause or meet is one of these; the CLI maps them to exit
codes and prints them. Nothing here prints.

    PlantopsError
    ├── UserError            bad input or usage (exit 2)
    │   ├── SpecError        one or more located problems in a fleet spec (exit 2)
    │   ├── NotPermitted     this person may not do this, whatever the input (exit 2)
    │   └── NotFound         what was named does not exist (exit 2)
    ├── GateFailed           a check, gate or verification said no (exit 1)
    └── InfrastructureError  the world failed us: database, storage, cluster (exit 3)
        ├── TransientError   worth retrying after ``delay`` seconds
        └── PermanentError   retrying will not help
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_INFRA = 3


class PlantopsError(Exception):
    """Root of every plantops error."""

    exit_code = EXIT_INFRA


class UserError(PlantopsError):
    """The user asked for something impossible or malformed; the message says what to do."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True, order=True)
class Problem:
    """One located problem in a spec file.

    ``path`` is the YAML path (``plants[0].users.peak_concurrent``); ``hint`` says what
    would be right.
    """

    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str = ""
    severity: str = "error"

    def render(self) -> str:
        loc = f"{self.file}:{self.line}:{self.column}"
        where = f" [{self.path}]" if self.path else ""
        text = f"{loc}: {self.severity}{where}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


@dataclass
class SpecError(UserError):
    """Every problem found while loading a fleet, reported at once."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.summary())

    def summary(self) -> str:
        errors = [p for p in self.problems if p.severity == "error"]
        head = f"{len(errors)} error(s) in fleet spec"
        return "\n".join([head, *(p.render() for p in sorted(self.problems))])

    def __str__(self) -> str:
        return self.summary()


class NotPermitted(UserError):
    """Well-formed, but this person may not do it: separation of duties (the author of a
    release approving it). The server answers 403."""


class NotFound(UserError):
    """What the user named (a release, a plant) does not exist. The server answers 404."""


class GateFailed(PlantopsError):
    """A check, gate or verification failed; findings are data carried by the caller."""

    exit_code = EXIT_FINDINGS


class InfrastructureError(PlantopsError):
    """Something outside plantops failed (database, storage, subprocess, cluster)."""

    exit_code = EXIT_INFRA


class TransientError(InfrastructureError):
    """Retry after ``delay`` seconds may succeed."""

    def __init__(self, message: str, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(InfrastructureError):
    """Retrying will not help."""


def resolve_path(path: Path) -> Path:
    """``path.resolve()`` for a path a user named: a loop of symbolic links is a
    :class:`UserError` naming it (Python 3.11 raises ``RuntimeError`` there, 3.13
    ``OSError``), never a traceback."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:
        raise UserError(f"{path}: a loop of symbolic links; remove or fix the link") from exc


def display_path(path: Path, base: Path | None = None) -> str:
    """Path as shown in messages: relative to ``base`` when possible, POSIX separators."""
    if base is not None:
        try:
            return path.resolve().relative_to(base.resolve()).as_posix()
        except (ValueError, RuntimeError, OSError):
            pass
    return path.as_posix()


__all__ = [
    "EXIT_FINDINGS",
    "EXIT_INFRA",
    "EXIT_OK",
    "EXIT_USAGE",
    "GateFailed",
    "InfrastructureError",
    "PermanentError",
    "PlantopsError",
    "Problem",
    "SpecError",
    "TransientError",
    "UserError",
    "display_path",
    "resolve_path",
]
