"""The threaded engine: a scheduler thread per probe and one worker thread per connection, for
probes whose clients block (drills.probe.Client). Each worker holds one client."""

from __future__ import annotations

import queue
import threading
import time

from drills.history import CRASHED, Clock, Event, HistoryLog, Outcome
from drills.lateness import skip_reason
from drills.openloop import ProbeRunner, _Pending, missed_due_times
from drills.probe import Client, Probe, Sample
from drills.stalls import SHARED, StallWatch


class _Worker:
    def __init__(self, runner: ThreadedRunner, index: int) -> None:
        self.runner = runner
        self.inbox: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self.client: Client | None = None
        self.current: _Pending | None = None  # the sample its connection is busy with
        self.thread = threading.Thread(
            target=self._loop, name=f"probe-{runner.name}-{index}", daemon=True
        )

    def _loop(self) -> None:
        while (pending := self.inbox.get()) is not None:
            self.current = pending
            pending.issued_ns = time.monotonic_ns()
            sample = self._sample(pending.seq)
            pending.answered = True
            done = time.monotonic_ns()
            if done > pending.deadline_ns:  # late: what a client with that timeout would see
                sample = Sample(self.runner.probe.timeout_outcome, self.runner.timeout_detail)
                done = pending.deadline_ns
            try:
                self.runner.resolve(pending, sample, done)
            except Exception as exc:  # a harness bug: this worker must live on regardless
                self.runner.log.fail(
                    f"internal error recording a sample of {self.runner.name}: {exc!r}"
                )
            self.current = None
            self.runner.idle.put(self)
        if self.client is not None:
            self.client.close()

    def _sample(self, seq: int) -> Sample:
        try:
            if self.client is None:
                self.client = self.runner.probe.client()
            return self.client.sample(seq)
        except Exception as exc:  # a probe bug must not look like an outage
            return Sample(Outcome.UNKNOWN, f"{CRASHED}{exc!r}"[:200])


class ThreadedRunner(ProbeRunner):
    def __init__(
        self, probe: Probe, log: HistoryLog, clock: Clock, stalls: StallWatch | None = SHARED
    ) -> None:
        super().__init__(probe, log, clock, stalls)
        self.idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self.workers = [_Worker(self, i) for i in range(probe.config.connections)]
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._schedule, name=f"sched-{self.name}", daemon=True
        )

    def warm_up(self) -> None:
        if self._warm:
            return
        self._warm = True
        for worker in self.workers:
            worker.client = self.probe.client()
            worker.client.warm_up()

    def start(self) -> None:
        self.warm_up()
        self._watch()
        for worker in self.workers:
            worker.thread.start()
            self.idle.put(worker)
        self.started_ns = time.monotonic_ns()
        self._thread.start()

    def halt(self) -> None:
        if self._thread.ident is None or self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self.stopped_ns = time.monotonic_ns()

    def settle(self) -> None:
        if self._thread.ident is None:
            return
        while True:
            now = time.monotonic_ns()
            self._expire(now)
            with self._lock:
                if not self._inflight:
                    return
            time.sleep(0.002)

    def stop(self) -> None:
        if self._stopped or self._thread.ident is None:
            self._stopped = True
            for worker in self.workers:  # warmed up, never started
                if worker.client is not None:
                    worker.client.close()
            self._unwatch()
            return
        self._stopped = True
        self.halt()
        self.settle()
        for worker in self.workers:
            worker.inbox.put(None)
        for worker in self.workers:
            worker.thread.join(timeout=0.2)  # a worker stuck on a frozen server is left behind
        self._finish()

    def _schedule(self) -> None:
        try:
            self._issue_until_stopped()
        except Exception as exc:  # a harness bug: the samples stop, which must not pass unseen
            self.log.fail(f"internal error scheduling samples of {self.name}: {exc!r}")

    def _issue_until_stopped(self) -> None:
        next_due = self.started_ns
        seq = 0
        waited = woke = next_due  # when its last sleep began and ended
        while not self._stop.is_set():
            now = time.monotonic_ns()
            self._expire(now)
            if now < next_due:
                wake = min(next_due, self._earliest_deadline())
                waited = now
                time.sleep(max(0, min(wake - now, self.interval_ns)) / 1e9)
                woke = time.monotonic_ns()
                continue
            missed = missed_due_times(now, next_due, self.interval_ns)
            if missed:
                reason = skip_reason(next_due, now, waited, woke)
                self.log.add_event(Event("harness", f"{self.name} scheduler", reason, next_due))
            self.skipped += missed
            next_due += missed * self.interval_ns
            seq += 1
            due = next_due
            next_due += self.interval_ns
            try:
                worker = self.idle.get_nowait()
            except queue.Empty:
                self._no_free_connection(seq, due)
                continue
            pending = _Pending(seq, due, due + self.timeout_ns)
            with self._lock:
                self._inflight[seq] = pending
            worker.inbox.put(pending)

    def _holders(self) -> list[_Pending]:
        return [p for p in (w.current for w in self.workers) if p is not None]

    def _earliest_deadline(self) -> int:
        with self._lock:
            deadlines = [p.deadline_ns for p in self._inflight.values() if not p.done]
        return min(deadlines, default=2**63)

    def _expire(self, now: int) -> None:
        with self._lock:
            expired = [p for p in self._inflight.values() if p.deadline_ns <= now and not p.done]
        for pending in expired:
            self._timed_out(pending, now, pending.answered)
