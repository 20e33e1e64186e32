"""Shared PostgreSQL plumbing for the postgres-* probes."""

from __future__ import annotations

import math

import psycopg

from drills.history import Outcome

# libpq before 17 raises connect_timeout to at least 2 s and rounds it to whole seconds, so the
# harness enforces sub-second deadlines itself; this is only the backstop for a stuck connect.
MIN_LIBPQ_CONNECT_TIMEOUT_S = 2


def connect_timeout_s(timeout_s: float) -> int:
    """How long one connection attempt may take (libpq's connect_timeout)."""
    return max(MIN_LIBPQ_CONNECT_TIMEOUT_S, math.ceil(timeout_s))


def connect(dsn: str, timeout_s: float) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(dsn, autocommit=True, connect_timeout=connect_timeout_s(timeout_s))


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
