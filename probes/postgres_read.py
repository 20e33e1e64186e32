"""`postgres-read`: run a query (default `SELECT 1`) and expect it to succeed."""

from __future__ import annotations

import contextlib
from typing import Literal

import psycopg
from psycopg import pq
from pydantic import Field

from drills.history import Outcome
from drills.probe import PROBES, Client, Exchange, LoopClient, Probe, ProbeConfig, Sample
from probes import pg_loop
from probes.pg import PREPARE_HELP, connect, short


class PostgresReadConfig(ProbeConfig):
    kind: Literal["postgres-read"]
    dsn: str = Field(description="libpq connection string; a multi-host DSN follows a failover")
    query: str = "SELECT 1"
    prepare: bool = Field(True, description=PREPARE_HELP)


class PostgresReadClient(Client):
    def __init__(self, config: PostgresReadConfig) -> None:
        self.config = config
        self.conn: psycopg.Connection[tuple[object, ...]] | None = None

    def sample(self, seq: int) -> Sample:
        try:
            if self.conn is None or self.conn.closed:
                self.conn = connect(self.config.dsn, self.config.timeout, self.config.prepare)
            self.conn.execute(self.config.query).fetchall()
            return Sample(Outcome.OK, "")
        except psycopg.Error as exc:
            self.close()
            return Sample(Outcome.FAIL, short(exc))

    def warm_up(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self.conn = connect(self.config.dsn, self.config.timeout, self.config.prepare)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class PostgresReadLoopClient(LoopClient):
    def __init__(self, config: PostgresReadConfig) -> None:
        self.config = config
        self.query = config.query.encode()
        self.conn: pq.abc.PGconn | None = None

    def exchange(self, seq: int) -> Exchange:
        try:
            if not pg_loop.usable(self.conn):
                self.close()
                self.conn = yield from pg_loop.connect(self.config.dsn, self.config.timeout)
            assert self.conn is not None
            yield from pg_loop.execute(self.conn, self.query)
            return Sample(Outcome.OK, "")
        except psycopg.Error as exc:
            self.close()
            return Sample(Outcome.FAIL, short(exc))

    def warm_up(self) -> None:
        self.conn = pg_loop.connect_blocking(self.config.dsn, self.config.timeout)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.finish()
            self.conn = None


@PROBES.register("postgres-read")
class PostgresReadProbe(Probe):
    Config = PostgresReadConfig

    def client(self) -> Client:
        assert isinstance(self.config, PostgresReadConfig)
        return PostgresReadClient(self.config)

    def loop_client(self) -> LoopClient | None:
        assert isinstance(self.config, PostgresReadConfig)
        if not pg_loop.without_lookups(self.config.dsn):
            return None
        return PostgresReadLoopClient(self.config)
