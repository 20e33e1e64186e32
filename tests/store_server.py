"""A results store for tests and benchmarks: one PostgreSQL server (tests/postgres_server.py)
where drills logs in as role `drills` with a password (scram-sha-256) read from a file, and a
fresh database per test on that one server."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import psycopg.sql

from tests.postgres_server import Server, postgres_server

HBA = (
    "local all all trust\n"
    "host all postgres 127.0.0.1/32 trust\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
)


@dataclass
class StoreServer:
    server: Server
    password_file: Path
    _names: Iterator[int] = field(default_factory=itertools.count)

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """The superuser, on `dbname` (trusted on loopback, as the test's own)."""
        dsn = f"host=127.0.0.1 port={self.server.port} user=postgres dbname={dbname}"
        return psycopg.connect(dsn, autocommit=True)

    def fresh(self) -> str:
        """A new empty database owned by `drills`: its URL, without the password."""
        name = f"store_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name} OWNER drills")
        return f"postgresql://drills@127.0.0.1:{self.server.port}/{name}"

    def env(self, url: str) -> dict[str, str]:
        return {"DRILLS_STORE": url, "DRILLS_STORE_PASSWORD_FILE": str(self.password_file)}


@contextmanager
def store_server() -> Iterator[StoreServer]:
    with postgres_server() as server:
        password = secrets.token_urlsafe(18)
        password_file = server.root / "store-password"
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        (server.datadir / "pg_hba.conf").write_text(HBA)
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(
                psycopg.sql.SQL("CREATE ROLE drills LOGIN PASSWORD {}").format(
                    psycopg.sql.Literal(password)
                )
            )
        yield StoreServer(server, password_file)
