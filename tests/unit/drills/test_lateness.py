"""The harness's lateness on synthetic schedules: a sample issued late, on time, with the pool
held by the harness or by the target, and a target that is down; late samples never become
downtime, and too many make the run an error (issue 14)."""

from __future__ import annotations

import time

from drills.checker import CheckConfig, Objectives, Overall, check
from drills.downtime import summarize_probe
from drills.history import Clock, History, Op, Outcome, ProbeInfo, StepEvent
from drills.lateness import (
    LATE_TOLERANCE_NS,
    NOT_ISSUED,
    POOL_HELD,
    HarnessLag,
    deadline_noticed_late,
    harness_lag,
    issued_late,
    load_line,
    overload_error,
    probe_load,
    skip_reason,
)
from drills.openloop import ProbeRunner, _Pending
from drills.probe import Sample
from drills.threaded_runner import ThreadedRunner
from tests.unit.drills.test_openloop import ReadProbe, ok_after

MS = 1_000_000
INTERVAL = 10 * MS


def test_a_sample_issued_within_the_tolerance_is_on_time() -> None:
    assert issued_late(1_000 * MS, 1_000 * MS + LATE_TOLERANCE_NS) == ""
    assert issued_late(1_000 * MS, 1_000 * MS + LATE_TOLERANCE_NS + 1) != ""
    assert issued_late(0, 35 * MS) == "issued 35.0 ms after its due time"
    assert deadline_noticed_late(0, 5 * MS) == ""
    assert deadline_noticed_late(0, 250 * MS) == "its deadline was noticed 250.0 ms late"


def _history(ops: list[Op], started: int = 0, stopped: int = 10_000 * MS) -> History:
    history = History(clock=Clock(mono_ns=0, wall_ns=1_780_000_000 * 10**9))
    history.ops.extend(ops)
    history.probes.append(ProbeInfo("reads", "fake", INTERVAL / 1e9, 0.5, 0.5, started, stopped))
    return history


def _op(seq: int, outcome: Outcome, late: str = "", lag_ms: float = 1.0) -> Op:
    due = seq * INTERVAL
    return Op(
        "reads", seq, due, due + 2 * MS, outcome, issued_ns=due + round(lag_ms * MS), late=late
    )


def _schedule(down: range, late: range) -> list[Op]:
    ops = []
    for seq in range(1, 201):
        outcome = Outcome.FAIL if seq in down else Outcome.OK
        why = "issued 50.0 ms after its due time" if seq in late else ""
        ops.append(_op(seq, outcome, why, 50.0 if seq in late else 1.0))
    return ops


def test_late_samples_in_a_run_of_oks_make_no_outage() -> None:
    # The harness stalled for 30 samples: they "failed" (timed out) but were issued late.
    ops = _schedule(down=range(50, 80), late=range(50, 80))
    history = _history(ops)
    summary = summarize_probe(history, history.probes[0], stable=3)
    assert summary.outages == [] and summary.downtime_s == 0
    assert summary.late == 30 and summary.samples == 170


def test_a_real_outage_is_measured_from_the_samples_issued_on_time() -> None:
    # The target was down for samples 100-129; two of them were issued late.
    ops = _schedule(down=range(100, 130), late=range(110, 112))
    history = _history(ops)
    [outage] = summarize_probe(history, history.probes[0], stable=3).outages
    assert outage.first_fail_invoke_ns == 100 * INTERVAL
    assert outage.end_ns == 130 * INTERVAL + 2 * MS
    assert outage.samples == 28


def test_harness_lag_and_the_overload_verdict() -> None:
    quiet = harness_lag(_schedule(down=range(0), late=range(1, 6)))
    assert (quiet.samples, quiet.late) == (200, 5)
    assert quiet.lag_p50_ms == 1.0 and quiet.lag_max_ms == 50.0
    assert overload_error(quiet) is None  # 2.5%
    busy = harness_lag(_schedule(down=range(0), late=range(1, 70)))
    assert overload_error(busy) == (
        "harness overloaded: 34% of samples late (69 of 200); use fewer probes or longer intervals"
    )


def test_one_late_sample_is_never_an_overload_however_short_the_disruption() -> None:
    short = harness_lag(_schedule(down=range(0), late=range(1, 2)))
    nine = HarnessLag(samples=9, late=1, lag_p50_ms=1.0, lag_p99_ms=2.0, lag_max_ms=11.6)
    assert overload_error(short, nine) is None  # 1 of 9 (11%) during a 66 ms disruption
    two = HarnessLag(samples=9, late=2, lag_p50_ms=1.0, lag_p99_ms=2.0, lag_max_ms=11.6)
    assert overload_error(short, two) == (
        "harness overloaded during the disruption: 22% of samples late (2 of 9); use fewer "
        "probes or longer intervals"
    )


def test_an_overloaded_run_is_an_error_never_a_missed_objective() -> None:
    history = _history(_schedule(down=range(20, 140), late=range(20, 140)))
    history.steps.append(StepEvent(1, "kill", "kill a", 15 * INTERVAL, 15 * INTERVAL, True, True))
    config = CheckConfig(Objectives(rto_s=0.01, rpo_s=1, availability=0.9999), "reads", None)
    result = check(history, config)
    assert result.verdict is Overall.ERROR
    assert result.harness_error is not None and "60% of samples late" in result.harness_error
    assert result.downtime_s == 0  # nothing the harness was late for became downtime


def _runner() -> ProbeRunner:
    from drills.history import HistoryLog

    log = HistoryLog(Clock.now())
    return ThreadedRunner(ReadProbe(ok_after(0)), log, log.history.clock, stalls=None)


def test_a_pool_whose_holders_were_up_is_lateness_not_a_failure() -> None:
    runner = _runner()
    now = time.monotonic_ns()
    holder = _Pending(1, now - INTERVAL, now + 500 * MS, issued_ns=now - INTERVAL)
    runner.workers[0].current = holder
    runner._no_free_connection(2, now)
    assert runner.log.history.ops == []  # judged once the holder is
    runner.resolve(holder, Sample(Outcome.OK), now + MS)
    _, blocked = runner.log.history.ops
    assert blocked.seq == 2 and blocked.late == POOL_HELD and blocked.outcome is Outcome.FAIL
    assert runner.state.late == 1 and runner.state.fail == 0


def test_a_pool_held_by_a_sample_that_was_down_is_the_targets_failure() -> None:
    runner = _runner()
    now = time.monotonic_ns()
    holder = _Pending(1, now - INTERVAL, now + 500 * MS, issued_ns=now - INTERVAL)
    runner.workers[0].current = holder
    runner._no_free_connection(2, now)
    runner.resolve(holder, Sample(Outcome.FAIL, runner.timeout_detail), now + 490 * MS)
    _, blocked = runner.log.history.ops
    assert blocked.late == "" and blocked.complete_ns == blocked.invoke_ns == now
    assert runner.state.fail == 2 and runner.state.down_since_ns == now - INTERVAL


def test_a_pool_held_past_its_deadline_is_judged_at_once() -> None:
    runner = _runner()
    now = time.monotonic_ns()
    stuck = _Pending(1, now - 600 * MS, now - 100 * MS, issued_ns=now - 600 * MS)
    runner.resolve(stuck, Sample(Outcome.FAIL, runner.timeout_detail), now - 100 * MS)
    runner.workers[0].current = stuck  # its worker is still blocked on the frozen target
    runner._no_free_connection(2, now)
    assert runner.log.history.ops[-1].late == "" and runner.state.fail == 2


def test_a_sample_never_issued_by_its_deadline_is_late() -> None:
    runner = _runner()
    runner._inflight[1] = _Pending(1, 0, 100 * MS)
    runner._expire(101 * MS)
    [op] = runner.log.history.ops
    assert op.late == NOT_ISSUED and op.outcome is runner.probe.timeout_outcome


def test_a_deadline_noticed_late_is_not_trusted() -> None:
    runner = _runner()
    runner._inflight[1] = _Pending(1, 0, 100 * MS, issued_ns=1 * MS, answered=True)
    runner._inflight[2] = _Pending(2, 10 * MS, 110 * MS, issued_ns=11 * MS)  # no answer yet
    runner._expire(400 * MS)
    answered, silent = runner.log.history.ops
    assert answered.late == "its deadline was noticed 300.0 ms late"
    assert silent.late == "" and runner.state.fail == 1  # the target never answered it


def test_a_sample_issued_late_is_recorded_late_whatever_its_outcome() -> None:
    runner = _runner()
    pending = _Pending(1, 0, 500 * MS, issued_ns=40 * MS)
    runner.resolve(pending, Sample(Outcome.OK), 42 * MS)
    [op] = runner.log.history.ops
    assert op.late == "issued 40.0 ms after its due time" and op.issued_ns == 40 * MS
    assert runner.state.ok == 0 and runner.state.late == 1


def test_late_samples_neither_count_nor_break_the_up_streak() -> None:
    runner = _runner()
    for seq in range(1, 6):
        issued = seq * INTERVAL + (50 * MS if seq == 3 else 0)
        pending = _Pending(seq, seq * INTERVAL, seq * INTERVAL + 500 * MS, issued_ns=issued)
        runner._inflight[seq] = pending
        runner.resolve(pending, Sample(Outcome.OK), seq * INTERVAL + MS)
    assert runner.up_streak_since(0) == 4


def test_the_dry_run_states_the_load_and_warns_above_the_capacity() -> None:
    from types import SimpleNamespace

    probe = SimpleNamespace(interval=0.02, connections=4)
    light = probe_load([(probe, True), (probe, False)])
    line = "probe load: 100 samples/s (1 probe on the event loop, 1 on 5 threads)"
    assert load_line(light) == line
    heavy = probe_load([(SimpleNamespace(interval=0.01, connections=4), True)] * 30)
    assert heavy.samples_per_s == 3000 and heavy.threads == 0 and heavy.on_loop == 30
    line = load_line(heavy, capacity=1000)
    assert line.startswith(
        "probe load: 3,000 samples/s (30 probes on the event loop). WARNING: above the 1,000"
    )
    assert "use fewer probes or longer intervals" in line


def test_an_outage_hidden_by_late_samples_makes_the_run_an_error() -> None:
    # 400 samples, 15 late and down during the fault: 3.75% of the run, all of the outage.
    ops = [_op(seq, Outcome.OK) for seq in range(1, 401)]
    for seq in range(100, 115):
        ops[seq - 1] = _op(seq, Outcome.FAIL, "issued 50.0 ms after its due time", 50.0)
    history = _history(ops)
    history.steps.append(StepEvent(1, "kill", "kill a", 99 * INTERVAL, 99 * INTERVAL, True, True))
    config = CheckConfig(Objectives(rto_s=30, rpo_s=1, availability=0.9999), "reads", None)
    result = check(history, config)
    assert result.harness is not None and result.harness.late_share < 0.05
    assert result.verdict is Overall.ERROR
    assert result.harness_error is not None
    assert result.harness_error.startswith("harness overloaded during the disruption: ")


def test_a_late_sample_that_was_down_still_delays_recovery() -> None:
    ops = _schedule(down=range(50, 60), late=range(0))
    ops[61] = _op(62, Outcome.FAIL, "issued 50.0 ms after its due time", 50.0)
    history = _history(ops)
    summary = summarize_probe(history, history.probes[0], stable=3)
    assert summary.recovered_ns == 63 * INTERVAL + 2 * MS  # not sample 60's


def test_a_skip_is_told_as_time_not_running_and_time_busy() -> None:
    ms = 1_000_000
    # Its wait began before the due time and ended 32 ms after it: held, not busy.
    held = skip_reason(due_ns=100 * ms, now_ns=133 * ms, waited_ns=95 * ms, woke_ns=132 * ms)
    assert held == (
        "due times skipped, 33.0 ms late: not running for 32.0 ms after its wait was due "
        "to end, busy 1.0 ms"
    )
    # Busy in callbacks until 125 ms, then a wait that ended on time.
    busy = skip_reason(due_ns=100 * ms, now_ns=126 * ms, waited_ns=125 * ms, woke_ns=125 * ms)
    assert busy.endswith("not running for 0.0 ms after its wait was due to end, busy 26.0 ms")
