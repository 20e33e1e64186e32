"""How the docker lab's servers get the run's password (issue 15, item 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drills.labs.docker_postgres_pair import DockerPostgresPairConfig, DockerPostgresPairLab
from drills.labs.docker_scripts import (
    PASSWORD_ENV,
    primary_script,
    server_script,
    standby_script,
)


def test_the_primary_trusts_nobody() -> None:
    script = "\n".join(primary_script())
    assert "trust" not in script
    assert "--auth=scram-sha-256 --pwfile=/tmp/drills-initdb-pw" in script
    assert "rm -f /tmp/drills-initdb-pw" in script
    assert "umask 077" in script


def test_the_standby_streams_with_a_password_file() -> None:
    script = "\n".join(standby_script("drills-1234-a"))
    assert "export PGPASSFILE=/tmp/drills-pgpass" in script
    assert "pg_basebackup -h drills-1234-a -p 5432 -U postgres" in script


def test_the_server_does_not_inherit_the_password_variable() -> None:
    script = server_script(["true"], ["-c", "port=5432"])
    lines = script.splitlines()
    assert lines.index(f"unset {PASSWORD_ENV}") < len(lines) - 1
    assert lines[-1].startswith("exec postgres")


def test_the_password_reaches_the_container_in_its_environment_not_its_command() -> None:
    lab = DockerPostgresPairLab(
        DockerPostgresPairConfig(kind="docker-postgres-pair", environment={"A": "1"}),
        lambda message: None,
    )
    seen: dict[str, Any] = {}

    def run(name: str, **kwargs: Any) -> None:
        seen.update(kwargs)

    lab._run = run  # type: ignore[assignment,method-assign]

    class Image:
        id = "sha256:0"

    lab._server("a", Image(), primary_script(), primary=True)
    assert seen["environment"] == {"A": "1", PASSWORD_ENV: lab.secret}
    assert lab.secret not in " ".join(seen["command"] + seen["entrypoint"])
    other = DockerPostgresPairLab(lab.cfg, lambda message: None)
    assert other.secret != lab.secret


def test_a_kept_docker_lab_says_how_to_connect(tmp_path: Path) -> None:
    lab = DockerPostgresPairLab(
        DockerPostgresPairConfig(kind="docker-postgres-pair"), lambda message: None
    )
    lab.lab_id, lab.root = "drills-1234", tmp_path
    lab.dsns = {"a": lab._dsn(5432)}
    message = lab.keep()
    assert f"password file {tmp_path / 'pgpass'}" in message
    assert "a: psql 'host=127.0.0.1 port=5432 user=postgres dbname=postgres passfile=" in message
    assert lab.secret not in message
