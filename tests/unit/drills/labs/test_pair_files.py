"""Who may connect to a postgres-pair server, and how the lab hands out its password."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from drills.backup.lab import IDENT_MAP
from drills.labs.lab_process import PostgresNode
from drills.labs.pair_files import access_files, connect_hint, init_cluster, write_access
from drills.labs.postgres_pair import PostgresPairConfig, PostgresPairLab


def test_nobody_is_trusted() -> None:
    hba, ident = access_files(None)
    rules = [line.split() for line in hba.splitlines() if not line.startswith("#")]
    assert rules and all(rule[-1] == "scram-sha-256" for rule in rules)
    assert {rule[0] for rule in rules} == {"local", "host"}
    assert ["host", "replication", "postgres", "127.0.0.1/32", "scram-sha-256"] in rules
    assert not any("trust" in rule for rule in rules) and ident == ""


def test_with_backups_only_the_servers_os_user_gets_in_by_the_socket_without_password() -> None:
    hba, ident = access_files("postgres")
    rules = [line for line in hba.splitlines() if not line.startswith("#")]
    assert rules[0] == f"local all postgres peer map={IDENT_MAP}"
    assert all(rule.endswith("scram-sha-256") for rule in rules[1:])
    assert ident == f"{IDENT_MAP} postgres postgres\n"


def test_initdb_files_are_replaced(tmp_path: Path) -> None:
    (tmp_path / "pg_hba.conf").write_text("local all all trust\n")
    write_access(tmp_path, None)
    assert "trust\n" not in (tmp_path / "pg_hba.conf").read_text()


def test_initdb_gets_the_password_in_a_file_removed_once_read(tmp_path: Path) -> None:
    seen: list[tuple[list[str], str]] = []

    def run(argv: list[str], what: str) -> None:
        pwfile = Path(next(a for a in argv if a.startswith("--pwfile=")).split("=", 1)[1])
        seen.append((argv, pwfile.read_text()))
        assert pwfile.stat().st_mode & 0o077 == 0

    passfile = tmp_path / "pgpass"
    init_cluster(run, Path("/pg/bin/initdb"), tmp_path / "a", passfile, None)
    argv, given = seen[0]
    secret = passfile.read_text().strip().rsplit(":", 1)[1]
    assert given == secret + "\n"
    assert "--auth=scram-sha-256" in argv and not any(secret in a for a in argv)
    assert list(tmp_path.iterdir()) == [passfile]


def _lab(tmp_path: Path) -> PostgresPairLab:
    lab = PostgresPairLab(PostgresPairConfig(kind="postgres-pair"), lambda message: None)
    lab.root = tmp_path
    return lab


def test_clients_of_the_lab_name_its_password_file(tmp_path: Path) -> None:
    lab = _lab(tmp_path)
    a, b = PostgresNode("a", lab, tmp_path / "a", 5432), PostgresNode("b", lab, tmp_path / "b", 1)
    assert a.dsn.endswith(f"passfile={tmp_path / 'pgpass'}")
    assert a.local_dsn() == a.dsn
    assert b.standby_conninfo(a).endswith(f"passfile={tmp_path / 'pgpass'}")


def test_lab_programs_run_with_the_password_file_and_no_secret_of_the_harness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_TEST_SECRET", "s3cr3t")
    calls: list[dict[str, Any]] = []

    def fake_run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(kwargs)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    _lab(tmp_path).run(["pgbench", "-i"], "pgbench")
    env = calls[0]["env"]
    assert env["PGPASSFILE"] == str(tmp_path / "pgpass")
    assert "DRILLS_TEST_SECRET" not in env


def test_servers_start_without_the_harness_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_TEST_SECRET", "s3cr3t")
    with (tmp_path / "log").open("ab") as log:
        proc = _lab(tmp_path).popen(["/usr/bin/env"], log, as_lab_user=False)
        proc.wait(timeout=10)
    printed = (tmp_path / "log").read_text()
    assert "PATH=" in printed and "DRILLS_TEST_SECRET" not in printed


def test_a_kept_lab_says_how_to_connect(tmp_path: Path) -> None:
    message = _lab(tmp_path).keep()
    assert f"password file {tmp_path / 'pgpass'}" in message
    hint = connect_hint(tmp_path / "pgpass", {"a": 5432})
    assert hint.endswith(
        f"a: psql 'host=127.0.0.1 port=5432 user=postgres dbname=postgres "
        f"passfile={tmp_path / 'pgpass'}'"
    )
