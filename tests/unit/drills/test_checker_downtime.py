"""Downtime bounds, recovered time, RTO, availability and the error budget (GUIDE section 1).

A synthetic service probe samples every 20 ms from START: sample `seq` is due at
START + seq x 20 ms. An ok sample takes 2 ms, a refused one 1 ms, a timed-out one 100 ms; the
probe's `slow` threshold is 50 ms.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drills.checker import (
    CheckConfig,
    Objectives,
    Overall,
    Verdict,
    check,
    outages,
    quarter_seconds,
    recovered_ns,
    summarize_probe,
)
from drills.history import Clock, FinalRead, History, Op, Outcome, ProbeInfo, StepEvent

MS = 1_000_000
START = 10_000 * MS
INTERVAL = 20 * MS
SLOW = 50 * MS


def wall(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, 12, tzinfo=UTC).timestamp()) * 1_000_000_000


WALL_Q4_2026 = wall(2026, 11, 23)


def due(seq: int) -> int:
    return START + seq * INTERVAL


def sample(seq: int, outcome: Outcome = Outcome.OK, latency_ms: int | None = None) -> Op:
    if latency_ms is None:
        latency_ms = {Outcome.OK: 2, Outcome.FAIL: 1, Outcome.UNKNOWN: 100}[outcome]
    return Op("svc", seq, due(seq), due(seq) + latency_ms * MS, outcome)


def done(ops: list[Op], seq: int) -> int:
    return next(op.complete_ns for op in ops if op.seq == seq)


def pattern(text: str) -> list[Op]:
    """One sample per character: `.` ok, `x` refused, `?` timed out, `s` ok but slow (60 ms)."""
    kinds = {
        ".": (Outcome.OK, None),
        "x": (Outcome.FAIL, None),
        "?": (Outcome.UNKNOWN, None),
        "s": (Outcome.OK, 60),
    }
    return [sample(seq, *kinds[c]) for seq, c in enumerate(text)]


def probe_info(samples: int, name: str = "svc") -> ProbeInfo:
    return ProbeInfo(name, "tcp", 0.02, 0.1, SLOW / 1e9, START, due(samples))


# Five ok, five refused, ten ok: the outage of the examples below.
OUTAGE = "....." + "xxxxx" + ".........."


# --- downtime bounds ---------------------------------------------------------------------------


def test_one_outage_both_bounds() -> None:
    ops = pattern(OUTAGE)
    info = probe_info(len(ops))
    [outage] = outages(ops, info)
    assert outage.first_fail_invoke_ns == due(5)
    assert outage.last_ok_ns == done(ops, 4)
    assert outage.end_ns == done(ops, 10)
    assert outage.samples == 5

    summary = summarize_probe(History(Clock(0, WALL_Q4_2026), ops=ops), info, stable=3)
    lower = (done(ops, 10) - due(5)) / 1e9  # first failing invoke -> first ok completion
    upper = (done(ops, 10) - done(ops, 4)) / 1e9  # last ok completion -> first ok completion
    assert lower == pytest.approx(0.102)
    assert upper == pytest.approx(0.120)
    assert summary.downtime_lower_s == pytest.approx(lower)
    assert summary.downtime_s == pytest.approx(upper)
    # The two bounds differ by about one probe interval: the resolution.
    assert upper - lower == pytest.approx(0.018)
    assert (summary.samples, summary.ok, summary.fail, summary.unknown) == (20, 15, 5, 0)


def test_a_failure_seen_before_the_recovering_ok_belongs_to_the_same_outage() -> None:
    # Samples 10 and 11 were in flight together as the target came back: 10 (due first)
    # connected after it did, at +30 ms; 11 was refused at +1 ms, before that: still down.
    ops = pattern(OUTAGE)
    ops[10] = sample(10, Outcome.OK, latency_ms=30)
    ops[11] = sample(11, Outcome.FAIL)
    [outage] = outages(ops, probe_info(len(ops)))
    assert outage.end_ns == done(ops, 10) and outage.samples == 6


def test_a_failure_after_the_recovering_ok_is_a_new_outage() -> None:
    ops = pattern(OUTAGE)
    ops[12] = sample(12, Outcome.FAIL)
    assert len(outages(ops, probe_info(len(ops)))) == 2


def test_unknown_samples_are_down_too() -> None:
    ops = pattern("....." + "x??x" + ".....")
    [outage] = outages(ops, probe_info(len(ops)))
    assert outage.samples == 4
    assert outage.first_fail_invoke_ns == due(5)
    assert outage.end_ns == done(ops, 9)


def test_a_late_ok_slower_than_slow_counts_as_down() -> None:
    ops = pattern("....." + "s" + "....")
    info = probe_info(len(ops))
    [outage] = outages(ops, info)
    assert outage.first_fail_invoke_ns == due(5)
    assert outage.last_ok_ns == done(ops, 4)
    assert outage.end_ns == done(ops, 6)
    summary = summarize_probe(History(Clock(0, WALL_Q4_2026), ops=ops), info, stable=3)
    assert summary.ok == 10
    assert summary.slow == 1
    assert summary.downtime_lower_s == pytest.approx((done(ops, 6) - due(5)) / 1e9)
    assert summary.downtime_s == pytest.approx((done(ops, 6) - done(ops, 4)) / 1e9)


def test_an_ok_exactly_at_slow_is_up() -> None:
    ops = [*pattern("....."), sample(5, Outcome.OK, latency_ms=50), *pattern("..........")[6:]]
    assert outages(ops, probe_info(len(ops))) == []


def test_a_hung_sample_that_succeeds_cannot_hide_the_outage() -> None:
    # Sample 5 is in flight when the server freezes and completes ok 300 ms later; the samples
    # due meanwhile time out. Without the slow threshold the outage would vanish.
    ops = [
        *pattern("....."),
        sample(5, Outcome.OK, latency_ms=300),
        *(sample(seq, Outcome.UNKNOWN) for seq in range(6, 15)),
        *(sample(seq) for seq in range(15, 20)),
    ]
    [outage] = outages(ops, probe_info(len(ops)))
    assert outage.first_fail_invoke_ns == due(5)
    assert outage.end_ns == done(ops, 15)
    assert outage.samples == 10


def test_an_outage_still_open_at_the_end_runs_to_probe_stop() -> None:
    ops = pattern("....." + "xxxxx")
    info = probe_info(12)  # stopped two intervals after the last sample was due
    [outage] = outages(ops, info)
    assert outage.end_ns is None
    summary = summarize_probe(History(Clock(0, WALL_Q4_2026), ops=ops), info, stable=3)
    assert summary.downtime_lower_s == pytest.approx((info.stopped_ns - due(5)) / 1e9)
    assert summary.downtime_s == pytest.approx((info.stopped_ns - done(ops, 4)) / 1e9)
    assert summary.recovered_ns is None


def test_an_outage_from_the_first_sample_starts_at_probe_start() -> None:
    ops = pattern("xxx" + ".....")
    info = ProbeInfo("svc", "tcp", 0.02, 0.1, 0.05, START - 5 * MS, due(8))
    [outage] = outages(ops, info)
    assert outage.last_ok_ns == info.started_ns
    assert outage.first_fail_invoke_ns == due(0)
    assert outage.end_ns == done(ops, 3)


def test_two_outages_sum() -> None:
    ops = pattern("..." + "xx" + "...." + "xxx" + "....")
    info = probe_info(len(ops))
    first, second = outages(ops, info)
    assert (first.samples, second.samples) == (2, 3)
    summary = summarize_probe(History(Clock(0, WALL_Q4_2026), ops=ops), info, stable=3)
    upper = (done(ops, 5) - done(ops, 2)) + (done(ops, 12) - done(ops, 8))
    lower = (done(ops, 5) - due(3)) + (done(ops, 12) - due(9))
    assert summary.downtime_s == pytest.approx(upper / 1e9)
    assert summary.downtime_lower_s == pytest.approx(lower / 1e9)


def test_no_outage_no_downtime() -> None:
    ops = pattern("..........")
    info = probe_info(len(ops))
    assert outages(ops, info) == []
    summary = summarize_probe(History(Clock(0, WALL_Q4_2026), ops=ops), info, stable=3)
    assert summary.downtime_s == 0
    assert summary.downtime_lower_s == 0


# --- recovered ---------------------------------------------------------------------------------


def test_recovered_is_the_first_ok_of_the_final_stable_run() -> None:
    ops = pattern(OUTAGE)
    assert recovered_ns(ops, probe_info(len(ops)), stable=3) == done(ops, 10)


def test_recovered_needs_stable_consecutive_oks() -> None:
    # Outage, two oks, a relapse, then three oks.
    ops = pattern("....." + "xxx" + ".." + "x" + "...")
    info = probe_info(len(ops))
    assert recovered_ns(ops, info, stable=3) == done(ops, 11)
    assert recovered_ns(ops, info, stable=4) is None


def test_not_recovered_when_the_drill_ends_before_a_stable_run() -> None:
    ops = pattern("....." + "xxx" + "..")
    assert recovered_ns(ops, probe_info(len(ops)), stable=3) is None


def test_a_slow_sample_after_recovery_resets_it() -> None:
    ops = pattern("....." + "xxx" + "...." + "s" + "...")
    assert recovered_ns(ops, probe_info(len(ops)), stable=3) == done(ops, 13)


def test_recovered_without_any_outage_is_the_first_sample() -> None:
    ops = pattern(".....")
    assert recovered_ns(ops, probe_info(len(ops)), stable=3) == done(ops, 0)


# --- RTO through check() -----------------------------------------------------------------------

STEP_START = due(5) - 10 * MS  # the fault is injected 10 ms before sample 5 is due


def kill_step(start: int = STEP_START, index: int = 1) -> StepEvent:
    return StepEvent(index, "kill", "kill the primary", start, start + 3 * MS, disruptive=True)


def drill(
    service: str,
    *,
    steps: list[StepEvent] | None = None,
    wall_ns: int = WALL_Q4_2026,
    stopped_after: int | None = None,
) -> History:
    """The service probe from `service`, plus a clean write probe so RPO is met (0)."""
    ops = pattern(service)
    stop = due(stopped_after if stopped_after is not None else len(ops))
    writes = [Op("writes", 1, START, START + MS, Outcome.OK)]
    return History(
        clock=Clock(mono_ns=START - 100 * MS, wall_ns=wall_ns),
        ops=ops + writes,
        steps=steps if steps is not None else [kill_step()],
        final_reads=[FinalRead("writes", stop, True, {1: 1})],
        probes=[
            ProbeInfo("svc", "tcp", 0.02, 0.1, SLOW / 1e9, START, stop),
            ProbeInfo("writes", "postgres-write", 0.01, 0.1, 0.05, START, stop),
        ],
    )


def objectives(
    rto_s: float = 30.0, rpo_s: float = 1.0, availability: float = 0.9999
) -> CheckConfig:
    return CheckConfig(Objectives(rto_s, rpo_s, availability), "svc", "writes")


def test_rto_is_recovered_minus_first_disruptive_step() -> None:
    history = drill(OUTAGE)
    result = check(history, objectives())
    expected = (done(history.ops, 10) - STEP_START) / 1e9
    assert result.disruption_start_ns == STEP_START
    assert result.rto_s == pytest.approx(expected)
    assert result.rto_s == pytest.approx(0.112)
    rto = result.by_name["rto"]
    assert rto.verdict is Verdict.MET
    assert rto.objective == 30.0
    assert result.verdict is Overall.PASS


def test_rto_uses_the_earliest_disruptive_step_and_ignores_others() -> None:
    steps = [
        StepEvent(0, "wait", "settle", START, START + 10 * MS, disruptive=False),
        kill_step(STEP_START + 30 * MS, index=2),
        kill_step(STEP_START, index=1),
    ]
    history = drill(OUTAGE, steps=steps)
    result = check(history, objectives())
    assert result.disruption_start_ns == STEP_START
    assert result.rto_s == pytest.approx((done(history.ops, 10) - STEP_START) / 1e9)


def test_rto_uses_the_stable_setting() -> None:
    # Outage, a relapse after four oks, then only two oks before the drill ends.
    history = drill("....." + "xxx" + "...." + "x" + "..")
    config = CheckConfig(Objectives(30.0, 1.0, 0.9999), "svc", "writes", stable=2)
    assert check(history, config).rto_s == pytest.approx((done(history.ops, 13) - STEP_START) / 1e9)
    assert check(history, objectives()).rto_s is None  # default stable=3: not recovered


def test_rto_missed_when_longer_than_objective() -> None:
    result = check(drill(OUTAGE), objectives(rto_s=0.1))
    assert result.rto_s == pytest.approx(0.112)
    assert result.by_name["rto"].verdict is Verdict.MISSED
    assert result.verdict is Overall.FAIL


def test_rto_clamped_at_zero_when_there_was_no_outage() -> None:
    result = check(drill("...................."), objectives())
    assert result.rto_s == 0.0
    assert result.by_name["rto"].verdict is Verdict.MET
    assert result.downtime_s == 0.0
    assert result.verdict is Overall.PASS


def test_rto_unknown_without_a_disruptive_step() -> None:
    steps = [StepEvent(0, "wait", "settle", START, START + 10 * MS, disruptive=False)]
    result = check(drill(OUTAGE, steps=steps), objectives())
    rto = result.by_name["rto"]
    assert result.rto_s is None
    assert rto.verdict is Verdict.UNKNOWN
    assert "disruptive" in rto.reason
    assert result.verdict is Overall.ERROR


def test_rto_and_availability_unknown_without_service_samples() -> None:
    history = drill(OUTAGE)
    history.ops = [op for op in history.ops if op.probe != "svc"]
    result = check(history, objectives())
    assert result.rto_s is None
    assert result.by_name["rto"].verdict is Verdict.UNKNOWN
    assert "no samples" in result.by_name["rto"].reason
    assert result.downtime_s is None
    assert result.availability is None
    assert result.error_budget_share is None
    assert result.by_name["availability"].verdict is Verdict.UNKNOWN
    assert result.verdict is Overall.ERROR


def test_rto_unknown_when_the_service_probe_is_not_in_the_history() -> None:
    config = CheckConfig(Objectives(30.0, 1.0, 0.9999), "elsewhere", "writes")
    result = check(drill(OUTAGE), config)
    assert result.by_name["rto"].verdict is Verdict.UNKNOWN
    assert result.verdict is Overall.ERROR


def test_rto_missed_when_not_recovered_and_already_past_the_objective() -> None:
    history = drill("....." + "xxxxxxxxxx", stopped_after=16)
    result = check(history, objectives(rto_s=0.1))
    elapsed = (due(16) - STEP_START) / 1e9
    assert elapsed > 0.1
    assert result.rto_s == pytest.approx(elapsed)
    assert result.by_name["rto"].verdict is Verdict.MISSED
    assert result.probes["svc"].recovered_ns is None
    assert result.verdict is Overall.FAIL


def test_rto_unknown_when_not_recovered_within_the_objective() -> None:
    history = drill("....." + "xxxxxxxxxx", stopped_after=16)
    result = check(history, objectives(rto_s=30.0))
    assert result.rto_s is None
    assert result.by_name["rto"].verdict is Verdict.UNKNOWN
    assert "not recovered" in result.by_name["rto"].reason
    assert result.verdict is Overall.ERROR


def test_downtime_of_an_unrecovered_outage_runs_to_probe_stop() -> None:
    history = drill("....." + "xxxxx", stopped_after=12)
    result = check(history, objectives())
    assert result.downtime_s == pytest.approx((due(12) - done(history.ops, 4)) / 1e9)
    assert result.downtime_lower_s == pytest.approx((due(12) - due(5)) / 1e9)


# --- availability and the error budget ---------------------------------------------------------


def test_quarter_lengths() -> None:
    assert quarter_seconds(WALL_Q4_2026) == 92 * 86400
    assert quarter_seconds(wall(2026, 10, 1)) == 92 * 86400
    assert quarter_seconds(wall(2026, 12, 31)) == 92 * 86400
    assert quarter_seconds(wall(2026, 2, 10)) == 90 * 86400  # Q1 2026
    assert quarter_seconds(wall(2028, 2, 10)) == 91 * 86400  # Q1 of a leap year
    assert quarter_seconds(wall(2026, 5, 1)) == 91 * 86400
    assert quarter_seconds(wall(2026, 8, 1)) == 92 * 86400


def test_quarter_is_taken_in_utc() -> None:
    last_ns_of_q3 = int(datetime(2026, 9, 30, 23, 59, 59, tzinfo=UTC).timestamp()) * 10**9
    assert quarter_seconds(last_ns_of_q3) == 92 * 86400  # Q3: Jul 31 + Aug 31 + Sep 30
    first_of_q1 = int(datetime(2027, 1, 1, tzinfo=UTC).timestamp()) * 10**9
    assert quarter_seconds(first_of_q1) == 90 * 86400


def test_availability_is_one_minus_downtime_over_window() -> None:
    history = drill(OUTAGE)
    result = check(history, objectives())
    window_s = (due(20) - START) / 1e9
    assert result.downtime_s == pytest.approx(0.120)
    assert result.availability == pytest.approx(1 - 0.120 / window_s)
    assert result.availability == pytest.approx(0.7)


def test_error_budget_q4_2026_at_four_nines() -> None:
    result = check(drill(OUTAGE), objectives(availability=0.9999))
    assert result.error_budget_s == pytest.approx(794.88)
    assert result.error_budget_share == pytest.approx(0.120 / 794.88)
    availability = result.by_name["availability"]
    # A 70 % drill window is no verdict on 99.99 %: the budget share is what is judged.
    assert availability.verdict is Verdict.MET
    assert availability.measured == pytest.approx(0.7)
    assert "error budget" in availability.reason


def test_error_budget_q1_2026() -> None:
    result = check(drill(OUTAGE, wall_ns=wall(2026, 2, 10)), objectives(availability=0.9999))
    assert result.error_budget_s == pytest.approx(0.0001 * 90 * 86400)
    assert result.error_budget_s == pytest.approx(777.6)


def test_availability_missed_when_downtime_exceeds_the_budget() -> None:
    # 99.9999999 % of 92 days allows 7.9 ms; the outage took 120 ms.
    result = check(drill(OUTAGE), objectives(availability=0.999999999))
    assert result.error_budget_share is not None
    assert result.error_budget_share > 1
    assert result.by_name["availability"].verdict is Verdict.MISSED
    assert result.verdict is Overall.FAIL


def test_availability_objective_of_100_percent_without_downtime_is_met() -> None:
    result = check(drill("...................."), objectives(availability=1.0))
    assert result.error_budget_s == 0
    assert result.by_name["availability"].verdict is Verdict.MET


def test_availability_objective_of_100_percent_with_downtime_is_missed() -> None:
    result = check(drill(OUTAGE), objectives(availability=1.0))
    assert result.availability == pytest.approx(0.7)
    assert result.by_name["availability"].verdict is Verdict.MISSED
    assert result.verdict is Overall.FAIL


# --- overall verdict ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rto_s", "rpo_s", "final_ok", "disruptive", "expected"),
    [
        (30.0, 1.0, True, True, Overall.PASS),  # all met
        (0.1, 1.0, True, True, Overall.FAIL),  # RTO missed
        (30.0, 1.0, False, True, Overall.ERROR),  # RPO unknown only
        (0.1, 1.0, False, True, Overall.FAIL),  # missed beats unknown
        (30.0, 1.0, True, False, Overall.ERROR),  # RTO unknown only
    ],
)
def test_overall_verdict_composition(
    rto_s: float, rpo_s: float, final_ok: bool, disruptive: bool, expected: Overall
) -> None:
    history = drill(OUTAGE)
    if not final_ok:
        history.final_reads = [FinalRead("writes", due(20), False, detail="no primary")]
    if not disruptive:
        history.steps = []
    result = check(history, objectives(rto_s=rto_s, rpo_s=rpo_s))
    assert result.verdict is expected
    verdicts = {r.verdict for r in result.results}
    assert (Verdict.MISSED in verdicts) == (expected is Overall.FAIL)
