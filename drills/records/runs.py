"""The one reader of a reports directory: its run records, for reports, metrics, schedules
and the command line."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from drills.checker import Overall
from drills.errors import RecordError
from drills.quarters import Quarter, parse_time
from drills.records.files import record_files
from drills.records.model import RunRecord
from drills.records.store import load_record


@dataclass(frozen=True)
class Run:
    path: Path
    record: RunRecord
    started: datetime

    @property
    def scenario(self) -> str:
        return self.record.scenario.name

    @property
    def verdict(self) -> Overall:
        return self.record.verdict

    @property
    def passed(self) -> bool:
        return self.record.passed

    @property
    def quarter(self) -> Quarter:
        return Quarter.of(self.started)


def read_run(path: Path) -> Run:
    record = load_record(path)
    try:
        started = parse_time(record.started_at)
    except ValueError:
        raise RecordError(
            f"{path}: started_at {record.started_at!r} is not an ISO 8601 time"
        ) from None
    return Run(path, record, started)


def read_runs(directory: Path) -> tuple[list[Run], list[RecordError]]:
    """Every run record in `directory` (not its histories), oldest first, and one error per
    file that is not a valid record, for readers that go on without it (the exporter)."""
    runs: list[Run] = []
    problems: list[RecordError] = []
    if not directory.is_dir():
        return runs, problems
    for path in record_files(directory):
        try:
            runs.append(read_run(path))
        except RecordError as exc:
            problems.append(exc)
    return sorted(runs, key=lambda r: r.started), problems


def load_runs(directory: Path) -> list[Run]:
    """Every run record in `directory`, oldest first. A file that is not a valid record is
    an error naming it: evidence must not be skipped silently."""
    runs, problems = read_runs(directory)
    if problems:
        raise problems[0]
    return runs


def in_quarter(runs: list[Run], quarter: Quarter) -> list[Run]:
    return [r for r in runs if quarter.contains(r.started)]
