"""The postgres probes' non-blocking clients (probes.pg_loop) against a real server: they say
what the blocking clients say (outcome and detail) for an ok, an error, a refused connection,
a terminated backend and a read-only server, follow a multi-host DSN to the host that takes
them, tag writes with the same lineage, and give up a connection that never answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import psycopg
import pytest

from drills.history import Outcome
from drills.probe import Client, LoopClient, Sample, run_to_end
from probes import pg_loop
from probes.postgres_read import PostgresReadConfig, PostgresReadProbe
from probes.postgres_write import PostgresWriteConfig, PostgresWriteProbe
from tests.conftest import postgres_missing
from tests.postgres_server import Server, postgres_server

pytestmark = pytest.mark.skipif(postgres_missing() is not None, reason=str(postgres_missing()))


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with postgres_server() as running:
        with psycopg.connect(running.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE w (run_id text, probe text, id bigint)")
        yield running


def closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        return int(listener.getsockname()[1])


def reader(dsn: str, query: str = "SELECT 1") -> PostgresReadProbe:
    spec = {"kind": "postgres-read", "dsn": dsn, "query": query, "timeout": "500ms"}
    return PostgresReadProbe("reads", PostgresReadConfig.model_validate(spec), "run")


def writer(dsn: str) -> PostgresWriteProbe:
    spec = {"kind": "postgres-write", "dsn": dsn, "table": "w", "timeout": "500ms"}
    return PostgresWriteProbe("writes", PostgresWriteConfig.model_validate(spec), "run")


def both(probe: PostgresReadProbe | PostgresWriteProbe) -> tuple[Client, LoopClient]:
    loop = probe.loop_client()
    assert loop is not None
    return probe.client(), loop


def same(threaded: Client, loop: LoopClient, seq: int) -> Sample:
    expected = threaded.sample(seq)
    found = run_to_end(loop.exchange(seq + 1000))
    assert (found.outcome, found.detail, found.tags) == (
        expected.outcome,
        expected.detail,
        expected.tags,
    )
    return found


def test_reads_say_what_the_threaded_reads_say(server: Server) -> None:
    assert same(*both(reader(server.dsn)), 1).outcome is Outcome.OK
    failed = same(*both(reader(server.dsn, "SELECT 1/0")), 2)
    assert failed.detail == "DivisionByZero: division by zero"
    refused = f"host=127.0.0.1 port={closed_port()} user=postgres"
    assert same(*both(reader(refused)), 3).outcome is Outcome.FAIL
    copy = same(*both(reader(server.dsn, "COPY (SELECT 1) TO STDOUT")), 4)  # never hangs
    assert copy.detail.startswith("ProgrammingError: COPY cannot be used")


def test_writes_say_what_the_threaded_writes_say(server: Server) -> None:
    ok = same(*both(writer(server.dsn)), 1)
    assert ok.outcome is Outcome.OK and ok.tags and ok.tags["db"].endswith(f":{server.port}")
    read_only = f"{server.dsn} options='-c default_transaction_read_only=on'"
    refused = same(*both(writer(read_only)), 2)
    assert refused.outcome is Outcome.FAIL and refused.detail.startswith("ReadOnlySqlTransaction")
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT id FROM w WHERE run_id = 'run' ORDER BY id").fetchall()
    assert rows == [(1,), (1001,)]


def test_a_terminated_backend_leaves_a_write_unknown_then_it_reconnects(server: Server) -> None:
    threaded, loop = both(writer(server.dsn))
    same(threaded, loop, 10)
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
    time.sleep(0.2)
    lost = same(threaded, loop, 11)
    assert lost.outcome is Outcome.UNKNOWN
    assert same(threaded, loop, 12).outcome is Outcome.OK


def test_a_multi_host_dsn_reaches_the_host_that_takes_it(server: Server) -> None:
    dsn = f"host=127.0.0.1,127.0.0.1 port={closed_port()},{server.port} user=postgres"
    assert run_to_end(both(reader(dsn))[1].exchange(1)).outcome is Outcome.OK
    assert f"port={server.port}" in pg_loop.attempts(dsn)[1]


def test_a_server_that_never_answers_is_given_up_after_the_connect_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts, never speaks
        dsn = f"host=127.0.0.1 port={silent.getsockname()[1]} user=postgres"
        start = time.monotonic()
        sample = same(*both(reader(dsn)), 1)
        took = time.monotonic() - start
    assert (sample.outcome, sample.detail) == (
        Outcome.FAIL,
        "ConnectionTimeout: connection timeout expired",
    )
    assert 4.0 <= took < 6.0  # each client 2 s: the floor of libpq's connect_timeout
