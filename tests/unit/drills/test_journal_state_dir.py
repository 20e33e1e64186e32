"""`drills recover` acts only on journals no other user could have written (issue 15): the
state directory and its `journal` directory are checked before any journal is read."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from drills.errors import PathError
from drills.journal import Journal, check_state_dir

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="only root gives files away")


def test_a_journal_directory_is_made_private(tmp_path: Path) -> None:
    old = os.umask(0o002)  # the group-writable umask of many distributions
    try:
        journal = Journal("run-1", "scenario", tmp_path)
    finally:
        os.umask(old)
    assert (journal.dir.stat().st_mode & 0o777) == 0o700
    journal.close()
    check_state_dir(tmp_path)


def test_a_missing_state_directory_has_nothing_to_check(tmp_path: Path) -> None:
    check_state_dir(tmp_path / "never-made")
    (tmp_path / "state").mkdir(mode=0o700)
    check_state_dir(tmp_path / "state")  # no journal directory yet


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_a_state_directory_others_can_write_is_refused(tmp_path: Path, mode: int) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(mode)
    with pytest.raises(PathError, match=f"{state}: writable by its group or others"):
        check_state_dir(state)


def test_a_journal_directory_others_can_write_is_refused(tmp_path: Path) -> None:
    (tmp_path / "journal").mkdir()
    (tmp_path / "journal").chmod(0o775)
    with pytest.raises(PathError, match="journal: writable by its group or others"):
        check_state_dir(tmp_path)


def test_a_symlinked_state_or_journal_directory_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "state").symlink_to(real)
    with pytest.raises(PathError, match="state: a symbolic link"):
        check_state_dir(tmp_path / "state")
    (real / "journal").symlink_to(tmp_path)
    with pytest.raises(PathError, match="journal: a symbolic link"):
        check_state_dir(real)


@ROOT_ONLY
def test_another_users_state_directory_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)
    with pytest.raises(PathError, match="owned by uid 65534"):
        check_state_dir(state)


def test_recover_refuses_an_unsafe_state_directory_before_reading_a_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from drills.cli import main

    state = tmp_path / "state"
    (state / "journal").mkdir(parents=True)
    run = {"op": "run", "run_id": "dead", "scenario": "s", "pid": 1, "start": -1, "at": 0.0}
    planted = state / "journal" / "20260101T000000Z-dead.jsonl"
    planted.write_text(json.dumps(run | {"host": socket.gethostname()}) + "\n")
    state.chmod(0o777)
    monkeypatch.setenv("DRILLS_STATE_DIR", str(state))
    assert main(["recover"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"drills: {state}: writable by its group or others (mode 777)")
    assert planted.exists()
    state.chmod(0o700)
    assert main(["recover"]) == 0 and not planted.exists()
