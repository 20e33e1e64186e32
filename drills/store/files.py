"""`drills store import` and `export`: record files into the store and back.

Import takes a reports directory's records in the order of their chain, each with its history;
a record already in the store (the same bytes) is passed over, so importing twice adds nothing.
Export writes every stored record and its history, byte for byte, to DIR/<runner>/, one
directory per host that ran them: each is a reports directory again, its own chain intact.
An existing file with other content is never overwritten.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from drills.errors import DrillsError, RecordError
from drills.files import write_atomically
from drills.records.chain import chained_files
from drills.store.chain import as_bytes, insert_run, read_files

Conn = psycopg.Connection[tuple[object, ...]]
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class Moved:
    added: int = 0
    present: int = 0
    problems: list[str] = field(default_factory=list)


def import_dir(conn: Conn, directory: Path) -> Moved:
    if not directory.is_dir():
        raise DrillsError(f"{directory}: no such directory")
    out = Moved()
    for path in chained_files(directory):
        try:
            raw, history = read_files(path)
            stored = insert_run(conn, raw, history, path.name)
        except RecordError as exc:
            out.problems.append(str(exc))
            continue
        except psycopg.DataError as exc:  # a value the store's columns refuse
            out.problems.append(f"{path}: not stored: {str(exc).strip().splitlines()[0]}")
            continue
        if stored.new:
            out.added += 1
        else:
            out.present += 1
    return out


def _safe(name: str, what: str) -> str:
    cleaned = _SAFE.sub("_", name).lstrip(".")
    if not cleaned:
        raise DrillsError(f"a stored {what} has no usable file name: {name!r}")
    return cleaned


def _write(path: Path, content: bytes, out: Moved) -> bool:
    """Write `content` at `path` unless it is there already; False when other bytes are."""
    if path.exists():
        if path.read_bytes() == content:
            return True
        out.problems.append(f"{path}: exists with other content: not overwritten")
        return False
    write_atomically(path, content.decode("utf-8"), mode=0o644)
    return True


def export_dir(conn: Conn, directory: Path) -> Moved:
    out = Moved()
    rows = conn.execute(
        "SELECT seq, runner, name, record, history_name, history FROM drills_runs ORDER BY seq"
    )
    for seq, runner, name, record, history_name, history in rows:
        into = directory / _safe(str(runner) or "unknown-runner", "runner")
        fresh = not (into / _safe(str(name), "record")).exists()
        if history is not None and history_name:
            try:
                text = zlib.decompress(as_bytes(history))
                if not _write(into / _safe(str(history_name), "history"), text, out):
                    continue
            except (zlib.error, UnicodeDecodeError, OSError) as exc:
                out.problems.append(f"store #{seq}: its history not written: {exc}")
                continue
        try:
            written = _write(into / _safe(str(name), "record"), as_bytes(record), out)
        except (UnicodeDecodeError, OSError) as exc:
            out.problems.append(f"store #{seq}: not written: {exc}")
            continue
        if not written:
            out.problems[-1] += f" (store #{seq})"
            continue
        out.added += fresh
        out.present += not fresh
    return out
