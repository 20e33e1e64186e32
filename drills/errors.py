"""One exception root; exit codes are decided in one place (`exit_code`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass

EXIT_OK = 0
EXIT_MISSED = 1
EXIT_ERROR = 2
EXIT_ABORTED = 3
EXIT_INTERRUPTED = 130


class DrillsError(Exception):
    """Root of every error drills raises on purpose."""


@dataclass
class Problem:
    """One thing wrong with a scenario file, located as precisely as the YAML allows."""

    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {_printable(self.key)}:" if self.key else ""
        return f"{where}:{key} {_printable(self.message)}"


def _printable(text: str) -> str:
    """One line whatever the input held: control characters shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ScenarioError(DrillsError):
    """The scenario is invalid; carries every problem found, one line each."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class LabError(DrillsError):
    """The lab could not be started or stopped."""


class StepError(DrillsError):
    """A step of the timeline failed."""


class EngineError(DrillsError):
    """The container engine cannot be reached or refused a request."""


class TargetError(DrillsError):
    """A target could not be acted on."""


class ProbeError(DrillsError):
    """A probe could not be set up."""


class RecordError(DrillsError):
    """A record or history file is missing or malformed."""


class PathError(DrillsError):
    """A path drills would write through is not safe: a symlink, another user's directory."""


class Interrupted(DrillsError):
    """SIGINT or SIGTERM arrived; the drill stops and cleans up."""

    def __init__(self, signame: str) -> None:
        self.signame = signame
        super().__init__(f"interrupted by {signame}")


class Aborted(DrillsError):
    """A stop condition fired: the drill went worse than the scenario allows."""

    def __init__(self, condition: str) -> None:
        self.condition = condition
        super().__init__(f"aborted: {condition}")


def report_error(exc: DrillsError) -> int:
    """Print an error the way every command does (one line per problem) and return exit 2."""
    if isinstance(exc, ScenarioError):
        for problem in exc.problems:
            print(problem, file=sys.stderr)
    else:
        print(f"drills: {exc}", file=sys.stderr)
    return EXIT_ERROR


def exit_code(exc: BaseException) -> int:
    """The status for an exception that ended a command: 130 for an interruption, else 2 (the
    command could not do its job; 1 would say an objective was missed)."""
    if isinstance(exc, Interrupted | KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_ERROR
