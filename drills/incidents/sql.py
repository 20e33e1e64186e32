"""`sql`: an operator's mistake (`DROP TABLE`, a `DELETE` without `WHERE`) run as SQL.

The statement runs in one transaction that also reads its own xid; once COMMIT returns, drills
reads the WAL position and the transaction's commit time back from the server, so that a
`restore` can stop just before it and the checker knows when it happened. The statement is the
incident: nothing reverts it (a `restore` step does).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import psycopg
from pydantic import Field, model_validator

from drills.abilities import Ability
from drills.durations import Duration
from drills.errors import StepError
from drills.incidents.server import LOCAL_SERVER
from drills.steps.base import STEPS, StepConfig, StepContext

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COMMIT_TIMESTAMP = "pg_xact_commit_timestamp"  # the server's own record of the commit
CLOCK_AFTER_COMMIT = "clock_timestamp"  # track_commit_timestamp is off: read just after


def wall_ns(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def clock_time(moment: datetime) -> str:
    """`16:00:01.234` in the harness's local time."""
    return moment.astimezone().strftime("%H:%M:%S.%f")[:-3]


def scalar(conn: psycopg.Connection[Any], query: str, params: tuple[Any, ...] = ()) -> Any:
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise StepError(f"no row from {query}")
    return row[0]


def commit_time(
    conn: psycopg.Connection[Any], xid: int, fallback: datetime
) -> tuple[datetime, str]:
    """The commit time of `xid` and where it came from."""
    if scalar(conn, "SELECT current_setting('track_commit_timestamp')") == "on":
        # txid_current() carries the epoch; the xid type is its low 32 bits.
        found = scalar(
            conn, "SELECT pg_xact_commit_timestamp((%s::bigint %% 4294967296)::text::xid)", (xid,)
        )
        if isinstance(found, datetime):
            return found, COMMIT_TIMESTAMP
    return fallback, CLOCK_AFTER_COMMIT


@STEPS.register("sql")
class Sql(StepConfig):
    kind: Literal["sql"]
    dsn: str | None = Field(None, description="libpq connection string (`${lab.dsn}`)")
    target: str | None = Field(None, description="a lab node, reached directly")
    statement: str = Field(description="the mistake, e.g. `DROP TABLE drills_victim`")
    check: str | None = Field(
        None, description="a query whose single value is recorded before the statement"
    )
    timeout: Duration = Field(60.0, description="connect, lock and statement timeout")
    disruptive: ClassVar[bool] = True
    needs: ClassVar[Ability[Any] | None] = LOCAL_SERVER

    @model_validator(mode="after")
    def _one_server(self) -> Sql:
        if (self.dsn is None) == (self.target is None):
            raise ValueError("give exactly one of dsn (a connection string) and target (a node)")
        return self

    def describe(self) -> str:
        return f"sql on {self.target or 'dsn'}: {self.statement}"

    def run(self, ctx: StepContext) -> str:
        dsn = self.dsn
        node = None
        if self.target is not None:
            server = ctx.target_as(self.target, LOCAL_SERVER)
            dsn, node = server.dsn, server.name
        assert dsn is not None
        try:
            incident = self._commit(dsn)
        except psycopg.Error as exc:
            raise StepError(f"sql failed: {str(exc).strip()}") from exc
        if node is not None:
            incident["node"] = node
        ctx.facts["incident"] = incident
        committed = datetime.fromtimestamp(incident["commit_wall_ns"] / 1e9, tz=UTC)
        detail = f"xid {incident['xid']}, lsn {incident['lsn']}, committed {clock_time(committed)}"
        if incident["commit_time_source"] != COMMIT_TIMESTAMP:
            detail += " (track_commit_timestamp is off: time read just after commit)"
        if "check" in incident:
            detail += f"; {self.check} was {incident['check']['before']}"
        return detail

    def _commit(self, dsn: str) -> dict[str, Any]:
        timeout_ms = int(self.timeout * 1000)
        with psycopg.connect(
            dsn, autocommit=True, connect_timeout=max(2, int(self.timeout))
        ) as conn:
            conn.execute(f"SET statement_timeout = {timeout_ms}")
            conn.execute(f"SET lock_timeout = {timeout_ms}")
            incident: dict[str, Any] = {"kind": "sql", "statement": self.statement}
            if self.check is not None:
                before = scalar(conn, self.check)
                incident["check"] = {"query": self.check, "before": str(before)}
            with conn.transaction():
                conn.execute(self.statement)
                xid = int(scalar(conn, "SELECT txid_current()"))
                incident["start_ns"] = time.monotonic_ns()  # COMMIT is sent next
            incident["at_ns"] = time.monotonic_ns()
            lsn, after = conn.execute(
                "SELECT pg_current_wal_lsn()::text, clock_timestamp()"
            ).fetchone() or ("", None)
            assert isinstance(after, datetime)
            committed, source = commit_time(conn, xid, after)
        incident |= {"xid": xid, "lsn": lsn, "commit_wall_ns": wall_ns(committed)}
        incident["commit_time_source"] = source
        return incident
