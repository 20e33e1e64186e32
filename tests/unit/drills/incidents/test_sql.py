"""`sql`: what it reads back and records, against a fake connection; its validation."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from drills.incidents.sql import Sql, wall_ns
from tests.unit.drills.incidents.fakes import context, server

COMMITTED = datetime(2026, 12, 2, 16, 0, 1, 234567, tzinfo=UTC)
AFTER = datetime(2026, 12, 2, 16, 0, 1, 240000, tzinfo=UTC)


class FakeCursor:
    def __init__(self, row: tuple[Any, ...] | None) -> None:
        self.row = row

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.row


class FakeConnection:
    def __init__(self, track_commit_timestamp: str) -> None:
        self.track = track_commit_timestamp
        self.log: list[str] = []

    def __enter__(self) -> FakeConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        self.log.append("BEGIN")
        yield
        self.log.append("COMMIT")

    def execute(self, query: str, params: tuple[Any, ...] = ()) -> FakeCursor:
        self.log.append(query)
        answers: dict[str, tuple[Any, ...]] = {
            "SELECT count(*)": (10,),
            "SELECT txid_current()": (4294968530,),
            "SELECT pg_current_wal_lsn()": ("0/3000A08", AFTER),
            "SELECT current_setting": (self.track,),
            "SELECT pg_xact_commit_timestamp": (COMMITTED,),
        }
        if query.startswith("DROP TABLE no_such"):
            raise psycopg.errors.UndefinedTable('table "no_such" does not exist')
        return FakeCursor(next((v for k, v in answers.items() if query.startswith(k)), None))


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch) -> FakeConnection:
    conn = FakeConnection("on")
    monkeypatch.setattr(psycopg, "connect", lambda *args, **kwargs: conn)
    return conn


def drop(**keys: Any) -> Sql:
    return Sql.model_validate({"kind": "sql", "statement": "DROP TABLE drills_victim", **keys})


def test_it_records_the_xid_lsn_and_commit_time_read_back(
    connection: FakeConnection, tmp_path: Path
) -> None:
    ctx = context({"site-a": server(tmp_path)})
    step = drop(target="site-a", check="SELECT count(*) FROM drills_victim")
    detail = step.run(ctx)
    incident = ctx.facts["incident"]
    at_ns = incident.pop("at_ns")
    start_ns = incident.pop("start_ns")  # COMMIT sent at start_ns, returned at at_ns
    assert isinstance(at_ns, int) and isinstance(start_ns, int) and start_ns <= at_ns
    assert incident == {
        "kind": "sql",
        "node": "a",
        "statement": "DROP TABLE drills_victim",
        "check": {"query": "SELECT count(*) FROM drills_victim", "before": "10"},
        "xid": 4294968530,
        "lsn": "0/3000A08",
        "commit_wall_ns": wall_ns(COMMITTED),
        "commit_time_source": "pg_xact_commit_timestamp",
    }
    local = COMMITTED.astimezone().strftime("%H:%M:%S.%f")[:-3]
    assert detail == (
        f"xid 4294968530, lsn 0/3000A08, committed {local}; "
        "SELECT count(*) FROM drills_victim was 10"
    )
    # The check before the transaction; the xid inside it; the LSN after COMMIT.
    begin = connection.log.index("BEGIN")
    assert connection.log.index("SELECT count(*) FROM drills_victim") < begin
    assert connection.log[begin + 1 : begin + 4] == [
        "DROP TABLE drills_victim",
        "SELECT txid_current()",
        "COMMIT",
    ]
    assert ctx.reverts.items == []


def test_without_track_commit_timestamp_it_reads_the_clock_after_commit(
    connection: FakeConnection,
) -> None:
    connection.track = "off"
    ctx = context({})
    detail = drop(dsn="host=db").run(ctx)
    incident = ctx.facts["incident"]
    assert incident["commit_wall_ns"] == wall_ns(AFTER)
    assert incident["commit_time_source"] == "clock_timestamp"
    assert "node" not in incident and "check" not in incident
    assert detail.endswith("(track_commit_timestamp is off: time read just after commit)")


def test_a_statement_the_server_refuses_fails_the_step(connection: FakeConnection) -> None:
    ctx = context({})
    step = Sql.model_validate({"kind": "sql", "dsn": "host=db", "statement": "DROP TABLE no_such"})
    with pytest.raises(Exception, match=r"^sql failed: table \"no_such\" does not exist$"):
        step.run(ctx)
    assert "incident" not in ctx.facts


def test_wall_ns_is_exact() -> None:
    assert wall_ns(datetime(1970, 1, 1, 0, 0, 1, 1, tzinfo=UTC)) == 1_000_001_000


@pytest.mark.parametrize("keys", [{}, {"dsn": "host=db", "target": "site-a"}])
def test_it_takes_exactly_one_of_dsn_and_target(keys: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="give exactly one of dsn"):
        drop(**keys)


def test_it_is_disruptive_and_acts_on_its_target() -> None:
    assert drop(target="site-a").starts_rto_clock
    assert drop(target="site-a").target_names == ["site-a"]
    assert drop(dsn="host=db").target_names == []
