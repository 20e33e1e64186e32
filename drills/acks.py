"""Acknowledgements of manual steps, through the state directory.

A drill waiting at a manual step writes `acks/<run>/waiting.json` (the step, its instruction
and role); `drills ack`, from another shell or another host sharing the state directory,
writes `acks/<run>/ack-<step>.json` (who, when by the wall clock, and a note); the drill reads
it and removes the run's directory once the step is over. Every file is private to the user
that runs drills (docs/security.md).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drills.errors import DrillsError
from drills.files import private_dir, write_atomically

WAITING = "waiting.json"


@dataclass(frozen=True)
class Waiting:
    run_id: str
    step: int  # this wait's number, unique within the run
    instruction: str
    role: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def gone(self) -> bool:
        """The drill died waiting (SIGKILL): known only on its own host."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


@dataclass(frozen=True)
class AckFile:
    step: int
    by: str
    note: str
    wall_ns: int


def acks_root(state: Path) -> Path:
    return state / "acks"


def _run_dir(state: Path, run_id: str) -> Path:
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise DrillsError(f"not a run id: {run_id!r}")
    return private_dir(acks_root(state)) / run_id


def announce(state: Path, waiting: Waiting) -> Path:
    """Say that `waiting.run_id` waits at `waiting.step`; return the run's directory."""
    directory = private_dir(_run_dir(state, waiting.run_id))
    write_atomically(directory / WAITING, json.dumps(asdict(waiting)), 0o600)
    return directory


def read_ack(directory: Path, step: int) -> AckFile | None:
    try:
        data: dict[str, Any] = json.loads((directory / f"ack-{step}.json").read_text())
        return AckFile(int(data["step"]), str(data["by"]), str(data["note"]), int(data["wall_ns"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DrillsError(f"{directory}/ack-{step}.json: not an acknowledgement: {exc}") from None


def withdraw(directory: Path) -> None:
    shutil.rmtree(directory, ignore_errors=True)


def waiting_runs(state: Path) -> list[Waiting]:
    root = acks_root(state)
    found = []
    for path in sorted(root.glob(f"*/{WAITING}")) if root.is_dir() else []:
        try:
            waiting = Waiting(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # a run that just finished
        if not waiting.gone():
            found.append(waiting)
    return found


def acknowledge(state: Path, run_id: str | None, by: str, note: str) -> Waiting:
    """Acknowledge the step `run_id` (or the only waiting drill) waits at."""
    waiting = waiting_runs(state)
    if run_id is not None:
        waiting = [w for w in waiting if w.run_id == run_id]
        if not waiting:
            raise DrillsError(f"run {run_id} is not waiting for an acknowledgement")
    elif not waiting:
        raise DrillsError(f"no drill is waiting for an acknowledgement (state: {state})")
    elif len(waiting) > 1:
        runs = ", ".join(w.run_id for w in waiting)
        raise DrillsError(f"several drills are waiting ({runs}): name one with --run")
    [found] = waiting
    directory = _run_dir(state, found.run_id)
    ack = AckFile(found.step, by, note, time.time_ns())
    write_atomically(directory / f"ack-{found.step}.json", json.dumps(asdict(ack)), 0o600)
    if _still_waiting(directory) != found.step:  # its wait ended meanwhile (a timeout)
        if not (directory / WAITING).exists():
            withdraw(directory)  # what the write made again after the drill removed it
        raise DrillsError(f"too late: {found.run_id} no longer waits for that step")
    return found


def _still_waiting(directory: Path) -> int | None:
    try:
        return int(json.loads((directory / WAITING).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
