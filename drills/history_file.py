"""Reading a history file back, a line at a time: a long run's samples are held once, as the
`Op`s the checker reads, never also as the file's text."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from drills.errors import RecordError
from drills.history import Clock, Event, FinalRead, History, Op, Outcome, ProbeInfo, StepEvent


def load_history(path: Path) -> History:
    """Read a history written by `HistoryLog`."""
    try:
        with path.open(encoding="utf-8") as stream:
            return _parsed(stream, str(path))
    except OSError as exc:
        raise RecordError(f"{path}: cannot read history: {exc.strerror}") from exc


def parse_history(text: str, source: str) -> History:
    """A history from its text (a stored copy), `source` naming it in errors."""
    return _parsed(text.splitlines(), source)


def read_back(path: Path, identity: tuple[int, int]) -> History:
    """Read the history a drill wrote, from the very file it created (`identity`: its device
    and inode): a file put in its place during the run, or a link, is refused."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise RecordError(f"{path}: cannot read history: {exc.strerror}") from exc
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode) or (status.st_dev, status.st_ino) != identity:
            raise RecordError(f"{path}: not the history this drill wrote: it was replaced")
        stream: IO[str] = os.fdopen(fd, encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise
    try:
        with stream:
            return _parsed(stream, str(path))
    except OSError as exc:
        raise RecordError(f"{path}: cannot read history: {exc.strerror}") from exc


def _entries(lines: Iterable[str], source: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{source}:{number}: not JSON: {exc.msg}") from exc
        if not isinstance(entry, dict) or "type" not in entry:
            raise RecordError(f"{source}:{number}: an entry needs a 'type'")
        yield number, entry


def _parsed(lines: Iterable[str], source: str) -> History:
    history: History | None = None
    for number, entry in _entries(lines, source):
        kind = entry.pop("type")
        try:
            if kind == "clock":
                history = History(clock=Clock(**entry))
                continue
            if history is None:
                raise RecordError(f"{source}:{number}: history does not start with its clock")
            _add(history, kind, entry, f"{source}:{number}")
        except (TypeError, ValueError, KeyError) as exc:
            raise RecordError(f"{source}:{number}: malformed {kind} entry: {exc}") from exc
    if history is None:
        raise RecordError(f"{source}: empty history")
    return history


def _add(history: History, kind: str, entry: dict[str, Any], where: str) -> None:
    if kind == "op":
        entry["outcome"] = Outcome(entry["outcome"])
        history.ops.append(Op(**entry))
    elif kind == "step":
        history.steps.append(StepEvent(**entry))
    elif kind == "final-read":
        entry["counts"] = {int(k): int(v) for k, v in entry["counts"].items()}
        history.final_reads.append(FinalRead(**entry))
    elif kind == "probe":
        history.probes.append(ProbeInfo(**entry))
    elif kind == "event":
        history.events.append(Event(**entry))
    else:
        raise RecordError(f"{where}: unknown entry type {kind!r}")
