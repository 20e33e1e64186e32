"""Records the store could not take when their drill ended: copied, with their histories, to
`$DRILLS_STATE_DIR/spool/<run>/` (private to the user), and uploaded by `drills store flush`
or at the end of the next drill with a store. Nothing is lost when the store is down: the
record file in the reports directory stays as it was, and the spooled copy is removed only
once the store has it."""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from drills.errors import DrillsError, RecordError
from drills.files import open_lock, private_dir
from drills.journal import state_dir
from drills.records.store import record_data
from drills.store.chain import Stored, insert_run, read_files

Conn = psycopg.Connection[tuple[object, ...]]
LOCK = ".flush.lock"


def spool_dir(state: Path | None = None) -> Path:
    return (state or state_dir()) / "spool"


def spool(record_path: Path, state: Path | None = None) -> Path:
    """Copy a record and its history into the spool; the directory they went to."""
    raw, history = read_files(record_path)
    private_dir(spool_dir(state))
    into = spool_dir(state) / record_path.stem
    into.mkdir(mode=0o700, exist_ok=True)
    if history is not None:
        name = str(record_data(raw, record_path).get("history"))
        (into / name).write_bytes(history)
    (into / record_path.name).write_bytes(raw)  # last: a spooled entry has its record
    return into


def spooled(state: Path | None = None) -> list[Path]:
    """The spooled records, oldest first (their names start with the UTC start)."""
    base = spool_dir(state)
    if not base.is_dir():
        return []
    found = [d / f"{d.name}.json" for d in sorted(base.iterdir()) if d.is_dir()]
    return [path for path in found if path.is_file()]


@dataclass
class Flushed:
    stored: list[tuple[Path, Stored]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    left: int = 0


def flush(conn: Conn, state: Path | None = None, say: Callable[[str], None] = print) -> Flushed:
    """Upload every spooled record, oldest first; stop at the first the store refuses. One
    process flushes at a time (two drills ending at once, or `drills store flush` meanwhile)."""
    out = Flushed()
    if not spooled(state):
        return out
    with open_lock(spool_dir(state) / LOCK) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiting = spooled(state)
        for number, path in enumerate(waiting):
            try:
                raw, history = read_files(path)
                stored = insert_run(conn, raw, history, path.name)
            except (RecordError, DrillsError, psycopg.Error) as exc:
                out.failed.append(f"{path}: not uploaded: {str(exc).strip().splitlines()[0]}")
                out.left = len(waiting) - number
                return out
            out.stored.append((path, stored))
            shutil.rmtree(path.parent, ignore_errors=True)
            done = "stored as" if stored.new else "already in the store as"
            say(f"{path.name}: {done} #{stored.seq}")
    return out
