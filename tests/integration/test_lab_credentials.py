"""Lab databases let in only who holds the run's credentials, and inherit none of the
harness's secrets (issue 15, item 2)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from drills.labs.base import LabHandle
from drills.labs.docker_postgres_pair import DockerPostgresPairConfig, DockerPostgresPairLab
from drills.labs.postgres_pair import PostgresPairConfig, PostgresPairLab
from drills.proctree import descendants

SECRET = "DRILLS_TEST_SECRET"


def refused(conninfo: str) -> str:
    """The error of a connection that must fail to authenticate."""
    with pytest.raises(psycopg.OperationalError) as failed:
        psycopg.connect(conninfo, connect_timeout=5).close()
    return str(failed.value)


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode(errors="replace").partition("=") for item in raw if item)
    return {key: value for key, _, value in pairs}


@pytest.fixture
def no_password_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ~/.pgpass or PGPASSWORD of the machine's lets a connection in by accident."""
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))
    monkeypatch.delenv("PGPASSWORD", raising=False)


@pytest.fixture
def pair(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, no_password_file: None
) -> Iterator[tuple[PostgresPairLab, LabHandle]]:
    """A postgres-pair lab started by a harness that holds a secret variable."""
    monkeypatch.setattr(tempfile, "tempdir", str(sandbox))
    monkeypatch.setenv(SECRET, "s3cr3t-of-the-harness")
    lab = PostgresPairLab(PostgresPairConfig(kind="postgres-pair"), lambda message: None)
    handle = lab.start()
    try:
        yield lab, handle
    finally:
        lab.stop()


@pytest.mark.postgres
def test_the_pair_refuses_connections_without_the_runs_password(
    pair: tuple[PostgresPairLab, LabHandle],
) -> None:
    _, handle = pair
    root = Path(handle.variables["dir"])
    port = handle.variables["a.port"]
    plain = f"port={port} user=postgres dbname=postgres"
    # Over TCP, straight and through the clients' link, and for replication: refused.
    assert "password" in refused(f"host=127.0.0.1 {plain}")
    client_port = handle.variables["a.client_port"]
    assert "password" in refused(f"host=127.0.0.1 port={client_port} user=postgres")
    assert "password" in refused(f"host=127.0.0.1 {plain} replication=true")
    # Over the socket, as an OS user that is not the servers' (here the harness's): refused.
    assert "password" in refused(f"host={root} {plain}")
    # With the run's password file: in, on both servers.
    for dsn in (handle.variables["a.dsn"], handle.variables["b.direct_dsn"]):
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    passfile = Path(handle.variables["passfile"])
    assert passfile.stat().st_mode & 0o077 == 0
    password = passfile.read_text().strip().rsplit(":", 1)[1]
    # The password is in no DSN, variable or fact, nor in the standby's configuration.
    assert password not in json.dumps([handle.variables, handle.facts])
    auto = (root / "b" / "postgresql.auto.conf").read_text()
    assert f"passfile=''{passfile}''" in auto and password not in auto, auto
    assert not (root / "initdb.pw").exists()


@pytest.mark.postgres
def test_the_pair_servers_inherit_none_of_the_harness_secrets(
    pair: tuple[PostgresPairLab, LabHandle],
) -> None:
    lab, _ = pair
    servers = [server.pid() for server in lab.servers]
    processes = servers + [pid for server in servers for pid in descendants(server)]
    assert len(processes) > 4  # the postmasters and their children
    for pid in processes:
        env = environ(pid)
        assert SECRET not in env, pid
        assert set(env) <= {"PATH", "LANG", "LANGUAGE", "TZ", "PGPASSFILE"} | {
            key for key in env if key.startswith(("LC_", "PG_"))
        }, (pid, sorted(env))


@pytest.mark.docker
@pytest.mark.postgres
def test_the_docker_pair_refuses_connections_without_the_runs_password(
    sandbox: Path, monkeypatch: pytest.MonkeyPatch, no_password_file: None
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(sandbox))
    monkeypatch.setenv("DRILLS_POSTGRES_IMAGE", "drills/postgres:local")
    config = DockerPostgresPairConfig(kind="docker-postgres-pair", pull=False)
    lab = DockerPostgresPairLab(config, lambda message: None)
    handle = lab.start()
    try:
        port = handle.variables["a.port"]
        assert "password" in refused(f"host=127.0.0.1 port={port} user=postgres")
        b_port = handle.variables["b.port"]
        assert "password" in refused(f"host=127.0.0.1 port={b_port} user=postgres")
        with psycopg.connect(handle.variables["dsn"]) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        with psycopg.connect(handle.variables["b.dsn"]) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        passfile = Path(handle.variables["passfile"])
        assert passfile.stat().st_mode & 0o077 == 0
        password = passfile.read_text().strip().rsplit(":", 1)[1]
        assert password not in json.dumps([handle.variables, handle.facts])
    finally:
        lab.stop()
    assert not passfile.exists()
