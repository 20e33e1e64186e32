"""The acknowledgement files between a drill waiting at a manual step and `drills ack`."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from drills import acks
from drills.acks import Waiting, acknowledge, announce, read_ack, waiting_runs, withdraw
from drills.errors import DrillsError


def test_drills_ack_acknowledges_the_only_drill_waiting(tmp_path: Path) -> None:
    directory = announce(tmp_path, Waiting("run-1", 3, "fail over to B", "dba"))
    assert read_ack(directory, 3) is None
    before = time.time_ns()
    found = acknowledge(tmp_path, None, "ana", "done at 10:02")
    assert found == Waiting("run-1", 3, "fail over to B", "dba")
    ack = read_ack(directory, 3)
    assert ack is not None and (ack.by, ack.note, ack.step) == ("ana", "done at 10:02", 3)
    assert before <= ack.wall_ns <= time.time_ns()
    assert (
        directory.stat().st_mode & 0o777,
        (directory / "ack-3.json").stat().st_mode & 0o777,
    ) == (
        0o700,
        0o600,
    )
    withdraw(directory)
    assert waiting_runs(tmp_path) == []


def test_with_several_drills_waiting_the_run_must_be_named(tmp_path: Path) -> None:
    announce(tmp_path, Waiting("run-1", 1, "a", ""))
    announce(tmp_path, Waiting("run-2", 1, "b", ""))
    with pytest.raises(DrillsError, match=r"several drills are waiting \(run-1, run-2\)"):
        acknowledge(tmp_path, None, "ana", "")
    assert acknowledge(tmp_path, "run-2", "ana", "").instruction == "b"


def test_nothing_waiting_and_unknown_runs_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DrillsError, match="no drill is waiting for an acknowledgement"):
        acknowledge(tmp_path, None, "ana", "")
    announce(tmp_path, Waiting("run-1", 1, "a", ""))
    with pytest.raises(DrillsError, match="run run-9 is not waiting"):
        acknowledge(tmp_path, "run-9", "ana", "")
    with pytest.raises(DrillsError, match="not a run id"):
        announce(tmp_path, Waiting("../x", 1, "a", ""))


def test_a_drill_that_died_waiting_is_not_waiting_any_more(tmp_path: Path) -> None:
    announce(tmp_path, Waiting("run-dead", 1, "a", "", pid=_exited_pid()))
    assert waiting_runs(tmp_path) == []
    announce(tmp_path, Waiting("run-elsewhere", 1, "a", "", host="other-host", pid=_exited_pid()))
    assert [w.run_id for w in waiting_runs(tmp_path)] == ["run-elsewhere"]  # cannot tell


def _exited_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_an_acknowledgement_after_the_wait_ended_is_too_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = announce(tmp_path, Waiting("run-1", 2, "a", ""))
    real_write = acks.write_atomically

    def drill_gives_up_meanwhile(path: Path, text: str, mode: int | None = None) -> None:
        withdraw(directory)  # the drill's timeout, between the look and the write
        real_write(path, text, mode)

    monkeypatch.setattr(acks, "write_atomically", drill_gives_up_meanwhile)
    with pytest.raises(DrillsError, match="too late: run-1 no longer waits for that step"):
        acknowledge(tmp_path, "run-1", "ana", "")
    assert not directory.exists()
