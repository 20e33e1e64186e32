"""`check_chain` (drills/records/verify.py): what it remembers between checks does not hide a
change."""

from __future__ import annotations

import os
import time
from pathlib import Path

from drills.records import check_chain, write_chained


def _write(directory: Path, stamp: str) -> Path:
    history = directory / f"{stamp}-x.history.jsonl"
    history.write_text('{"type":"clock","mono_ns":1,"wall_ns":2}\n')
    record = {
        "schema_version": 1,
        "run_id": f"{stamp}-x",
        "scenario": {"name": "x", "file": "x.yaml", "sha256": "0" * 64},
        "verdict": "pass",
        "history": history.name,
    }
    path = directory / f"{stamp}-x.json"
    write_chained(path, record)
    return path


def test_a_history_edited_in_place_with_its_mtime_restored_is_hashed_again(
    tmp_path: Path,
) -> None:
    _write(tmp_path, "20261123T200000Z")
    history = tmp_path / "20261123T200000Z-x.history.jsonl"
    assert check_chain(tmp_path).problems == []  # its digest is remembered now
    before = history.stat()
    time.sleep(0.05)  # past the file system's timestamp granularity
    with history.open("r+b") as handle:  # same inode, same size
        handle.write(b'{"type":"clock","mono_ns":9,"wall_ns":2}\n')
    os.utime(history, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = history.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    assert any("its history" in p and "changed" in p for p in check_chain(tmp_path).problems)
