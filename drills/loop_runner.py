"""The event-loop engine: every probe with a non-blocking client (drills.probe.LoopClient) is
scheduled and sampled on one thread (drills.reactor), with one client per connection.

A sample is issued on its due-time timer: a free connection's client starts its exchange, which
yields each time it waits on its socket. Its deadline is a timer too; a sample past it is
recorded as timed out, and its connection stays held until the target answers, as a blocking
client's would. Lateness is judged as in the threaded engine: `issued_ns` is when the exchange
really started.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from drills.history import CRASHED, Clock, Event, HistoryLog, Outcome
from drills.lateness import deadline_noticed_late, skip_reason
from drills.openloop import ProbeRunner, _Pending, missed_due_times
from drills.probe import Exchange, LoopClient, Probe, Sample
from drills.reactor import SHARED as SHARED_REACTOR
from drills.reactor import EventLoop, Reactor
from drills.stalls import SHARED, StallWatch

ANSWER_LOOP_S = 5.0  # how long stop() waits for the loop thread to run its request


class _Slot:
    """One connection: its client and the sample it is busy with."""

    __slots__ = ("client", "current", "exchange", "fd")

    def __init__(self, client: LoopClient) -> None:
        self.client = client
        self.current: _Pending | None = None
        self.exchange: Exchange | None = None
        self.fd: int | None = None  # watched for the exchange


class LoopRunner(ProbeRunner):
    def __init__(
        self,
        probe: Probe,
        log: HistoryLog,
        clock: Clock,
        clients: list[LoopClient],
        stalls: StallWatch | None = SHARED,
        reactor: Reactor = SHARED_REACTOR,
    ) -> None:
        super().__init__(probe, log, clock, stalls)
        self.reactor = reactor
        self.slots = [_Slot(client) for client in clients]
        self._idle: list[_Slot] = []
        self._loop: EventLoop | None = None
        self._issuing = False
        self._next_due = 0
        self._seq = 0

    def warm_up(self) -> None:
        if self._warm:
            return
        self._warm = True
        for slot in self.slots:
            slot.client.warm_up()

    def start(self) -> None:
        self.warm_up()
        self._watch()
        self._idle = list(self.slots)
        self._loop = self.reactor.acquire()
        self.started_ns = self._next_due = time.monotonic_ns()
        self._issuing = True
        self._loop.call_soon_threadsafe(self._tick)

    def halt(self) -> None:
        if self._loop is not None and self._issuing and not self._on_loop(self._stop_issuing):
            self._issuing, self.stopped_ns = False, time.monotonic_ns()

    def settle(self) -> None:
        """Wait for the samples in flight: their deadline timers end them. A loop that died
        cannot; they are then recorded as the harness's lateness."""
        if self._loop is None:
            return
        give_up = time.monotonic_ns() + self.timeout_ns + round(ANSWER_LOOP_S * 1e9)
        while True:
            with self._lock:
                left = list(self._inflight.values())
            if not left:
                return
            now = time.monotonic_ns()
            if now > give_up:
                self.log.fail(f"internal error stopping {self.name}: samples left in flight")
                for pending in left:
                    self._timed_out(pending, now, answered=True)
                return
            time.sleep(0.002)

    def stop(self) -> None:
        if self._stopped or self._loop is None:
            self._stopped = True
            for slot in self.slots:  # warmed up, never started
                _close(slot)
            self._unwatch()
            return
        self._stopped = True
        self.halt()
        self.settle()
        self._on_loop(self._close_all)
        self._loop = None
        self.reactor.release()
        self._finish()

    def _on_loop(self, action: Callable[[], None]) -> bool:
        """Run `action` on the loop thread and wait for it; False if the loop did not."""
        assert self._loop is not None
        done = threading.Event()

        def run() -> None:
            try:
                action()
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        if done.wait(ANSWER_LOOP_S):
            return True
        self.log.fail(f"internal error stopping {self.name}: the probe loop did not answer")
        return False

    def _stop_issuing(self) -> None:
        self._issuing = False
        self.stopped_ns = time.monotonic_ns()

    def _close_all(self) -> None:
        assert self._loop is not None
        for slot in self.slots:
            if slot.fd is not None:
                self._loop.forget(slot.fd)
            _close(slot)

    def _holders(self) -> list[_Pending]:
        return [slot.current for slot in self.slots if slot.current is not None]

    def _tick(self) -> None:
        if not self._issuing:
            return
        assert self._loop is not None
        try:
            self._issue(time.monotonic_ns())
        except Exception as exc:  # a harness bug: the samples stop, which must not pass unseen
            self.log.fail(f"internal error scheduling samples of {self.name}: {exc!r}")
            return
        self._loop.call_at(self._next_due, self._tick)

    def _issue(self, now: int) -> None:
        assert self._loop is not None
        missed = missed_due_times(now, self._next_due, self.interval_ns)
        if missed and self._loop.skip_told_ns != self._loop.woke_ns:
            self._tell_skip(now)
        self.skipped += missed
        self._next_due += missed * self.interval_ns
        self._seq += 1
        due = self._next_due
        self._next_due += self.interval_ns
        if not self._idle:
            self._no_free_connection(self._seq, due)
            return
        slot = self._idle.pop()
        pending = _Pending(self._seq, due, due + self.timeout_ns)
        with self._lock:
            self._inflight[pending.seq] = pending
        self._loop.call_at(pending.deadline_ns, lambda: self._deadline(slot, pending))
        slot.current = pending
        pending.issued_ns = time.monotonic_ns()
        try:
            slot.exchange = slot.client.exchange(pending.seq)
        except Exception as exc:  # a probe bug must not look like an outage
            self._complete(slot, _crashed(exc), broken=True)
            return
        self._step(slot, timed_out=False)

    def _tell_skip(self, now: int) -> None:
        """Once a wake of the loop (every probe on it skips together): why it was late."""
        assert self._loop is not None
        loop = self._loop
        loop.skip_told_ns = loop.woke_ns
        reason = skip_reason(self._next_due, now, loop.listening_since_ns, loop.woke_ns)
        self.log.add_event(Event("harness", "probe loop", reason, self._next_due))

    def _step(self, slot: _Slot, timed_out: bool, ready: bool = False) -> None:
        """Run the exchange to its next wait, or to its end. `ready`: resumed because its
        socket was ready (not timed out), so what it read was there when the loop last woke."""
        assert self._loop is not None and slot.exchange is not None
        slot.fd = None
        try:
            if timed_out:
                wait = slot.exchange.throw(TimeoutError("timed out"))
            else:
                wait = slot.exchange.send(None)
            self._loop.wait(
                wait.fd, wait.events, lambda t: self._step(slot, t, ready=not t), wait.until_ns
            )
            slot.fd = wait.fd
        except StopIteration as end:
            self._complete(slot, end.value, ready_ns=self._loop.woke_ns if ready else None)
        except Exception as exc:  # a probe bug must not look like an outage
            self._complete(slot, _crashed(exc), broken=True)

    def _complete(
        self, slot: _Slot, sample: Sample, broken: bool = False, ready_ns: int | None = None
    ) -> None:
        assert self._loop is not None
        pending = slot.current
        assert pending is not None
        slot.current, slot.exchange, slot.fd = None, None, None
        if broken:
            slot.client.close()
        pending.answered = True
        # Read after the loop woke: the answer was there by then, however busy the loop was.
        done = ready_ns if ready_ns is not None else time.monotonic_ns()
        late = ""
        if done > pending.deadline_ns:  # late: what a client with that timeout would see
            sample = Sample(self.probe.timeout_outcome, self.timeout_detail)
            done = pending.deadline_ns
            late = self._busy_at(pending.deadline_ns)
        try:
            self.resolve(pending, sample, done, late)
        except Exception as exc:  # a harness bug: the loop must live on regardless
            self.log.fail(f"internal error recording a sample of {self.name}: {exc!r}")
        self._idle.append(slot)

    def _deadline(self, slot: _Slot, pending: _Pending) -> None:
        if pending.done:
            return
        assert self._loop is not None
        # Sockets found ready when the loop last woke were read before its timers ran, so an
        # answer can be waiting unread only if that was before the deadline: then look.
        waiting = (
            self._loop.woke_ns < pending.deadline_ns
            and slot.fd is not None
            and self._loop.ready_now(slot.fd)
        )
        self._timed_out(pending, time.monotonic_ns(), answered=waiting)

    def _busy_at(self, deadline_ns: int) -> str:
        """Why a sample read after its deadline is late ("" when it is a timeout): the loop was
        busy elsewhere at the deadline, so its answer may have been waiting before it."""
        assert self._loop is not None
        if self._loop.listening_since_ns <= deadline_ns:
            return ""  # listening at the deadline, and its socket was not ready until after
        return deadline_noticed_late(deadline_ns, time.monotonic_ns())


def _close(slot: _Slot) -> None:
    """Close a slot's exchange and client. Errors closing are ignored: they say nothing about
    the target, and one must not leave the other slots open."""
    with contextlib.suppress(Exception):
        if slot.exchange is not None:
            slot.exchange.close()
    slot.exchange = None
    with contextlib.suppress(Exception):
        slot.client.close()


def _crashed(exc: Exception) -> Sample:
    return Sample(Outcome.UNKNOWN, f"{CRASHED}{exc!r}"[:200])
