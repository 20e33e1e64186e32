"""Process trees from /proc, for faults that must reach a server and every child it forked.

PostgreSQL puts each backend in a session of its own, so signalling the postmaster's process
group does not reach them: the tree has to be walked.

A pid alone names whatever process holds it now. A process is identified by its pid, its
start time and its executable (`Identity`), and is signalled only while it still is the process
that was identified: through a pidfd opened before the check, so that the pid cannot be reused
between the check and the signal. Pid 1, drills itself and its ancestors are never signalled.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from drills.errors import TargetError

PROC = Path("/proc")


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), None when gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    return stat[stat.rfind(")") + 2 :].split()


def _parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def state(pid: int) -> str | None:
    """One-letter state (R, S, T for stopped, Z...) or None when the process is gone."""
    fields = _stat(pid)
    return fields[0] if fields else None


def alive(pid: int) -> bool:
    current = state(pid)
    return current is not None and current != "Z"


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot: with the pid, its identity."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def executable(pid: int) -> str | None:
    """The path of the program the process runs; None when it cannot be read (gone, a kernel
    thread, or another user's process without the right to look at it)."""
    try:
        return os.readlink(PROC / str(pid) / "exe")
    except OSError:
        return None


def started_at(ticks: int) -> float:
    """Unix time of a start time in clock ticks since boot (the boot clock counts suspend)."""
    since_start = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    return time.time() - since_start


@dataclass(frozen=True)
class Identity:
    """One process: its pid, its start time (clock ticks since boot) and its executable."""

    pid: int
    start: int
    exe: str | None


def identify(pid: int) -> Identity | None:
    """The identity of the live process `pid`; None when there is none (or a zombie)."""
    fields = _stat(pid)
    if not fields or fields[0] == "Z":
        return None
    exe = executable(pid)
    # Read the start time again: the executable read in between belongs to that same process.
    if start_time(pid) != int(fields[19]):
        return None
    return Identity(pid, int(fields[19]), exe)


def ancestors(pid: int) -> list[int]:
    """The parent of `pid`, its parent, and so on up to pid 1."""
    found: list[int] = []
    parent = _parent(pid)
    while parent and parent not in found:
        found.append(parent)
        parent = _parent(parent)
    return found


def refusal(pid: int) -> str | None:
    """Why drills must never signal `pid` (None: it may be signalled if it is the one meant)."""
    if pid <= 0:
        return "not a process id (0 and negative numbers name process groups)"
    if pid == 1:
        return "pid 1 (init: signalling it takes the host down)"
    me = os.getpid()
    if pid == me:
        return "drills itself"
    if pid in ancestors(me):
        return "an ancestor of drills (the shell or service that runs it)"
    return None


def _pidfd(pid: int) -> int | None:
    """A pidfd on `pid`, or None when the kernel has none (the check is then not atomic)."""
    opener = getattr(os, "pidfd_open", None)  # absent where Python was built without it
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
        return fd
    except OSError as exc:
        if exc.errno == errno.ENOSYS:
            return None
        if exc.errno in (errno.EINVAL, errno.ENOENT):  # a thread's id, not a process's
            raise ProcessLookupError(pid) from exc
        raise


def signal_process(process: Identity, sig: signal.Signals) -> bool:
    """Send `sig` to `process` if its pid still is that process; True when sent."""
    if refusal(process.pid) is not None:
        return False
    try:
        fd = _pidfd(process.pid)
    except ProcessLookupError:
        return False
    try:
        # The pidfd names the process that held the pid when it was opened: if that process
        # still is the one identified, the signal cannot reach another one.
        if identify(process.pid) != process:
            return False
        if fd is None:
            os.kill(process.pid, sig)
        else:
            signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        if fd is not None:
            os.close(fd)


def _children() -> dict[int, list[tuple[int, int]]]:
    """Every process's children, each with its start time, from one scan of /proc."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append((int(entry.name), int(fields[19])))
    return children


def _tree(root: int, root_start: int | None) -> list[tuple[int, int]]:
    children = _children()
    found: list[tuple[int, int]] = []
    todo = [(root, root_start)]
    while todo:
        pid, started = todo.pop()
        for child, child_start in children.get(pid, []):
            # A child starts after its parent: one that did not hangs from a reused pid.
            if started is None or child_start >= started:
                found.append((child, child_start))
                todo.append((child, child_start))
    return found


def descendants(root: int) -> list[int]:
    return [pid for pid, _ in _tree(root, None)]


def descendant_identities(root: Identity) -> list[Identity]:
    """The processes below `root`, identified as the scan found them."""
    if start_time(root.pid) != root.start:
        return []
    return [Identity(pid, started, executable(pid)) for pid, started in _tree(root.pid, root.start)]


def signal_tree(
    root: int | Identity, sig: signal.Signals, sent: list[int] | None = None
) -> list[int]:
    """Send `sig` to `root` first (a stopped server forks no more), then to its descendants,
    scanning twice for children forked meanwhile. Each process is signalled only if it still
    is the one the scan identified. Every pid signalled is appended to `sent` as it goes, so a
    caller that is interrupted half-way still knows what it touched."""
    sent = [] if sent is None else sent
    process = identify(root) if isinstance(root, int) else root
    if process is None:
        return sent
    reason = refusal(process.pid)
    if reason is not None:
        raise TargetError(f"refusing to signal pid {process.pid}: it is {reason}")
    if not signal_process(process, sig):
        return sent
    sent.append(process.pid)
    for _ in range(2):
        for child in descendant_identities(process):
            if child.pid not in sent and signal_process(child, sig):
                sent.append(child.pid)
    return sent


def signal_pids(pids: Iterable[int], sig: signal.Signals) -> None:
    """Signal each pid as it is now, except those drills must never signal."""
    for pid in pids:
        if refusal(pid) is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def signal_identities(processes: Iterable[Identity], sig: signal.Signals) -> int:
    """Signal each process that still is the one identified; how many were signalled."""
    return sum(signal_process(process, sig) for process in processes)
