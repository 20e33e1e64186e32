"""Finding the store and its password: `--store`, then $DRILLS_STORE, then drills.yaml; the
password from a file ($DRILLS_STORE_PASSWORD_FILE, store.password_file), never a command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.cli import main
from drills.errors import EXIT_ERROR, DrillsError
from drills.store.settings import ENV, PASSWORD_FILE_ENV, Store, find_store


@pytest.fixture(autouse=True)
def no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv(PASSWORD_FILE_ENV, raising=False)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "drills.yaml"
    path.write_text(text)
    return path


def test_no_store_anywhere_means_files_only(tmp_path: Path) -> None:
    assert find_store(None, None) is None
    assert find_store(None, config(tmp_path, "version: 1\n")) is None


def test_the_option_comes_before_the_environment_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = config(tmp_path, "store:\n  url: postgresql://file@db3/drills\n  lease_ttl: 20\n")
    monkeypatch.setenv(ENV, "postgresql://env@db2/drills")
    assert find_store("postgresql://opt@db1/drills", file) == Store(
        "postgresql://opt@db1/drills", None, 20.0
    )
    assert find_store(None, file) == Store("postgresql://env@db2/drills", None, 20.0)
    monkeypatch.delenv(ENV)
    assert find_store(None, file) == Store("postgresql://file@db3/drills", None, 20.0)


def test_the_password_comes_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pw").write_text("s3cret-from-config\n")
    (tmp_path / "pw-env").write_text("s3cret-from-env\n")
    file = config(tmp_path, f"store:\n  url: postgresql://d@h/db\n  password_file: {tmp_path}/pw\n")
    found = find_store(None, file)
    assert found is not None and found.password == "s3cret-from-config"
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(tmp_path / "pw-env"))
    found = find_store(None, file)
    assert found is not None and found.password == "s3cret-from-env"
    assert "s3cret" not in repr(found.display)


def test_an_unreadable_password_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(tmp_path / "missing"))
    with pytest.raises(DrillsError, match=r"missing: cannot read the store's password"):
        find_store("postgresql://d@h/db", None)


def test_a_password_on_the_command_line_is_refused_without_repeating_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["report", "--store", "postgresql://drills:hunter2pw@db/drills"])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert "--store: a password on the command line is visible to every user" in err
    assert "hunter2pw" not in err and len(err.strip().splitlines()) == 1


def test_not_a_connection_url() -> None:
    with pytest.raises(DrillsError, match=r"^--store: not a PostgreSQL connection URL"):
        find_store("postgresql://[::1", None)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql://drills:pw@db.example:6432/results",
            "postgresql://drills@db.example:6432/results",
        ),
        (
            "host=10.0.0.5 user=drills dbname=drills password=pw",
            "postgresql://drills@10.0.0.5/drills",
        ),
    ],
)
def test_what_outputs_say_of_a_store_has_no_password(url: str, shown: str) -> None:
    assert Store(url).display == shown
