"""The store's tables, created and migrated by drills: each migration once, in order, under a
lock, its version noted in `drills_schema`. A store migrated by a newer drills is refused
rather than written in a layout this one does not know."""

from __future__ import annotations

import psycopg

from drills.errors import DrillsError
from drills.store.settings import Store, unreachable

# Held for the length of a transaction: migrations, and every insert into the chain.
SCHEMA_LOCK = 0x6472696C6C730001
CHAIN_LOCK = 0x6472696C6C730002

MIGRATIONS: tuple[str, ...] = (
    # 1: run records with their histories, chained; leases on targets.
    """
    CREATE TABLE drills_runs (
        seq bigint PRIMARY KEY CHECK (seq > 0),
        run_id text NOT NULL,
        runner text NOT NULL,
        name text NOT NULL,
        scenario text NOT NULL,
        verdict text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        record bytea NOT NULL,
        record_sha256 text NOT NULL UNIQUE,
        history_name text NOT NULL,
        history bytea,
        history_sha256 text,
        history_zsha256 text,
        previous_link text,
        link_sha256 text NOT NULL,
        stored_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX drills_runs_started ON drills_runs (started_at);
    CREATE INDEX drills_runs_scenario ON drills_runs (scenario, started_at);
    CREATE TABLE drills_leases (
        key text PRIMARY KEY,
        holder uuid NOT NULL,
        host text NOT NULL,
        pid integer NOT NULL,
        process text,
        scenario text NOT NULL,
        since timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX drills_leases_holder ON drills_leases (holder);
    """,
)
VERSION = len(MIGRATIONS)


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Bring the store's schema to `VERSION`; the version it had before."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS drills_schema ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM drills_schema").fetchone()
        found = int(str(row[0])) if row else 0
        if found > VERSION:
            raise DrillsError(
                f"the store's schema is version {found}, newer than this drills knows "
                f"({VERSION}): upgrade drills"
            )
        for version in range(found + 1, VERSION + 1):
            conn.execute(MIGRATIONS[version - 1].encode())
            conn.execute("INSERT INTO drills_schema (version) VALUES (%s)", (version,))
    return found


def open_store(store: Store, timeout: float = 10.0) -> psycopg.Connection[tuple[object, ...]]:
    """A connection to `store`, its schema migrated."""
    conn = store.connect(timeout)
    try:
        migrate(conn)
    except psycopg.Error as exc:
        conn.close()
        raise unreachable(store, exc) from None
    except BaseException:
        conn.close()
        raise
    return conn
