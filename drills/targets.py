"""Targets: the things faults act on. A small required interface (a name) plus optional
abilities (drills/abilities.py), which a target has by having their methods.

Processes you run are found by pid file; which abilities such a target has follows from its
spec (`start:` to restart, `dsn:` to promote), through the class `process_target_class` picks.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from signal import Signals
from typing import Any, Literal, Protocol, Self, TypeVar, runtime_checkable

import psycopg

from drills.abilities import Injection
from drills.childenv import child_environ
from drills.errors import TargetError
from drills.journal import JOURNAL, JournalEntry, Recovery
from drills.pidfile import StalePidFile, resolve
from drills.proctree import (
    Identity,
    alive,
    descendant_identities,
    executable,
    identify,
    refusal,
    signal_identities,
    signal_tree,
    start_time,
)

T = TypeVar("T")


class Target(Protocol):
    name: str


@runtime_checkable
class Resolving(Protocol):
    """A target named by a role (the leader, a replica): which node that is is read when a
    step acts on it, not when the drill starts."""

    def resolve(self) -> tuple[str, Target]:
        """The node the role names now: its name and its target."""
        ...


def same_process(pid: int, started: int | None, exe: str | None = None) -> bool:
    """`pid` is still the process that was recorded (not a reused pid)."""
    return (
        alive(pid)
        and (started is None or start_time(pid) == started)
        and (exe is None or executable(pid) == exe)
    )


class ProcessTreeEntry(JournalEntry):
    """A change to a process tree, identified by its root's pid, start time and executable:
    `drills recover` acts only on that very process and the processes below it."""

    pid: int
    start: int | None = None
    exe: str | None = None

    @classmethod
    def of(cls, process: Identity, **fields: Any) -> Self:
        return cls(pid=process.pid, start=process.start, exe=process.exe, **fields)

    def problem(self) -> str | None:
        if self.start is None or not self.exe:
            return f"pid {self.pid} recorded without its start time and executable"
        reason = refusal(self.pid)
        return None if reason is None else f"pid {self.pid} is {reason}"

    def live_tree(self) -> list[Identity] | None:
        """The root and its descendants; None when the root is gone or is another process."""
        if self.start is None:
            return None
        root = Identity(self.pid, self.start, self.exe)
        if identify(self.pid) != root:
            return None
        return [root, *descendant_identities(root)]

    def left_alone(self) -> str | None:
        """What recovery says of a root that is not the process recorded."""
        if not alive(self.pid):
            return None
        return f"left pid {self.pid} alone: it is not the process the journal recorded"


@JOURNAL.register("pause")
class ProcessPause(ProcessTreeEntry):
    """A process tree stopped with SIGSTOP; recovered by resuming it."""

    op: Literal["pause"] = "pause"
    target: str | None = None

    def undo(self, recovery: Recovery) -> str | None:
        processes = self.live_tree()
        if processes is None:
            return self.left_alone()
        signal_identities(reversed(processes), signal.SIGCONT)
        return f"resumed {self.target or self.pid} ({len(processes)} processes)"


class ProcessTree:
    """The signal ability of a target that is a tree of local processes: `pid` names its root,
    `signal` signals every process of the tree."""

    name: str

    def pid(self) -> int:
        raise NotImplementedError

    def identity(self) -> Identity:
        """The root process as it is now, identified; TargetError when it is not running."""
        pid = self.pid()
        process = identify(pid)
        if process is None:
            raise TargetError(f"{self.name}: process {pid} is not running")
        return process

    def signal(self, sig: signal.Signals, sent: list[int] | None = None) -> list[int]:
        """Signal the target's processes; return the pids signalled, also appending each to
        `sent` as soon as it is signalled."""
        return signal_tree(self.identity(), sig, sent)

    def send(self, sig: Signals) -> str:
        return f"{sig.name} sent to {len(self.signal(sig))} processes"

    def pausing(self, called: str) -> Injection:
        root = self.identity()
        stopped: list[int] = []
        frozen: dict[int, Identity | None] = {}

        def make() -> str:
            try:
                self.signal(signal.SIGSTOP, stopped)
            finally:
                # A stopped process cannot exit or exec: identified now, it is identified
                # until it is resumed, which is then only sent to that same process.
                frozen.update((pid, identify(pid)) for pid in stopped if pid not in frozen)
            return f"SIGSTOP sent to {len(stopped)} processes"

        def undo() -> None:
            processes = (frozen[pid] if pid in frozen else identify(pid) for pid in stopped)
            signal_identities(reversed([p for p in processes if p is not None]), signal.SIGCONT)

        # The undo sees the list grow, so that an interrupt or an error half-way through
        # still resumes what was stopped: children first.
        return Injection(ProcessPause.of(root, target=called), make, undo, f"resume {called}")

    def resume(self) -> str:
        return f"SIGCONT sent to {len(self.signal(signal.SIGCONT))} processes"


def signal_name(value: str) -> str:
    """`term`, `TERM` and `SIGTERM` all name SIGTERM."""
    name = value.upper() if value.upper().startswith("SIG") else "SIG" + value.upper()
    if name not in signal.Signals.__members__:
        raise ValueError(f"unknown signal {value!r}")
    return name


def promote_postgres(dsn: str, timeout_s: float, name: str) -> None:
    """Promote a PostgreSQL standby and wait until it accepts writes."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=max(2, int(timeout_s))) as conn:
            row = conn.execute("SELECT pg_promote(true, %s)", (max(1, int(timeout_s)),)).fetchone()
    except psycopg.Error as exc:
        raise TargetError(f"cannot promote {name}: {str(exc).strip()}") from exc
    if not row or row[0] is not True:
        raise TargetError(f"{name} did not finish promotion within {timeout_s:g}s")


class ProcessTarget(ProcessTree):
    """A process the user runs, found by pid file: it can be signalled. The subclasses below
    add restart (`start:`) and promote (`dsn:`)."""

    def __init__(
        self,
        name: str,
        pid_file: str,
        dsn: str | None = None,
        start: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self.pid_file = Path(pid_file)
        self.dsn = dsn
        self.start = start

    def pid(self) -> int:
        return self.identity().pid

    def identity(self) -> Identity:
        """The process the pid file names, checked (drills.pidfile) each time it is read."""
        return resolve(self.pid_file, self.name)


class RestartableProcess(ProcessTarget):
    def restart(self, stop_timeout_s: float = 30.0, start_timeout_s: float = 120.0) -> None:
        """Stop signal, wait for the process to exit (SIGKILL after `stop_timeout_s`), start."""
        if not self.start:
            raise TargetError(f"{self.name}: no start command to restart it with")
        try:
            running: Identity | None = self.identity()
        except StalePidFile:
            running = None  # not running (a stale pid file is not signalled): just start it
        if running is not None:
            self._stop(running, stop_timeout_s)
        try:
            result = subprocess.run(
                ["/bin/sh", "-c", self.start],
                capture_output=True,
                text=True,
                timeout=start_timeout_s,
                stdin=subprocess.DEVNULL,
                env=child_environ(),  # not drills' own secrets: a daemon it starts keeps them
            )
        except subprocess.TimeoutExpired:
            raise TargetError(
                f"{self.name}: start command still running after {start_timeout_s:g}s "
                "(does it leave the server attached to its output? redirect it, e.g. pg_ctl -l)"
            ) from None
        if result.returncode != 0:
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-2:])
            raise TargetError(f"{self.name}: start command exited {result.returncode}: {tail}")

    def _stop(self, process: Identity, timeout_s: float) -> None:
        signal_tree(process, signal.SIGCONT)
        signal_identities([process], self.stop_signal)
        deadline = time.monotonic() + timeout_s
        while identify(process.pid) == process and time.monotonic() < deadline:
            time.sleep(0.02)
        if identify(process.pid) == process:
            signal_tree(process, signal.SIGKILL)


class PromotesThroughDsn:
    """Promote: `pg_promote()` through the target's `dsn`."""

    name: str
    dsn: str | None

    def promote(self, timeout_s: float) -> None:
        if not self.dsn:
            raise TargetError(f"{self.name}: no dsn to promote it through")
        promote_postgres(self.dsn, timeout_s, self.name)


class PromotableProcess(ProcessTarget, PromotesThroughDsn):
    pass


class RestartablePromotableProcess(RestartableProcess, PromotableProcess):
    pass


def class_by_spec(
    start: str | None, dsn: str | None, classes: tuple[type[T], type[T], type[T], type[T]]
) -> type[T]:
    """Of (plain, restartable, promotable, both), the one a target's `start` and `dsn` pick."""
    plain, restartable, promotable, both = classes
    if start and dsn:
        return both
    if start:
        return restartable
    return promotable if dsn else plain


def process_target_class(start: str | None, dsn: str | None) -> type[ProcessTarget]:
    """The one place a pid-file target's abilities follow from its spec."""
    classes = (ProcessTarget, RestartableProcess, PromotableProcess, RestartablePromotableProcess)
    return class_by_spec(start, dsn, classes)
