"""The crash journal: what a drill changed, written down (and fsynced) before it changes it.

If the harness dies, even by SIGKILL, `drills recover` reads the journals of dead runs and
undoes what they record, newest first. Each kind of entry is a typed model registered in
`JOURNAL` by the module that makes the change, next to its undo (a paused process beside the
process targets, a docker lab beside the docker lab...); this module knows none of them: those
modules are entry points of the `drills.journal` group, loaded the first time an entry is read.
Journals live in `$DRILLS_STATE_DIR` (default `~/.local/state/drills`), one file per run; a
run that ends normally removes its own.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from drills.errors import DrillsError, PathError
from drills.files import private_dir, unsafe_dir
from drills.proctree import alive, start_time
from drills.registry import Registry

ENV = "DRILLS_STATE_DIR"
T = TypeVar("T")


def state_dir() -> Path:
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "drills"


@dataclass
class Recovery:
    """What the undos of one journal share, such as one client per container engine."""

    _shared: dict[str, Any] = field(default_factory=dict)

    def shared(self, key: str, make: Callable[[], T]) -> T:
        if key not in self._shared:
            self._shared[key] = make()
        value: T = self._shared[key]
        return value


class JournalEntry(BaseModel):
    """One change a drill is about to make. Subclasses register under their `op` and say how
    `drills recover` undoes the change if the harness died before it could."""

    # Journals written by an older drills may carry keys a kind no longer reads.
    model_config = ConfigDict(extra="ignore", frozen=True)
    op: str
    subject: ClassVar[str] = "target"  # the key that names what the entry is about

    def about(self) -> str:
        return str(getattr(self, self.subject, None) or self.op)

    def problem(self) -> str | None:
        """Why `drills recover` must not act on this entry (None: it may). An entry refused
        is reported and its journal kept, like an entry of an unknown kind."""
        return None

    def undo(self, recovery: Recovery) -> str | None:
        """Undo the change; say what was done (None: nothing was left to undo).

        Raise when it cannot be undone now (an engine unreachable): the journal is kept."""
        raise NotImplementedError


JOURNAL: Registry[JournalEntry] = Registry("journal entry", group="drills.journal")


@JOURNAL.register("run")
class RunStarted(JournalEntry):
    """The first entry: whose run this is, to tell whether its harness is still alive."""

    op: Literal["run"] = "run"
    run_id: str = ""
    scenario: str = ""
    pid: int = 0
    start: int | None = None
    host: str = ""
    at: float = 0.0

    def undo(self, recovery: Recovery) -> str | None:
        return None

    def owner_alive(self) -> bool:
        if self.host != socket.gethostname():
            return True  # another host's run (a shared state dir): not ours to judge or undo
        return alive(self.pid) and start_time(self.pid) == self.start


class Journal:
    def __init__(self, run_id: str, scenario: str, directory: Path | None = None) -> None:
        self.dir = private_dir((directory or state_dir()) / "journal")
        self.path = self.dir / f"{run_id}.jsonl"
        self._file = self.path.open("a", encoding="utf-8")
        me = os.getpid()
        self.append(
            RunStarted(
                run_id=run_id,
                scenario=scenario,
                pid=me,
                start=start_time(me),
                host=socket.gethostname(),
                at=time.time(),
            )
        )

    def append(self, entry: JournalEntry) -> None:
        """Durably record `entry` before the change it describes is made."""
        line = json.dumps(entry.model_dump(mode="json"), separators=(",", ":"))
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """The run cleaned up after itself: nothing to recover."""
        self._file.close()
        self.path.unlink(missing_ok=True)


def _lines(path: Path) -> list[dict[str, Any]]:
    entries = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by the crash
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def parse(raw: dict[str, Any]) -> JournalEntry:
    """The typed entry; DrillsError for a kind no installed module registers."""
    op = raw.get("op")
    if not isinstance(op, str) or op not in JOURNAL:
        raise DrillsError(
            f"unknown journal entry {op!r} (known: {', '.join(JOURNAL.kinds())}): is the "
            "drills version or plugin that wrote it installed?"
        )
    try:
        return JOURNAL[op].model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(map(str, first["loc"]))
        raise DrillsError(f"journal entry {op!r}: {where}: {first['msg']}") from None


def _owner_alive(entries: list[dict[str, Any]]) -> bool:
    run = next((e for e in entries if e.get("op") == "run"), None)
    if run is None:
        return False
    try:
        return RunStarted.model_validate(run).owner_alive()
    except ValidationError:
        return False


def check_state_dir(directory: Path | None = None) -> None:
    """Refuse (PathError) a state directory, or its `journal` directory, that another user
    could have written journals into: each must be a real directory (not a symbolic link),
    owned by this user, writable by it alone. A missing one has nothing to recover."""
    state = directory or state_dir()
    for path in (state, state / "journal"):
        if not os.path.lexists(path):
            return
        why = unsafe_dir(path, {os.geteuid()})
        if why is not None:
            raise PathError(
                f"{path}: {why}: drills recover acts only on journals in a directory this "
                "user alone can write"
            )


def orphaned(directory: Path | None = None) -> Iterator[Path]:
    """Journals of runs whose harness is gone."""
    folder = (directory or state_dir()) / "journal"
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.jsonl")):
        if not _owner_alive(_lines(path)):
            yield path


def refuse_if_orphaned(directory: Path | None = None) -> None:
    found = list(orphaned(directory))
    if found:
        names = ", ".join(p.stem for p in found)
        raise DrillsError(
            f"an earlier drill died without cleaning up ({names}): "
            "run `drills recover` first, which reverts what it left"
        )


def _undo_one(raw: dict[str, Any], recovery: Recovery) -> str | None:
    entry = parse(raw)
    problem = entry.problem()
    if problem is not None:
        raise DrillsError(f"refused {entry.op} entry of {entry.about()}: {problem}; not acted on")
    try:
        return entry.undo(recovery)
    except Exception as exc:  # an engine that cannot be reached: keep the journal
        text = " ".join(str(exc).split())[:200]
        raise DrillsError(f"could not undo {entry.op} of {entry.about()}: {text}") from exc


def recover(path: Path) -> list[str]:
    """Undo what the journal at `path` records, newest first; return what was done."""
    done: list[str] = []
    failed = False
    recovery = Recovery()
    for raw in reversed(_lines(path)):
        try:
            outcome = _undo_one(raw, recovery)
        except DrillsError as exc:
            failed = True
            done.append(str(exc))
            continue
        if outcome:
            done.append(outcome)
    if failed:
        done.append(
            f"journal kept ({path}): run `drills recover` again once that is fixed, or delete "
            "the file once you have undone by hand what it records"
        )
    else:
        path.unlink(missing_ok=True)
    return done
