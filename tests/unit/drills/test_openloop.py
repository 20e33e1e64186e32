"""Open-loop scheduling with an in-process probe: due times, pool exhaustion, deadlines."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import pytest

from drills.history import CRASHED, Clock, HistoryLog, Op, Outcome, ProbeInfo
from drills.openloop import (
    STREAK_KEPT,
    ProbeRunner,
    _Pending,
    missed_due_times,
    start_all,
    stop_all,
)
from drills.probe import Client, Probe, ProbeConfig, Sample, WriteProbe
from drills.threaded_runner import ThreadedRunner

MS = 1_000_000
Script = Callable[[int], Sample]


class ScriptedClient(Client):
    def __init__(self, script: Script) -> None:
        self.script = script

    def sample(self, seq: int) -> Sample:
        return self.script(seq)


class ReadProbe(Probe):
    Config = ProbeConfig

    def __init__(self, script: Script, **config: Any) -> None:
        # Durations in seconds here; a scenario writes them with a unit.
        spelled = {k: f"{v * 1000:g}ms" if isinstance(v, float) else v for k, v in config.items()}
        super().__init__("fake", ProbeConfig.model_validate({"kind": "fake", **spelled}), "run")
        self.script = script

    def client(self) -> Client:
        return ScriptedClient(self.script)


class WritesProbe(WriteProbe, ReadProbe):
    def final_read(self) -> dict[int, int]:
        return {}


def ok_after(seconds: float) -> Script:
    def script(seq: int) -> Sample:
        time.sleep(seconds)
        return Sample(Outcome.OK)

    return script


def drive(probe: Probe, seconds: float) -> tuple[list[Op], ProbeInfo, ProbeRunner]:
    log = HistoryLog(Clock.now())
    runner = ThreadedRunner(probe, log, log.history.clock, stalls=None)
    return (*sampled_for(runner, log, seconds), runner)


def run_for(runner: ProbeRunner, seconds: float) -> None:
    runner.start()
    try:
        time.sleep(seconds)
    finally:
        runner.stop()


def sampled_for(runner: ProbeRunner, log: HistoryLog, seconds: float) -> tuple[list[Op], ProbeInfo]:
    """Start `runner`, let it sample for `seconds`, stop it: its samples and its counters."""
    run_for(runner, seconds)
    [info] = log.history.probes
    return log.history.ops_of(runner.name), info


def test_samples_are_due_every_interval_whatever_earlier_ones_do() -> None:
    # Each sample takes five intervals: a closed loop would issue one in five.
    ops, info, runner = drive(ReadProbe(ok_after(0.05), interval=0.01, connections=8), 0.3)
    interval = 10 * MS
    assert len(ops) + info.skipped >= 20
    assert [op.seq for op in ops] == list(range(1, len(ops) + 1))
    for op in ops:
        assert (op.invoke_ns - info.started_ns) % interval == 0  # due times on the grid
    dues = [op.invoke_ns for op in ops]
    assert dues == sorted(dues) and len(set(dues)) == len(dues)
    assert {op.outcome for op in ops} == {Outcome.OK}
    assert runner.state.ok == len(ops)


def test_a_sample_with_no_free_connection_fails_at_its_due_time() -> None:
    # The one connection is held by samples already slower than `slow`: the target's doing.
    ops, _, runner = drive(
        ReadProbe(ok_after(0.1), interval=0.02, timeout=0.5, slow=0.05, connections=1), 0.35
    )
    refused = [op for op in ops if op.outcome is Outcome.FAIL and not op.late]
    assert len(refused) >= 3
    for op in refused:
        assert op.complete_ns == op.invoke_ns
        assert op.detail == "no free connection: all 1 samples still in flight"
    assert any(op.outcome is Outcome.OK for op in ops)
    assert runner.state.fail == len(refused)


@pytest.mark.parametrize(
    ("probe_class", "outcome"), [(ReadProbe, Outcome.FAIL), (WritesProbe, Outcome.UNKNOWN)]
)
def test_a_sample_past_its_deadline_takes_the_probes_timeout_outcome(
    probe_class: type[ReadProbe], outcome: Outcome
) -> None:
    late = ok_after(0.08)  # its ok comes too late: discarded
    ops, _, _ = drive(probe_class(late, interval=0.02, timeout=0.05, connections=8), 0.2)
    assert ops
    for op in ops:
        assert op.outcome is outcome
        assert op.detail == "timed out after 0.05s"
        assert op.complete_ns - op.invoke_ns == 50 * MS  # recorded at the deadline


def test_an_ok_slower_than_slow_counts_as_down_but_keeps_its_latency() -> None:
    ops, _, runner = drive(
        ReadProbe(ok_after(0.04), interval=0.02, timeout=0.5, slow=0.02, connections=8), 0.2
    )
    assert ops and {op.outcome for op in ops} == {Outcome.OK}
    assert all(op.latency_s >= 0.04 for op in ops)
    assert runner.state.slow == runner.state.ok == len(ops)
    assert runner.state.last_up is False
    assert runner.state.down_since_ns is not None


def test_a_probe_that_raises_records_a_crash_not_an_outage() -> None:
    def boom(seq: int) -> Sample:
        raise ValueError("bug")

    ops, _, runner = drive(ReadProbe(boom, interval=0.02, connections=2), 0.1)
    assert ops and all(op.outcome is Outcome.UNKNOWN and op.crashed for op in ops)
    assert ops[0].detail == f"{CRASHED}ValueError('bug')"
    assert runner.state.unknown == len(ops)


def test_stop_is_safe_twice_and_before_start() -> None:
    log = HistoryLog(Clock.now())
    runner = ThreadedRunner(ReadProbe(ok_after(0)), log, log.history.clock, stalls=None)
    runner.stop()
    runner.stop()
    assert log.history.probes == []


def test_the_heap_before_the_samples_is_left_out_of_full_collections_while_they_run() -> None:
    log = HistoryLog(Clock.now())
    runner = ThreadedRunner(ReadProbe(ok_after(0)), log, log.history.clock, stalls=None)
    start_all([runner])
    try:
        frozen = gc.get_freeze_count()
    finally:
        stop_all([runner])
    assert frozen > 1_000  # at least the modules imported so far
    assert gc.get_freeze_count() == 0


def test_due_times_missed_by_a_descheduled_harness_are_skipped() -> None:
    assert missed_due_times(now_ns=25 * MS, next_due_ns=0, interval_ns=10 * MS) == 2
    assert missed_due_times(now_ns=20 * MS, next_due_ns=0, interval_ns=10 * MS) == 0
    assert missed_due_times(now_ns=5 * MS, next_due_ns=10 * MS, interval_ns=10 * MS) == 0


def resolved(runner: ProbeRunner, seq: int, outcome: Outcome, latency_ms: int = 1) -> None:
    due = seq * 10 * MS
    pending = _Pending(seq, due, due + 100 * MS)
    runner.resolve(pending, Sample(outcome), due + latency_ms * MS)


def test_state_counts_outages_from_the_first_failing_due_time() -> None:
    log = HistoryLog(Clock(0, 0))
    runner = ThreadedRunner(
        ReadProbe(ok_after(0), interval=0.01), log, log.history.clock, stalls=None
    )
    for seq, outcome in enumerate([Outcome.OK, Outcome.FAIL, Outcome.UNKNOWN], start=1):
        resolved(runner, seq, outcome)
    assert runner.state.down_since_ns == 20 * MS
    assert runner.state.down_for_ns(45 * MS) == 25 * MS
    resolved(runner, 4, Outcome.OK)
    assert runner.state.down_since_ns is None
    assert runner.state.downtime_ns == 41 * MS - 20 * MS  # to the first ok's completion
    assert (runner.state.ok, runner.state.fail, runner.state.unknown) == (2, 1, 1)


def test_a_sample_is_recorded_once_whichever_of_completion_and_deadline_comes_first() -> None:
    log = HistoryLog(Clock(0, 0))
    runner = ThreadedRunner(
        ReadProbe(ok_after(0), interval=0.01), log, log.history.clock, stalls=None
    )
    pending = _Pending(1, 10 * MS, 20 * MS)
    runner.resolve(pending, Sample(Outcome.FAIL, "timed out"), 20 * MS)
    runner.resolve(pending, Sample(Outcome.OK), 30 * MS)
    assert [(op.outcome, op.complete_ns) for op in log.history.ops] == [(Outcome.FAIL, 20 * MS)]


def test_the_up_streak_counts_back_from_the_newest_sample() -> None:
    log = HistoryLog(Clock(0, 0))
    runner = ThreadedRunner(
        ReadProbe(ok_after(0), interval=0.01), log, log.history.clock, stalls=None
    )
    for seq, outcome in enumerate([Outcome.OK, Outcome.FAIL, Outcome.OK, Outcome.OK], start=1):
        resolved(runner, seq, outcome)
    assert runner.up_streak_since(0) == 2
    assert runner.up_streak_since(40 * MS) == 1  # samples due before are not counted
    resolved(runner, 5, Outcome.OK, latency_ms=500)  # slower than `slow`: not up
    assert runner.up_streak_since(0) == 0


def test_a_long_run_keeps_a_bounded_window_for_the_up_streak() -> None:
    """Before: every resolved sample was kept for `wait-until`, 150 bytes each for ever."""
    log = HistoryLog(Clock(0, 0))
    runner = ThreadedRunner(
        ReadProbe(ok_after(0), interval=0.01), log, log.history.clock, stalls=None
    )
    for seq in range(1, 3 * STREAK_KEPT):
        resolved(runner, seq, Outcome.OK)
    assert len(runner._resolved) == STREAK_KEPT
    assert runner.up_streak_since(0) == STREAK_KEPT  # saturates: `stable` is at most half
    resolved(runner, 3 * STREAK_KEPT, Outcome.FAIL)
    assert runner.up_streak_since(0) == 0
    resolved(runner, 5, Outcome.OK)  # a straggler far older than the window is not kept
    assert len(runner._resolved) == STREAK_KEPT and 5 not in runner._resolved


def test_stragglers_resolved_out_of_order_do_not_grow_the_window() -> None:
    log = HistoryLog(Clock(0, 0))
    runner = ThreadedRunner(
        ReadProbe(ok_after(0), interval=0.01), log, log.history.clock, stalls=None
    )
    for seq in range(1, 4 * STREAK_KEPT):
        if seq % 7:
            resolved(runner, seq, Outcome.OK)
        if seq > STREAK_KEPT // 2 and (seq - STREAK_KEPT // 2) % 7 == 0:
            resolved(runner, seq - STREAK_KEPT // 2, Outcome.FAIL)  # timed out later
    assert len(runner._resolved) <= STREAK_KEPT


class BrokenLog(HistoryLog):
    """Recording the third sample raises, as a history write error once did."""

    def add_op(self, op: Op) -> None:
        if op.seq == 3:
            raise OSError(28, "No space left on device")
        super().add_op(op)


def test_an_error_recording_a_sample_does_not_kill_the_worker() -> None:
    """Before: the worker died, every later sample became `no free connection`: a fabricated
    outage. Now the failure is the history's, and the worker keeps sampling."""
    log = BrokenLog(Clock.now())
    runner = ThreadedRunner(
        ReadProbe(ok_after(0.0), interval=0.02, connections=1), log, log.history.clock
    )
    run_for(runner, 0.4)
    assert log.failure is not None and "internal error recording a sample of fake" in log.failure
    assert "No space left on device" in log.failure
    assert runner.state.fail == 0, runner.state.last_detail
    assert runner.state.ok > 10
    assert [o.seq for o in log.history.ops] == [1, 2]
