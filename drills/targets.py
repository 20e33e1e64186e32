"""Targets: the things faults act on. A small required interface plus optional abilities.

Abilities are separate protocols (as Jepsen separates `DB` from `Kill` and `Pause`); a step
names the ability it needs and the scenario is refused before anything starts if a target
lacks it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

import psycopg

from drills.errors import TargetError
from drills.proctree import alive, signal_tree

SIGNAL = "signal"
RESTART = "restart"
PROMOTE = "promote"
CONTAINER = "container"
REJOIN = "rejoin"


class Target(Protocol):
    name: str


@runtime_checkable
class Signalable(Protocol):
    name: str

    def pid(self) -> int:
        """The process the target's tree hangs from."""
        ...

    def signal(self, sig: signal.Signals, sent: list[int] | None = None) -> list[int]:
        """Signal the target's processes; return the pids signalled, also appending each to
        `sent` as soon as it is signalled."""
        ...


@runtime_checkable
class Restartable(Protocol):
    name: str

    def restart(self) -> None: ...


@runtime_checkable
class Promotable(Protocol):
    name: str

    def promote(self, timeout_s: float) -> None: ...


@runtime_checkable
class Rejoinable(Protocol):
    name: str

    def rejoin(self, primary: object) -> str:
        """Come back as a streaming standby of `primary`; say how."""
        ...


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


class ProcessTarget:
    """A process the user runs: found by pid file, optionally restartable and promotable."""

    def __init__(
        self,
        name: str,
        pid_file: str,
        dsn: str | None,
        start: str | None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self.pid_file = Path(pid_file)
        self.dsn = dsn
        self.start = start

    def pid(self) -> int:
        try:
            first = self.pid_file.read_text().split()[0]
            return int(first)
        except (OSError, IndexError, ValueError) as exc:
            raise TargetError(f"{self.name}: no pid in {self.pid_file}: {exc}") from exc

    def signal(self, sig: signal.Signals, sent: list[int] | None = None) -> list[int]:
        return signal_tree(self.pid(), sig, sent)

    def restart(self, stop_timeout_s: float = 30.0, start_timeout_s: float = 120.0) -> None:
        """Stop signal, wait for the process to exit (SIGKILL after `stop_timeout_s`), start."""
        if not self.start:
            raise TargetError(f"{self.name}: no start command to restart it with")
        try:
            pid = self.pid()
        except TargetError:
            pid = None  # not running: just start it
        if pid is not None and alive(pid):
            signal_tree(pid, signal.SIGCONT)
            os.kill(pid, self.stop_signal)
            deadline = time.monotonic() + stop_timeout_s
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if alive(pid):
                signal_tree(pid, signal.SIGKILL)
        try:
            result = subprocess.run(
                ["/bin/sh", "-c", self.start],
                capture_output=True,
                text=True,
                timeout=start_timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise TargetError(
                f"{self.name}: start command still running after {start_timeout_s:g}s "
                "(does it leave the server attached to its output? redirect it, e.g. pg_ctl -l)"
            ) from None
        if result.returncode != 0:
            tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-2:])
            raise TargetError(f"{self.name}: start command exited {result.returncode}: {tail}")

    def promote(self, timeout_s: float) -> None:
        if not self.dsn:
            raise TargetError(f"{self.name}: no dsn to promote it through")
        promote_postgres(self.dsn, timeout_s, self.name)
