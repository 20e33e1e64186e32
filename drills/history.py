"""The history of a drill: every probe operation and every step, on a monotonic clock.

Times are integer nanoseconds from `time.monotonic_ns`; `Clock.wall_ns` turns one into
wall-clock time through the anchor taken when the drill started.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from drills.errors import RecordError

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


@dataclass(frozen=True)
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

    @property
    def crashed(self) -> bool:
        return self.detail.startswith(CRASHED)

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
    """Thread-safe collector that also streams each entry to a JSON Lines file as it happens."""

    def __init__(
        self, clock: Clock, path: Path | None = None, redact: Callable[[str], str] = str
    ) -> None:
        self.redact = redact  # secrets never reach the history
        self.history = History(clock=clock)
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("w", encoding="utf-8")
            self._write({"type": "clock", **asdict(clock)})

    def _write(self, entry: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def add_op(self, op: Op) -> None:
        if op.detail:
            op = replace(op, detail=self.redact(op.detail))
        with self._lock:
            self.history.ops.append(op)
            self._write({"type": "op", **asdict(op)})

    def add_step(self, step: StepEvent) -> None:
        step = replace(
            step,
            description=self.redact(step.description),
            detail=self.redact(step.detail),
            facts=_redacted(step.facts, self.redact),
        )
        with self._lock:
            self.history.steps.append(step)
            self._write({"type": "step", **asdict(step)})

    def add_final_read(self, final: FinalRead) -> None:
        final = replace(final, detail=self.redact(final.detail))
        with self._lock:
            self.history.final_reads.append(final)
            entry = asdict(final)
            entry["counts"] = {str(k): v for k, v in final.counts.items()}
            self._write({"type": "final-read", **entry})

    def add_probe(self, info: ProbeInfo) -> None:
        with self._lock:
            self.history.probes.append(info)
            self._write({"type": "probe", **asdict(info)})

    def add_event(self, event: Event) -> None:
        event = replace(event, change=self.redact(event.change))
        with self._lock:
            self.history.events.append(event)
            self._write({"type": "event", **asdict(event)})

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()
                self._file.close()
                self._file = None


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item, redact) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, redact) for item in value]
    return value


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


def load_history(path: Path) -> History:
    """Read a history written by `HistoryLog`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecordError(f"{path}: cannot read history: {exc.strerror}") from exc
    history: History | None = None
    for number, entry in _entries(text.splitlines(), str(path)):
        kind = entry.pop("type")
        try:
            if kind == "clock":
                history = History(clock=Clock(**entry))
                continue
            if history is None:
                raise RecordError(f"{path}:{number}: history does not start with its clock")
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
                raise RecordError(f"{path}:{number}: unknown entry type {kind!r}")
        except (TypeError, ValueError, KeyError) as exc:
            raise RecordError(f"{path}:{number}: malformed {kind} entry: {exc}") from exc
    if history is None:
        raise RecordError(f"{path}: empty history")
    return history
