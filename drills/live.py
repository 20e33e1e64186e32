"""What the operator sees while a drill runs.

On a terminal: a block redrawn a few times a second (step, elapsed time, each probe's state
and counts). Elsewhere (CI, pipes): one line per event, nothing redrawn.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from drills.openloop import ProbeRunner

REFRESH_S = 0.25


class LiveView:
    def __init__(
        self,
        title: str,
        stream: TextIO | None = None,
        live: bool | None = None,
        redact: Callable[[str], str] = str,
    ) -> None:
        self.redact = redact
        self.title = title
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.started = time.monotonic()
        self.step = "setting up"
        self.runners: list[ProbeRunner] = []
        self._drawn = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def message(self, text: str) -> None:
        with self._lock, contextlib.suppress(OSError):  # a closed pipe must not stop a drill
            self._clear()
            self.stream.write(f"[{self.elapsed():6.2f}s] {self.redact(text)}\n")
            self.stream.flush()
            self._draw()

    def set_step(self, text: str) -> None:
        self.step = text
        self.message(text)

    def watch(self, runners: list[ProbeRunner]) -> None:
        self.runners = runners
        if self.live and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="live-view", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock, contextlib.suppress(OSError):
            self._clear()
        self.runners = []

    def _loop(self) -> None:
        while not self._stop.wait(REFRESH_S):
            with self._lock, contextlib.suppress(OSError):
                self._clear()
                self._draw()

    def _clear(self) -> None:
        if self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        if not self.live or not self.runners:
            return
        lines = [f"-- {self.title}  {self.elapsed():6.2f}s  {self.redact(self.step)}"]
        for runner in self.runners:
            s = runner.state
            mark = {True: "UP  ", False: "DOWN", None: "... "}[s.last_up]
            # libpq nests its reason: "connection to server at ... failed: <reason>"
            detail = "" if s.last_up else self.redact(s.last_detail).rsplit("failed: ", 1)[-1][:60]
            lines.append(
                f"   {mark} {runner.name:<16} ok {s.ok:>6}  fail {s.fail:>5}  "
                f"unknown {s.unknown:>4}  {detail}"
            )
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn = len(lines)
