"""The people in a rehearsal: how a manual step waits for its acknowledgement.

Three ways, whichever comes first: Enter in the terminal the drill runs in (the line typed is
the note), `drills ack` from another shell or host sharing the state directory (drills.acks),
or, with `--auto-ack AFTER`, the harness itself after that long (recorded as automatic).
"""

from __future__ import annotations

import getpass
import os
import select
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from drills.acks import Waiting, announce, read_ack, withdraw

if TYPE_CHECKING:
    from drills.journal import Journal
    from drills.runner import RunOptions

POLL_S = 0.02
AUTO = "auto"


@dataclass(frozen=True)
class Ack:
    by: str
    via: str  # "terminal", "drills ack" or "auto"
    note: str
    at_ns: int  # monotonic, as the history's times


def who() -> str:
    """The person at this terminal: the user sudo was run by, else the login user."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (ValueError, OSError):  # closed
        return False


class Operator:
    def __init__(
        self,
        run_id: str,
        state: Path,
        show: Callable[[str], None],
        auto_ack_s: float | None = None,
        terminal: TextIO | None = None,
    ) -> None:
        self.run_id = run_id
        self.state = state
        self.show = show
        self.auto_ack_s = auto_ack_s
        self.terminal = terminal if _is_terminal(terminal) else None

    @classmethod
    def for_run(
        cls, run_id: str, journal: Journal, show: Callable[[str], None], options: RunOptions
    ) -> Operator:
        """The drill's: acknowledgements in its state directory, Enter on its terminal."""
        return cls(run_id, journal.dir.parent, show, options.auto_ack, sys.stdin)

    def wait(self, seq: int, instruction: str, role: str, timeout_s: float | None) -> Ack | None:
        """The acknowledgement of a manual step, or None once `timeout_s` passed without one."""
        started = time.monotonic_ns()
        directory = announce(self.state, Waiting(self.run_id, seq, instruction, role))
        self.show(self._hint(instruction, role))
        try:
            while True:
                ack = self._poll(directory, seq, started)
                if ack is not None:
                    return ack
                if timeout_s is not None and time.monotonic_ns() - started >= timeout_s * 1e9:
                    return None
        finally:
            withdraw(directory)

    def _hint(self, instruction: str, role: str) -> str:
        ways = [f"`drills ack --run {self.run_id}`"]
        if self.terminal is not None:
            ways.insert(0, "Enter here (a line typed first is the note)")
        if self.auto_ack_s is not None:
            ways.append(f"automatically after {self.auto_ack_s:g}s")
        return f"MANUAL ({role or 'anyone'}): {instruction} -- acknowledge: {', or '.join(ways)}"

    def _poll(self, directory: Path, seq: int, started: int) -> Ack | None:
        now = time.monotonic_ns()
        if self.auto_ack_s is not None and now - started >= self.auto_ack_s * 1e9:
            return Ack(AUTO, AUTO, "", started + round(self.auto_ack_s * 1e9))
        found = read_ack(directory, seq)
        if found is not None:
            # Its wall-clock time, brought onto the monotonic clock: the drill saw the file
            # up to a poll later. Another host's clock may differ: kept within the wait.
            at = now - (time.time_ns() - found.wall_ns)
            return Ack(found.by, "drills ack", found.note, min(max(at, started), now))
        line = self._line()
        if line is not None:
            return Ack(who(), "terminal", line, time.monotonic_ns())
        return None

    def _line(self) -> str | None:
        if self.terminal is None:
            time.sleep(POLL_S)
            return None
        ready, _, _ = select.select([self.terminal], [], [], POLL_S)
        if not ready:
            return None
        return self.terminal.readline().strip()
