"""The history file: created new and never through a symlink, the run id reserved by that
exclusive create, fsynced on close, and a write error (a full disk) that stops recording
cleanly instead of killing whoever wrote (issue 15, items 7 and 8)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from drills import history
from drills.errors import PathError
from drills.history import Clock, HistoryLog, Op, Outcome, open_history
from drills.history_file import load_history

VICTIM = "precious\n"


def op(seq: int) -> Op:
    return Op("svc", seq, seq * 100, seq * 100 + 5, Outcome.OK, detail=f"sample {seq}")


def fail_after(writes: int) -> Callable[[int, bytes], None]:
    """A disk with room for `writes` lines; the next is cut short by ENOSPC."""
    real = history.write_all
    done = [0]

    def write_all(fd: int, data: bytes) -> None:
        done[0] += 1
        if done[0] > writes:
            os.write(fd, data[: len(data) // 2])  # a short write first, as a full disk does
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, data)

    return write_all


def test_a_symlink_planted_at_the_history_path_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text(VICTIM)
    (tmp_path / "run.history.jsonl").symlink_to(victim)
    with pytest.raises(PathError, match=r"run\.history\.jsonl: a symbolic link .*not followed"):
        HistoryLog(Clock.now(), tmp_path / "run.history.jsonl")
    assert victim.read_text() == VICTIM


def test_the_run_id_is_reserved_by_creating_its_history_exclusively(tmp_path: Path) -> None:
    (tmp_path / "20261123T200000Z-x.history.jsonl").write_text("someone else's\n")
    run_id, log = open_history(tmp_path, "20261123T200000Z-x", Clock.now())
    log.close()
    again, other = open_history(tmp_path, "20261123T200000Z-x", Clock.now())
    other.close()
    assert (run_id, again) == ("20261123T200000Z-x-2", "20261123T200000Z-x-3")
    assert (tmp_path / "20261123T200000Z-x.history.jsonl").read_text() == "someone else's\n"


def test_the_history_is_fsynced_on_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    path = tmp_path / "run.history.jsonl"
    log = HistoryLog(Clock.now(), path)
    log.add_op(op(1))
    monkeypatch.setattr(os, "fsync", fsync)
    log.close()
    assert synced == [str(path), str(tmp_path)]  # the file, then its directory entry


def test_a_write_error_stops_recording_and_is_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    told: list[str] = []
    path = tmp_path / "run.history.jsonl"
    monkeypatch.setattr(history, "write_all", fail_after(4))  # the clock and 3 ops
    log = HistoryLog(Clock.now(), path, on_failure=told.append)
    for seq in range(1, 10):
        log.add_op(op(seq))  # raises nothing: a probe worker must live on
    log.close()
    assert log.failure is not None
    assert f"cannot write the history {path}: No space left on device (ENOSPC)" == log.failure
    assert told == [log.failure]
    assert [o.seq for o in log.history.ops] == [1, 2, 3]  # nothing after the failure
    assert load_history(path).ops == log.history.ops  # the file is cut at its last whole line


def test_a_harness_failure_stops_recording_too(tmp_path: Path) -> None:
    told: list[str] = []
    log = HistoryLog(Clock.now(), tmp_path / "h.jsonl", on_failure=told.append)
    log.add_op(op(1))
    log.fail("internal error recording a sample of svc: KeyError(1)")
    log.fail("a second failure is not reported")
    log.add_op(op(2))
    log.close()
    assert told == ["internal error recording a sample of svc: KeyError(1)"]
    assert [o.seq for o in load_history(tmp_path / "h.jsonl").ops] == [1]
