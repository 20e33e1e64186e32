"""`postgres-write`: insert rows with unique increasing ids; each ok is an acknowledged write.

The id of a write is its sample number. After the drill, `final_read` reads every row of this
run back from the surviving primary so that the checker can classify each write.

Each acknowledged write is tagged with its lineage, the server that committed it: `db` (the
cluster's system identifier at the server's address and port) and `timeline`. A server's
timeline changes only when a standby is promoted, and a connection that has acknowledged a
write is to a primary, which keeps its timeline until it stops (a failed write closes the
connection). So the lineage is read once per connection, after its first acknowledged write,
not once per write. Two lineages acknowledging writes at once is split brain
(`drills.sites.split_brain`).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Generator
from typing import Literal

import psycopg
from psycopg import pq, sql
from psycopg.types.numeric import Int8
from pydantic import Field, field_validator, model_validator

from drills.errors import ProbeError
from drills.history import Outcome
from drills.probe import (
    PROBES,
    Client,
    Exchange,
    LoopClient,
    ProbeConfig,
    Sample,
    Wait,
    WriteProbe,
)
from probes import pg_loop
from probes.pg import PREPARE_HELP, connect, outcome_of_error, short
from probes.pg_statements import TYPES, for_libpq, for_psycopg, names_in

# The timeline as Patroni reads it: the current WAL file's first eight hex digits.
LINEAGE = (
    "SELECT (SELECT system_identifier FROM pg_control_system())::text,"
    " coalesce(host(inet_server_addr()), 'local'), current_setting('port'),"
    " ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"
)

STANDBY_TABLE_WAIT_S = 5.0
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class PostgresWriteConfig(ProbeConfig):
    kind: Literal["postgres-write"]
    dsn: str = Field(description="libpq connection string; it must reach the read-write node")
    table: str = Field("drills_writes", description="the table drills writes its rows into")
    create: bool | None = Field(
        None,
        description="create `table` if it is missing (the default); false: it must exist, and "
        "the role needs only INSERT and SELECT on it. Not with `insert`",
    )
    insert: str | None = Field(
        None,
        description="one write into a table of your own: SQL with :id (the write's number), "
        ":run_id and :probe where the values go; with `read`, no DDL is run",
    )
    read: str | None = Field(
        None,
        description="reads this run's writes back after the drill: rows of (id, count), "
        "with :run_id and :probe where the values go",
    )
    prepare: bool = Field(True, description=PREPARE_HELP)

    @field_validator("table")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"{value!r} is not a plain table name (schema.table allowed)")
        return value

    @model_validator(mode="after")
    def _own_statements(self) -> PostgresWriteConfig:
        if (self.insert is None) != (self.read is None):
            raise ValueError("`insert` and `read` go together: one writes, the other reads back")
        if self.insert is not None and self.read is not None:
            if self.create is not None or "table" in self.model_fields_set:
                raise ValueError("`create` and `table` are for drills' table; not with `insert`")
            if not {"id", "run_id"} <= names_in(self.insert):
                raise ValueError(
                    "`insert` must hold :id and :run_id: ids start again with every run"
                )
            if "run_id" not in names_in(self.read) or "id" in names_in(self.read):
                raise ValueError("`read` reads every write of this run: :run_id (and :probe)")
        return self


def _quoted(name: str) -> str:
    """A checked table name as SQL names it (CREATE, to_regclass)."""
    return ".".join(f'"{part}"' for part in name.split("."))


def _table(name: str) -> sql.Identifier:
    return sql.Identifier(*name.split("."))


def _table_arrives(conn: psycopg.Connection[tuple[object, ...]], table: str) -> bool:
    """Whether `table` exists, or arrives soon: a standby (a probe that writes to it once it
    is promoted) refuses CREATE, and gets the table from its primary's probe."""
    quoted = _quoted(table)
    deadline = time.monotonic() + STANDBY_TABLE_WAIT_S
    while True:
        found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (quoted,)).fetchone()
        if found and found[0]:
            return True
        standby = conn.execute("SELECT pg_is_in_recovery()").fetchone()
        if not (standby and standby[0]) or time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _lineage_of(row: tuple[object, ...] | None) -> dict[str, str] | None:
    if row is None or len(row) != 4 or any(part is None for part in row):
        return None
    system_id, host, port, timeline = row
    return {"db": f"{system_id}@{host}:{port}", "timeline": str(timeline)}


def read_lineage(conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, str] | None:
    """`{"db": SYSTEM_ID@ADDRESS:PORT, "timeline": N}` of a primary; None when unreadable."""
    try:
        row = conn.execute(LINEAGE).fetchone()
    except psycopg.Error:
        return None  # a broken connection fails the next write; a refusal leaves writes untagged
    return _lineage_of(row)


class PostgresWriteClient(Client):
    def __init__(self, probe: PostgresWriteProbe) -> None:
        self.probe = probe
        self.conn: psycopg.Connection[tuple[object, ...]] | None = None
        self.lineage: dict[str, str] | None = None
        self.lineage_read = False  # for the current connection
        self.insert = for_psycopg(probe.insert_sql)

    def sample(self, seq: int) -> Sample:
        try:
            if self.conn is None or self.conn.closed:
                self._connect()
        except psycopg.Error as exc:
            self.close()
            return Sample(Outcome.FAIL, short(exc))
        assert self.conn is not None
        try:
            self.conn.execute(self.insert, self.probe.values(seq))
        except psycopg.Error as exc:
            self.close()
            return Sample(outcome_of_error(exc, sent=True, mutating=True), short(exc))
        if not self.lineage_read:
            self.lineage, self.lineage_read = read_lineage(self.conn), True
        return Sample(Outcome.OK, "", tags=self.lineage)

    def _connect(self) -> None:
        self.lineage, self.lineage_read = None, False
        self.conn = connect(self.probe.cfg.dsn, self.probe.cfg.timeout, self.probe.cfg.prepare)

    def warm_up(self) -> None:
        with contextlib.suppress(psycopg.Error):
            self._connect()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class PostgresWriteLoopClient(LoopClient):
    """The same writes as PostgresWriteClient, on the event loop (probes.pg_loop)."""

    def __init__(self, probe: PostgresWriteProbe) -> None:
        self.probe = probe
        self.conn: pq.abc.PGconn | None = None
        self.lineage: dict[str, str] | None = None
        self.lineage_read = False  # for the current connection
        self.insert, self.order = for_libpq(probe.insert_sql)
        self.types = [TYPES[name] for name in self.order]

    def exchange(self, seq: int) -> Exchange:
        try:
            if not pg_loop.usable(self.conn):
                self.close()
                self.conn = yield from pg_loop.connect(self.probe.cfg.dsn, self.probe.cfg.timeout)
                self.lineage, self.lineage_read = None, False
        except psycopg.Error as exc:
            self.close()
            return Sample(Outcome.FAIL, short(exc))
        assert self.conn is not None
        try:
            values = self.probe.values(seq)
            params = [str(values[name]).encode() for name in self.order]
            yield from pg_loop.execute(self.conn, self.insert, params, self.types)
        except psycopg.Error as exc:
            self.close()
            return Sample(outcome_of_error(exc, sent=True, mutating=True), short(exc))
        if not self.lineage_read:
            self.lineage = yield from self._read_lineage(self.conn)
            self.lineage_read = True
        return Sample(Outcome.OK, "", tags=self.lineage)

    @staticmethod
    def _read_lineage(conn: pq.abc.PGconn) -> Generator[Wait, None, dict[str, str] | None]:
        try:
            result = yield from pg_loop.execute(conn, LINEAGE.encode())
        except psycopg.Error:
            return None  # a broken connection fails the next write; a refusal leaves it untagged
        if result is None or result.ntuples != 1 or result.nfields != 4:
            return None
        values = [result.get_value(0, column) for column in range(4)]
        return _lineage_of(tuple(None if v is None else v.decode() for v in values))

    def warm_up(self) -> None:
        self.conn = pg_loop.connect_blocking(self.probe.cfg.dsn, self.probe.cfg.timeout)
        self.lineage, self.lineage_read = None, False

    def close(self) -> None:
        if self.conn is not None:
            self.conn.finish()
            self.conn = None


@PROBES.register("postgres-write")
class PostgresWriteProbe(WriteProbe):
    Config = PostgresWriteConfig

    @property
    def cfg(self) -> PostgresWriteConfig:
        assert isinstance(self.config, PostgresWriteConfig)
        return self.config

    @property
    def insert_sql(self) -> str:
        """One write, with :run_id, :probe and :id where the values go."""
        if self.cfg.insert is not None:
            return self.cfg.insert
        table = _quoted(self.cfg.table)
        return f"INSERT INTO {table} (run_id, probe, id) VALUES (:run_id, :probe, :id)"

    @property
    def read_sql(self) -> str:
        """This run's writes: rows of (id, count)."""
        if self.cfg.read is not None:
            return self.cfg.read
        table = _quoted(self.cfg.table)
        where = "run_id = :run_id AND probe = :probe"
        return f"SELECT id, count(*) FROM {table} WHERE {where} GROUP BY id"

    def values(self, seq: int) -> dict[str, object]:
        """The parameters, typed as the event loop sends them (bigint, text)."""
        return {"run_id": self.run_id, "probe": self.name, "id": Int8(seq)}

    def prepare(self) -> None:
        if self.cfg.insert is not None:
            self._check_read()
        elif self.cfg.create is False:
            self._check_table()
        else:
            self._create_table()

    def _check_read(self) -> None:
        """Run `read` once (no row yet) and EXPLAIN `insert` (planned, not run; rights are
        checked): a mistake or a missing right shows before the drill, not as an outage."""
        checks = (("read", self.read_sql), ("insert", f"EXPLAIN {self.insert_sql}"))
        with connect(self.cfg.dsn, self.cfg.timeout, self.cfg.prepare) as conn:
            for key, text in checks:
                try:
                    conn.execute(for_psycopg(text), self.values(0)).fetchall()
                except psycopg.Error as exc:
                    raise ProbeError(f"probe {self.name}: its `{key}` fails: {short(exc)}") from exc

    def _check_table(self) -> None:
        quoted = _quoted(self.cfg.table)
        try:
            with connect(self.cfg.dsn, self.cfg.timeout, self.cfg.prepare) as conn:
                found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (quoted,)).fetchone()
        except psycopg.Error as exc:
            raise ProbeError(
                f"probe {self.name}: cannot look for {self.cfg.table}: {short(exc)}"
            ) from exc
        if not (found and found[0]):
            raise ProbeError(
                f"probe {self.name}: table {self.cfg.table} does not exist (create: false)"
            )

    def _create_table(self) -> None:
        create = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (run_id text NOT NULL, probe text NOT NULL,"
            " id bigint NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        ).format(_table(self.cfg.table))
        try:
            with connect(self.cfg.dsn, self.cfg.timeout, self.cfg.prepare) as conn:
                if not _table_arrives(conn, self.cfg.table):
                    conn.execute(create)
        except psycopg.Error as exc:
            raise ProbeError(
                f"probe {self.name}: cannot create {self.cfg.table}: {short(exc)}"
            ) from exc

    def client(self) -> Client:
        return PostgresWriteClient(self)

    def loop_client(self) -> LoopClient | None:
        return PostgresWriteLoopClient(self) if pg_loop.without_lookups(self.cfg.dsn) else None

    def final_read(self) -> dict[int, int]:
        try:
            with connect(self.cfg.dsn, max(self.cfg.timeout, 5.0), self.cfg.prepare) as conn:
                rows = conn.execute(for_psycopg(self.read_sql), self.values(0)).fetchall()
        except psycopg.errors.UndefinedTable:
            # prepare() made sure it existed: a restore to before its creation lost every row
            return {}
        except psycopg.Error as exc:
            raise ProbeError(f"final read of {self.name} failed: {short(exc)}") from exc
        return {int(str(row[0])): int(str(row[1])) for row in rows}
