"""A restore from backup measured from the history alone (GUIDE section 1, "Restore from
backup"), on the hand-built drill of tests/unit/drills/restore_history.py."""

from __future__ import annotations

from itertools import pairwise

import pytest

from drills.checker import Overall, Verdict, check
from drills.errors import RecordError
from drills.history import History, Op, Outcome, StepEvent
from drills.recovery import PROJECTION_LABEL, Restore, measure_restore
from tests.unit.drills.restore_history import (
    CONFIG,
    INCIDENT_MS,
    at,
    exact_counts,
    restore_facts,
    restore_history,
    write_ops,
)

EXACT_PARTS = {
    "decision": 0.5,
    "preparation": 0.1,
    "restore_copy": 1.0,
    "server_start": 0.1,
    "wal_replay": 0.2,
    "promotion": 0.1,
    "first_ok": 0.002,
}


def measured(**changes: object) -> Restore:
    return _measure(restore_history(restore_facts(**changes)))


def _measure(history: History) -> Restore:
    found = measure_restore(history, "svc", "writes", at(1000))
    assert found is not None
    return found


def parts_s(restore: Restore) -> dict[str, float]:
    assert restore.rto is not None
    return {p.name: p.seconds for p in restore.rto.parts}


# --- RTO -----------------------------------------------------------------------------------------


def test_the_parts_add_up_to_the_rto_exactly() -> None:
    restore = measured()
    assert restore.rto is not None
    assert restore.rto.seconds == pytest.approx(2.002)
    assert restore.rto.first_ok_ns == at(3002)  # the sample due at 3000 ms, at its completion
    assert parts_s(restore) == pytest.approx(EXACT_PARTS)
    parts = restore.rto.parts
    assert parts[0].start_ns == at(1000) and parts[-1].end_ns == at(3002)
    assert all(a.end_ns == b.start_ns for a, b in pairwise(parts))
    assert sum(p.end_ns - p.start_ns for p in parts) == at(3002) - at(1000)
    assert restore.rto.notes == []


def test_missing_redo_lines_merge_the_parts_around_them() -> None:
    restore = measured(redo_start_ns=None, redo_done_ns=None)
    assert restore.rto is not None
    assert restore.rto.seconds == pytest.approx(2.002)
    assert parts_s(restore) == pytest.approx(
        {
            "decision": 0.5,
            "preparation": 0.1,
            "restore_copy": 1.0,
            "server_start+wal_replay+promotion": 0.4,
            "first_ok": 0.002,
        }
    )
    assert sum(parts_s(restore).values()) == pytest.approx(restore.rto.seconds, abs=1e-9)
    [note] = restore.rto.notes
    assert "no redo start in the server log and no redo done in the server log" in note
    assert restore.steps[0].replay_s is None


def test_only_redo_done_missing_merges_replay_and_promotion() -> None:
    restore = measured(redo_done_ns=None)
    assert "wal_replay+promotion" in parts_s(restore)
    assert parts_s(restore)["wal_replay+promotion"] == pytest.approx(0.3)


def test_a_point_before_its_predecessor_is_clamped_and_said() -> None:
    restore = measured(redo_start_ns=at(2599.5))  # log stamps: a millisecond's resolution
    assert restore.rto is not None
    assert parts_s(restore)["server_start"] == 0
    assert parts_s(restore)["wal_replay"] == pytest.approx(0.3)  # from the clamped point
    assert sum(parts_s(restore).values()) == pytest.approx(2.002)
    assert "came 0.500ms early" in restore.rto.notes[0]


def test_no_promotion_seen_means_no_rto_and_no_invented_figure() -> None:
    restore = measured(promoted_ns=None)
    assert restore.rto is not None
    assert restore.rto.seconds is None
    assert restore.rto.parts == []
    assert restore.rto.reason == "the restored server was never seen promoted"


def test_no_ok_sample_after_promotion_means_no_rto() -> None:
    restore = measured(promoted_ns=at(5000))
    assert restore.rto is not None and restore.rto.seconds is None
    assert "no ok sample" in restore.rto.reason


def test_without_a_disruptive_step_there_is_no_t0() -> None:
    history = restore_history(restore_facts())
    found = measure_restore(history, "svc", "writes", None)
    assert found is not None and found.rto is not None
    assert found.rto.seconds is None
    assert found.rto.reason == "the timeline has no disruptive step"


# --- writes, RPO and the recovery point -----------------------------------------------------------


def test_an_exact_restore_before_the_incident_loses_nothing_and_rpo_is_zero() -> None:
    restore = measured()
    writes = restore.writes
    assert writes is not None
    assert writes.acked_before_incident == 101  # writes 0..100, acked by 1001 ms
    assert writes.lost == []
    assert writes.resurrected == []
    assert writes.discarded == list(range(101, 150))  # acked by the old server after the drop
    assert writes.straddling == []
    assert writes.after_promotion == 139  # completed after the restored server's start
    assert restore.rpo is not None
    assert restore.rpo.seconds == 0
    assert restore.rpo.recovery_point is not None
    assert restore.rpo.recovery_point.write_id == 100
    assert restore.rpo.recovery_point.ack_ns == at(1001)
    assert restore.incident_ns == at(1005) and restore.incident_from == "incident"


def test_ground_truth_lost_resurrected_discarded_and_straddling() -> None:
    ops = write_ops(latency_ms={100: 10})  # write 100: due 1000 ms, acked 1010 ms, after the drop
    counts = exact_counts(ops)
    for gone in (50, 350):  # acked before the incident, and by the restored server
        del counts[gone]
    counts[120] = 1  # acked by the old server after the incident: must not come back
    counts[200] = 1  # failed while the server was down, yet present
    restore = _measure(restore_history(restore_facts(), counts=counts, writes=ops))
    writes = restore.writes
    assert writes is not None
    assert writes.lost == [50, 350]
    assert writes.resurrected == [120, 200]
    assert writes.discarded == [*range(101, 120), *range(121, 150)]
    assert writes.straddling == [100]  # never lost, whatever the final read says
    assert writes.acked_before_incident == 100
    assert restore.rpo is not None
    assert restore.rpo.seconds == 0  # the newest write acked before the drop (99) is back


def test_resurrected_writes_fail_a_restore_to_before_the_incident() -> None:
    counts = exact_counts(write_ops()) | {120: 1}
    result = check(restore_history(restore_facts(), counts=counts), CONFIG)
    judged = result.by_name["resurrected_writes"]
    assert (judged.verdict, judged.objective, judged.measured) == (Verdict.MISSED, 0, 1)
    assert result.verdict is Overall.FAIL


def test_a_restore_to_latest_is_not_judged_on_resurrected_writes() -> None:
    counts = exact_counts(write_ops()) | {120: 1}
    facts = restore_facts(target={"type": "latest"}, before_step=None)
    result = check(restore_history(facts, counts=counts), CONFIG)
    assert "resurrected_writes" not in result.by_name
    assert result.restore is not None and result.restore.writes is not None
    assert result.restore.writes.resurrected == [120]  # still reported


def test_rpo_is_the_backup_age_when_the_archive_after_it_is_lost() -> None:
    """Ransomware with a poisoned archive: only what the backup (ended at 600 ms) holds."""
    ops = write_ops()
    counts = {
        op.seq: 1
        for op in ops
        if op.outcome is Outcome.OK and (op.complete_ns < at(600) or op.invoke_ns >= at(3000))
    }
    facts = restore_facts(target={"type": "latest"}, before_step=None, backup_end_ns=at(600))
    restore = _measure(restore_history(facts, counts=counts, writes=ops))
    assert restore.rpo is not None and restore.writes is not None
    age = restore.steps[0].backup_age_s
    assert age == pytest.approx(0.405)
    assert abs(restore.rpo.seconds - age) <= 2 * 0.010  # within two write intervals
    assert restore.rpo.seconds == pytest.approx(0.410)  # ack of 100 (1001) - ack of 59 (591)
    assert restore.rpo.recovery_point is not None
    assert restore.rpo.recovery_point.write_id == 59
    assert restore.writes.lost == list(range(60, 101))


def test_no_write_acked_before_the_incident_is_rpo_zero_with_a_reason() -> None:
    ops = [op for op in write_ops() if op.invoke_ns >= at(1010)]
    restore = _measure(restore_history(restore_facts(), writes=ops))
    assert restore.rpo is not None
    assert restore.rpo.seconds == 0
    assert restore.rpo.reason == "no write was acknowledged before the incident"


def test_every_write_before_the_incident_gone_is_a_lower_bound_from_the_probe_start() -> None:
    ops = write_ops()
    counts = {op.seq: 1 for op in ops if op.invoke_ns >= at(3000)}
    restore = _measure(restore_history(restore_facts(), counts=counts, writes=ops))
    assert restore.rpo is not None
    assert restore.rpo.recovery_point is None
    assert restore.rpo.seconds == pytest.approx(1.001)
    assert "lower bound" in restore.rpo.reason


def test_a_failed_final_read_leaves_the_rpo_unmeasured() -> None:
    result = check(restore_history(restore_facts(), final_ok=False), CONFIG)
    assert result.restore is not None
    assert result.restore.rpo is None and result.restore.writes is None
    rpo = result.by_name["rpo"]
    assert rpo.verdict is Verdict.UNKNOWN
    assert rpo.reason == "the final read failed: connection refused"
    assert result.by_name["resurrected_writes"].verdict is Verdict.UNKNOWN
    assert result.verdict is Overall.ERROR


def test_without_a_named_incident_the_last_incident_steps_time_is_used() -> None:
    restore = measured(incident_ns=None)
    # The drop step before the restore recorded when it took effect: the server acknowledged
    # writes until then, so they are judged as before the incident, not resurrected.
    assert restore.incident_ns == at(INCIDENT_MS)
    assert restore.writes is not None
    assert restore.writes.resurrected == []


def test_no_server_start_nor_promotion_closes_the_window_at_the_restore_steps_end() -> None:
    restore = measured(promoted_ns=None, server_start_ns=None)
    assert restore.writes is not None
    assert restore.writes.resurrected == [300]  # acked at 3001 ms, before the step's end
    assert restore.writes.after_promotion == 99  # 301..399, completed after 3010 ms


# --- predicted RPO, throughput, projection, backup -----------------------------------------------


def archive_op(seq: int, due_ms: float, lag_s: float, outcome: Outcome = Outcome.OK) -> Op:
    values = {"archive_lag_s": lag_s, "archived_count": 3.0}
    return Op("archive", seq, at(due_ms), at(due_ms + 4), outcome, values=values)


def test_predicted_rpo_is_the_last_ok_archive_lag_before_the_incident() -> None:
    samples = [
        archive_op(0, 900, 0.3),
        archive_op(1, 1000, 0.4),  # completes at 1004 ms, before the drop took effect
        archive_op(2, 1001, 9.0, Outcome.FAIL),
        archive_op(3, 1100, 2.0),
    ]
    restore = _measure(restore_history(restore_facts(), extra_ops=samples))
    assert restore.predicted.seconds == 0.4
    assert restore.predicted.at_ns == at(1004)


def test_no_archive_probe_means_no_predicted_rpo() -> None:
    restore = measured()
    assert restore.predicted.seconds is None
    assert "no probe sampled the archive lag" in restore.predicted.reason


def test_throughput_and_the_labelled_projection() -> None:
    [step] = measured().steps
    assert step.copy_s == pytest.approx(1.0)
    assert step.throughput_mb_s == pytest.approx(800.0)  # 800e6 bytes in 1 s, MB = 10^6 bytes
    assert step.replay_s == pytest.approx(0.2)
    assert step.projection is not None
    assert step.projection.size_bytes == 500_000_000_000
    assert step.projection.copy_s == pytest.approx(625.0)
    assert step.projection.label == PROJECTION_LABEL == "projection, not measured"
    assert step.backup_age_s == pytest.approx(0.805)


def test_no_size_named_means_no_projection() -> None:
    [step] = measured(project_size_bytes=None).steps
    assert step.projection is None


# --- verdicts in the checker ---------------------------------------------------------------------


def test_the_objectives_are_judged_on_the_restore() -> None:
    result = check(restore_history(restore_facts()), CONFIG)
    assert result.rto_s == pytest.approx(2.002)
    assert result.rpo_s == 0
    assert result.writes is not None and len(result.writes.lost) == 49  # the failover view
    assert result.by_name["rpo"].measured == 0
    assert result.by_name["incident_undone"].verdict is Verdict.MET
    assert result.by_name["resurrected_writes"].verdict is Verdict.MET
    assert result.verdict is Overall.PASS


def test_an_incident_not_undone_fails_the_run() -> None:
    check_facts = {"query": "q", "before": "100", "after": "0", "undone": False}
    result = check(restore_history(restore_facts(check=check_facts)), CONFIG)
    judged = result.by_name["incident_undone"]
    assert (judged.verdict, judged.objective, judged.measured) == (Verdict.MISSED, 1, 0)
    assert result.verdict is Overall.FAIL


def test_a_standby_rebuild_is_reported_but_reclassifies_nothing() -> None:
    facts = restore_facts(
        mode="standby", promoted_ns=None, target={"type": "latest"}, before_step=None, check=None
    )
    history = restore_history(facts)
    without = check(restore_history(None), CONFIG)
    result = check(history, CONFIG)
    assert result.restore is not None and result.restore.measured is None
    assert result.restore.rto is None and result.restore.writes is None
    assert (result.rto_s, result.rpo_s) == (without.rto_s, without.rpo_s)
    assert result.writes is not None and result.rpo_s == result.writes.rpo_s == pytest.approx(0.49)
    assert [r.name for r in result.results] == [r.name for r in without.results]
    [step] = result.restore.steps
    assert step.throughput_mb_s == pytest.approx(800.0) and step.replay_s == pytest.approx(0.2)


def test_the_last_restore_that_is_not_a_standby_is_measured() -> None:
    history = restore_history(restore_facts())
    standby = restore_facts(mode="standby", promoted_ns=None, node="b")
    history.steps.append(
        StepEvent(2, "restore", "rebuild b", at(3100), at(3900), False, facts={"restore": standby})
    )
    restore = _measure(history)
    assert [s.index for s in restore.steps] == [1, 2]
    assert restore.measured is not None and restore.measured.index == 1


def test_no_restore_step_measures_nothing() -> None:
    assert measure_restore(restore_history(None), "svc", "writes", at(1000)) is None
    assert check(restore_history(None), CONFIG).restore is None


def test_malformed_facts_name_the_step_and_key() -> None:
    with pytest.raises(RecordError, match=r"step 2 \(restore\): facts\.restore\.mode"):
        measured(mode="sideways")


def test_the_restored_data_must_pass_amcheck() -> None:
    sound = check(restore_history(restore_facts()), CONFIG)
    assert sound.by_name["restored_data_sound"].verdict is Verdict.MET
    broken = "pg_amcheck: corruption in 1 relation (heap table postgres.public.t)"
    facts = restore_facts(verify={"pgbackrest": "ok", "amcheck": broken})
    result = check(restore_history(facts), CONFIG)
    judged = result.by_name["restored_data_sound"]
    assert (judged.verdict, judged.measured, judged.reason) == (Verdict.MISSED, 0, broken)
    assert result.verdict is Overall.FAIL
