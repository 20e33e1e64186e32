"""The run records of a reports directory, read for reports, metrics and schedules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from drills.errors import RecordError
from drills.quarters import Quarter, parse_time
from drills.records import load_record


@dataclass(frozen=True)
class Run:
    path: Path
    record: dict[str, Any]
    started: datetime

    @property
    def scenario(self) -> str:
        return str(self.record["scenario"]["name"])

    @property
    def verdict(self) -> str:
        return str(self.record["verdict"])

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def quarter(self) -> Quarter:
        return Quarter.of(self.started)


def load_runs(directory: Path) -> list[Run]:
    """Every run record in `directory` (not its histories), oldest first. A file that is not
    a valid record is an error naming it: evidence must not be skipped silently."""
    runs = []
    if not directory.is_dir():
        return []
    for path in sorted(directory.glob("*.json")):
        record = load_record(path)
        try:
            str(record["scenario"]["name"])
            str(record["verdict"])
            stamp = str(record["started_at"])
        except (KeyError, TypeError) as exc:
            raise RecordError(f"{path}: record lacks {exc}") from exc
        try:
            started = parse_time(stamp)
        except ValueError:
            raise RecordError(f"{path}: started_at {stamp!r} is not an ISO 8601 time") from None
        runs.append(Run(path, record, started))
    return sorted(runs, key=lambda r: r.started)


def in_quarter(runs: list[Run], quarter: Quarter) -> list[Run]:
    return [r for r in runs if quarter.contains(r.started)]
