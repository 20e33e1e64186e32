"""The harness's stalls, measured by the harness: a thread that asks to wake every 2 ms and notes
every wake that came more than the tolerance late. While the process is starved (too many
probes for its CPU, the GIL held, the machine busy) that thread is late too, so a sample in
flight during a stall may have failed or timed out because of the harness, not the target:
it is recorded as late (drills.lateness) instead of as the target's failure.

One watch serves every probe runner of the process: the first runner to start starts it, the
last to stop stops it.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from drills.lateness import LATE_TOLERANCE_NS
from drills.priority import raise_thread_priority

PERIOD_NS = 2_000_000
KEPT_NS = 120 * 10**9  # stalls older than this cannot overlap a sample still in flight


class StallWatch:
    def __init__(self, tolerance_ns: int = LATE_TOLERANCE_NS, period_ns: int = PERIOD_NS) -> None:
        self.tolerance_ns = tolerance_ns
        self.period_ns = period_ns
        self._stalls: deque[tuple[int, int]] = deque()
        self._beat_ns = time.monotonic_ns()
        self._lock = threading.Lock()
        self._users = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        with self._lock:
            self._users += 1
            if self._thread is None:
                self._stop = threading.Event()  # its own: an old thread may still be leaving
                self._beat_ns = time.monotonic_ns()
                self._thread = threading.Thread(
                    target=self._loop, args=(self._stop,), name="stalls", daemon=True
                )
                self._thread.start()

    def release(self) -> None:
        with self._lock:
            self._users = max(0, self._users - 1)
            thread = self._thread if self._users == 0 else None
            if thread is not None:
                self._thread = None
                self._stop.set()
        if thread is not None:
            thread.join(timeout=1)

    def _loop(self, stop: threading.Event) -> None:
        raise_thread_priority()  # as the probe loop's: one starved alone would mislead
        while not stop.is_set():
            expected = time.monotonic_ns() + self.period_ns
            time.sleep(self.period_ns / 1e9)
            self.note(expected, time.monotonic_ns())

    def note(self, expected_ns: int, woke_ns: int) -> None:
        """A wake expected at `expected_ns` came at `woke_ns`: a stall if later than the
        tolerance."""
        with self._lock:
            self._beat_ns = woke_ns
            if woke_ns - expected_ns > self.tolerance_ns:
                self._stalls.append((expected_ns, woke_ns))
            while self._stalls and self._stalls[0][1] < woke_ns - KEPT_NS:
                self._stalls.popleft()

    def add(self, start_ns: int, end_ns: int) -> None:
        """A stall another part of the harness saw (the probe loop, busy for that long)."""
        with self._lock:
            self._stalls.append((start_ns, end_ns))
            while self._stalls and self._stalls[0][1] < end_ns - KEPT_NS:
                self._stalls.popleft()

    def stalled_ns(self, start_ns: int, end_ns: int, now_ns: int) -> int:
        """The longest stall overlapping [start_ns, end_ns], one still going on included
        (the watch has not woken for longer than the tolerance); 0 when there was none."""
        with self._lock:
            found = [(a, b) for a, b in self._stalls if a < end_ns and b > start_ns]
            ongoing = self._beat_ns + self.period_ns
            running = self._thread is not None
        if running and now_ns - ongoing > self.tolerance_ns and ongoing < end_ns:
            found.append((ongoing, now_ns))
        return max((b - a for a, b in found), default=0)


SHARED = StallWatch()
