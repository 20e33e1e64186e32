"""`postgres-archive`: the predicted RPO from pg_stat_archiver, with a fake connection."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

import probes.postgres_archive
from drills.history import Outcome
from drills.probe import PROBES
from probes.postgres_archive import (
    ArchiverState,
    PostgresArchiveClient,
    PostgresArchiveConfig,
    PostgresArchiveProbe,
    archive_lag_s,
    successor_start,
)

MB16 = 16 * 1024 * 1024
NOW = datetime(2026, 12, 2, 16, 0, 0, tzinfo=UTC)


class FakeConnection:
    def __init__(self, row: tuple[Any, ...] | None = None, error: Exception | None = None):
        self.row, self.error, self.closed = row, error, False

    def execute(self, query: object) -> FakeConnection:
        if self.error is not None:
            raise self.error
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.row

    def close(self) -> None:
        self.closed = True


def row(
    insert: str,
    wal: str | None = "000000010000000100000029",
    archived_ago_s: float | None = 3.0,
    recovery: bool = False,
) -> tuple[Any, ...]:
    archived_at = None if archived_ago_s is None else NOW - timedelta(seconds=archived_ago_s)
    return (recovery, None if recovery else insert, MB16, 7, 1, wal, archived_at, NOW)


def sample_with(monkeypatch: pytest.MonkeyPatch, conn: FakeConnection, started: float = 0.0) -> Any:
    monkeypatch.setattr(probes.postgres_archive, "connect", lambda dsn, timeout: conn)
    config = PostgresArchiveConfig.model_validate({"kind": "postgres-archive", "dsn": "host=a"})
    return PostgresArchiveClient(config, started or time.time()).sample(1)


def test_registered_under_its_kind() -> None:
    assert PROBES["postgres-archive"] is PostgresArchiveProbe


def test_the_successor_of_a_segment_starts_where_its_name_says() -> None:
    assert successor_start("000000020000000100000029", MB16) == 0x1_2A00_0000
    assert successor_start("0000000100000001000000FF", MB16) == 0x2_0000_0000
    assert successor_start("000000010000000000000003.partial", MB16) == 0x400_0000
    assert successor_start("000000010000000000000003.00000028.backup", MB16) == 0x400_0000
    assert successor_start("00000002.history", MB16) is None
    # 64 MB segments: 64 to a log file, so 1/3F is the last of its log file
    assert successor_start("00000001000000010000003F", 64 * 1024 * 1024) == 0x2_0000_0000


@pytest.mark.parametrize(
    ("insert", "lag"),
    [
        ("1/2A000000", 0.0),  # exactly at the successor's start
        ("1/2A000028", 0.0),  # just past its page header: right after pg_switch_wal()
        ("1/29FFFF00", 0.0),  # inside the archived segment (archived ahead of a switch)
        ("1/2A000029", 3.0),  # one byte of a record in the unarchived segment
        ("1/3B000000", 3.0),  # many segments behind
    ],
)
def test_lag_is_zero_until_the_insert_position_passes_the_unarchived_segment_start(
    monkeypatch: pytest.MonkeyPatch, insert: str, lag: float
) -> None:
    sample = sample_with(monkeypatch, FakeConnection(row(insert)))
    assert sample.outcome is Outcome.OK
    assert sample.values == {"archive_lag_s": lag, "archived_count": 7.0, "failed_count": 1.0}


def test_lag_after_a_history_file_is_the_time_since_it_was_archived(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sample = sample_with(monkeypatch, FakeConnection(row("1/2A000028", wal="00000002.history")))
    assert sample.values["archive_lag_s"] == 3.0


def test_with_nothing_archived_yet_the_lag_counts_from_the_probe_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = FakeConnection(row("0/3000100", wal=None, archived_ago_s=None))
    sample = sample_with(monkeypatch, conn, started=time.time() - 5)
    assert 5.0 <= sample.values["archive_lag_s"] < 6.0


def test_a_standby_is_a_fail_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    sample = sample_with(monkeypatch, FakeConnection(row("", recovery=True)))
    assert sample.outcome is Outcome.FAIL
    assert sample.detail == "a standby: archive lag is measured on the primary"


def test_a_failed_query_is_a_fail_and_the_connection_is_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = FakeConnection(error=psycopg.OperationalError("server closed the connection\nmore"))
    sample = sample_with(monkeypatch, conn)
    assert sample.outcome is Outcome.FAIL
    assert sample.detail == "OperationalError: server closed the connection"
    assert conn.closed


def test_lag_never_goes_negative_on_a_clock_step() -> None:
    state = ArchiverState(0x5000100, MB16, 1, 0, "000000010000000000000003", NOW, NOW)
    future = state._replace(last_archived_time=NOW + timedelta(seconds=2))
    assert archive_lag_s(future, time.time()) == 0.0
