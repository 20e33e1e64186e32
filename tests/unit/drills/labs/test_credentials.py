"""Credentials made per lab and the environment of the lab's programs (issue 15, item 2)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from drills.labs.credentials import (
    child_env,
    dsn,
    passfile_of,
    password,
    pgpass,
    write_private,
)


def test_children_get_only_what_they_need_of_the_harness_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DRILLS_TEST_SECRET", "s3cr3t")
    monkeypatch.setenv("PGPASSWORD", "other")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.setenv("TZ", "UTC")
    env = child_env(Path("/lab/pgpass"), EXTRA="1")
    assert "DRILLS_TEST_SECRET" not in env and "PGPASSWORD" not in env
    assert env["LC_ALL"] == "C.UTF-8" and env["TZ"] == "UTC" and env["PATH"]
    assert env["PGPASSFILE"] == "/lab/pgpass" and env["EXTRA"] == "1"
    assert "PGPASSFILE" not in child_env()


def test_a_path_is_given_when_the_harness_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PATH")
    assert child_env()["PATH"] == "/usr/local/bin:/usr/bin:/bin"


def test_passwords_differ_and_fit_a_password_file_line() -> None:
    made = {password() for _ in range(50)}
    assert len(made) == 50
    assert all(len(p) >= 24 and ":" not in p and "\\" not in p for p in made)
    assert pgpass("pw") == "127.0.0.1:*:*:postgres:pw\n"


def test_a_private_file_is_its_owners_alone_and_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "pgpass"
    write_private(path, "secret\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "secret\n"
    with pytest.raises(FileExistsError):
        write_private(path, "other\n")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError):
        write_private(tmp_path / "link", "secret\n")
    assert not (tmp_path / "elsewhere").exists()


def test_a_dsn_names_the_password_file_and_carries_no_password() -> None:
    made = dsn(5432, Path("/lab/pgpass"))
    assert made == "host=127.0.0.1 port=5432 user=postgres dbname=postgres passfile=/lab/pgpass"
    assert passfile_of(made) == Path("/lab/pgpass")
    assert passfile_of("host=127.0.0.1 port=5432") is None


@pytest.mark.parametrize("path", ["/tmp/my labs/pgpass", "/tmp/o'brien/pgpass", "/tmp/a\\b/pgpass"])
def test_a_password_file_path_libpq_would_split_is_quoted(path: str) -> None:
    assert passfile_of(dsn(5432, Path(path))) == Path(path)


def test_a_private_file_is_not_created_through_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "pgpass"
    link.symlink_to(victim)
    with pytest.raises(FileExistsError):
        write_private(link, "secret\n", (65534, 65534))
    assert victim.read_text() == "precious\n"


def test_a_private_file_is_given_to_its_owner_through_the_descriptor(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    path = tmp_path / "pgpass"
    write_private(path, "secret\n", (65534, 65534))
    info = path.stat()
    assert (info.st_uid, info.st_gid) == (65534, 65534) and stat.S_IMODE(info.st_mode) == 0o600
