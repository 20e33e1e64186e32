"""Shared PostgreSQL plumbing for the postgres-* probes."""

from __future__ import annotations

import math

import psycopg
from psycopg.conninfo import conninfo_to_dict

from drills.history import Outcome

# libpq before 17 raises connect_timeout to at least 2 s and rounds it to whole seconds, so the
# harness enforces sub-second deadlines itself; this is only the backstop for a stuck connect.
MIN_LIBPQ_CONNECT_TIMEOUT_S = 2


def connect_timeout_s(timeout_s: float, dsn: str = "") -> int:
    """How long one connection attempt may take (libpq's connect_timeout): the probe's timeout,
    or the DSN's `connect_timeout` when that is shorter, never under libpq's floor."""
    seconds = math.ceil(timeout_s)
    given = _dsn_connect_timeout(dsn)
    if given is not None:
        seconds = min(seconds, given)
    return max(MIN_LIBPQ_CONNECT_TIMEOUT_S, seconds)


def _dsn_connect_timeout(dsn: str) -> int | None:
    try:
        value = conninfo_to_dict(dsn).get("connect_timeout")
        seconds = int(str(value)) if value is not None else 0
    except (psycopg.Error, ValueError):
        return None  # psycopg says what is wrong with the DSN when it connects
    return seconds if seconds > 0 else None  # 0: libpq waits forever, the probe does not


def connect(
    dsn: str, timeout_s: float, prepare: bool = True
) -> psycopg.Connection[tuple[object, ...]]:
    """`prepare=False`: no statement is ever prepared (PgBouncer in transaction mode)."""
    unprepared: dict[str, None] = {} if prepare else {"prepare_threshold": None}
    return psycopg.connect(
        dsn, autocommit=True, connect_timeout=connect_timeout_s(timeout_s, dsn), **unprepared
    )


PREPARE_HELP = (
    "let psycopg prepare statements it runs often; false for PgBouncer in transaction mode"
)


def outcome_of_error(exc: psycopg.Error, *, sent: bool, mutating: bool) -> Outcome:
    """Three-valued outcome of a failed statement.

    Before the statement was sent, it certainly did not happen. After, a server-side error
    with a definite SQLSTATE (read-only, constraint...) means it did not happen, but a lost
    connection or a shutdown (classes 08, 57) leaves a write's fate unknown.
    """
    if not sent or not mutating:
        return Outcome.FAIL
    state = exc.sqlstate or ""
    if not state or state.startswith(("08", "57", "58")):
        return Outcome.UNKNOWN
    return Outcome.FAIL


def short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return f"{type(exc).__name__}: {first}"[:200]
