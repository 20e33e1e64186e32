"""Open-loop sampling: a sample is due every interval whatever earlier samples are doing.

`ProbeRunner` holds what every engine shares: the live counters, how a sample is judged and
recorded once, lateness (drills.lateness) and pool exhaustion. A due sample with no free
connection is a `fail` at its due time when the target holds a connection past `slow`, else
late; a sample not done by its deadline is recorded at the deadline with the probe's timeout
outcome, and its late result is discarded. The runner enforces deadlines itself, so sub-second
timeouts do not depend on libpq.

Two engines take the samples (drills.engines picks one per probe): one event loop for every
probe with a non-blocking client (drills.loop_runner), or a scheduler thread and one worker
thread per connection for the others (drills.threaded_runner).
"""

from __future__ import annotations

import gc
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from drills.history import Clock, HistoryLog, Op, Outcome, ProbeInfo
from drills.lateness import NOT_ISSUED, POOL_HELD, deadline_noticed_late, issued_late, stalled
from drills.probe import Probe, Sample
from drills.stalls import SHARED, StallWatch

# The longest `stable` run a scenario may ask for, and the resolved samples kept per probe
# for `up_streak_since`: twice as many, so late samples inside a run leave room for it.
MAX_STABLE = 1_000
STREAK_KEPT = 2 * MAX_STABLE


def missed_due_times(now_ns: int, next_due_ns: int, interval_ns: int) -> int:
    """Due times to skip: when the harness was descheduled for more than two intervals, the
    samples it never issued say nothing about the targets (they are counted, not recorded)."""
    late = now_ns - next_due_ns
    return late // interval_ns if late > 2 * interval_ns else 0


@dataclass
class _Pending:
    seq: int
    due_ns: int
    deadline_ns: int
    done: bool = False
    issued_ns: int | None = None  # set as the sample is really issued
    answered: bool = False  # the target answered; the harness has yet to record it
    up: bool | None = None  # once done: whether it was up (None: late, it says nothing)
    complete_ns: int = 0  # once done: when
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class ProbeState:
    """Counters for the live view and for `wait-until`."""

    ok: int = 0
    fail: int = 0
    unknown: int = 0
    slow: int = 0
    late: int = 0  # samples the harness was late for: neither up nor down
    last_up: bool | None = None
    last_detail: str = ""
    down_since_ns: int | None = None  # due time of the first sample of the current outage
    downtime_ns: int = 0  # finished outages so far (for stop conditions)

    def down_for_ns(self, now_ns: int) -> int:
        return 0 if self.down_since_ns is None else now_ns - self.down_since_ns

    def total_down_ns(self, now_ns: int) -> int:
        return self.downtime_ns + self.down_for_ns(now_ns)


def start_all(runners: list[ProbeRunner]) -> None:
    """Warm every runner up before any samples: opening connections is work for the targets
    that would slow the probes already sampling them."""
    for runner in runners:
        runner.warm_up()
    freeze_heap()
    for runner in runners:
        runner.start()


def stop_all(runners: list[ProbeRunner]) -> None:
    """Halt every runner, then let every sample in flight end, then close the connections:
    closing one probe's connections makes work for a target other probes are still sampling
    (hundreds of backends exiting at once answer the others' queries late), which would show
    as an outage at the very end."""
    try:
        for runner in runners:
            runner.halt()
        for runner in runners:
            runner.settle()
        for runner in runners:
            runner.stop()
    finally:
        gc.unfreeze()


def freeze_heap() -> None:
    """Leave every object that exists before the samples start out of the garbage collector's
    full passes until they stop (`stop_all` unfreezes, whoever else froze what). A full pass
    holds the GIL over the whole heap, and no probe issues or reads a sample meanwhile: 11-20 ms
    after importing drills, 20-40 ms late in a test session (timed with gc.callbacks). What the
    drill allocates later is collected as usual."""
    gc.collect()
    gc.freeze()


class ProbeRunner(ABC):
    """One probe's samples: started before the drill, stopped after it."""

    def __init__(
        self, probe: Probe, log: HistoryLog, clock: Clock, stalls: StallWatch | None = SHARED
    ) -> None:
        self.probe = probe
        self.stalls = stalls  # None: the harness's stalls are not watched (tests)
        self._watching = False
        self.name = probe.name
        self.log = log
        self.clock = clock
        cfg = probe.config
        self.interval_ns = round(cfg.interval * 1e9)
        self.timeout_ns = round(cfg.timeout * 1e9)
        self.slow_ns = round(cfg.slow_s * 1e9)
        self.state = ProbeState()
        self._inflight: dict[int, _Pending] = {}
        # Samples that found no free connection, with the samples holding the connections.
        self._blocked: list[tuple[_Pending, list[_Pending]]] = []
        # seq -> (due, up; None: late), the newest STREAK_KEPT only: memory stays flat
        self._resolved: dict[int, tuple[int, bool | None]] = {}
        self._newest = 0
        self._lock = threading.Lock()
        self.started_ns = 0
        self.stopped_ns = 0
        self.skipped = 0  # due times the harness itself was too late to issue
        self._stopped = False
        self._warm = False

    @abstractmethod
    def warm_up(self) -> None:
        """Open the connections before any probe samples, so that opening them neither
        counts as an outage nor slows the target while other probes sample. Once only."""

    @abstractmethod
    def start(self) -> None:
        """Start issuing samples (warming up first if that was not done)."""

    @abstractmethod
    def halt(self) -> None:
        """Stop issuing samples (those in flight go on). Safe to call twice."""

    @abstractmethod
    def settle(self) -> None:
        """After halt: wait until every sample in flight is recorded (by its deadline)."""

    @abstractmethod
    def stop(self) -> None:
        """Halt, give in-flight samples until their deadline, record the rest, close the
        connections. Safe to call twice, and on a runner that never started."""

    @abstractmethod
    def _holders(self) -> list[_Pending]:
        """The samples holding a connection now."""

    def _watch(self) -> None:
        if self.stalls is not None:
            self.stalls.acquire()
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching and self.stalls is not None:
            self.stalls.release()
        self._watching = False

    def _finish(self) -> None:
        """After the last sample is resolved: settle what found no connection, and record the
        probe's own figures."""
        with self._lock:
            unsettled, self._blocked = self._blocked, []
        for pending, _ in unsettled:  # their holders never finished: nothing says the target
            self.resolve(pending, self._pool_full, pending.due_ns, POOL_HELD)
        self._unwatch()
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
                skipped=self.skipped,
            )
        )

    def _timed_out(self, pending: _Pending, now: int, answered: bool) -> None:
        """`pending`'s deadline, noticed at `now`. Answered but not yet recorded: the answer
        may have come in time, so a deadline noticed late cannot be trusted."""
        sample = Sample(self.probe.timeout_outcome, self.timeout_detail)
        late = deadline_noticed_late(pending.deadline_ns, now) if answered else ""
        if pending.issued_ns is None:
            late = NOT_ISSUED
        self.resolve(pending, sample, pending.deadline_ns, late)

    def _no_free_connection(self, seq: int, due: int) -> None:
        """Every connection busy. Judged once the samples holding them are: the target's
        failure if one of them was down and still in flight at this due time, else the
        harness's lateness (samples done but not yet recorded, or a pool too small for the
        latency). One past its deadline may still hold its connection."""
        holders = self._holders()
        with self._lock:
            self._blocked.append((_Pending(seq, due, due), holders))
        self._settle_blocked()

    def _settle_blocked(self) -> None:
        with self._lock:
            ready = [(p, h) for p, h in self._blocked if all(x.done for x in h)]
            self._blocked = [(p, h) for p, h in self._blocked if not all(x.done for x in h)]
        for pending, holders in ready:
            # Evidence only from a holder the target still kept at this sample's due time: not
            # answered yet (timed out, its worker still stuck), or answered after it.
            down = any(
                h.up is False and (not h.answered or h.complete_ns > pending.due_ns)
                for h in holders
            )
            self.resolve(pending, self._pool_full, pending.due_ns, "" if down else POOL_HELD)

    @property
    def _pool_full(self) -> Sample:
        connections = self.probe.config.connections
        return Sample(
            Outcome.FAIL, f"no free connection: all {connections} samples still in flight"
        )

    @property
    def timeout_detail(self) -> str:
        return f"timed out after {self.timeout_ns / 1e9:g}s"

    def resolve(self, pending: _Pending, sample: Sample, complete_ns: int, late: str = "") -> None:
        """Record a sample once: whichever of completion and deadline comes first wins. A
        sample the harness was `late` for is recorded as such and counts neither way."""
        outcome, detail = sample.outcome, sample.detail
        with pending.lock:
            if pending.done:
                return
            pending.done = True
        if not late and pending.issued_ns is not None:
            late = issued_late(pending.due_ns, pending.issued_ns)
        up = outcome is Outcome.OK and complete_ns - pending.due_ns <= self.slow_ns
        if not late and not up:
            late = self._stalled(pending, sample, complete_ns)
        with self._lock:
            self._inflight.pop(pending.seq, None)
            # A late sample that was down still ends a run of ups: recovery is never earlier.
            self._keep_resolved(pending.seq, pending.due_ns, None if late and up else up)
            pending.up, pending.complete_ns = (None if late else up), complete_ns
            if not late:
                self._count(outcome, up, detail, pending.due_ns, complete_ns)
            else:
                self.state.late += 1
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
                tags=sample.tags,
                issued_ns=pending.issued_ns,
                late=late,
            )
        )
        if self._blocked:
            self._settle_blocked()

    def _keep_resolved(self, seq: int, due_ns: int, up: bool | None) -> None:
        """Under the lock: keep the newest STREAK_KEPT, evicting the first kept; a straggler
        older than those is not kept at all."""
        self._newest = max(self._newest, seq)
        if seq <= self._newest - STREAK_KEPT:
            return
        self._resolved[seq] = (due_ns, up)
        while len(self._resolved) > STREAK_KEPT:
            del self._resolved[next(iter(self._resolved))]

    def _stalled(self, pending: _Pending, sample: Sample, complete_ns: int) -> str:
        """Late when the harness stalled while a sample that was slow or timed out was in
        flight, long enough to explain it; never for an answer the target gave (a refusal)."""
        timed_out = sample.detail == self.timeout_detail
        if self.stalls is None or not (timed_out or sample.outcome is Outcome.OK):
            return ""
        stall = self.stalls.stalled_ns(pending.due_ns, complete_ns, time.monotonic_ns())
        return stalled(stall) if stall > complete_ns - pending.due_ns - self.slow_ns else ""

    def _count(
        self, outcome: Outcome, up: bool, detail: str, due_ns: int, complete_ns: int
    ) -> None:
        """The live counters, for the view, `wait-until` and stop conditions (under the lock)."""
        state = self.state
        if outcome is Outcome.OK:
            state.ok += 1
            state.slow += not up
        elif outcome is Outcome.FAIL:
            state.fail += 1
        else:
            state.unknown += 1
        if not up and state.down_since_ns is None:
            state.down_since_ns = due_ns
        elif up and state.down_since_ns is not None:
            state.downtime_ns += max(0, complete_ns - state.down_since_ns)
            state.down_since_ns = None
        state.last_up = up
        state.last_detail = detail

    def up_streak_since(self, since_ns: int) -> int:
        """Consecutive up samples at the end of those due since `since_ns`, counted back from
        the newest; samples still in flight are skipped at the end and break the run before."""
        with self._lock:
            newest = self._newest
            oldest_pending = min(
                (p.seq for p in self._inflight.values() if p.due_ns >= since_ns), default=None
            )
            streak = 0
            seq = newest if oldest_pending is None else oldest_pending - 1
            while seq in self._resolved:
                due, up = self._resolved[seq]
                if due < since_ns or up is False:
                    break
                streak += up is True  # a late sample (None) neither counts nor breaks the run
                seq -= 1
        return streak
