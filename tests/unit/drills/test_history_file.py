"""Reading a history back (issue 14, item 5): a drill keeps its samples on file only and the
checker reads them from the very file the drill created."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drills.errors import RecordError
from drills.history import Clock, HistoryLog, Op, Outcome, open_history


def op(seq: int) -> Op:
    return Op("svc", seq, seq * 100, seq * 100 + 5, Outcome.OK, detail=f"sample {seq}")


def test_a_drills_own_history_keeps_samples_on_file_only_and_reads_them_back(
    tmp_path: Path,
) -> None:
    """Before: every sample stayed in memory too, ~450 bytes each, so a long run at 3,000
    samples/s grew by 1.5 GB an hour and paused in garbage collection (issue 14, item 5)."""
    _, log = open_history(tmp_path, "20261203T070000Z-x", Clock.now())
    for seq in range(1, 4):
        log.add_op(op(seq))
    assert log.history.ops == []
    with pytest.raises(RecordError, match="read before the history was closed"):
        log.read()
    log.close()
    assert [o.seq for o in log.read().ops] == [1, 2, 3]


def test_a_history_without_a_file_keeps_its_samples_in_memory() -> None:
    log = HistoryLog(Clock.now(), keep_ops=False)
    log.add_op(op(1))
    assert log.read().ops == [op(1)]


def test_a_history_replaced_during_the_run_is_not_read_back(tmp_path: Path) -> None:
    """The verdict is computed from the file the drill wrote, not one put in its place."""
    _, log = open_history(tmp_path, "20261203T070000Z-y", Clock.now())
    log.add_op(op(1))
    log.close()
    assert log.path is not None
    forged = tmp_path / "forged.jsonl"
    forged.write_bytes(log.path.read_bytes())
    os.replace(forged, log.path)
    with pytest.raises(RecordError, match="not the history this drill wrote"):
        log.read()
    log.path.unlink()
    log.path.symlink_to(forged)
    with pytest.raises(RecordError, match="cannot read history"):
        log.read()
