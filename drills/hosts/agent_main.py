"""The process agent's operations, run on a host by `python3 -` over SSH (drills.hosts.ssh).

The agent is this module's source after those of drills.proctree and drills.pidfile, with
their `drills` imports left out (drills.hosts.agent puts it together): on the host, a pid file
is checked, a process identified and a tree signalled by the very code that does it here. It
needs only Python 3.9 or later on the host. Each operation takes JSON arguments and prints one
JSON line; a refusal is `{"error": ...}`.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drills.errors import TargetError
from drills.pidfile import StalePidFile, resolve
from drills.proctree import (
    Identity,
    descendant_identities,
    identify,
    signal_identities,
    signal_tree,
)


def _identity(found: list[Any]) -> Identity:
    pid, start, exe = found
    return Identity(int(pid), int(start), exe)


def _listed(processes: list[Identity]) -> list[list[Any]]:
    return [[p.pid, p.start, p.exe] for p in processes]


def op_resolve(pid_file: str, name: str) -> dict[str, Any]:
    """The process a pid file names, checked as for a local pid file."""
    process = resolve(Path(pid_file), name)
    return {"process": [process.pid, process.start, process.exe]}


def op_signal(root: list[Any], signal_name: str) -> dict[str, Any]:
    """Signal the tree under `root` if it still is that process; each process signalled,
    identified (a stopped process cannot exit or exec: it stays identified until resumed)."""
    sent = signal_tree(_identity(root), signal.Signals[signal_name])
    found = [identify(pid) for pid in sent]
    return {"signalled": _listed([p for p in found if p is not None])}


def op_signal_each(processes: list[list[Any]], signal_name: str) -> dict[str, Any]:
    """Signal each process that still is the one identified, last first."""
    identities = [_identity(p) for p in reversed(processes)]
    return {"signalled": signal_identities(identities, signal.Signals[signal_name])}


def op_resume_tree(root: list[Any]) -> dict[str, Any]:
    """SIGCONT to the tree under `root`, children first, if the root still is that process."""
    process = _identity(root)
    if identify(process.pid) != process:
        return {"resumed": None}
    tree = [process, *descendant_identities(process)]
    return {"resumed": signal_identities(reversed(tree), signal.SIGCONT)}


def op_wait_exit(root: list[Any], wait_s: float) -> dict[str, Any]:
    """Whether the process `root` is gone within `wait_s`."""
    process = _identity(root)
    deadline = time.monotonic() + wait_s
    while identify(process.pid) == process and time.monotonic() < deadline:
        time.sleep(0.02)
    return {"exited": identify(process.pid) != process}


OPS: dict[str, Callable[..., dict[str, Any]]] = {
    "resolve": op_resolve,
    "signal": op_signal,
    "signal-each": op_signal_each,
    "resume-tree": op_resume_tree,
    "wait-exit": op_wait_exit,
}


def main(argv: list[str]) -> int:
    op, args = argv[1], json.loads(argv[2])
    try:
        answer = OPS[op](**args)
    except StalePidFile as exc:
        answer = {"error": str(exc), "stale": True}
    except TargetError as exc:
        answer = {"error": str(exc)}
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
