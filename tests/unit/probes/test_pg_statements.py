"""A postgres-write probe's own statements: placeholders become parameters for psycopg and for
libpq alike; the DSN's connect_timeout counts when it is shorter."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from probes.pg import connect_timeout_s
from probes.pg_statements import for_libpq, for_psycopg
from probes.postgres_write import PostgresWriteConfig

INSERT = "INSERT INTO orders (ref, note) VALUES (:id, :run_id || '/' || :probe || ' 5%')"


def test_placeholders_become_parameters() -> None:
    assert for_psycopg(INSERT) == (
        "INSERT INTO orders (ref, note) VALUES (%(id)s, %(run_id)s || '/' || %(probe)s || ' 5%%')"
    )
    text, order = for_libpq(INSERT + " RETURNING :id::bigint")
    values = b"VALUES ($1, $2 || '/' || $3 || ' 5%') RETURNING $1::bigint"
    assert text == b"INSERT INTO orders (ref, note) " + values
    assert order == ["id", "run_id", "probe"]


def test_literals_comments_and_casts_are_left_as_written() -> None:
    text = (
        "INSERT INTO t (a, b) VALUES (:id, ':id -- not' || \":probe\" || $$ :run_id $$"
        " || $q$ :id $q$) -- :probe\n /* :id */ RETURNING a::text, :probe::text"
    )
    sql, order = for_libpq(text)
    assert order == ["id", "probe"]
    assert sql.decode() == text.replace("(:id,", "($1,").replace(", :probe::", ", $2::")
    assert for_psycopg("SELECT ':id 5%' || :id").startswith("SELECT ':id 5%%' || %(id)s")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"insert": INSERT}, "`insert` and `read` go together"),
        ({"insert": "INSERT INTO t VALUES (:run_id)", "read": "SELECT 1"}, "must hold :id and"),
        ({"insert": "INSERT INTO t VALUES (:id)", "read": "SELECT 1"}, "ids start again"),
        ({"insert": INSERT, "read": "SELECT :id, :run_id"}, "every write of this run"),
        ({"insert": INSERT, "read": "SELECT 1, 1"}, "every write of this run"),
        ({"insert": INSERT, "read": "SELECT :run_id", "create": False}, "not with `insert`"),
        ({"insert": INSERT, "read": "SELECT :run_id", "table": "t"}, "not with `insert`"),
    ],
)
def test_own_statements_are_checked(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        PostgresWriteConfig.model_validate({"kind": "postgres-write", "dsn": "host=x", **spec})


@pytest.mark.parametrize(
    ("timeout", "dsn", "seconds"),
    [
        (5.0, "host=127.0.0.1", 5),
        (5.0, "host=127.0.0.1 connect_timeout=3", 3),
        (5.0, "postgresql://u@127.0.0.1/db?connect_timeout=1", 2),  # libpq's own floor
        (5.0, "host=127.0.0.1 connect_timeout=0", 5),  # 0 is forever: the probe's own
        (0.5, "host=127.0.0.1 connect_timeout=10", 2),
        (5.0, "not a dsn = =", 5),
    ],
)
def test_the_dsns_connect_timeout_counts_when_shorter(
    timeout: float, dsn: str, seconds: int
) -> None:
    assert connect_timeout_s(timeout, dsn) == seconds
