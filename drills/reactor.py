"""One event-loop thread for every probe with a non-blocking client (drills.loop_runner).

A thread per connection costs a wake-up and a GIL hand-over per sample; at thousands of samples
a second those cost more than the samples (docs/benchmarks.md, "Probe capacity"). Here one
thread waits on every connection's socket and every timer at once (epoll), and runs the
callbacks itself.

Callbacks run on the loop thread and must not block. Only `call_soon_threadsafe` may be called
from another thread. The first runner to start the loop starts its thread, the last to stop
it stops it (as drills.stalls does).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import select
import selectors
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from drills.priority import raise_thread_priority
from drills.stalls import SHARED as STALLS
from drills.stalls import StallWatch

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
Callback = Callable[[], None]
Ready = Callable[[bool], None]  # called with True when the wait timed out


class Reactor:
    """Hands out the running EventLoop: started by the first user, stopped by the last."""

    def __init__(self, stalls: StallWatch = STALLS) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._loop: EventLoop | None = None
        self._stalls = stalls

    def acquire(self) -> EventLoop:
        with self._lock:
            self._users += 1
            if self._loop is None:
                self._loop = EventLoop(self._stalls)
            return self._loop

    def release(self) -> None:
        with self._lock:
            self._users = max(0, self._users - 1)
            loop = self._loop if self._users == 0 else None
            if loop is not None:
                self._loop = None
        if loop is not None:
            loop.close()


class EventLoop:
    def __init__(self, stalls: StallWatch) -> None:
        self._stalls = stalls
        # When the loop last began to wait in select() and when that wait ended: an answer
        # that came while it was busy in between is read only at the next wait.
        self.listening_since_ns = time.monotonic_ns()
        self.woke_ns = self.listening_since_ns
        self.skip_told_ns = 0  # the wake whose skipped due times are already in the history
        self._lock = threading.Lock()
        self._calls: list[Callback] = []
        self._timers: list[tuple[int, int, Callback]] = []
        self._order = itertools.count()
        self._waiting: dict[int, tuple[object, Ready]] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="probe-loop", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.call_soon_threadsafe(self._halt)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def call_soon_threadsafe(self, callback: Callback) -> None:
        with self._lock:
            self._calls.append(callback)
        # full: a wake is pending anyway; closed: stopping
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    def call_at(self, when_ns: int, callback: Callback) -> None:
        """Run `callback` at `when_ns` (monotonic). Loop thread only."""
        heapq.heappush(self._timers, (when_ns, next(self._order), callback))

    def wait(self, fd: int, events: int, ready: Ready, until_ns: int | None = None) -> None:
        """Call `ready(False)` once `fd` is ready, or `ready(True)` at `until_ns`: whichever
        comes first, once. The fd is no longer watched when `ready` runs. Loop thread only."""
        token = object()
        self._selector.register(fd, events, None)
        self._waiting[fd] = (token, ready)
        if until_ns is not None:
            self.call_at(until_ns, lambda: self._expired(fd, token))

    def forget(self, fd: int) -> None:
        """Stop watching `fd` (before it is closed) without calling its callback."""
        if self._waiting.pop(fd, None) is not None:
            self._selector.unregister(fd)

    def ready_now(self, fd: int) -> bool:
        """Whether a watched `fd` is ready at this moment (its callback not yet run)."""
        key = self._selector.get_map().get(fd)
        if key is None:
            return False
        poll = select.poll()  # no limit on fd numbers, unlike select()
        poll.register(
            fd,
            (select.POLLIN if key.events & READ else 0)
            | (select.POLLOUT if key.events & WRITE else 0),
        )
        return bool(poll.poll(0))

    def _expired(self, fd: int, token: object) -> None:
        entry = self._waiting.get(fd)
        if entry is not None and entry[0] is token:
            self.forget(fd)
            entry[1](True)

    def _halt(self) -> None:
        self._stop = True

    def _run(self) -> None:
        raise_thread_priority()
        while not self._stop:
            self._listen()
            ready = self._selector.select(self._timeout())
            self.woke_ns = time.monotonic_ns()
            for key, _ in ready:
                if key.fileobj is self._wake_r:
                    self._drain_wake()
                    continue
                entry = self._waiting.get(key.fd)
                if entry is not None:
                    self.forget(key.fd)
                    self._run_one(functools.partial(entry[1], False))
            with self._lock:
                calls, self._calls = self._calls, []
            for call in calls:
                self._run_one(call)
            now = time.monotonic_ns()
            while self._timers and self._timers[0][0] <= now:
                self._run_one(heapq.heappop(self._timers)[2])

    def _listen(self) -> None:
        """Note the start of a wait. Busy longer than the tolerance since the last one, the
        loop could not see answers arrive: that is a stall of the harness (drills.stalls), and
        a sample slow or timed out across it says nothing about its target."""
        now = time.monotonic_ns()
        if now - self.woke_ns > self._stalls.tolerance_ns:
            self._stalls.add(self.woke_ns, now)
        self.listening_since_ns = now

    def _timeout(self) -> float | None:
        if self._calls:
            return 0
        if not self._timers:
            return None
        return max(0, self._timers[0][0] - time.monotonic_ns()) / 1e9

    def _drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while self._wake_r.recv(4096):
                pass

    @staticmethod
    def _run_one(callback: Callable[[], Any]) -> None:
        try:
            callback()
        except Exception:  # a runner's own handlers log; this is the last resort, never silent
            print("drills: internal error in the probe loop:", file=sys.stderr)
            traceback.print_exc()


SHARED = Reactor()
