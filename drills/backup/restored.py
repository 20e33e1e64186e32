"""What a restore does to the restored server, apart from pgBackRest: push the WAL it has
not archived yet, wait until it is promoted or streams (failing at once if it stops), read a
check's value, install amcheck on a standby's primary."""

from __future__ import annotations

import contextlib
import time

import psycopg

from drills.backup.lab import Backed
from drills.backup.pgbackrest import archive_current_wal
from drills.errors import StepError


def archive_now(node: Backed) -> str:
    """Push the WAL the server has not archived yet, if it still runs; say what happened."""
    try:
        return f"archived up to {archive_current_wal(node.local_dsn())}"
    except (psycopg.Error, StepError) as exc:
        first = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        return f"WAL not archived now ({first}): what the archive lacks is lost"


def wait_promoted(node: Backed, timeout_s: float) -> int:
    return wait_for(node, "SELECT NOT pg_is_in_recovery()", "promoted", timeout_s)


def wait_streaming(node: Backed, timeout_s: float) -> int:
    query = "SELECT count(*) > 0 FROM pg_stat_wal_receiver WHERE status = 'streaming'"
    return wait_for(node, query, "streaming", timeout_s)


def wait_for(node: Backed, query: str, what: str, timeout_s: float) -> int:
    """Poll until `query` is true on the restored server; fail at once if it stops (recovery
    that cannot reach its target ends with FATAL)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not node.running():
            raise StepError(f"the restored server stopped before it was {what}: {log_tail(node)}")
        try:
            with psycopg.connect(node.local_dsn(), connect_timeout=2) as conn:
                row = conn.execute(query).fetchone()
            if row is not None and row[0] is True:
                return time.monotonic_ns()
        except psycopg.Error:
            pass
        time.sleep(0.01)
    raise StepError(f"the restored server was not {what} within {timeout_s:g}s: {log_tail(node)}")


def log_tail(node: Backed) -> str:
    try:
        lines = node.server_log().read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    useful = [line for line in lines if "FATAL" in line or "ERROR" in line] or lines
    return " | ".join(useful[-2:])


def amcheck_from(primary_dsn: str, standby_dsn: str, timeout_s: float = 10.0) -> None:
    """Install amcheck on the primary and wait until the standby has replayed it."""
    with contextlib.suppress(psycopg.Error):
        with psycopg.connect(primary_dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        deadline = time.monotonic() + timeout_s
        with psycopg.connect(standby_dsn, autocommit=True, connect_timeout=5) as conn:
            while time.monotonic() < deadline:
                query = "SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'"
                row = conn.execute(query).fetchone()
                if row is not None and row[0]:
                    return
                time.sleep(0.05)


def read_value(dsn: str, query: str) -> str:
    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            row = conn.execute(query).fetchone()
    except psycopg.Error as exc:
        return f"error: {str(exc).strip().splitlines()[0]}"
    return "" if row is None else str(row[0])
