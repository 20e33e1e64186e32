"""Process trees from /proc, for faults that must reach a server and every child it forked.

PostgreSQL puts each backend in a session of its own, so signalling the postmaster's process
group does not reach them: the tree has to be walked.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

PROC = Path("/proc")


def _parent(pid: int) -> int | None:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[1])


def state(pid: int) -> str | None:
    """One-letter state (R, S, T for stopped, Z...) or None when the process is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()[0]


def alive(pid: int) -> bool:
    current = state(pid)
    return current is not None and current != "Z"


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            parent = _parent(int(entry.name))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found


def signal_tree(root: int, sig: signal.Signals, sent: list[int] | None = None) -> list[int]:
    """Send `sig` to `root` first (a stopped server forks no more), then to its descendants,
    scanning twice for children forked meanwhile. Every pid signalled is appended to `sent` as
    it goes, so a caller that is interrupted half-way still knows what it touched."""
    sent = [] if sent is None else sent
    try:
        os.kill(root, sig)
    except ProcessLookupError:
        return sent
    sent.append(root)
    for _ in range(2):
        for pid in descendants(root):
            if pid in sent:
                continue
            try:
                os.kill(pid, sig)
                sent.append(pid)
            except ProcessLookupError:
                pass
    return sent


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot: with the pid, its identity."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rfind(")") + 2 :].split()[19])


def signal_pids(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
