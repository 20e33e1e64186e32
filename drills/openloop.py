"""Open-loop sampling: a sample is due every interval whatever earlier samples are doing.

Each probe gets a scheduler thread and a small pool of worker threads, one client each. A due
sample with no free worker is a `fail` at its due time; a sample not done by its deadline is
recorded at the deadline with the probe's timeout outcome, and its late result is discarded.
The scheduler enforces deadlines itself, so sub-second timeouts do not depend on libpq.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

from drills.history import Clock, HistoryLog, Op, Outcome, ProbeInfo
from probes.base import Client, Probe, Sample


@dataclass
class _Pending:
    seq: int
    due_ns: int
    deadline_ns: int
    done: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class ProbeState:
    """Counters for the live view and for `wait-until`."""

    ok: int = 0
    fail: int = 0
    unknown: int = 0
    slow: int = 0
    last_up: bool | None = None
    last_detail: str = ""


class _Worker:
    def __init__(self, runner: ProbeRunner, index: int) -> None:
        self.runner = runner
        self.inbox: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self.client: Client | None = None
        self.thread = threading.Thread(
            target=self._loop, name=f"probe-{runner.name}-{index}", daemon=True
        )

    def _loop(self) -> None:
        while True:
            pending = self.inbox.get()
            if pending is None:
                break
            if self.client is None:
                self.client = self.runner.probe.client()
            try:
                sample = self.client.sample(pending.seq)
            except Exception as exc:  # a probe bug must not look like an outage
                sample = Sample(Outcome.UNKNOWN, f"probe crashed: {exc!r}"[:200])
            self.runner.resolve(pending, sample, time.monotonic_ns())
            self.runner.idle.put(self)
        if self.client is not None:
            self.client.close()


class ProbeRunner:
    def __init__(self, probe: Probe, log: HistoryLog, clock: Clock) -> None:
        self.probe = probe
        self.name = probe.name
        self.log = log
        self.clock = clock
        cfg = probe.config
        self.interval_ns = round(cfg.interval * 1e9)
        self.timeout_ns = round(cfg.timeout * 1e9)
        self.slow_ns = round(cfg.slow_s * 1e9)
        self.idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self.workers = [_Worker(self, i) for i in range(cfg.connections)]
        self.state = ProbeState()
        self._inflight: dict[int, _Pending] = {}
        self._resolved: dict[int, tuple[int, bool]] = {}  # seq -> (due, up)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._schedule, name=f"sched-{self.name}", daemon=True
        )
        self.started_ns = 0
        self.stopped_ns = 0
        self.skipped = 0  # due times the harness itself was too late to issue

    def start(self) -> None:
        for worker in self.workers:
            worker.client = self.probe.client()
            worker.client.warm_up()
            worker.thread.start()
            self.idle.put(worker)
        self.started_ns = time.monotonic_ns()
        self._thread.start()

    def stop(self) -> None:
        """Stop issuing, give in-flight samples until their deadline, record the rest."""
        self._stop.set()
        self._thread.join()
        self.stopped_ns = time.monotonic_ns()
        while True:
            now = time.monotonic_ns()
            self._expire(now)
            with self._lock:
                if not self._inflight:
                    break
            time.sleep(0.002)
        for worker in self.workers:
            worker.inbox.put(None)
        for worker in self.workers:
            worker.thread.join(timeout=0.2)  # a worker stuck on a frozen server is left behind
        cfg = self.probe.config
        self.log.add_probe(
            ProbeInfo(
                name=self.name,
                kind=cfg.kind,
                interval_s=cfg.interval,
                timeout_s=cfg.timeout,
                slow_s=cfg.slow_s,
                started_ns=self.started_ns,
                stopped_ns=self.stopped_ns,
            )
        )

    def _schedule(self) -> None:
        next_due = self.started_ns
        seq = 0
        while not self._stop.is_set():
            now = time.monotonic_ns()
            self._expire(now)
            if now < next_due:
                time.sleep(min(next_due - now, self.interval_ns) / 1e9)
                continue
            if now - next_due > 2 * self.interval_ns:
                # The harness was descheduled; samples it never issued say nothing about targets.
                missed = (now - next_due) // self.interval_ns
                self.skipped += int(missed)
                next_due += missed * self.interval_ns
            seq += 1
            due = next_due
            next_due += self.interval_ns
            try:
                worker = self.idle.get_nowait()
            except queue.Empty:
                pending = _Pending(seq, due, due)
                with self._lock:
                    self._inflight[seq] = pending
                detail = f"no free connection: all {len(self.workers)} samples still in flight"
                self.resolve(pending, Sample(Outcome.FAIL, detail), due)
                continue
            pending = _Pending(seq, due, due + self.timeout_ns)
            with self._lock:
                self._inflight[seq] = pending
            worker.inbox.put(pending)

    def _expire(self, now: int) -> None:
        with self._lock:
            expired = [p for p in self._inflight.values() if p.deadline_ns <= now and not p.done]
        timeout_s = self.timeout_ns / 1e9
        for pending in expired:
            detail = f"timed out after {timeout_s:g}s"
            self.resolve(pending, Sample(self.probe.timeout_outcome, detail), pending.deadline_ns)

    def resolve(self, pending: _Pending, sample: Sample, complete_ns: int) -> None:
        """Record a sample once: whichever of completion and deadline comes first wins."""
        outcome, detail = sample.outcome, sample.detail
        with pending.lock:
            if pending.done:
                return
            pending.done = True
        up = outcome is Outcome.OK and complete_ns - pending.due_ns <= self.slow_ns
        with self._lock:
            self._inflight.pop(pending.seq, None)
            self._resolved[pending.seq] = (pending.due_ns, up)
            state = self.state
            if outcome is Outcome.OK:
                state.ok += 1
                state.slow += not up
            elif outcome is Outcome.FAIL:
                state.fail += 1
            else:
                state.unknown += 1
            state.last_up = up
            state.last_detail = detail
        self.log.add_op(
            Op(
                probe=self.name,
                seq=pending.seq,
                invoke_ns=pending.due_ns,
                complete_ns=complete_ns,
                outcome=outcome,
                wall_ns=self.clock.wall_ns_at(pending.due_ns),
                detail=detail,
                values=sample.values,
            )
        )

    def up_streak_since(self, since_ns: int) -> int:
        """Consecutive up samples at the end of those due since `since_ns` (in-flight ignored)."""
        with self._lock:
            samples = sorted((s, v) for s, v in self._resolved.items() if v[0] >= since_ns)
            pending = [p.seq for p in self._inflight.values() if p.due_ns >= since_ns]
        oldest_pending = min(pending) if pending else None
        streak = 0
        for seq, (_, up) in samples:
            if oldest_pending is not None and seq > oldest_pending:
                break
            streak = streak + 1 if up else 0
        return streak
