"""Lost writes and the RPO window (GUIDE section 1), on hand-built histories.

Every time is an explicit integer of nanoseconds on the monotonic clock. The write probe issues
write `seq` at START + seq x INTERVAL; it is acknowledged `latency_ms` later.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drills.checker import (
    CheckConfig,
    Objectives,
    Overall,
    Verdict,
    WriteClassification,
    check,
    classify_writes,
)
from drills.history import Clock, FinalRead, History, Op, Outcome, ProbeInfo, StepEvent

MS = 1_000_000
START = 5_000 * MS  # the write probe started here (monotonic)
INTERVAL = 10 * MS
WALL = int(datetime(2026, 11, 23, 20, 15, tzinfo=UTC).timestamp()) * 1_000_000_000


def write(seq: int, outcome: Outcome = Outcome.OK, *, latency_ms: int = 1) -> Op:
    invoke = START + seq * INTERVAL
    return Op("writes", seq, invoke, invoke + latency_ms * MS, outcome)


def acked_writes(*seqs: int) -> list[Op]:
    return [write(seq) for seq in seqs]


def present(*seqs: int) -> dict[int, int]:
    return dict.fromkeys(seqs, 1)


def ack(ops: list[Op], seq: int) -> int:
    return next(op.complete_ns for op in ops if op.seq == seq)


def holes(result: WriteClassification) -> int:
    return max(0, len(result.lost_ranges) - 1)


# --- classify_writes ---------------------------------------------------------------------------


def test_nothing_lost_means_rpo_zero() -> None:
    ops = acked_writes(1, 2, 3, 4, 5)
    result = classify_writes(ops, present(1, 2, 3, 4, 5), START)
    assert result.attempted == 5
    assert result.acked == 5
    assert result.lost == []
    assert result.lost_ranges == []
    assert result.recovered == []
    assert result.unexpected == []
    assert result.duplicated == []
    assert result.rpo_s == 0.0
    assert result.recovery_point_ns is None
    assert result.newest_lost_ack_ns is None


def test_one_contiguous_run_of_lost_acked_writes() -> None:
    ops = acked_writes(*range(1, 11))
    counts = present(1, 2, 3, 4, 5, 9, 10)  # 6, 7, 8 acked but gone after failover
    result = classify_writes(ops, counts, START)
    assert result.lost == [6, 7, 8]
    assert result.lost_ranges == [(6, 8)]
    assert holes(result) == 0
    # The recovery point is the newest surviving write acked before the oldest lost one (5).
    assert result.recovery_point_ns == ack(ops, 5)
    assert result.newest_lost_ack_ns == ack(ops, 8)
    assert result.rpo_s == pytest.approx((ack(ops, 8) - ack(ops, 5)) / 1e9)
    assert result.rpo_s == pytest.approx(0.030)


def test_read_counts_of_zero_are_missing_rows() -> None:
    ops = acked_writes(1, 2, 3)
    result = classify_writes(ops, {1: 1, 2: 0, 3: 1}, START)
    assert result.lost == [2]
    assert result.lost_ranges == [(2, 2)]
    assert result.rpo_s == pytest.approx((ack(ops, 2) - ack(ops, 1)) / 1e9)


def test_losses_with_a_hole_give_two_ranges() -> None:
    ops = acked_writes(*range(1, 11))
    counts = present(1, 2, 5, 8, 9, 10)  # lost: 3, 4 | 5 survived | 6, 7
    result = classify_writes(ops, counts, START)
    assert result.lost == [3, 4, 6, 7]
    assert result.lost_ranges == [(3, 4), (6, 7)]
    assert holes(result) == 1
    # The window runs from the newest survivor before the oldest loss (2) to the newest loss (7);
    # the survivor inside the window does not shorten it.
    assert result.recovery_point_ns == ack(ops, 2)
    assert result.newest_lost_ack_ns == ack(ops, 7)
    assert result.rpo_s == pytest.approx((ack(ops, 7) - ack(ops, 2)) / 1e9)


def test_three_lost_runs_are_two_holes() -> None:
    ops = acked_writes(*range(1, 8))
    result = classify_writes(ops, present(2, 4, 6), START)
    assert result.lost_ranges == [(1, 1), (3, 3), (5, 5), (7, 7)]
    assert holes(result) == 3


def test_lost_writes_with_no_survivor_before_them_date_back_to_probe_start() -> None:
    ops = acked_writes(1, 2, 3, 4, 5)
    result = classify_writes(ops, present(4, 5), START)
    assert result.lost == [1, 2, 3]
    assert result.lost_ranges == [(1, 3)]
    assert result.recovery_point_ns == START
    assert result.rpo_s == pytest.approx((ack(ops, 3) - START) / 1e9)


def test_everything_lost() -> None:
    ops = acked_writes(1, 2, 3)
    result = classify_writes(ops, {}, START)
    assert result.lost == [1, 2, 3]
    assert result.lost_ranges == [(1, 3)]
    assert result.recovery_point_ns == START
    assert result.rpo_s == pytest.approx((ack(ops, 3) - START) / 1e9)


def test_unknown_writes_present_are_recovered_and_absent_ones_are_not_lost() -> None:
    ops = [
        write(1),
        write(2),
        write(3, Outcome.UNKNOWN, latency_ms=100),  # timed out, but committed
        write(4, Outcome.UNKNOWN, latency_ms=100),  # timed out, never committed
        write(5),
    ]
    result = classify_writes(ops, present(1, 2, 3, 5), START)
    assert result.attempted == 5
    assert result.acked == 3
    assert result.recovered == [3]
    assert result.lost == []
    assert result.unexpected == []
    assert result.lost_ranges == []
    assert result.rpo_s == 0.0


def test_unknown_writes_do_not_count_as_survivors_for_the_recovery_point() -> None:
    ops = [write(1), write(2, Outcome.UNKNOWN), write(3)]
    result = classify_writes(ops, present(1, 2), START)
    assert result.recovered == [2]
    assert result.lost == [3]
    assert result.recovery_point_ns == ack(ops, 1)


def test_unexpected_rows_never_attempted_or_written_by_a_failed_write() -> None:
    ops = [write(1), write(2, Outcome.FAIL), write(3, Outcome.FAIL), write(4)]
    counts = present(1, 2, 4, 99)  # 2 failed yet is there; 99 was never attempted
    result = classify_writes(ops, counts, START)
    assert result.unexpected == [2, 99]
    assert result.lost == []  # 3 failed and is absent: as it should be
    assert result.recovered == []
    assert result.duplicated == []
    assert result.acked == 2
    assert result.rpo_s == 0.0


def test_duplicated_rows() -> None:
    ops = acked_writes(1, 2, 3)
    result = classify_writes(ops, {1: 1, 2: 2, 3: 1, 50: 2}, START)
    assert result.duplicated == [2, 50]
    assert result.unexpected == [50]  # never attempted and present (twice)
    assert result.lost == []
    assert result.rpo_s == 0.0


def test_duplicated_row_of_an_unknown_write_is_recovered_and_duplicated() -> None:
    ops = [write(1), write(2, Outcome.UNKNOWN)]
    result = classify_writes(ops, {1: 1, 2: 2}, START)
    assert result.recovered == [2]
    assert result.duplicated == [2]
    assert result.unexpected == []


# Write 2 takes 25 ms, so the acks arrive in the order 1, 3, 4, 2, 5, 6.
def out_of_order_writes() -> list[Op]:
    return [write(1), write(2, latency_ms=25), write(3), write(4), write(5), write(6)]


def test_out_of_order_acks_recovery_point_uses_ack_time() -> None:
    ops = out_of_order_writes()
    assert [op.seq for op in sorted(ops, key=lambda o: o.complete_ns)] == [1, 3, 4, 2, 5, 6]
    result = classify_writes(ops, present(1, 2, 5, 6), START)
    assert result.lost == [3, 4]
    assert result.lost_ranges == [(3, 4)]
    # Write 2 survived but was acknowledged after write 3 (the oldest lost): it is not the
    # recovery point; write 1 is. (By id order the window would come out negative.)
    assert result.recovery_point_ns == ack(ops, 1)
    assert result.rpo_s == pytest.approx((ack(ops, 4) - ack(ops, 1)) / 1e9)
    assert result.rpo_s > 0


def test_out_of_order_acks_ranges_follow_ack_order() -> None:
    ops = out_of_order_writes()
    # Ids 2 and 3 are adjacent, but in ack order a surviving write (4) lies between them.
    result = classify_writes(ops, present(1, 4, 5, 6), START)
    assert result.lost == [2, 3]
    assert len(result.lost_ranges) == 2
    assert holes(result) == 1
    # The oldest lost write by ack time is 3, the newest is 2.
    assert result.recovery_point_ns == ack(ops, 1)
    assert result.newest_lost_ack_ns == ack(ops, 2)
    assert result.rpo_s == pytest.approx((ack(ops, 2) - ack(ops, 1)) / 1e9)


def test_out_of_order_acks_non_adjacent_ids_can_be_one_run() -> None:
    ops = out_of_order_writes()
    # Ack order 1, 3, [4, 2], 5, 6: ids 2 and 4 were lost back to back.
    result = classify_writes(ops, present(1, 3, 5, 6), START)
    assert result.lost == [2, 4]
    assert len(result.lost_ranges) == 1
    assert set(result.lost_ranges[0]) == {2, 4}
    assert holes(result) == 0
    assert result.recovery_point_ns == ack(ops, 3)
    assert result.rpo_s == pytest.approx((ack(ops, 2) - ack(ops, 3)) / 1e9)


# --- through check() ---------------------------------------------------------------------------

SVC_START = START
SVC_INTERVAL = 20 * MS
STOP = START + 400 * MS


def drill_history(
    write_ops: list[Op], final: FinalRead | None, *, with_write_probe: bool = True
) -> History:
    """A service probe that never went down, a disruptive step, the write probe, a final read."""
    due = [SVC_START + i * SVC_INTERVAL for i in range(20)]
    service_ops = [Op("svc", i, t, t + 2 * MS, Outcome.OK) for i, t in enumerate(due)]
    probes = [ProbeInfo("svc", "tcp", 0.02, 0.1, 0.05, SVC_START, STOP)]
    if with_write_probe:
        probes.append(ProbeInfo("writes", "postgres-write", 0.01, 0.1, 0.05, START, STOP))
    return History(
        clock=Clock(mono_ns=START - 1_000 * MS, wall_ns=WALL),
        ops=service_ops + write_ops,
        steps=[
            StepEvent(0, "wait", "settle", START, START + 50 * MS, disruptive=False),
            StepEvent(1, "kill", "kill the primary", START + 55 * MS, START + 60 * MS, True),
        ],
        final_reads=[final] if final is not None else [],
        probes=probes,
    )


def config(rpo_s: float) -> CheckConfig:
    return CheckConfig(Objectives(rto_s=30.0, rpo_s=rpo_s, availability=0.9999), "svc", "writes")


LOSSY_WRITES = acked_writes(*range(1, 11))
LOSSY_READ = FinalRead("writes", STOP + 100 * MS, True, present(1, 2, 3, 4, 5, 9, 10))
LOSSY_RPO_S = (ack(LOSSY_WRITES, 8) - ack(LOSSY_WRITES, 5)) / 1e9  # 30 ms


def test_check_rpo_met_against_objective() -> None:
    result = check(drill_history(LOSSY_WRITES, LOSSY_READ), config(rpo_s=0.05))
    assert result.writes is not None
    assert result.writes.lost == [6, 7, 8]
    rpo = result.by_name["rpo"]
    assert rpo.measured == pytest.approx(LOSSY_RPO_S)
    assert rpo.objective == 0.05
    assert rpo.verdict is Verdict.MET
    assert result.verdict is Overall.PASS


def test_check_rpo_equal_to_objective_is_met() -> None:
    result = check(drill_history(LOSSY_WRITES, LOSSY_READ), config(rpo_s=LOSSY_RPO_S))
    assert result.by_name["rpo"].verdict is Verdict.MET


def test_check_rpo_missed_against_objective() -> None:
    result = check(drill_history(LOSSY_WRITES, LOSSY_READ), config(rpo_s=0.01))
    rpo = result.by_name["rpo"]
    assert rpo.measured == pytest.approx(LOSSY_RPO_S)
    assert rpo.verdict is Verdict.MISSED
    assert result.verdict is Overall.FAIL


def test_check_no_loss_rpo_zero_met() -> None:
    ops = acked_writes(1, 2, 3)
    final = FinalRead("writes", STOP, True, present(1, 2, 3))
    result = check(drill_history(ops, final), config(rpo_s=0.0))
    assert result.by_name["rpo"].measured == 0.0
    assert result.by_name["rpo"].verdict is Verdict.MET
    assert result.verdict is Overall.PASS


def test_check_classifies_only_the_write_probe_and_uses_its_start() -> None:
    ops = acked_writes(1, 2)
    result = check(drill_history(ops, FinalRead("writes", STOP, True, {})), config(rpo_s=1.0))
    assert result.writes is not None
    assert result.writes.attempted == 2  # the service probe's samples are not writes
    assert result.writes.recovery_point_ns == START


def test_check_rpo_unknown_when_the_final_read_failed() -> None:
    final = FinalRead("writes", STOP, False, {}, detail="connection refused")
    result = check(drill_history(LOSSY_WRITES, final), config(rpo_s=0.05))
    rpo = result.by_name["rpo"]
    assert rpo.verdict is Verdict.UNKNOWN
    assert rpo.measured is None
    assert "connection refused" in rpo.reason
    assert result.writes is None
    assert result.verdict is Overall.ERROR


def test_check_rpo_unknown_when_there_is_no_final_read() -> None:
    result = check(drill_history(LOSSY_WRITES, None), config(rpo_s=0.05))
    rpo = result.by_name["rpo"]
    assert rpo.verdict is Verdict.UNKNOWN
    assert rpo.measured is None
    assert "no final read" in rpo.reason
    assert result.verdict is Overall.ERROR


def test_check_rpo_unknown_when_the_final_read_is_for_another_probe() -> None:
    final = FinalRead("other", STOP, True, present(*range(1, 11)))
    result = check(drill_history(LOSSY_WRITES, final), config(rpo_s=0.05))
    assert result.by_name["rpo"].verdict is Verdict.UNKNOWN


def test_check_rpo_unknown_when_the_write_probe_did_not_run() -> None:
    history = drill_history(LOSSY_WRITES, LOSSY_READ, with_write_probe=False)
    result = check(history, config(rpo_s=0.05))
    assert result.by_name["rpo"].verdict is Verdict.UNKNOWN
    assert "did not run" in result.by_name["rpo"].reason


def test_check_missed_rpo_outweighs_unknown_elsewhere() -> None:
    history = drill_history(LOSSY_WRITES, LOSSY_READ)
    history.steps = [s for s in history.steps if not s.disruptive]  # RTO becomes unknown
    result = check(history, config(rpo_s=0.01))
    assert result.by_name["rto"].verdict is Verdict.UNKNOWN
    assert result.by_name["rpo"].verdict is Verdict.MISSED
    assert result.verdict is Overall.FAIL
