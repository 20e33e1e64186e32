"""Checking a reports directory's evidence: every record, every link, every signature, and
the newest record against the head an outside system anchored.

`check_chain` says what is wrong with which record, so that `drills verify` can name every
problem and the readers of records (report, `due`, the exporter) can leave out the records
that fail verification, saying so.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drills.errors import DrillsError
from drills.records.chain import CHAIN_HEAD, intact, parsed, read_head_file, self_digest, seq_in
from drills.records.files import record_files
from drills.records.signing import SigningKey

_ANCHOR = re.compile(r"^(\d+)(?::([0-9a-f]{8,64}))?$")


@dataclass(frozen=True)
class Anchor:
    """The newest record as an outside system saw it: its sequence number, perhaps the start of
    its `self_sha256`. Written `N` or `N:HEX` (`Head.anchor` prints it)."""

    seq: int
    sha256: str | None = None

    @classmethod
    def parse(cls, text: str) -> Anchor:
        found = _ANCHOR.match(text.strip().lower())
        if found is None:
            raise DrillsError(
                f"--expect-head {text!r}: write the sequence number N, or N:SHA256 with at "
                "least 8 hex digits of the record's self_sha256"
            )
        return cls(int(found.group(1)), found.group(2))


@dataclass(frozen=True)
class Head:
    name: str
    seq: int
    self_sha256: str

    @property
    def anchor(self) -> str:
        return f"{self.seq}:{self.self_sha256[:16]}"


@dataclass
class ChainCheck:
    """What `check_chain` found: problems in the order found, and which records they condemn.
    `contents` holds the bytes of each record file as read and checked, once: a reader uses
    these, not the file again, which may have changed since."""

    records: list[Path] = field(default_factory=list)
    contents: dict[Path, bytes] = field(default_factory=dict)  # all but unreadable files
    unreadable: dict[Path, str] = field(default_factory=dict)  # why
    problems: list[str] = field(default_factory=list)
    failing: dict[Path, list[str]] = field(default_factory=dict)
    unsigned: list[Path] = field(default_factory=list)  # no key to check them by, or none
    unchecked: list[Path] = field(default_factory=list)  # signed, but no key to check
    head: Head | None = None
    key: SigningKey | None = None
    unchained: set[str] = field(default_factory=set)  # unreadable, or without a chain

    def fail(self, path: Path, message: str, blame: Path | None = None) -> None:
        self.problems.append(f"{path}: {message}")
        self.failing.setdefault(blame or path, []).append(message)

    def digest(self, path: Path) -> str:
        """sha256 of the record file at `path` as read (`contents`)."""
        return hashlib.sha256(self.contents[path]).hexdigest()

    def why(self, path: Path) -> str | None:
        """Why the record at `path` fails verification, or None when it passes."""
        found = self.failing.get(path)
        return None if not found else "; ".join(found)


_digests: dict[tuple[str, int, int, int, int], str] = {}


def _file_digest(path: Path) -> str:
    """sha256 of a file, remembered while it keeps its inode, size, mtime and ctime (the
    exporter verifies on every scrape, and histories are large). The ctime, which a write or
    a `touch` back to the old mtime moves, catches a file edited in place with its mtime
    restored."""
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _digests:
        if len(_digests) > 4096:
            _digests.clear()
        _digests[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _digests[key]


def _read(raw: bytes | str) -> dict[str, Any] | str:
    if isinstance(raw, str):
        return raw
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"unreadable: {exc}"
    if not isinstance(record, dict) or not isinstance(record.get("chain"), dict):
        return "not chained (no chain or self_sha256)"
    if "self_sha256" not in record:
        return "not chained (no chain or self_sha256)"
    return record


def _links(out: ChainCheck, path: Path, record: dict[str, Any], before: list[Path | None]) -> None:
    """`before`: the record chained before it, then, if that one does not match its own
    digest, the last one that does (the writer passes such files over: `chain_head`)."""
    chain = record["chain"]
    named = chain.get("previous")
    linked = [p for p in before if (p.name if p else None) == named]
    expected = before[0].name if before[0] else None
    if not linked and named in out.unchained:
        out.fail(path, f"broken link: {named} before it is no longer a chained record")
    elif not linked:
        out.fail(
            path,
            f"broken link: it follows {named!r}, "
            f"but the record before it is {expected!r} (a record removed or added?)",
        )
    elif linked[0] is not None and chain.get("previous_sha256") != out.digest(linked[0]):
        changed = f"broken link: {linked[0].name} changed after {path.name} was written"
        out.fail(path, changed, blame=linked[0])
    history = path.parent / str(record.get("history", ""))
    if chain.get("history_sha256") is not None:
        if not history.is_file():
            out.fail(path, f"its history {history.name} is missing")
        elif _file_digest(history) != chain["history_sha256"]:
            out.fail(path, f"its history {history.name} changed")


def _signature(out: ChainCheck, path: Path, record: dict[str, Any]) -> None:
    if out.key is None:
        signed = isinstance(record.get("signature"), dict)
        (out.unchecked if signed else out.unsigned).append(path)
        return
    problem = out.key.problem(record)
    if problem is not None:
        out.fail(path, problem)


def _record(out: ChainCheck, path: Path, before: list[Path | None]) -> dict[str, Any] | None:
    """Check the record at `path`; None when it is not a chained record at all."""
    record = _read(out.contents.get(path, out.unreadable.get(path, "unreadable")))
    if isinstance(record, str):
        out.fail(path, record)
        out.unchained.add(path.name)
        return None
    if record["self_sha256"] != self_digest(record):
        out.fail(path, "content changed after it was written (self_sha256)")
    _links(out, path, record, before)
    _signature(out, path, record)
    out.head = Head(path.name, seq_in(record), str(record["self_sha256"]))
    return record


def _seq(out: ChainCheck, path: Path) -> int:
    raw = out.contents.get(path)
    return seq_in(None if raw is None else parsed(raw))


def _read_files(out: ChainCheck, directory: Path) -> None:
    """Read every record file once, into `out.contents`, and list them in chain order."""
    paths = record_files(directory)
    for path in paths:
        try:
            out.contents[path] = path.read_bytes()
        except OSError as exc:
            out.unreadable[path] = f"unreadable: {exc.strerror}"
    out.records = sorted(paths, key=lambda p: (_seq(out, p), p.name))


def _head_file_agrees(out: ChainCheck, directory: Path) -> None:
    head = read_head_file(directory)
    if head is None or not out.records:
        return
    name, seq = head
    last = out.records[-1]
    if not (directory / name).is_file():
        out.problems.append(
            f"{directory / name}: the newest record ({CHAIN_HEAD}, #{seq}) is missing (removed?)"
        )
    elif name != last.name and _seq(out, last) <= seq:
        out.problems.append(f"{last}: {CHAIN_HEAD} says the newest record is {name}")


def _anchored(out: ChainCheck, directory: Path, anchor: Anchor) -> None:
    newest = out.head.seq if out.head else 0
    if newest < anchor.seq:
        out.problems.append(
            f"{directory}: the chain ends at #{newest}, but #{anchor.seq} was anchored as its "
            "head: the newest records were removed (with .chain-head)"
        )
        return
    named = [p for p in out.records if _seq(out, p) == anchor.seq]
    if not named:
        out.problems.append(f"{directory}: no record #{anchor.seq}, which was anchored")
        return
    record = _read(out.contents.get(named[0], ""))
    digest = str(record.get("self_sha256", "")) if isinstance(record, dict) else ""
    if anchor.sha256 is not None and not digest.startswith(anchor.sha256):
        out.fail(named[0], f"it is #{anchor.seq}, but not the record anchored ({anchor.sha256})")


def check_chain(
    directory: Path, key: SigningKey | None = None, expect_head: Anchor | None = None
) -> ChainCheck:
    """Check every record and every link (and with `key`, every signature: an unsigned record
    is then a problem); the first broken link first."""
    out = ChainCheck(key=key)
    _read_files(out, directory)
    previous: Path | None = None
    last_intact: Path | None = None
    for path in out.records:
        before = [previous] if previous == last_intact else [previous, last_intact]
        record = _record(out, path, before)
        if record is not None:  # a file slipped in unchained breaks no genuine record's link
            previous = path
            last_intact = path if intact(record) else last_intact
    _head_file_agrees(out, directory)
    if expect_head is not None:
        _anchored(out, directory, expect_head)
    return out


def verify_chain(directory: Path) -> tuple[int, list[str]]:
    """How many records were checked and the problems found (no signatures checked)."""
    found = check_chain(directory)
    return len(found.records), found.problems
