"""What a pid file names: the process it belongs to, or an error naming the file.

A pid file outlives its process: after a crash its pid may be free, or held by an unrelated
process. Before a `pid_file` target is signalled, the pid it names must be a live process that
drills may signal (`proctree.refusal`), and that process must be the file's program:

- `postmaster.pid` (PostgreSQL's own file): the process runs a program named `postgres` (or
  `postmaster`) and its working directory is the directory holding the file (the postmaster
  chdirs to its data directory);
- any other pid file: the process started before the file was last written (allowing
  `CLOCK_SLACK_S` for clock granularity), since a process's pid is known only once it runs;
  a process that started later holds a reused pid.
"""

from __future__ import annotations

import os
from pathlib import Path

from drills.errors import TargetError
from drills.proctree import Identity, identify, refusal, started_at

POSTGRES_PROGRAMS = ("postgres", "postmaster")
CLOCK_SLACK_S = 1.0


class StalePidFile(TargetError):
    """The pid file names no running process of its program (missing, garbled or stale)."""


def read_pid(path: Path, name: str) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, IndexError, ValueError) as exc:
        raise StalePidFile(f"{name}: no pid in {path}: {exc}") from exc


def _not_postgres_of(path: Path, process: Identity) -> str | None:
    program = os.path.basename(process.exe or "").removesuffix(" (deleted)")
    if program not in POSTGRES_PROGRAMS:
        return f"runs {process.exe}, not PostgreSQL"
    try:
        cwd = os.readlink(f"/proc/{process.pid}/cwd")
    except OSError:
        return "has no readable working directory"
    if os.path.realpath(cwd) != os.path.realpath(path.parent):
        return f"is the PostgreSQL of {cwd}, not of {path.parent}"
    return None


def _started_after(path: Path, process: Identity) -> str | None:
    try:
        written = path.stat().st_mtime
    except OSError as exc:
        return f"cannot be compared with the file: {exc.strerror}"
    if started_at(process.start) > written + CLOCK_SLACK_S:
        return f"started after the file was written: it runs {process.exe}"
    return None


def resolve(path: Path, name: str) -> Identity:
    """The process `path` names, identified; TargetError (StalePidFile when the file names no
    process of its program) saying why not, naming the file."""
    pid = read_pid(path, name)
    reason = refusal(pid)
    if reason is not None:
        raise TargetError(f"{name}: refusing pid {pid} named by {path}: it is {reason}")
    process = identify(pid)
    if process is None:
        raise StalePidFile(f"{name}: stale pid file {path}: pid {pid} is not running")
    if process.exe is None:
        raise TargetError(
            f"{name}: cannot read the program of pid {pid} named by {path}: run drills as that "
            "process's user or as root"
        )
    postgres = path.name == "postmaster.pid"
    problem = _not_postgres_of(path, process) if postgres else _started_after(path, process)
    if problem is not None:
        raise StalePidFile(f"{name}: stale pid file {path}: pid {pid} {problem}")
    return process
