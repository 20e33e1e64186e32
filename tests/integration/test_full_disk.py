"""A full disk during a real drill (issue 15, item 8): the reports directory is a small tmpfs
the test mounts, which the history fills while the probes run. The drill ends with verdict
`error` naming ENOSPC and exit status 2; nothing it could not record is reported as an outage,
and the lab is still removed."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from drills.history import Outcome
from drills.history_file import load_history
from tests.conftest import run_drills

pytestmark = pytest.mark.postgres


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "runs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_during_a_drill_is_an_error_not_an_outage(
    sandbox: Path, small_disk: Path
) -> None:
    run = run_drills(
        ["run", "scenarios/db-failover.yaml", "--reports-dir", str(small_disk), "--no-live"],
        sandbox,
        small_disk,
    )
    assert run.returncode == 2, run.stderr + run.stdout  # not 1: no objective was judged
    assert "verdict: ERROR: cannot write the history" in run.stdout
    assert "No space left on device (ENOSPC)" in run.stdout
    assert "downtime" not in run.stdout.lower()
    # The record does not fit either: the verdict was printed, the failure said so.
    assert "drills: run record not written" in run.stderr and "ENOSPC" in run.stderr
    [history_file] = small_disk.glob("*.history.jsonl")
    history = load_history(history_file)  # cut at its last whole line
    assert history.ops, "the drill recorded nothing before the disk filled"
    assert all(op.outcome is not Outcome.FAIL for op in history.ops)
    assert not any("no free connection" in op.detail for op in history.ops)
    assert [s.kind for s in history.steps if not s.ok] == []
