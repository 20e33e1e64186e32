"""Fill a lab's `postgres` database to about a given size, so that a restore is timed on a
database that is not empty.

`pgbench -i` with server-side data generation (`-I dtGvp`: drop, create tables, generate rows
in the server, vacuum, primary keys). Measured here (PostgreSQL 15, WAL archived by pgBackRest):
scale 10 in 1.4-1.5 s (165 MB), scale 64 in 9.4-9.7 s (1011 MB), about 105 MB/s; without
vacuum and keys (`dtG`) 1.0 s and 7.5-9.4 s, for 14% fewer bytes, so no faster per byte, and a
database without indexes or a visibility map is a poorer stand-in for a real one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from drills.backup.sizes import format_size
from drills.errors import LabError

INIT_STEPS = "dtGvp"
# pg_database_size grows by this much per unit of pgbench scale with INIT_STEPS (measured here:
# 15.68 MB at scale 64, 15.71 MB at scale 10, over an empty database's 7.6 MB).
BYTES_PER_SCALE = 15_700_000
PGBENCH_TABLES = ("pgbench_accounts", "pgbench_branches", "pgbench_history", "pgbench_tellers")

SIZE_QUERY = """
SELECT pg_database_size(current_database()),
       coalesce(sum(pg_total_relation_size(c.oid)), 0)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname = ANY(%s)
"""


@dataclass(frozen=True)
class FillResult:
    db_bytes: int  # pg_database_size afterwards
    seconds: float  # the pgbench run
    scale: int


def scale_for(size_bytes: int, other_bytes: int) -> int:
    """pgbench scale that brings a database holding `other_bytes` besides pgbench's tables to
    about `size_bytes` (at least 1)."""
    return max(1, round((size_bytes - other_bytes) / BYTES_PER_SCALE))


def database_sizes(host: str, port: int, passfile: Path | None = None) -> tuple[int, int]:
    """The `postgres` database's size and the part of it held by pgbench's tables."""
    dsn = f"host={host} port={port} user=postgres dbname=postgres"
    if passfile is not None:
        dsn += f" passfile={passfile}"
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            row = conn.execute(SIZE_QUERY, (list(PGBENCH_TABLES),)).fetchone()
    except psycopg.Error as exc:
        raise LabError(f"fill: cannot read the database size at {host}:{port}: {exc}") from exc
    assert row is not None
    return int(str(row[0])), int(str(row[1]))


def fill_database(
    pgbench: Path,
    host: str,
    port: int,
    size_bytes: int,
    run: Callable[[list[str], str], None],
    progress: Callable[[str], None],
    passfile: Path | None = None,
) -> FillResult:
    """Fill `postgres` to about `size_bytes` with pgbench's tables (replacing any it holds);
    `run(argv, what)` runs a program as the lab's OS user and raises on failure (with
    `passfile`, as one that can read it)."""
    total, pgbench_bytes = database_sizes(host, port, passfile)
    scale = scale_for(size_bytes, total - pgbench_bytes)
    expected = total - pgbench_bytes + scale * BYTES_PER_SCALE
    progress(f"fill: pgbench -i -s {scale}, about {format_size(expected)}")
    argv = [str(pgbench), "-i", "-I", INIT_STEPS, "-s", str(scale)]
    started = time.monotonic()
    run([*argv, "-h", host, "-p", str(port), "-U", "postgres", "postgres"], "pgbench -i")
    seconds = time.monotonic() - started
    db_bytes = database_sizes(host, port, passfile)[0]
    progress(f"fill: {format_size(db_bytes)} in {seconds:.1f}s (pgbench scale {scale})")
    return FillResult(db_bytes=db_bytes, seconds=seconds, scale=scale)
