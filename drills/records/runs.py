"""The one reader of a reports directory: its run records, for reports, metrics, schedules
and the command line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from pathlib import Path

from drills.checker import Overall
from drills.errors import RecordError
from drills.history import History
from drills.history_file import load_history
from drills.quarters import Quarter, parse_time
from drills.records.files import record_files
from drills.records.model import RunRecord
from drills.records.signing import SigningKey, signing_key
from drills.records.store import load_record, parse_record, record_data
from drills.records.verify import ChainCheck, check_chain


@dataclass(frozen=True)
class Run:
    path: Path
    record: RunRecord
    started: datetime
    stored_history: Callable[[], History] | None = None  # a run read from the store

    def history(self) -> History:
        """The run's history: from the store it came from, or the file beside its record."""
        if self.stored_history is not None:
            return self.stored_history()
        return load_history(self.path.parent / self.record.history)

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
    return _run(path, load_record(path))


def _run(path: Path, record: RunRecord, stored_history: Callable[[], History] | None = None) -> Run:
    try:
        started = parse_time(record.started_at)
    except ValueError:
        raise RecordError(
            f"{path}: started_at {record.started_at!r} is not an ISO 8601 time"
        ) from None
    return Run(path, record, started, stored_history)


class KeyFrom(Enum):
    ENVIRONMENT = "environment"  # $DRILLS_SIGNING_KEY_FILE, $DRILLS_SIGNING_KEY, drills.yaml


def reader_key(directory: Path, config: Path | None = None) -> SigningKey | None:
    """The key readers check signatures with: the one drills signs with, where it looks
    (`config`: drills.yaml given with --config; None: looked up, `config_path`)."""
    from drills.config import config_path

    return signing_key(directory, config_path(config))


def _checked(directory: Path, key: SigningKey | KeyFrom | None) -> ChainCheck:
    if key is KeyFrom.ENVIRONMENT:
        key = reader_key(directory)
    return check_chain(directory, key)


def _verified(found: ChainCheck, path: Path) -> Run:
    """The run in the bytes `check_chain` read and checked, not in the file read again."""
    raw = found.contents.get(path)
    if raw is None:
        raise RecordError(f"{path}: {found.why(path)}")
    return _run(path, parse_record(record_data(raw, path), path))


def read_runs(
    directory: Path,
    left_out: list[str] | None = None,
    key: SigningKey | KeyFrom | None = KeyFrom.ENVIRONMENT,
) -> tuple[list[Run], list[RecordError]]:
    """Every run record in `directory` (not its histories), oldest first, and one error per
    file that is not a valid record, for readers that go on without it (the exporter).

    With `left_out`, the records are verified too (`check_chain`, signatures with `key`):
    one that fails is left out, and `left_out` gets a line saying why. Each file is then read
    once, and only the bytes that were checked are parsed: a file added or replaced after the
    check is not read."""
    runs: list[Run] = []
    problems: list[RecordError] = []
    if not directory.is_dir():
        return runs, problems
    found = None if left_out is None else _checked(directory, key)
    for path in record_files(directory) if found is None else found.records:
        try:
            run = read_run(path) if found is None else _verified(found, path)
        except RecordError as exc:  # not a record at all: an error, as without verification
            problems.append(exc)
            continue
        why = None if found is None else found.why(path)
        if why is not None and left_out is not None:
            left_out.append(f"{path}: left out, fails verification: {why}")
        else:
            runs.append(run)
    return sorted(runs, key=lambda r: r.started), problems


def load_runs(
    directory: Path,
    left_out: list[str] | None = None,
    key: SigningKey | KeyFrom | None = KeyFrom.ENVIRONMENT,
) -> list[Run]:
    """Every run record in `directory`, oldest first. A file that is not a valid record is
    an error naming it: evidence must not be skipped silently. With `left_out`, records that
    fail verification are left out, saying why there (`read_runs`)."""
    runs, problems = read_runs(directory, left_out, key)
    if problems:
        raise problems[0]
    return runs


def in_quarter(runs: list[Run], quarter: Quarter) -> list[Run]:
    return [r for r in runs if quarter.contains(r.started)]
