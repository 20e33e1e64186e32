"""Inserting run records into the store's chain.

Each row is a link: its `seq` is assigned inside the inserting transaction, under a lock every
runner takes, as one more than the last (no gap, no two runners with the same number); its
`link_sha256` digests its seq, the link before it, the record's bytes and its history's
(uncompressed and as stored). The record's bytes are kept exactly as its file has them, so
its own `self_sha256` and signature stay checkable. Inserting the same record again adds
nothing.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import psycopg

from drills.errors import RecordError
from drills.records.store import parse_record, record_data
from drills.store.schema import CHAIN_LOCK


@dataclass(frozen=True)
class Stored:
    seq: int
    new: bool  # False: the same record was in the store already


def sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def as_bytes(value: object) -> bytes:
    """A bytea value as psycopg gives it."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"not bytes: {type(value).__name__}")


def link_digest(
    seq: int,
    previous: str | None,
    record_sha256: str,
    history_sha256: str | None,
    history_zsha256: str | None,
) -> str:
    parts = (str(seq), previous or "", record_sha256, history_sha256 or "", history_zsha256 or "")
    return sha256("\n".join(parts).encode())


def read_files(record_path: Path) -> tuple[bytes, bytes | None]:
    """A valid record file's bytes and its history's (None when it names none). The history is
    a file beside the record, by a plain name, not through a symbolic link: a record from an
    untrusted directory cannot make drills read another file."""
    try:
        raw = record_path.read_bytes()
    except OSError as exc:
        raise RecordError(f"{record_path}: cannot read: {exc.strerror}") from exc
    record = parse_record(record_data(raw, record_path), record_path)
    name = record.history
    if not name:
        return raw, None
    if "/" in name or name.startswith(".") or "\0" in name:
        raise RecordError(f"{record_path}: its history {name!r} is not a file name")
    history = record_path.parent / name
    try:
        fd = os.open(history, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as file:
            return raw, file.read()
    except FileNotFoundError:
        if record.chain is None or record.chain.history_sha256 is None:
            return raw, None  # there was none when the record was written either
        raise RecordError(f"{history}: the record's history is missing") from None
    except OSError as exc:
        raise RecordError(f"{history}: cannot read the record's history: {exc.strerror}") from exc


def insert_run(
    conn: psycopg.Connection[tuple[object, ...]],
    record: bytes,
    history: bytes | None,
    name: str,
) -> Stored:
    """Insert a record (its file's bytes, `name` its file name) and its history."""
    data = record_data(record, Path(name))
    record_sha = sha256(record)
    compressed = zlib.compress(history, 6) if history is not None else None
    history_sha = sha256(history) if history is not None else None
    zsha = sha256(compressed) if compressed is not None else None
    host = data.get("host")
    runner = str(host.get("hostname") or "") if isinstance(host, dict) else ""
    scenario = data.get("scenario")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (CHAIN_LOCK,))
        found = conn.execute(
            "SELECT seq FROM drills_runs WHERE record_sha256 = %s", (record_sha,)
        ).fetchone()
        if found is not None:
            return Stored(int(str(found[0])), False)
        last = conn.execute(
            "SELECT seq, link_sha256 FROM drills_runs ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq = int(str(last[0])) + 1 if last else 1
        previous = str(last[1]) if last else None
        conn.execute(
            "INSERT INTO drills_runs (seq, run_id, runner, name, scenario, verdict, started_at,"
            " finished_at, record, record_sha256, history_name, history, history_sha256,"
            " history_zsha256, previous_link, link_sha256) VALUES (%s, %s, %s, %s, %s, %s,"
            " %s::timestamptz, nullif(%s, '')::timestamptz, %s, %s, %s, %s, %s, %s, %s, %s)",
            (
                seq,
                str(data.get("run_id") or ""),
                runner,
                name,
                str(scenario.get("name") or "") if isinstance(scenario, dict) else "",
                str(data.get("verdict") or ""),
                str(data.get("started_at") or ""),
                str(data.get("finished_at") or ""),
                record,
                record_sha,
                str(data.get("history") or ""),
                compressed,
                history_sha,
                zsha,
                previous,
                link_digest(seq, previous, record_sha, history_sha, zsha),
            ),
        )
    return Stored(seq, True)
