"""`postgres-write`: insert rows with unique increasing ids; each ok is an acknowledged write.

The id of a write is its sample number. After the drill, `final_read` reads every row of this
run back from the surviving primary so that the checker can classify each write.
"""

from __future__ import annotations

import contextlib
import re
from typing import Literal

import psycopg
from psycopg import sql
from pydantic import Field, field_validator

from drills.errors import ProbeError
from drills.history import Outcome
from drills.probe import PROBES, Client, ProbeConfig, Sample, WriteProbe
from probes.pg import connect, outcome_of_error, short

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class PostgresWriteConfig(ProbeConfig):
    kind: Literal["postgres-write"]
    dsn: str = Field(description="libpq connection string; it must reach the read-write node")
    table: str = Field("drills_writes", description="created if missing")

    @field_validator("table")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a plain table name (schema.table allowed)")
        return value


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


class PostgresWriteClient(Client):
    def __init__(self, probe: PostgresWriteProbe) -> None:
        self.probe = probe
        self.conn: psycopg.Connection[tuple[object, ...]] | None = None
        self.insert = sql.SQL("INSERT INTO {} (run_id, probe, id) VALUES (%s, %s, %s)").format(
            _table(probe.cfg.table)
        )

    def sample(self, seq: int) -> Sample:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = connect(self.probe.cfg.dsn, self.probe.cfg.timeout)
        except psycopg.Error as exc:
            self.close()
            return Sample(Outcome.FAIL, short(exc))
        try:
            self.conn.execute(self.insert, (self.probe.run_id, self.probe.name, seq))
            return Sample(Outcome.OK, "")
        except psycopg.Error as exc:
            self.close()
            return Sample(outcome_of_error(exc, sent=True, mutating=True), short(exc))

    def warm_up(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.conn = connect(self.probe.cfg.dsn, self.probe.cfg.timeout)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@PROBES.register("postgres-write")
class PostgresWriteProbe(WriteProbe):
    Config = PostgresWriteConfig

    @property
    def cfg(self) -> PostgresWriteConfig:
        assert isinstance(self.config, PostgresWriteConfig)
        return self.config

    def prepare(self) -> None:
        create = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (run_id text NOT NULL, probe text NOT NULL,"
            " id bigint NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        ).format(_table(self.cfg.table))
        try:
            with connect(self.cfg.dsn, self.cfg.timeout) as conn:
                conn.execute(create)
        except psycopg.Error as exc:
            raise ProbeError(
                f"probe {self.name}: cannot create {self.cfg.table}: {short(exc)}"
            ) from exc

    def client(self) -> Client:
        return PostgresWriteClient(self)

    def final_read(self) -> dict[int, int]:
        query = sql.SQL(
            "SELECT id, count(*) FROM {} WHERE run_id = %s AND probe = %s GROUP BY id"
        ).format(_table(self.cfg.table))
        try:
            with connect(self.cfg.dsn, max(self.cfg.timeout, 5.0)) as conn:
                rows = conn.execute(query, (self.run_id, self.name)).fetchall()
        except psycopg.Error as exc:
            raise ProbeError(f"final read of {self.name} failed: {short(exc)}") from exc
        return {int(str(row[0])): int(str(row[1])) for row in rows}
