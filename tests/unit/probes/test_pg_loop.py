"""Which DSNs go on the event loop, and how a multi-host DSN is split into attempts."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from probes import pg_loop


@pytest.mark.parametrize(
    ("dsn", "on_loop"),
    [
        ("host=127.0.0.1 port=5432", True),
        ("host=127.0.0.1,::1 port=5432,5433", True),
        ("host=/var/run/postgresql", True),
        ("postgresql://127.0.0.1:5432/postgres", True),
        ("host=db.example hostaddr=10.0.0.5", True),
        ("host=localhost", False),
        ("host=127.0.0.1,db-b port=5432,5433", False),
        ("host='unclosed", False),
        ("service=prod", False),
        ("hostaddr=10.0.0.1,", False),
    ],
)
def test_only_a_dsn_without_name_lookups_goes_on_the_loop(dsn: str, on_loop: bool) -> None:
    assert pg_loop.without_lookups(dsn) is on_loop


def test_a_multi_host_dsn_is_one_attempt_per_host_with_its_port() -> None:
    dsn = "host=127.0.0.1,127.0.0.2 port=6432,6433 user=u target_session_attrs=read-write"
    found = [conninfo_to_dict(a) for a in pg_loop.attempts(dsn)]
    assert [(a["host"], a["port"]) for a in found] == [("127.0.0.1", "6432"), ("127.0.0.2", "6433")]
    assert all(a["user"] == "u" and a["target_session_attrs"] == "read-write" for a in found)


def test_one_port_serves_every_host() -> None:
    found = [conninfo_to_dict(a) for a in pg_loop.attempts("host=10.0.0.1,10.0.0.2 port=5432")]
    assert [a["port"] for a in found] == ["5432", "5432"]


def test_prefer_standby_tries_every_host_as_a_standby_first() -> None:
    dsn = "host=10.0.0.1,10.0.0.2 target_session_attrs=prefer-standby"
    found = [conninfo_to_dict(a) for a in pg_loop.attempts(dsn)]
    assert [(a["host"], a.get("target_session_attrs")) for a in found] == [
        ("10.0.0.1", "standby"),
        ("10.0.0.2", "standby"),
        ("10.0.0.1", None),
        ("10.0.0.2", None),
    ]


def test_mismatched_lists_are_refused_as_psycopg_refuses_them() -> None:
    with pytest.raises(psycopg.OperationalError, match="could not match 2 port numbers to 3"):
        pg_loop.attempts("host=10.0.0.1,10.0.0.2,10.0.0.3 port=1,2")


def test_hosts_from_the_environment_count_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGHOST", "10.0.0.1,10.0.0.2")
    assert pg_loop.without_lookups("user=u") is True
    assert [conninfo_to_dict(a)["host"] for a in pg_loop.attempts("user=u")] == [
        "10.0.0.1",
        "10.0.0.2",
    ]
    monkeypatch.setenv("PGHOST", "db.example")
    assert pg_loop.without_lookups("user=u") is False
    monkeypatch.delenv("PGHOST")
    monkeypatch.setenv("PGSERVICE", "prod")
    assert pg_loop.without_lookups("host=10.0.0.1") is False
