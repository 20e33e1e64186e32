"""Non-blocking libpq for the postgres-* probes on the harness's event loop (drills.loop_runner).

The same libpq calls psycopg makes, driven by the loop instead of by a thread per connection:
a connection is started with PQconnectStart and polled as its socket becomes ready, a statement
is sent and its results read as they arrive. Errors are psycopg's own exceptions, so a sample
says what the threaded clients say.

libpq resolves host names inside PQconnectStart, which would stop every probe on the loop, so
only a DSN whose hosts are IP addresses or socket directories (or that gives `hostaddr`) is
sampled here; any other runs on threads.
"""

from __future__ import annotations

import ipaddress
import os
import time
from collections.abc import Generator, Sequence

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_attempts, conninfo_to_dict, make_conninfo

from drills.probe import READ, WRITE, Wait, run_to_end
from probes.pg import connect_timeout_s

COPY = (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH)
Steps = Generator[Wait, None, "pq.abc.PGresult | None"]


def without_lookups(dsn: str) -> bool:
    """Whether connecting with `dsn` never waits on a name lookup (a service file may name
    its hosts by name, so a service goes on threads too)."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return False  # the threaded client reports the bad DSN, sample by sample
    if params.get("service") or os.environ.get("PGSERVICE"):
        return False
    hostaddr = str(params.get("hostaddr") or os.environ.get("PGHOSTADDR", ""))
    if hostaddr:
        return all(hostaddr.split(","))
    hosts = str(params.get("host") or os.environ.get("PGHOST", "")).split(",")
    return all(not host or host.startswith("/") or _is_address(host) for host in hosts)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def attempts(dsn: str) -> list[str]:
    """One conninfo per host of `dsn` (environment variables included), in the order psycopg
    tries them, each with its own timeout: libpq's non-blocking connect keeps none, and a
    multi-host DSN follows a failover. Raises psycopg's error for a DSN it refuses."""
    return [make_conninfo("", **attempt) for attempt in conninfo_attempts(conninfo_to_dict(dsn))]


def connect_blocking(dsn: str, timeout_s: float) -> pq.abc.PGconn | None:
    """A connection opened before the drill (warm-up), or None."""
    try:
        return run_to_end(connect(dsn, timeout_s))
    except psycopg.Error:
        return None


def connect(dsn: str, timeout_s: float) -> Generator[Wait, None, pq.abc.PGconn]:
    """Open a connection to the first host of `dsn` that takes it; the last host's error."""
    failure: psycopg.Error = psycopg.OperationalError("no host to connect to")
    for conninfo in attempts(dsn):  # a DSN psycopg refuses raises here, as it does there
        give_up = time.monotonic_ns() + connect_timeout_s(timeout_s, dsn) * 1_000_000_000
        try:
            return (yield from _connect_one(conninfo, give_up))
        except psycopg.Error as exc:
            failure = exc
    raise failure


def _connect_one(conninfo: str, give_up_ns: int) -> Generator[Wait, None, pq.abc.PGconn]:
    conn = pq.PGconn.connect_start(conninfo.encode())
    try:
        while True:
            if conn.status == pq.ConnStatus.BAD:
                raise psycopg.OperationalError(f"connection is bad: {_message(conn)}")
            status = conn.connect_poll()
            if status == pq.PollingStatus.OK:
                break
            if status == pq.PollingStatus.FAILED:
                raise psycopg.OperationalError(f"connection failed: {_message(conn)}")
            events = READ if status == pq.PollingStatus.READING else WRITE
            try:
                yield Wait(conn.socket, events, give_up_ns)
            except TimeoutError:
                raise psycopg.errors.ConnectionTimeout("connection timeout expired") from None
    except BaseException:
        conn.finish()
        raise
    conn.nonblocking = 1
    return conn


def execute(
    conn: pq.abc.PGconn,
    query: bytes,
    params: Sequence[bytes] | None = None,
    types: Sequence[int] | None = None,
) -> Steps:
    """Send one statement and read its results; the last result, or the error it carried.
    `types`: the parameters' type OIDs (None: the server infers them)."""
    if params is None:
        conn.send_query(query)
    else:
        conn.send_query_params(query, params, param_types=types)
    while conn.flush():
        yield Wait(conn.socket, WRITE)
    last: pq.abc.PGresult | None = None
    failed: pq.abc.PGresult | None = None  # read on to the end: the connection stays usable
    while True:
        try:
            result = yield from _next_result(conn)
        except psycopg.DatabaseError:
            if failed is None:
                raise
            break  # the error already received says why (psycopg does the same)
        if result is None:
            break
        if result.status in COPY:  # libpq would hand back the same result for ever
            conn.finish()
            raise psycopg.ProgrammingError(
                "COPY cannot be used with this method; use copy() instead"
            )
        if result.status == pq.ExecStatus.FATAL_ERROR:
            failed = failed or result
        last = result
    if failed is not None:
        raise psycopg.errors.error_from_result(failed)
    return last


def _next_result(conn: pq.abc.PGconn) -> Steps:
    if conn.is_busy():
        yield Wait(conn.socket, READ)
        conn.consume_input()
        while conn.is_busy():
            yield Wait(conn.socket, READ)
            conn.consume_input()
    return conn.get_result()


def usable(conn: pq.abc.PGconn | None) -> bool:
    return conn is not None and conn.status == pq.ConnStatus.OK


def _message(conn: pq.abc.PGconn) -> str:
    return pq.error_message(conn) or "no message from libpq"
