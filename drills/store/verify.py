"""Checking the store's chain, a row at a time: no gap in the sequence, every link, every
record against its own digest and signature, every history against what its row and record
say.

Readers (report, `due`, `show`, the exporter) check every row this way, the history by the
digest of its stored bytes, which the database computes; `drills verify --store` also
decompresses every history and checks it against the digest its (signed) record names.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from drills.records.chain import self_digest
from drills.records.signing import SigningKey
from drills.store.chain import as_bytes, link_digest, sha256

# What a row is read with, in this order (`Row`).
COLUMNS = (
    "seq, name, record, record_sha256, history_sha256, history_zsha256,"
    " encode(sha256(history), 'hex'), previous_link, link_sha256, runner"
)


@dataclass(frozen=True)
class Row:
    seq: int
    name: str
    record: bytes
    record_sha256: str
    history_sha256: str | None
    history_zsha256: str | None
    stored_zsha256: str | None  # computed by the database from the bytes stored
    previous_link: str | None
    link_sha256: str
    runner: str

    @classmethod
    def of(cls, values: tuple[Any, ...]) -> Row:
        seq, name, record, record_sha, history_sha, zsha, stored, previous, link, runner = values
        return cls(
            int(seq),
            str(name),
            as_bytes(record),
            str(record_sha),
            None if history_sha is None else str(history_sha),
            None if zsha is None else str(zsha),
            None if stored is None else str(stored),
            None if previous is None else str(previous),
            str(link),
            str(runner),
        )

    @property
    def label(self) -> str:
        return f"store #{self.seq} {self.name} (from {self.runner or 'an unknown runner'})"


@dataclass
class StoreCheck:
    """Where the chain has got to, and what was wrong on the way."""

    key: SigningKey | None = None
    checked: int = 0
    next_seq: int = 1
    last_link: str | None = None
    problems: list[str] = field(default_factory=list)
    unsigned: int = 0
    unchecked: int = 0  # signed, but no key to check by

    @property
    def head(self) -> int:
        return self.next_seq - 1


def _record(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _links(state: StoreCheck, row: Row) -> list[str]:
    found = []
    if row.seq != state.next_seq:
        found.append(f"the sequence jumps from #{state.head} to #{row.seq} (rows removed?)")
    if row.previous_link != state.last_link:
        found.append(f"broken link: the row before it is not the one it follows (#{state.head})")
    digest = link_digest(
        row.seq, row.previous_link, row.record_sha256, row.history_sha256, row.history_zsha256
    )
    if digest != row.link_sha256:
        found.append("its row changed after it was stored (link_sha256)")
    if sha256(row.record) != row.record_sha256:
        found.append("the record changed after it was stored (record_sha256)")
    if row.stored_zsha256 != row.history_zsha256:
        found.append("its history changed after it was stored")
    return found


def _evidence(state: StoreCheck, record: dict[str, Any], row: Row) -> list[str]:
    found = []
    if record.get("self_sha256") != self_digest(record):
        found.append("content changed after it was written (self_sha256)")
    chain = record.get("chain")
    named = chain.get("history_sha256") if isinstance(chain, dict) else None
    if named is not None and named != row.history_sha256:
        found.append("its history is not the one the record names (history_sha256)")
    if state.key is None:
        if isinstance(record.get("signature"), dict):
            state.unchecked += 1
        else:
            state.unsigned += 1
    else:
        problem = state.key.problem(record)
        if problem is not None:
            found.append(problem)
    return found


def check_row(state: StoreCheck, row: Row) -> tuple[dict[str, Any] | None, list[str]]:
    """Check `row` as the next link after `state`, and move `state` past it: the record's
    data (None when its bytes are not a JSON object) and what is wrong with it."""
    found = _links(state, row)
    record = _record(row.record)
    if record is None:
        found.append("not a JSON record")
    else:
        found += _evidence(state, record, row)
    state.checked += 1
    state.next_seq = row.seq + 1
    state.last_link = row.link_sha256
    state.problems += [f"{row.label}: {problem}" for problem in found]
    return record, found


def history_problem(row: Row, compressed: bytes | None) -> str | None:
    """Whether the history's stored bytes give back the history its row names."""
    if compressed is None:
        return None if row.history_sha256 is None else "its history is missing"
    try:
        text = zlib.decompress(compressed)
    except zlib.error:
        return "its history cannot be decompressed"
    return None if sha256(text) == row.history_sha256 else "its history changed"


def check_all(rows: Iterable[tuple[Row, bytes | None]], key: SigningKey | None) -> StoreCheck:
    """Every row with its stored history, as `drills verify --store` does."""
    state = StoreCheck(key=key)
    for row, compressed in rows:
        check_row(state, row)
        problem = history_problem(row, compressed)
        if problem is not None:
            state.problems.append(f"{row.label}: {problem}")
    return state
