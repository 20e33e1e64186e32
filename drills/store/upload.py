"""Sending a drill's record to the store when the drill ends: what was spooled before goes
first, then this record; a store that cannot be reached gets it spooled instead, and the
drill's outcome stands either way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg

from drills.store.chain import insert_run, read_files
from drills.store.schema import open_store
from drills.store.settings import Store, unreachable
from drills.store.spool import Flushed, flush, spool


@dataclass(frozen=True)
class Sent:
    """Where a record went: `seq` in the store, or `spooled` to a directory, and why."""

    store: str
    seq: int | None = None
    spooled: Path | None = None
    why: str = ""
    flushed: int = 0  # records spooled earlier, uploaded first
    not_flushed: tuple[str, ...] = ()  # records spooled earlier the store refused, and why

    def lines(self) -> list[str]:
        refused = [f"drills: {line}" for line in self.not_flushed]
        if self.seq is not None:
            earlier = f" ({self.flushed} spooled before uploaded first)" if self.flushed else ""
            return [*refused, f"store: #{self.seq} in {self.store}{earlier}"]
        return [
            *refused,
            f"drills: {self.why}",
            f"store: record spooled to {self.spooled}: `drills store flush` (or the next "
            "drill) uploads it",
        ]

    def data(self) -> dict[str, object]:
        return {"url": self.store, "seq": self.seq, "spooled": str(self.spooled or "") or None}


def send(store: Store, record_path: Path, state: Path | None = None) -> Sent:
    """Store the record at `record_path`, or spool it."""
    earlier = Flushed()
    try:
        with open_store(store) as conn:
            earlier = flush(conn, state, say=lambda _: None)
            raw, history = read_files(record_path)
            stored = insert_run(conn, raw, history, record_path.name)
    except Exception as exc:  # whatever went wrong, the record is kept for later
        why = str(unreachable(store, exc) if isinstance(exc, psycopg.Error) else exc)
        spooled = spool(record_path, state)
        return Sent(store.display, spooled=spooled, why=why, not_flushed=tuple(earlier.failed))
    return Sent(
        store.display,
        seq=stored.seq,
        flushed=len(earlier.stored),
        not_flushed=tuple(earlier.failed),
    )
