"""The history of a drill: every probe operation and every step, on a monotonic clock.

Times are integer nanoseconds from `time.monotonic_ns`; `Clock.wall_ns` turns one into
wall-clock time through the anchor taken when the drill started.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from drills.errors import PathError, RecordError
from drills.files import fsync_dir, open_new_nofollow, os_error_text, write_all

# Detail of a sample whose probe raised: a bug in the harness, not evidence about the target.
CRASHED = "probe crashed: "


class Outcome(StrEnum):
    OK = "ok"  # it happened
    FAIL = "fail"  # it certainly did not happen
    UNKNOWN = "unknown"  # it may have happened (timeout, connection lost mid-commit)


@dataclass(frozen=True)
class Clock:
    """Anchor pairing the monotonic clock with wall-clock time."""

    mono_ns: int
    wall_ns: int

    @classmethod
    def now(cls) -> Clock:
        return cls(mono_ns=time.monotonic_ns(), wall_ns=time.time_ns())

    def wall_ns_at(self, mono_ns: int) -> int:
        return self.wall_ns + (mono_ns - self.mono_ns)


@dataclass(frozen=True, slots=True)
class Op:
    """One probe sample. `invoke_ns` is the time the sample was due (open loop)."""

    probe: str
    seq: int
    invoke_ns: int
    complete_ns: int
    outcome: Outcome
    wall_ns: int = 0
    detail: str = ""
    values: dict[str, float] | None = None
    tags: dict[str, str] | None = None  # e.g. the site that served a request
    issued_ns: int | None = None  # when the harness really issued it (None: it never did)
    late: str = ""  # why the harness was too late for it to count (drills.lateness)

    @property
    def crashed(self) -> bool:
        return self.detail.startswith(CRASHED)

    @property
    def counted(self) -> bool:
        """Whether it says anything about the target: its probe did not crash and the
        harness was not late for it."""
        return not self.late and not self.crashed

    @property
    def latency_s(self) -> float:
        return (self.complete_ns - self.invoke_ns) / 1e9


@dataclass(frozen=True)
class StepEvent:
    index: int
    kind: str
    description: str
    start_ns: int
    end_ns: int
    disruptive: bool
    ok: bool = True
    detail: str = ""
    name: str = ""  # the scenario's name for the step, if it has one
    facts: dict[str, Any] = field(default_factory=dict)  # what the step found out


@dataclass(frozen=True)
class FinalRead:
    """What one final read on the surviving primary found: write id -> number of rows."""

    probe: str
    at_ns: int
    ok: bool
    counts: dict[int, int] = field(default_factory=dict)
    detail: str = ""


@dataclass(frozen=True)
class Event:
    """Something a fault driver did, at the monotonic time it took effect (a link went down)."""

    source: str
    subject: str
    change: str
    at_ns: int


@dataclass(frozen=True)
class ProbeInfo:
    name: str
    kind: str
    interval_s: float
    timeout_s: float
    slow_s: float
    started_ns: int
    stopped_ns: int
    skipped: int = 0  # due samples the harness itself was too late to issue


@dataclass
class History:
    clock: Clock
    ops: list[Op] = field(default_factory=list)
    steps: list[StepEvent] = field(default_factory=list)
    final_reads: list[FinalRead] = field(default_factory=list)
    probes: list[ProbeInfo] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)

    def ops_of(self, probe: str) -> list[Op]:
        return sorted((op for op in self.ops if op.probe == probe), key=lambda op: op.seq)

    def probe(self, name: str) -> ProbeInfo | None:
        return next((p for p in self.probes if p.name == name), None)

    def final_read(self, probe: str) -> FinalRead | None:
        return next((f for f in self.final_reads if f.probe == probe), None)


class HistoryLog:
    """Thread-safe collector that also streams each entry to a JSON Lines file as it happens.

    The file is created new, never through a symlink (`open_new_nofollow`), and written a line
    at a time. With `keep_ops=False` (a drill's own history) samples go to the file only, so
    memory does not grow while a long run samples; `read()` loads them back, once, after
    `close`. When a write fails (a full disk) the file is cut back to its last whole line and
    nothing more is recorded, in memory either: the history in memory is the file's. The
    failure is kept in `failure` and `on_failure` is told once; past it the drill cannot be
    judged, and no sample it could not record turns into a failure of the service.
    """

    def __init__(
        self,
        clock: Clock,
        path: Path | None = None,
        redact: Callable[[str], str] = str,
        on_failure: Callable[[str], None] | None = None,
        keep_ops: bool = True,
    ) -> None:
        self.redact = redact  # secrets never reach the history
        self.history = History(clock=clock)
        self.path = path
        self.keep_ops = keep_ops or path is None
        self.on_failure = on_failure
        self.failure: str | None = None
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0  # bytes of whole lines written
        self._identity = (0, 0)  # device and inode of the file created
        if path is not None:
            self._fd = _create(path)
            status = os.fstat(self._fd)
            self._identity = (status.st_dev, status.st_ino)
            self._record({"type": "clock", **asdict(clock)}, lambda: None)
            if self.failure is not None:
                raise RecordError(self.failure)

    def _record(self, entry: dict[str, Any], keep: Callable[[], None]) -> None:
        """Write `entry`'s line, then `keep` it in memory; after a failure, do neither."""
        with self._lock:
            if self.failure is not None:
                return
            try:
                self._write(entry)
            except OSError as exc:
                reason = f"cannot write the history {self.path}: {os_error_text(exc)}"
                self._stop(reason)
            else:
                keep()
                return
        if self.on_failure is not None:
            self.on_failure(reason)

    def _write(self, entry: dict[str, Any]) -> None:
        if self._fd is not None:
            line = (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
            write_all(self._fd, line)
            self._size += len(line)

    def _stop(self, reason: str) -> bool:
        """Under the lock: record nothing more; False if already stopped."""
        if self.failure is not None:
            return False
        self.failure = reason
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)  # no half line at the end
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
        return True

    def fail(self, reason: str) -> None:
        """The harness itself failed (a bug recording a sample): stop recording, as for a
        write error, and tell `on_failure` if this is the first failure."""
        with self._lock:
            first = self._stop(reason)
        if first and self.on_failure is not None:
            self.on_failure(reason)

    def add_op(self, op: Op) -> None:
        if op.detail:
            op = replace(op, detail=self.redact(op.detail))
        self._record(_op_entry(op), self._keeper(op))

    def _keeper(self, op: Op) -> Callable[[], None]:
        return (lambda: self.history.ops.append(op)) if self.keep_ops else _nothing

    def add_step(self, step: StepEvent) -> None:
        step = replace(
            step,
            description=self.redact(step.description),
            detail=self.redact(step.detail),
            facts=_redacted(step.facts, self.redact),
        )
        self._record({"type": "step", **asdict(step)}, lambda: self.history.steps.append(step))

    def add_final_read(self, final: FinalRead) -> None:
        final = replace(final, detail=self.redact(final.detail))
        entry = asdict(final)
        entry["counts"] = {str(k): v for k, v in final.counts.items()}
        self._record(
            {"type": "final-read", **entry}, lambda: self.history.final_reads.append(final)
        )

    def add_probe(self, info: ProbeInfo) -> None:
        self._record({"type": "probe", **asdict(info)}, lambda: self.history.probes.append(info))

    def add_event(self, event: Event) -> None:
        event = replace(event, change=self.redact(event.change))
        self._record({"type": "event", **asdict(event)}, lambda: self.history.events.append(event))

    def read(self) -> History:
        """The whole history: the one in memory, or, when samples went to the file only, the
        file read back (after `close`)."""
        if self.keep_ops or self.path is None:
            return self.history
        if self._fd is not None:
            raise RecordError(f"{self.path}: read before the history was closed")
        from drills.history_file import read_back  # it builds on this module

        return read_back(self.path, self._identity)

    def close(self) -> None:
        """Flush the file to disk (fsync, and its directory entry): a record pins its hash."""
        with self._lock:
            if self._fd is None:
                return
            fd, self._fd = self._fd, None
            try:
                os.fsync(fd)
            except OSError as exc:
                self.failure = self.failure or (
                    f"cannot write the history {self.path}: {os_error_text(exc)}"
                )
            finally:
                os.close(fd)
        if self.path is not None and self.failure is None:
            fsync_dir(self.path.parent)


def _nothing() -> None:
    pass


def _op_entry(op: Op) -> dict[str, Any]:
    """`asdict` by hand: it deep-copies every field, a tenth of the harness's CPU per sample."""
    return {
        "type": "op",
        "probe": op.probe,
        "seq": op.seq,
        "invoke_ns": op.invoke_ns,
        "complete_ns": op.complete_ns,
        "outcome": op.outcome,
        "wall_ns": op.wall_ns,
        "detail": op.detail,
        "values": op.values,
        "tags": op.tags,
        "issued_ns": op.issued_ns,
        "late": op.late,
    }


def _create(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return open_new_nofollow(path)
    except FileExistsError:
        if path.is_symlink():
            raise PathError(
                f"{path}: a symbolic link where the history is to be written: not followed"
            ) from None
        raise  # taken: the caller picks another name
    except OSError as exc:
        raise RecordError(f"cannot create the history {path}: {os_error_text(exc)}") from exc


def open_history(
    directory: Path, run_id: str, clock: Clock, redact: Callable[[str], str] = str
) -> tuple[str, HistoryLog]:
    """Reserve a run id by creating its history file exclusively: `run_id`, or `run_id-2`,
    `-3`... when the same scenario started twice within a second."""
    for number in itertools.count(1):
        name = run_id if number == 1 else f"{run_id}-{number}"
        try:
            path = directory / f"{name}.history.jsonl"
            return name, HistoryLog(clock, path, redact, keep_ops=False)
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item, redact) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, redact) for item in value]
    return value
