"""Evidence: a hash chain per reports directory, its records signed when a key is given.

Each record carries the sha256 of the record written before it, of its own history, and a
digest of its own canonical JSON; with a signing key (`signing`), an HMAC over all of that.
Everything here works on the JSON data as read or about to be written, never on a re-serialised
model: the digests are over exactly those bytes and keys.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from pathlib import Path
from typing import Any

from drills.files import open_lock, write_atomically
from drills.records.files import record_files, record_text
from drills.records.model import Chain
from drills.records.signing import SigningKey, canonical

CHAIN_LOCK = ".chain.lock"
CHAIN_HEAD = ".chain-head"  # "NAME SEQ" of the record chained last


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def self_digest(record: dict[str, Any]) -> str:
    """sha256 of the record's canonical JSON without its own `self_sha256` and `signature`."""
    return hashlib.sha256(canonical(record, ("self_sha256", "signature"))).hexdigest()


def parsed(raw: bytes) -> dict[str, Any] | None:
    """A record file's JSON object, or None when it is not one."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def seq_in(record: dict[str, Any] | None) -> int:
    """A record's place in its chain (records chained before numbering count as 0)."""
    chain = record.get("chain") if record is not None else None
    seq = chain.get("seq") if isinstance(chain, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else 0


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return parsed(path.read_bytes())
    except OSError:
        return None


def sequence_of(path: Path) -> int:
    """The place in its chain of the record at `path` (`seq_in`)."""
    return seq_in(_read(path))


def intact(record: dict[str, Any] | None) -> bool:
    """Whether the record matches its own `self_sha256`: a file that does not (junk, or a
    record changed since it was written) proves nothing by its `chain.seq`."""
    return record is not None and record.get("self_sha256") == self_digest(record)


def chained_files(directory: Path) -> list[Path]:
    """Run records in the order they were written, which is the chain's order: two drills
    that overlap in time finish (and are chained) in the other order from their start."""
    return sorted(record_files(directory), key=lambda p: (sequence_of(p), p.name))


def chain_head(directory: Path) -> tuple[Path | None, int]:
    """The last record chained, and its sequence number: the highest on disk, so that a crash
    between writing a record and updating `.chain-head` cannot fork the chain. A file that does
    not match its own `self_sha256` is passed over (`intact`): a planted
    `{"chain": {"seq": 1000000000}}` does not become the record every later one follows."""
    for path in reversed(chained_files(directory)):
        record = _read(path)
        if intact(record):
            return path, seq_in(record)
    return None, 0


def read_head_file(directory: Path) -> tuple[str, int] | None:
    try:
        name, seq = (directory / CHAIN_HEAD).read_text(encoding="utf-8").split()
        return name, int(seq)
    except (OSError, ValueError):
        return None


def write_chained(path: Path, record: dict[str, Any], key: SigningKey | None = None) -> None:
    """Write `record` (JSON data, as `RunRecord.data()` gives) atomically as the next link of
    its directory's chain: it gets `chain`, with the sha256 of the previous record file and of
    its own history, `self_sha256`, a digest of itself, and with a `key`, its `signature`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_lock(path.parent / CHAIN_LOCK) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two drills finishing at once must not fork it
        previous, seq = chain_head(path.parent)
        history = path.parent / str(record.get("history", ""))
        link = Chain(
            seq=seq + 1,
            previous=previous.name if previous else None,
            previous_sha256=sha256_file(previous) if previous else None,
            history_sha256=sha256_file(history) if history.is_file() else None,
        )
        record["chain"] = link.model_dump(mode="json")
        record["self_sha256"] = self_digest(record)
        if key is not None:
            record["signature"] = key.signature(record)
        write_atomically(path, record_text(record))
        write_atomically(path.parent / CHAIN_HEAD, f"{path.name} {seq + 1}\n")
