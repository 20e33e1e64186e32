"""`postgres-lag`: how far a standby is behind its primary, the RPO exposure before a failover.

Each sample reads the primary's current WAL position and the standby's replay position and
last replayed commit time, and records `lag_bytes` (WAL not yet replayed) and `lag_s` (primary
now minus the standby's last replayed commit, 0 when nothing is pending). Give it direct DSNs
so that the probe itself does not travel over the link being faulted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import psycopg
from pydantic import Field

from drills.history import Outcome
from drills.probe import PROBES, Client, Probe, ProbeConfig, Sample
from probes.pg import connect, short


class PostgresLagConfig(ProbeConfig):
    kind: Literal["postgres-lag"]
    primary: str = Field(description="libpq DSN of the primary")
    standby: str = Field(description="libpq DSN of the standby")


def lsn(text: str) -> int:
    """`16/B374D848` -> byte position."""
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


class PostgresLagClient(Client):
    def __init__(self, config: PostgresLagConfig) -> None:
        self.config = config
        self.primary: psycopg.Connection[tuple[object, ...]] | None = None
        self.standby: psycopg.Connection[tuple[object, ...]] | None = None

    def sample(self, seq: int) -> Sample:
        try:
            if self.primary is None or self.primary.closed:
                self.primary = connect(self.config.primary, self.config.timeout)
            if self.standby is None or self.standby.closed:
                self.standby = connect(self.config.standby, self.config.timeout)
            head = self.primary.execute(
                "SELECT pg_current_wal_lsn()::text, clock_timestamp()"
            ).fetchone()
            replay = self.standby.execute(
                "SELECT pg_last_wal_replay_lsn()::text, pg_last_xact_replay_timestamp()"
            ).fetchone()
        except psycopg.Error as exc:
            self.close()
            return Sample(Outcome.FAIL, short(exc))
        if head is None or replay is None or replay[0] is None:
            return Sample(Outcome.FAIL, "the standby reports no replay position (not a standby?)")
        behind = max(0, lsn(str(head[0])) - lsn(str(replay[0])))
        seconds = 0.0
        if behind > 0 and isinstance(replay[1], datetime) and isinstance(head[1], datetime):
            seconds = max(0.0, (head[1] - replay[1]).total_seconds())
        return Sample(Outcome.OK, "", {"lag_bytes": float(behind), "lag_s": seconds})

    def close(self) -> None:
        for conn in (self.primary, self.standby):
            if conn is not None:
                conn.close()
        self.primary = self.standby = None


@PROBES.register("postgres-lag")
class PostgresLagProbe(Probe):
    Config = PostgresLagConfig

    def client(self) -> Client:
        assert isinstance(self.config, PostgresLagConfig)
        return PostgresLagClient(self.config)
