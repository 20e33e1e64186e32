"""The restore drills' building blocks against a real PostgreSQL 15 server: the archive-lag
probe, filling a database to a size, and pg_amcheck on a healthy and a damaged database."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from drills.backup.amcheck import amcheck
from drills.backup.fill import fill_database
from drills.history import Outcome
from drills.network.ports import free_port
from drills.probe import Sample
from probes.postgres_archive import PostgresArchiveConfig, PostgresArchiveProbe
from tests.postgres_server import Server, as_server_user, postgres_server

pytestmark = pytest.mark.postgres

ARCHIVING = {
    "wal_level": "replica",
    "archive_mode": "on",
    "archive_command": "'test ! -f {root}/archive/%f && cp %p {root}/archive/%f'",
}


def archived_count(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT archived_count FROM pg_stat_archiver").fetchone()
    assert row is not None
    return int(str(row[0]))


def switch_and_wait_archived(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    before = archived_count(conn)
    conn.execute("SELECT pg_switch_wal()")
    deadline = time.monotonic() + 20
    while archived_count(conn) == before:
        assert time.monotonic() < deadline, "the segment was not archived within 20s"
        time.sleep(0.05)


def archive_sample(dsn: str) -> Sample:
    config = PostgresArchiveConfig.model_validate({"kind": "postgres-archive", "dsn": dsn})
    client = PostgresArchiveProbe("archive", config, "run").client()
    try:
        return client.sample(1)
    finally:
        client.close()


def lag(sample: Sample) -> float:
    assert sample.outcome is Outcome.OK, sample.detail
    assert sample.values is not None
    return sample.values["archive_lag_s"]


def test_archive_lag_grows_with_unarchived_writes_and_is_zero_once_archived() -> None:
    with postgres_server(ARCHIVING) as server:
        server.run(["mkdir", str(server.root / "archive")], "mkdir")
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (x int)")
            switch_and_wait_archived(conn)
            settled = archive_sample(server.dsn)
            assert lag(settled) == 0.0
            conn.execute("INSERT INTO t SELECT generate_series(1, 1000)")
            first = lag(archive_sample(server.dsn))
            time.sleep(1.0)
            second = archive_sample(server.dsn)
            assert 0 < first < lag(second)
            assert lag(second) - first >= 0.9
            switch_and_wait_archived(conn)
            archived = archive_sample(server.dsn)
        assert lag(archived) == 0.0
        assert archived.values is not None and settled.values is not None
        assert archived.values["archived_count"] == settled.values["archived_count"] + 1
        assert archived.values["failed_count"] == 0.0
        assert_standby_fails(server)


def assert_standby_fails(server: Server) -> None:
    standby = server.root / "standby"
    port = free_port()
    backup = [str(server.bin / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(server.port)]
    server.run([*backup, "-U", "postgres", "-D", str(standby), "-R", "-c", "fast"], "basebackup")
    with (standby / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {port}\narchive_mode = off\n")
    pg_ctl = [str(server.bin / "pg_ctl"), "-D", str(standby)]
    server.run([*pg_ctl, "-l", str(server.root / "standby.log"), "-w", "start"], "start")
    try:
        sample = archive_sample(f"host=127.0.0.1 port={port} user=postgres dbname=postgres")
    finally:
        as_server_user([*pg_ctl, "-m", "immediate", "-w", "stop"], server.root)
    assert sample.outcome is Outcome.FAIL
    assert sample.detail == "a standby: archive lag is measured on the primary"


def test_a_refused_connection_is_a_fail_sample() -> None:
    sample = archive_sample("host=127.0.0.1 port=1 user=postgres dbname=postgres")
    assert sample.outcome is Outcome.FAIL
    assert sample.detail.startswith("OperationalError: ")


def test_fill_reaches_about_the_size_asked_and_amcheck_finds_it_healthy() -> None:
    messages: list[str] = []
    wanted = 40 * 1024 * 1024
    with postgres_server() as server:
        result = fill_database(
            server.bin / "pgbench", "127.0.0.1", server.port, wanted, server.run, messages.append
        )
        assert result.scale == 2
        assert abs(result.db_bytes - wanted) < 0.15 * wanted
        assert 0 < result.seconds < 60
        with psycopg.connect(server.dsn) as conn:
            row = conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()
        assert row == (200_000,)
        assert amcheck(server.bin, "127.0.0.1", server.port) == "ok"
    assert messages[0].startswith("fill: pgbench -i -s 2, about ")
    assert messages[1].startswith("fill: ") and "(pgbench scale 2)" in messages[1]


def test_amcheck_reports_an_overwritten_index_page() -> None:
    with postgres_server() as server:
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE c (id int PRIMARY KEY, v text)")
            conn.execute("INSERT INTO c SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
            conn.execute("CHECKPOINT")
            row = conn.execute("SELECT pg_relation_filepath('c_pkey')").fetchone()
        assert row is not None
        pg_ctl = [str(server.bin / "pg_ctl"), "-D", str(server.datadir)]
        server.run([*pg_ctl, "-m", "fast", "-w", "stop"], "stop")
        overwrite(server.datadir / str(row[0]), block=1)
        server.run([*pg_ctl, "-l", str(server.root / "server.log"), "-w", "start"], "start")
        summary = amcheck(server.bin, "127.0.0.1", server.port)
    assert summary.startswith(
        "pg_amcheck: corruption in 1 relation (btree index postgres.public.c_pkey): "
    ), summary


def overwrite(path: Path, block: int) -> None:
    """Scribble over a page's line pointers and tuples (not its header, so it still reads)."""
    with path.open("r+b") as data:
        data.seek(8192 * block + 100)
        data.write(b"\xde\xad\xbe\xef" * 500)
