"""Finding the store and its password: `--store`, then $DRILLS_STORE, then drills.yaml; the
password from a file ($DRILLS_STORE_PASSWORD_FILE, store.password_file), never a command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from drills.cli import main
from drills.errors import EXIT_ERROR, DrillsError
from drills.store.settings import ENV, PASSWORD_FILE_ENV, Store, find_store, unreachable


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


def secret(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_the_password_comes_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret(tmp_path / "pw", "s3cret-from-config\n")
    secret(tmp_path / "pw-env", "s3cret-from-env\n")
    file = config(tmp_path, "store:\n  url: postgresql://d@h/db\n  password_file: pw\n")
    found = find_store(None, file)
    assert found is not None and found.password == "s3cret-from-config"
    monkeypatch.setenv(PASSWORD_FILE_ENV, str(tmp_path / "pw-env"))
    found = find_store(None, file)
    assert found is not None and found.password == "s3cret-from-env"
    assert "s3cret" not in repr(found.display)


def test_a_password_file_open_to_others_is_refused(tmp_path: Path) -> None:
    secret(tmp_path / "pw", "x\n").chmod(0o644)
    file = config(tmp_path, "store:\n  url: postgresql://d@h/db\n  password_file: pw\n")
    with pytest.raises(DrillsError, match=r"open to other users: chmod 600 .*pw$"):
        find_store(None, file)


def test_an_error_from_the_store_never_holds_its_password() -> None:
    store = Store("postgresql://drills:in-url-pw@db/drills", "from-file-pw")
    said = str(unreachable(store, RuntimeError("no: in-url-pw and from-file-pw echoed")))
    assert said == "store postgresql://drills@db/drills: no: *** and *** echoed"
    assert "from-file-pw" not in repr(store)


def test_no_store_reads_files_whatever_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse

    from drills.store.readers import store_in_effect

    monkeypatch.setenv(ENV, "postgresql://env@db2/drills")
    assert store_in_effect(argparse.Namespace(store=None, no_store=True, config=None)) is None
    found = store_in_effect(argparse.Namespace(store=None, no_store=False, config=None))
    assert found is not None and found.url == "postgresql://env@db2/drills"


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


def test_not_a_connection_url_and_its_password_not_repeated() -> None:
    with pytest.raises(DrillsError, match=r"^--store: not a PostgreSQL connection URL") as caught:
        find_store("postgresql://[::1", None)
    with pytest.raises(DrillsError) as caught:
        find_store("postgresql://drills:s3cr%zzet@h/db", None)
    assert "s3cr" not in str(caught.value)


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
