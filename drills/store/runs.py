"""Run records read back from the store for reports, `due`, `show`, `metrics` and the
exporter: every row checked as it is read (`verify.check_row`); one that fails is left out,
saying why, as for files. `StoredRuns` keeps what it read and, asked again, reads only the
rows stored since: an exporter's scrape does not read ten thousand records each time."""

from __future__ import annotations

import threading
import zlib
from dataclasses import replace
from pathlib import Path

import psycopg

from drills.errors import DrillsError, RecordError
from drills.history import History
from drills.history_file import parse_history
from drills.records.runs import Run, _run
from drills.records.signing import SigningKey
from drills.records.store import parse_record
from drills.store.chain import as_bytes
from drills.store.schema import open_store
from drills.store.settings import Store, unreachable
from drills.store.verify import COLUMNS, Row, StoreCheck, check_row, history_problem

Conn = psycopg.Connection[tuple[object, ...]]


def stored_path(row: Row) -> Path:
    """What names a stored run where a file's path would: `store#SEQ/NAME`."""
    return Path(f"store#{row.seq}") / row.name


class StoredRuns:
    def __init__(self, conn: Conn, key: SigningKey | None, slim: bool = False) -> None:
        self.conn = conn
        self.slim = slim  # keep only each scenario's latest run whole (`_slim`)
        self.latest: dict[str, int] = {}  # scenario: its latest run's place in `runs`
        self.check = StoreCheck(key=key)
        self.runs: list[Run] = []  # in the order read
        self.ordered: list[Run] = []  # oldest first
        self.left_out: list[str] = []
        self.problems: list[RecordError] = []

    def refresh(self) -> list[Run]:
        """Read the rows stored since the last call; every run read so far, oldest first."""
        added = False
        try:
            with self.conn.transaction(), self.conn.cursor(name="drills_runs") as cursor:
                cursor.itersize = 500
                query = f"SELECT {COLUMNS} FROM drills_runs WHERE seq >= %s ORDER BY seq"
                cursor.execute(query.encode(), (self.check.next_seq,))
                for values in cursor:
                    added = self._add(Row.of(values)) or added
        finally:  # rows read before an error count, in order
            if added:
                self.ordered = sorted(self.runs, key=lambda run: run.started)
        return self.ordered

    def _add(self, row: Row) -> bool:
        record, found = check_row(self.check, row)
        path = stored_path(row)
        if found:
            self.left_out.append(f"{path}: left out, fails verification: {'; '.join(found)}")
            return False
        assert record is not None  # a row whose bytes are no JSON object has a problem
        try:
            run = _run(path, parse_record(record, path), lambda: self._history(row))
        except RecordError as exc:
            self.problems.append(exc)
            return False
        self._keep(run)
        return True

    def _keep(self, run: Run) -> None:
        if not self.slim:
            self.runs.append(run)
            return
        place = self.latest.get(run.scenario)
        if place is not None and run.started < self.runs[place].started:
            self.runs.append(_slim(run))
            return
        if place is not None:
            self.runs[place] = _slim(self.runs[place])
        self.latest[run.scenario] = len(self.runs)
        self.runs.append(run)

    def _history(self, row: Row) -> History:
        try:
            found = self.conn.execute(
                "SELECT history FROM drills_runs WHERE seq = %s", (row.seq,)
            ).fetchone()
        except psycopg.Error as exc:
            raise RecordError(f"{stored_path(row)}: history not read: {exc}") from None
        compressed = None if found is None or found[0] is None else as_bytes(found[0])
        problem = history_problem(row, compressed)
        if problem is not None or compressed is None:
            raise RecordError(f"{stored_path(row)}: {problem or 'no history stored'}")
        return parse_history(zlib.decompress(compressed).decode("utf-8"), str(stored_path(row)))


def stored_runs(conn: Conn, key: SigningKey | None, left_out: list[str] | None = None) -> list[Run]:
    """Every run in the store that passes verification, oldest first; `left_out` gets a line
    for each that does not. A row that is not a valid record is an error, as for files."""
    reader = StoredRuns(conn, key)
    runs = reader.refresh()
    if left_out is not None:
        left_out += reader.left_out
    if reader.problems:
        raise reader.problems[0]
    return runs


class ExporterSource:
    """The store's runs for the exporter: rows stored since the last scrape are read and
    checked, the others kept from before; one connection, made again if it was lost."""

    def __init__(self, store: Store, key: SigningKey | None) -> None:
        self.store = store
        self.key = key
        self.lock = threading.Lock()
        self.reader: StoredRuns | None = None

    def head(self) -> int:
        """The store's sequence number of the newest row read and checked."""
        with self.lock:
            return self.reader.check.head if self.reader is not None else 0

    def __call__(self, left_out: list[str]) -> tuple[list[Run], list[RecordError]]:
        with self.lock:
            try:
                if self.reader is None or self.reader.conn.closed:
                    kept = self.reader
                    self.reader = StoredRuns(open_store(self.store), self.key, slim=True)
                    if kept is not None:  # what was read and checked stays
                        self.reader.check, self.reader.runs = kept.check, kept.runs
                        self.reader.latest, self.reader.ordered = kept.latest, kept.ordered
                        self.reader.left_out = kept.left_out
                runs = list(self.reader.refresh())
            except (psycopg.Error, DrillsError) as exc:
                if self.reader is not None:
                    self.reader.conn.close()
                error = RecordError(str(unreachable(self.store, exc)))
                return list(self.reader.ordered if self.reader else []), [error]
            left_out += self.reader.left_out
            return runs, list(self.reader.problems)


# What the exporter never reads of a run that is not its scenario's latest: most of a record;
# ten thousand whole records would take half a gigabyte.
_BULK = ("events", "timeline", "probes", "disruptions", "lab", "targets", "participants")


def _bulky(run: Run) -> bool:
    return any(getattr(run.record, name) for name in _BULK)


def _slim(run: Run) -> Run:
    empty = {name: type(getattr(run.record, name))() for name in _BULK}
    return replace(run, record=run.record.model_copy(update=empty), stored_history=None)
