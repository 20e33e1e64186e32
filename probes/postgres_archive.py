"""`postgres-archive`: how far WAL archiving is behind on a primary, the *predicted* RPO.

Each sample reads `pg_stat_archiver` and the current WAL insert position. Everything up to the
end of the last archived segment is safe in the archive; the first unarchived byte is the start
of its successor. When the insert position has not gone past that start (nothing but the
segment's page header), nothing is unarchived and `archive_lag_s` is 0. Otherwise it is the
time since `last_archived_time`, or since the probe was set up when nothing was ever archived:
about the age of the oldest unarchived write (older by the archiver's delay: the next segment
began before the last one was archived), so an estimate of what losing the primary's disk at
that moment would cost, given a restore from the archive.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Literal, NamedTuple

import psycopg
from pydantic import Field

from drills.history import Outcome
from drills.probe import PROBES, Client, Probe, ProbeConfig, Sample
from probes.pg import connect, short
from probes.postgres_lag import lsn

# The long page header that opens every WAL segment (SizeOfXLogLongPHD on 64-bit builds): right
# after a segment switch the insert position sits just past it, with no record written yet.
SEGMENT_HEADER_BYTES = 40
SEGMENT_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})")

QUERY = """
SELECT pg_is_in_recovery(),
       CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn()::text END,
       (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'),
       archived_count, failed_count, last_archived_wal, last_archived_time, clock_timestamp()
FROM pg_stat_archiver
"""


class PostgresArchiveConfig(ProbeConfig):
    kind: Literal["postgres-archive"]
    dsn: str = Field(description="libpq DSN of the primary; prefer a direct one")


class ArchiverState(NamedTuple):
    """One reading of the primary: its insert position and what pg_stat_archiver says."""

    insert_lsn: int
    segment_bytes: int
    archived_count: int
    failed_count: int
    last_archived_wal: str | None
    last_archived_time: datetime | None
    now: datetime


def successor_start(wal_name: str, segment_bytes: int) -> int | None:
    """Byte position where the segment after `wal_name` starts, or None when the name is not a
    segment's (a timeline history file). `.partial` and `.backup` files name their segment."""
    match = SEGMENT_NAME.match(wal_name)
    if match is None:
        return None
    log, seg = int(match.group(2), 16), int(match.group(3), 16)
    segments_per_log = (1 << 32) // segment_bytes
    return (log * segments_per_log + seg + 1) * segment_bytes


def nothing_unarchived(state: ArchiverState) -> bool:
    if state.last_archived_wal is None:
        return False
    start = successor_start(state.last_archived_wal, state.segment_bytes)
    return start is not None and state.insert_lsn <= start + SEGMENT_HEADER_BYTES


def archive_lag_s(state: ArchiverState, probe_started_wall_s: float) -> float:
    """The predicted RPO: 0 when nothing is unarchived, else the age of the last archived file
    (or of the probe, when nothing was ever archived)."""
    if nothing_unarchived(state):
        return 0.0
    if state.last_archived_time is None:
        return max(0.0, time.time() - probe_started_wall_s)
    return max(0.0, (state.now - state.last_archived_time).total_seconds())


def read_state(row: tuple[object, ...] | None) -> ArchiverState | str:
    """The reading, or why there is none."""
    if row is None:
        return "pg_stat_archiver returned no row"
    in_recovery, insert, segment, archived, failed, wal, archived_at, now = row
    if in_recovery:
        return "a standby: archive lag is measured on the primary"
    if not isinstance(now, datetime):
        return "the server returned no clock"
    return ArchiverState(
        insert_lsn=lsn(str(insert)),
        segment_bytes=int(str(segment)),
        archived_count=int(str(archived)),
        failed_count=int(str(failed)),
        last_archived_wal=str(wal) if wal is not None else None,
        last_archived_time=archived_at if isinstance(archived_at, datetime) else None,
        now=now,
    )


class PostgresArchiveClient(Client):
    def __init__(self, config: PostgresArchiveConfig, started_wall_s: float) -> None:
        self.config = config
        self.started_wall_s = started_wall_s
        self.conn: psycopg.Connection[tuple[object, ...]] | None = None

    def sample(self, seq: int) -> Sample:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = connect(self.config.dsn, self.config.timeout)
            row = self.conn.execute(QUERY).fetchone()
        except psycopg.Error as exc:
            self.close()
            return Sample(Outcome.FAIL, short(exc))
        state = read_state(row)
        if isinstance(state, str):
            return Sample(Outcome.FAIL, state)
        values = {
            "archive_lag_s": archive_lag_s(state, self.started_wall_s),
            "archived_count": float(state.archived_count),
            "failed_count": float(state.failed_count),
        }
        return Sample(Outcome.OK, "", values)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@PROBES.register("postgres-archive")
class PostgresArchiveProbe(Probe):
    Config = PostgresArchiveConfig

    def __init__(self, name: str, config: ProbeConfig, run_id: str) -> None:
        super().__init__(name, config, run_id)
        self.started_wall_s = time.time()

    def client(self) -> Client:
        assert isinstance(self.config, PostgresArchiveConfig)
        return PostgresArchiveClient(self.config, self.started_wall_s)
