"""`postgres-write` as production allows it (issue 18 item 4), against a real server: a role
with only INSERT and SELECT on a table of the application's own writes and reads back through
`insert` and `read` on both engines; without CREATE, the default table must exist; with
`prepare: false` no statement is ever prepared, and 1,000 samples through PgBouncer in
transaction mode (two server connections for eight clients) all succeed."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from drills.errors import ProbeError
from drills.history import Outcome
from drills.probe import Client, LoopClient, Sample, run_to_end
from probes.postgres_read import PostgresReadConfig, PostgresReadProbe
from probes.postgres_write import PostgresWriteConfig, PostgresWriteProbe
from tests.conftest import postgres_missing
from tests.pgbouncer import pgbouncer, pgbouncer_missing
from tests.postgres_server import Server, postgres_server

pytestmark = pytest.mark.skipif(postgres_missing() is not None, reason=str(postgres_missing()))

INSERT = "INSERT INTO shop.orders (ref, note) VALUES (:id, :run_id || '/' || :probe)"
READ = "SELECT ref, count(*) FROM shop.orders WHERE note = :run_id || '/' || :probe GROUP BY ref"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with postgres_server() as running:
        with psycopg.connect(running.dsn, autocommit=True) as conn:
            conn.execute("CREATE ROLE clerk LOGIN")
            conn.execute("CREATE SCHEMA shop")
            conn.execute("CREATE TABLE shop.orders (ref bigint, note text, at timestamptz)")
            conn.execute("GRANT USAGE ON SCHEMA shop TO clerk")
            conn.execute("GRANT INSERT, SELECT ON shop.orders TO clerk")
            conn.execute("CREATE TABLE shop.audit (ref bigint, note text)")
            conn.execute("GRANT SELECT ON shop.audit TO clerk")
            conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        yield running


def clerk(server: Server) -> str:
    return server.dsn.replace("user=postgres", "user=clerk")


def writer(dsn: str, **extra: object) -> PostgresWriteProbe:
    spec = {"kind": "postgres-write", "dsn": dsn, "timeout": "1s", **extra}
    return PostgresWriteProbe("orders", PostgresWriteConfig.model_validate(spec), "run-1")


def test_a_least_privileged_role_writes_and_reads_back_through_its_own_table(
    server: Server,
) -> None:
    probe = writer(clerk(server), insert=INSERT, read=READ)
    probe.prepare()  # no DDL: only `read`, which finds nothing yet
    threaded, loop = probe.client(), probe.loop_client()
    assert loop is not None
    for seq in range(1, 51):
        assert threaded.sample(seq).outcome is Outcome.OK
        assert run_to_end(loop.exchange(seq + 100)).outcome is Outcome.OK
    threaded.close()
    loop.close()
    written = probe.final_read()
    assert written == {seq: 1 for seq in [*range(1, 51), *range(101, 151)]}


def test_without_create_the_default_table_must_exist(server: Server) -> None:
    with pytest.raises(ProbeError, match="cannot create drills_writes: InsufficientPrivilege"):
        writer(clerk(server)).prepare()
    with pytest.raises(ProbeError, match=r"table drills_writes does not exist \(create: false\)"):
        writer(clerk(server), create=False).prepare()
    with pytest.raises(ProbeError, match="its `read` fails: UndefinedTable"):
        writer(
            clerk(server), insert=INSERT, read=READ.replace("shop.orders", "shop.gone")
        ).prepare()
    denied = INSERT.replace("shop.orders", "shop.audit")  # SELECT on it, no INSERT
    with pytest.raises(ProbeError, match="its `insert` fails: InsufficientPrivilege"):
        writer(clerk(server), insert=denied, read=READ).prepare()


def test_parameters_have_the_same_types_on_both_engines(server: Server) -> None:
    insert = "INSERT INTO shop.orders (ref, note) SELECT :id, :run_id || '/' || :probe"
    probe = writer(clerk(server), insert=insert, read=READ)
    probe.prepare()
    threaded, loop = probe.client(), probe.loop_client()
    assert loop is not None
    assert threaded.sample(1001).outcome is Outcome.OK
    assert run_to_end(loop.exchange(1002)).outcome is Outcome.OK
    threaded.close()
    loop.close()
    assert {1001, 1002} <= set(probe.final_read())


def prepared_statements(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
    assert row is not None
    return int(str(row[0]))


@pytest.mark.parametrize("prepare", [True, False])
def test_prepare_false_never_prepares_a_statement(server: Server, prepare: bool) -> None:
    spec = {"kind": "postgres-read", "dsn": server.dsn, "prepare": prepare}
    probe = PostgresReadProbe("reads", PostgresReadConfig.model_validate(spec), "run-1")
    client = probe.client()
    for seq in range(10):  # psycopg prepares a statement from its fifth run
        assert client.sample(seq).outcome is Outcome.OK
    conn = client.conn  # type: ignore[attr-defined]
    assert (prepared_statements(conn) > 0) is prepare
    client.close()


@pytest.fixture(scope="module")
def bouncer(server: Server) -> Iterator[str]:
    missing = pgbouncer_missing()
    if missing is not None:
        pytest.skip(missing)
    with pgbouncer(server, ["postgres", "clerk"]) as dsn:
        yield dsn


def through(bouncer: str, prepare: bool) -> list[Client | LoopClient]:
    """Four threaded and four loop clients of a read and a write probe through PgBouncer."""
    reads = PostgresReadProbe(
        "reads",
        PostgresReadConfig.model_validate(
            {"kind": "postgres-read", "dsn": bouncer, "query": "SELECT 1", "prepare": prepare}
        ),
        "run-2",
    )
    clerk_dsn = bouncer.replace("user=postgres", "user=clerk")
    writes = writer(clerk_dsn, insert=INSERT, read=READ, prepare=prepare)
    clients: list[Client | LoopClient] = []
    for probe in (reads, writes):
        for _ in range(2):
            clients.append(probe.client())
            loop = probe.loop_client()
            assert loop is not None
            clients.append(loop)
    return clients


def sample(client: Client | LoopClient, seq: int) -> Sample:
    if isinstance(client, LoopClient):
        return run_to_end(client.exchange(seq))
    return client.sample(seq)


def test_through_pgbouncer_in_transaction_mode_no_sample_fails(bouncer: str) -> None:
    clients = through(bouncer, prepare=False)
    failed = [
        found.detail
        for seq in range(1, 251)
        for client in clients
        if (found := sample(client, seq)).outcome is not Outcome.OK
    ]
    for client in clients:
        client.close()
    assert failed == [], failed[:3]
    assert len(clients) * 250 >= 1_000
