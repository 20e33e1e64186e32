"""The ability incident steps need: a lab's own PostgreSQL server, whose files drills reaches.

Unlike the method-only abilities of `drills.abilities`, this one has attributes (the data
directory, the lab's directory), so a class provides it when it has every member of the
protocol as a class attribute, property, method or class-level annotation. A lab's
`PostgresNode` does; a process or container the user runs does not, so validation refuses an
incident on anything but a lab's server, whose whole directory the lab removes afterwards.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

from drills.abilities import Ability
from drills.errors import DrillsError
from drills.files import chown_nofollow

A = TypeVar("A")


class LabFiles(Protocol):
    @property
    def root(self) -> Path:
        """The lab's directory, removed with the lab."""
        ...


@runtime_checkable
class LocalServer(Protocol):
    @property
    def name(self) -> str:
        """The lab's name for the node (`a`)."""
        ...

    @property
    def datadir(self) -> Path: ...

    @property
    def dsn(self) -> str:
        """A direct connection as the superuser."""
        ...

    @property
    def lab(self) -> LabFiles: ...

    def pid(self) -> int:
        """The server's pid; TargetError when it is not running."""
        ...

    def start(self) -> None:
        """Start the server and wait until it accepts connections; LabError if it exits."""
        ...

    def restart(self) -> None:
        """Fast shutdown, then `start`."""
        ...

    def kill_all(self) -> None:
        """SIGKILL the server and every process it had."""
        ...

    def log_tail(self, lines: int = 3) -> str: ...


def _members(protocol: type[Any]) -> set[str]:
    own = {name for name in vars(protocol) if not name.startswith("_")}
    return own | set(getattr(protocol, "__annotations__", {}))


class StructuralAbility(Ability[A]):
    """An ability whose protocol has attributes: `issubclass` cannot answer for those, so a
    class is checked member by member (an instance attribute counts when the class
    annotates it)."""

    def provided_by(self, cls: type) -> bool:
        annotated = {
            name for klass in cls.__mro__ for name in vars(klass).get("__annotations__", {})
        }
        return all(hasattr(cls, name) or name in annotated for name in _members(self.protocol))


LOCAL_SERVER: Ability[LocalServer] = StructuralAbility(
    LocalServer,
    "is not a PostgreSQL server of the lab",
    "incidents act only on a lab's own servers (`lab: NODE`), whose directory the lab removes",
)


def restart_after_damage(server: LocalServer, immediate: bool = False) -> tuple[bool, str]:
    """Restart `server` so that the damage takes effect: whether it came back, and if not the
    last line of its log. `immediate` kills it rather than shutting it down, so that no
    shutdown checkpoint writes clean pages back over damaged files."""
    try:
        if immediate:
            server.kill_all()
            server.start()
        else:
            server.restart()
    except DrillsError:
        return False, why_down(server.log_tail(LOG_LINES).split(" | "))
    return True, ""


LOG_LINES = 20
SHUT_DOWN = "database system is shut down"
LOG_PREFIX = re.compile(r"^\d{4}-\d\d-\d\d [\d:.]+ \w+ \[\d+\] ")


def why_down(log_lines: list[str]) -> str:
    """What a refused start said: among the log lines after the shutdown before it (both the
    stop and a refused start end with "database system is shut down"), the last FATAL or PANIC
    line, else the last line (a missing postgresql.conf is reported before logging starts)."""
    body = log_lines[:-1] if log_lines and SHUT_DOWN in log_lines[-1] else log_lines
    begins = max((i + 1 for i, line in enumerate(body) if SHUT_DOWN in line), default=0)
    attempt = body[begins:] or log_lines
    said = next((x for x in reversed(attempt) if "FATAL:" in x or "PANIC:" in x), None)
    if said is None:
        said = attempt[-1] if attempt else ""
    return LOG_PREFIX.sub("", said)


def restart_detail(restarted: bool, log_line: str) -> str:
    if restarted:
        return "restarted: the node came back"
    return f"restart failed: {log_line}" if log_line else "restart failed"


def wall_ns_of(mono_ns: int) -> int:
    """Wall-clock time of a monotonic instant (a file's mtime is wall-clock)."""
    return time.time_ns() - (time.monotonic_ns() - mono_ns)


def owner_of(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_uid, info.st_gid


def chown_like(path: Path, owner: tuple[int, int]) -> None:
    """Give `path` the owner the server's files have (the harness may run as root)."""
    if os.geteuid() == 0:
        chown_nofollow(path, *owner)
