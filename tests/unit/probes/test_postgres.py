"""The postgres-* probes' classification of psycopg errors, with fake connections.

Before a statement is sent it certainly did not happen (fail); a write whose connection was
lost or shut down after sending may have committed (unknown); a definite server error (read
only, constraint) means it did not (fail). Reads are fail either way.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import errors

import probes.postgres_lag
import probes.postgres_read
import probes.postgres_write
from drills.errors import ProbeError
from drills.history import Outcome
from probes.pg import outcome_of_error, short
from probes.postgres_lag import PostgresLagClient, PostgresLagConfig, lsn
from probes.postgres_read import PostgresReadClient, PostgresReadConfig
from probes.postgres_write import PostgresWriteConfig, PostgresWriteProbe


class FakeConnection:
    def __init__(self, rows: list[tuple[Any, ...]] | None = None, error: Exception | None = None):
        self.rows = rows or [(1,)]
        self.error = error
        self.closed = False
        self.executed: list[tuple[object, object]] = []

    def execute(self, query: object, params: object = None) -> FakeConnection:
        self.executed.append((query, params))
        if self.error is not None:
            raise self.error
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connecting_to(*connections: FakeConnection | Exception) -> Any:
    """A stand-in for `probes.pg.connect` that hands out `connections` in turn."""
    queue = list(connections)

    def connect(dsn: str, timeout_s: float, prepare: bool = True) -> FakeConnection:
        found = queue.pop(0)
        if isinstance(found, Exception):
            raise found
        return found

    return connect


SHUTDOWN = errors.AdminShutdown("terminating connection due to administrator command")
LOST = psycopg.OperationalError("server closed the connection unexpectedly")
READ_ONLY = errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction")
REFUSED = psycopg.OperationalError('connection to server at "127.0.0.1" failed: refused')


@pytest.mark.parametrize(
    ("error", "sent", "mutating", "outcome"),
    [
        (REFUSED, False, True, Outcome.FAIL),
        (SHUTDOWN, True, True, Outcome.UNKNOWN),
        (LOST, True, True, Outcome.UNKNOWN),
        (errors.ConnectionFailure("lost"), True, True, Outcome.UNKNOWN),
        (errors.lookup("58030")("could not write"), True, True, Outcome.UNKNOWN),
        (READ_ONLY, True, True, Outcome.FAIL),
        (errors.UniqueViolation("duplicate key"), True, True, Outcome.FAIL),
        (SHUTDOWN, True, False, Outcome.FAIL),
    ],
)
def test_outcome_of_error(
    error: psycopg.Error, sent: bool, mutating: bool, outcome: Outcome
) -> None:
    assert outcome_of_error(error, sent=sent, mutating=mutating) is outcome


def test_short_keeps_the_first_line() -> None:
    error = psycopg.OperationalError("connection failed\nDETAIL: more")
    assert short(error) == "OperationalError: connection failed"


def read_client() -> PostgresReadClient:
    spec = {"kind": "postgres-read", "dsn": "host=db", "timeout": "500ms"}
    return PostgresReadClient(PostgresReadConfig.model_validate(spec))


def test_a_read_reuses_its_connection_and_fails_when_it_breaks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = FakeConnection(), FakeConnection()
    monkeypatch.setattr(probes.postgres_read, "connect", connecting_to(first, second))
    client = read_client()
    assert client.sample(1).outcome is Outcome.OK
    assert client.sample(2).outcome is Outcome.OK
    assert len(first.executed) == 2
    first.error = SHUTDOWN
    failed = client.sample(3)
    assert (failed.outcome, failed.detail) == (
        Outcome.FAIL,
        "AdminShutdown: terminating connection due to administrator command",
    )
    assert first.closed and client.conn is None
    assert client.sample(4).outcome is Outcome.OK  # a new connection
    assert client.conn is second


def test_a_read_that_cannot_connect_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(probes.postgres_read, "connect", connecting_to(REFUSED))
    assert read_client().sample(1).outcome is Outcome.FAIL


def write_probe() -> PostgresWriteProbe:
    spec = {"kind": "postgres-write", "dsn": "host=db", "timeout": "500ms"}
    return PostgresWriteProbe("writes", PostgresWriteConfig.model_validate(spec), "run-1")


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, Outcome.OK),
        (SHUTDOWN, Outcome.UNKNOWN),
        (LOST, Outcome.UNKNOWN),
        (READ_ONLY, Outcome.FAIL),
    ],
)
def test_a_write_sent_is_unknown_only_when_the_connection_went(
    monkeypatch: pytest.MonkeyPatch, error: Exception | None, outcome: Outcome
) -> None:
    conn = FakeConnection(error=error)
    monkeypatch.setattr(probes.postgres_write, "connect", connecting_to(conn))
    sample = write_probe().client().sample(42)
    assert sample.outcome is outcome
    assert conn.executed[0][1] == {"run_id": "run-1", "probe": "writes", "id": 42}
    assert conn.closed is (error is not None)


def test_a_write_that_cannot_connect_certainly_did_not_happen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(probes.postgres_write, "connect", connecting_to(LOST))
    sample = write_probe().client().sample(1)
    assert (sample.outcome, sample.detail) == (
        Outcome.FAIL,
        "OperationalError: server closed the connection unexpectedly",
    )


def test_the_final_read_counts_rows_per_id_or_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [(1, 1), (2, 2)]
    monkeypatch.setattr(
        probes.postgres_write, "connect", connecting_to(FakeConnection(rows), REFUSED)
    )
    probe = write_probe()
    assert probe.final_read() == {1: 1, 2: 2}
    with pytest.raises(ProbeError, match="final read of writes failed: OperationalError"):
        probe.final_read()


def lag_client() -> PostgresLagClient:
    spec = {"kind": "postgres-lag", "primary": "host=a", "standby": "host=b"}
    return PostgresLagClient(PostgresLagConfig.model_validate(spec))


def test_lag_in_bytes_and_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime(2026, 11, 2, tzinfo=UTC)
    primary = FakeConnection([("0/3000100", now)])
    standby = FakeConnection([("0/3000000", now - timedelta(seconds=1.5))])
    monkeypatch.setattr(probes.postgres_lag, "connect", connecting_to(primary, standby))
    sample = lag_client().sample(1)
    assert sample.outcome is Outcome.OK
    assert sample.values == {"lag_bytes": 256.0, "lag_s": 1.5}
    assert lsn("16/B374D848") == (0x16 << 32) + 0xB374D848


def test_lag_fails_without_a_standby_or_a_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    primary = FakeConnection([("0/3000100", None)])
    not_standby = FakeConnection([(None, None)])
    monkeypatch.setattr(
        probes.postgres_lag, "connect", connecting_to(primary, not_standby, REFUSED)
    )
    client = lag_client()
    no_replay = client.sample(1)
    assert no_replay.outcome is Outcome.FAIL
    assert "no replay position" in no_replay.detail
    client.standby = None
    assert client.sample(2).outcome is Outcome.FAIL
    assert primary.closed


class LineageConnection(FakeConnection):
    """Answers the lineage query with `lineage` (or raises `refusal`), inserts as before."""

    def __init__(self, lineage: tuple[Any, ...], refusal: Exception | None = None) -> None:
        super().__init__()
        self.lineage, self.refusal = lineage, refusal

    def execute(self, query: object, params: object = None) -> FakeConnection:
        if query == probes.postgres_write.LINEAGE:
            self.executed.append((query, params))
            if self.refusal is not None:
                raise self.refusal
            return FakeConnection([self.lineage])
        return super().execute(query, params)


def test_each_write_is_tagged_with_the_lineage_read_once_per_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old = LineageConnection(("7312345678901234567", "127.0.0.1", "5433", 1))
    new = LineageConnection(("7312345678901234567", "127.0.0.1", "5434", 2))
    monkeypatch.setattr(probes.postgres_write, "connect", connecting_to(old, new))
    client = write_probe().client()
    tags = [client.sample(seq).tags for seq in (1, 2, 3)]
    assert tags == [{"db": "7312345678901234567@127.0.0.1:5433", "timeline": "1"}] * 3
    assert [q for q, _ in old.executed].count(probes.postgres_write.LINEAGE) == 1
    old.error = SHUTDOWN  # the old primary goes; the next connection is to the new one
    lost = client.sample(4)
    assert (lost.outcome, lost.tags) == (Outcome.UNKNOWN, None)
    assert client.sample(5).tags == {"db": "7312345678901234567@127.0.0.1:5434", "timeline": "2"}


def test_a_lineage_that_cannot_be_read_leaves_writes_untagged_and_is_not_asked_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refusing = LineageConnection((), errors.InsufficientPrivilege("permission denied"))
    monkeypatch.setattr(probes.postgres_write, "connect", connecting_to(refusing))
    client = write_probe().client()
    assert [client.sample(seq) for seq in (1, 2)] == [(Outcome.OK, "", None, None)] * 2
    assert [q for q, _ in refusing.executed].count(probes.postgres_write.LINEAGE) == 1


def test_write_probe_creates_its_table_only_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = PostgresWriteProbe(
        "w",
        PostgresWriteConfig.model_validate(
            {"kind": "postgres-write", "dsn": "host=db", "table": "s.Writes"}
        ),
        "run",
    )
    missing, present = FakeConnection([(False,)]), FakeConnection([(True,)])
    monkeypatch.setattr(probes.postgres_write, "connect", connecting_to(missing, present))
    probe.prepare()
    # Missing on a primary (pg_is_in_recovery false): created.
    assert missing.executed[0][1] == ('"s"."Writes"',) and len(missing.executed) == 3
    probe.prepare()  # a standby that has the table: no CREATE, which it would refuse
    assert len(present.executed) == 1
