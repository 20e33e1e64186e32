"""The people in a rehearsal: how a manual step waits for its acknowledgement.

Three ways, whichever comes first: Enter in the terminal the drill runs in (the line typed is
the note), `drills ack` from another shell or host sharing the state directory (drills.acks),
or, with `--auto-ack AFTER`, the harness itself after that long (recorded as automatic).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import select
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from drills.acks import Waiting, announce, read_ack, withdraw

if TYPE_CHECKING:
    from drills.journal import Journal
    from drills.live import LiveView
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
        self.redact: Callable[[str], str] = str

    @classmethod
    def for_run(
        cls, run_id: str, journal: Journal, view: LiveView, options: RunOptions
    ) -> Operator:
        """The drill's: acknowledgements in its state directory, Enter on its terminal; the
        instruction written for `drills ack` with the drill's secrets masked."""
        operator = cls(run_id, journal.dir.parent, view.message, options.auto_ack, sys.stdin)
        operator.redact = view.redact
        return operator

    def wait(self, seq: int, instruction: str, role: str, timeout_s: float | None) -> Ack | None:
        """The acknowledgement of a manual step, or None once `timeout_s` passed without one."""
        started = time.monotonic_ns()
        told = Waiting(self.run_id, seq, self.redact(instruction), self.redact(role))
        directory = announce(self.state, told)
        self._forget_typed_ahead()
        self.show(self._hint(instruction, role))
        try:
            while True:
                ack = self._poll(directory, seq, started)
                if ack is not None:
                    return ack
                if timeout_s is not None and time.monotonic_ns() - started >= timeout_s * 1e9:
                    return self._late_file(directory, seq, started)
        finally:
            withdraw(directory)

    def _late_file(self, directory: Path, seq: int, started: int) -> Ack | None:
        """A `drills ack` written after the last poll, before the timeout ended the wait."""
        found = read_ack(directory, seq)
        if found is None:
            return None
        now = time.monotonic_ns()
        at = now - (time.time_ns() - found.wall_ns)
        return Ack(found.by, "drills ack", found.note, min(max(at, started), now))

    def _forget_typed_ahead(self) -> None:
        """Enter pressed before this step asked for it must not acknowledge it."""
        if self.terminal is not None:
            with contextlib.suppress(OSError, ValueError, termios.error):
                termios.tcflush(self.terminal.fileno(), termios.TCIFLUSH)

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
        # A `drills ack`'s wall-clock time, brought onto the monotonic clock: the drill saw the
        # file up to a poll later. Another host's clock may differ: kept within the wait.
        found = self._late_file(directory, seq, started)
        if found is not None:
            return found
        line = self._line()
        if line is not None:
            return Ack(who(), "terminal", line, time.monotonic_ns())
        return None

    def _line(self) -> str | None:
        if self.terminal is None or not _in_foreground(self.terminal):
            time.sleep(POLL_S)  # a drill in the background must not read (SIGTTIN stops it)
            return None
        ready, _, _ = select.select([self.terminal], [], [], POLL_S)
        if not ready:
            return None
        try:
            line = self.terminal.readline()
        except OSError:  # the terminal went away (EIO)
            line = ""
        if not line:  # end of input (Ctrl-D): not an acknowledgement; drills ack still is
            self.terminal = None
            return None
        return line.strip()


def _in_foreground(terminal: TextIO) -> bool:
    """Whether reading the terminal is safe: only a background process group reading its
    controlling terminal gets SIGTTIN; another terminal (ENOTTY here) never stops it."""
    try:
        return os.tcgetpgrp(terminal.fileno()) == os.getpgrp()
    except OSError:
        return True
    except ValueError:  # closed
        return False
