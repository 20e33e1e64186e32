"""Evidence: a hash chain per reports directory.

Each record carries the sha256 of the record written before it, of its own history, and a
digest of its own canonical JSON. Everything here works on the JSON data as read or about to be
written, never on a re-serialised model: the digests are over exactly those bytes and keys.
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

CHAIN_LOCK = ".chain.lock"
CHAIN_HEAD = ".chain-head"  # "NAME SEQ" of the record chained last


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def self_digest(record: dict[str, Any]) -> str:
    """sha256 of the record's canonical JSON without its own `self_sha256`."""
    body = {k: v for k, v in record.items() if k != "self_sha256"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _sequence(path: Path) -> int:
    """A record's place in its chain (records chained before numbering count as 0)."""
    try:
        seq = json.loads(path.read_text(encoding="utf-8")).get("chain", {}).get("seq")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return 0
    return seq if isinstance(seq, int) else 0


def chained_files(directory: Path) -> list[Path]:
    """Run records in the order they were written, which is the chain's order: two drills
    that overlap in time finish (and are chained) in the other order from their start."""
    return sorted(record_files(directory), key=lambda p: (_sequence(p), p.name))


def _head(directory: Path) -> tuple[Path | None, int]:
    """The last record chained, and its sequence number: the highest on disk, so that a crash
    between writing a record and updating `.chain-head` cannot fork the chain."""
    files = chained_files(directory)
    return (files[-1], _sequence(files[-1])) if files else (None, 0)


def _head_file(directory: Path) -> tuple[str, int] | None:
    try:
        name, seq = (directory / CHAIN_HEAD).read_text(encoding="utf-8").split()
        return name, int(seq)
    except (OSError, ValueError):
        return None


def write_chained(path: Path, record: dict[str, Any]) -> None:
    """Write `record` (JSON data, as `RunRecord.data()` gives) atomically as the next link of
    its directory's chain: it gets `chain`, with the sha256 of the previous record file and of
    its own history, and `self_sha256`, a digest of itself."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open_lock(path.parent / CHAIN_LOCK) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two drills finishing at once must not fork it
        previous, seq = _head(path.parent)
        history = path.parent / str(record.get("history", ""))
        link = Chain(
            seq=seq + 1,
            previous=previous.name if previous else None,
            previous_sha256=sha256_file(previous) if previous else None,
            history_sha256=sha256_file(history) if history.is_file() else None,
        )
        record["chain"] = link.model_dump(mode="json")
        record["self_sha256"] = self_digest(record)
        write_atomically(path, record_text(record))
        write_atomically(path.parent / CHAIN_HEAD, f"{path.name} {seq + 1}\n")


def verify_chain(directory: Path) -> tuple[int, list[str]]:
    """Check every record and every link; return how many records were checked and the
    problems found, the first broken link first."""
    problems: list[str] = []
    files = chained_files(directory)
    previous: Path | None = None
    for path in files:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append(f"{path}: unreadable: {exc}")
            previous = path
            continue
        chain = record.get("chain") if isinstance(record, dict) else None
        if not isinstance(chain, dict) or "self_sha256" not in record:
            problems.append(f"{path}: not chained (no chain or self_sha256)")
            previous = path
            continue
        if record["self_sha256"] != self_digest(record):
            problems.append(f"{path}: content changed after it was written (self_sha256)")
        expected = previous.name if previous else None
        if chain.get("previous") != expected:
            problems.append(
                f"{path}: broken link: it follows {chain.get('previous')!r}, "
                f"but the record before it is {expected!r} (a record removed or added?)"
            )
        elif previous is not None and chain.get("previous_sha256") != sha256_file(previous):
            problems.append(
                f"{path}: broken link: {previous.name} changed after {path.name} was written"
            )
        history = directory / str(record.get("history", ""))
        if chain.get("history_sha256") is not None:
            if not history.is_file():
                problems.append(f"{path}: its history {history.name} is missing")
            elif sha256_file(history) != chain["history_sha256"]:
                problems.append(f"{path}: its history {history.name} changed")
        previous = path
    head = _head_file(directory)
    if head is not None and files:
        name, seq = head
        last = files[-1]
        if not (directory / name).is_file():
            problems.append(
                f"{directory / name}: the newest record ({CHAIN_HEAD}, #{seq}) is missing "
                "(removed?)"
            )
        elif name != last.name and _sequence(last) <= seq:
            problems.append(f"{last}: {CHAIN_HEAD} says the newest record is {name}")
    return len(files), problems
