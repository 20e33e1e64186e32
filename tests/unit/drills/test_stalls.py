"""The harness's stalls: wakes later than the tolerance are stalls, and a sample in flight
during one (or while one is still going on) is late, never the target's failure."""

from __future__ import annotations

import time

from drills.history import Clock, HistoryLog, Outcome
from drills.openloop import _Pending
from drills.probe import Sample
from drills.stalls import StallWatch
from drills.threaded_runner import ThreadedRunner
from tests.unit.drills.test_openloop import ReadProbe, ok_after

MS = 1_000_000


def test_a_wake_later_than_the_tolerance_is_a_stall() -> None:
    watch = StallWatch(tolerance_ns=10 * MS)
    watch.note(100 * MS, 105 * MS)  # 5 ms late: scheduling noise
    watch.note(200 * MS, 260 * MS)  # 60 ms late: a stall
    assert watch.stalled_ns(0, 150 * MS, 260 * MS) == 0
    assert watch.stalled_ns(250 * MS, 300 * MS, 300 * MS) == 60 * MS
    assert watch.stalled_ns(150 * MS, 210 * MS, 300 * MS) == 60 * MS
    assert watch.stalled_ns(261 * MS, 300 * MS, 300 * MS) == 0


def test_a_stall_still_going_on_counts_once_the_watch_is_overdue() -> None:
    watch = StallWatch(tolerance_ns=10 * MS, period_ns=2 * MS)
    watch.acquire()
    try:
        now = time.monotonic_ns()
        assert watch.stalled_ns(now - 5 * MS, now, now) == 0
        later = now + 500 * MS  # as if the watch had not woken for half a second
        assert watch.stalled_ns(now, later, later) >= 400 * MS
    finally:
        watch.release()


def test_the_watch_runs_while_a_runner_uses_it() -> None:
    watch = StallWatch()
    watch.acquire()
    watch.acquire()
    watch.release()
    assert watch._thread is not None
    watch.release()
    assert watch._thread is None


def test_a_sample_in_flight_during_a_stall_is_late() -> None:
    watch = StallWatch(tolerance_ns=10 * MS)
    log = HistoryLog(Clock.now())
    runner = ThreadedRunner(ReadProbe(ok_after(0)), log, log.history.clock, stalls=watch)
    watch.note(20 * MS, 300 * MS)
    slow = _Pending(1, 10 * MS, 510 * MS, issued_ns=11 * MS)
    runner.resolve(slow, Sample(Outcome.OK), 310 * MS)  # 300 ms: slower than `slow` (250)
    refused = _Pending(2, 20 * MS, 520 * MS, issued_ns=21 * MS)
    runner.resolve(refused, Sample(Outcome.FAIL, "refused"), 305 * MS)
    late, answered = log.history.ops
    assert late.late == "the harness stalled 280.0 ms while it was in flight"
    assert answered.late == ""  # the target's own answer: a stall cannot have made it
    assert runner.state.fail == 1 and runner.state.late == 1


def test_a_stall_too_short_to_explain_a_timeout_leaves_it_the_targets() -> None:
    watch = StallWatch(tolerance_ns=10 * MS)
    log = HistoryLog(Clock.now())
    runner = ThreadedRunner(ReadProbe(ok_after(0)), log, log.history.clock, stalls=watch)
    watch.note(100 * MS, 120 * MS)  # 20 ms: the sample took 500 ms, 250 more than `slow`
    pending = _Pending(1, 10 * MS, 510 * MS, issued_ns=11 * MS)
    runner.resolve(pending, Sample(Outcome.FAIL, runner.timeout_detail), 510 * MS)
    assert log.history.ops[0].late == "" and runner.state.fail == 1
