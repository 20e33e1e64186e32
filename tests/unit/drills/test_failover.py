"""A failover by an HA manager in parts (GUIDE section 1), on hand-built histories.

A `patroni` probe named `cluster` samples every 200 ms from START: sample `seq` is due at
START + seq x 200 ms and answers 5 ms later. A service probe `svc` samples every 20 ms and
answers in 2 ms. The fault (a disruptive step) starts at START + 2010 ms.
"""

from __future__ import annotations

from drills.checker import CheckConfig, Objectives, Verdict, check
from drills.failover import cluster_samples, leader_before, measure, parts, two_primaries
from drills.history import Clock, History, Op, Outcome, ProbeInfo, StepEvent
from drills.records import RunInfo, RunRecord, build_record
from drills.summary import render

MS = 1_000_000
START = 10_000 * MS
FAULT = START + 2010 * MS
CLUSTER_EVERY = 200 * MS
SVC_EVERY = 20 * MS


def cluster_op(seq: int, primaries: str, leader_key: str = "held") -> Op:
    due = START + seq * CLUSTER_EVERY
    count = len([p for p in primaries.split(",") if p])
    outcome = Outcome.OK if count else Outcome.FAIL
    tags = {"primaries": primaries, "leader_key": leader_key}
    return Op("cluster", seq, due, due + 5 * MS, outcome, tags=tags)


def cluster_ops(*runs: tuple[int, str] | tuple[int, str, str]) -> list[Op]:
    """Runs of samples: (how many, primaries[, leader_key]) in turn."""
    ops: list[Op] = []
    for run in runs:
        count, primaries, *key = run
        for _ in range(count):
            ops.append(cluster_op(len(ops), primaries, *key))
    return ops


def service_ops(down_from_ms: int, up_from_ms: int, until_ms: int = 12_000) -> list[Op]:
    ops = []
    for seq in range(until_ms // 20):
        due = START + seq * SVC_EVERY
        up = not down_from_ms <= seq * 20 < up_from_ms
        ops.append(Op("svc", seq, due, due + 2 * MS, Outcome.OK if up else Outcome.FAIL))
    return ops


def history(cluster: list[Op], service: list[Op], fault: bool = True) -> History:
    found = History(Clock(START - 1000 * MS, 0))
    stop = START + 12_000 * MS
    found.probes = [
        ProbeInfo("cluster", "patroni", 0.2, 0.5, 0.25, START, stop),
        ProbeInfo("svc", "postgres-write", 0.02, 0.5, 0.25, START, stop),
    ]
    found.ops = cluster + service
    if fault:
        found.steps = [StepEvent(0, "kill", "kill pg-a", FAULT, FAULT + MS, True)]
    return found


CONFIG = CheckConfig(Objectives(30.0, 300.0, 0.9999), service_probe="svc", write_probe=None)

# The leader's node lost: pg-a stops answering at once, the leader key expires 8 s later,
# pg-b takes it within one sample, and the service is back 197 ms after that.
NODE_LOST = cluster_ops((11, "pg-a"), (40, ""), (1, "", "none"), (8, "pg-b"))


def test_the_leader_s_node_lost_in_parts() -> None:
    result = check(history(NODE_LOST, service_ops(2020, 10_600)), CONFIG)
    failover = result.failover
    assert failover is not None
    assert (failover.leader_before, failover.leader_after) == ("pg-a", "pg-b")
    assert failover.leader_lost_ns == START + 2205 * MS  # the first sample without pg-a
    assert failover.leader_key_expired_ns == START + 10_205 * MS
    assert failover.leader_elected_ns == START + 10_405 * MS
    assert failover.service_last_ok_ns == START + 2002 * MS
    assert failover.service_recovered_ns == START + 10_602 * MS
    detection, election, reconnect = (
        failover.parts.detection_s,
        failover.parts.election_s,
        failover.parts.reconnect_s,
    )
    assert detection is not None and election is not None and reconnect is not None
    assert (round(detection, 3), round(election, 3), round(reconnect, 3)) == (0.195, 8.2, 0.197)
    assert result.rto_s is not None
    assert abs(detection + election + reconnect - result.rto_s) < 1e-9
    assert result.two_primaries is None
    assert result.by_name["split_brain"].verdict is Verdict.MET
    assert result.by_name["split_brain"].reason == "one member answered as primary at a time"


def test_a_switchover_hands_over_between_two_samples() -> None:
    ops = cluster_ops((11, "pg-a"), (3, "pg-b"))
    failover = check(history(ops, service_ops(2020, 2400)), CONFIG).failover
    assert failover is not None and failover.leader_after == "pg-b"
    assert failover.leader_lost_ns == failover.leader_elected_ns == START + 2205 * MS
    assert failover.parts.election_s == 0.0


def test_a_leader_restarted_in_place_is_elected_again() -> None:
    ops = cluster_ops((11, "pg-a"), (5, ""), (3, "pg-a"))
    failover = check(history(ops, service_ops(2020, 3300)), CONFIG).failover
    assert failover is not None
    assert (failover.leader_before, failover.leader_after) == ("pg-a", "pg-a")
    assert failover.leader_elected_ns == START + 3205 * MS


def test_two_primaries_at_once_are_split_brain_and_leave_detection_unmeasured() -> None:
    # The cluster paused, pg-b promoted by hand while pg-a still takes writes.
    ops = cluster_ops((11, "pg-a"), (4, "pg-a,pg-b"), (3, "pg-b"))
    result = check(history(ops, service_ops(20_000, 20_000)), CONFIG)
    two = result.two_primaries
    assert two is not None
    assert (two.start_ns, two.end_ns) == (START + 2200 * MS, START + 2805 * MS)
    assert (two.members, two.samples) == (["pg-a", "pg-b"], 4)
    judged = result.by_name["split_brain"]
    assert judged.verdict is Verdict.MISSED and judged.measured == 0
    assert (
        judged.reason == "pg-a and pg-b answered as primary at once for 0.605s (4 cluster samples)"
    )
    failover = result.failover
    assert failover is not None and failover.leader_after == "pg-b"
    assert failover.leader_elected_ns == START + 2205 * MS  # first sample naming pg-b
    assert failover.leader_lost_ns == START + 3005 * MS  # pg-a stepped down later
    assert failover.parts.detection_s is None
    assert failover.parts.election_s is not None and round(failover.parts.election_s, 3) == 0.195


def test_a_sample_that_saw_nothing_is_left_out() -> None:
    timed_out = Op("cluster", 11, START + 2200 * MS, START + 2700 * MS, Outcome.FAIL)
    ops = [*cluster_ops((11, "pg-a")), timed_out]
    ops += [cluster_op(seq, "pg-b") for seq in range(12, 15)]
    samples = cluster_samples(history(ops, []), "cluster")
    assert len(samples) == 14
    assert leader_before(samples, FAULT) == "pg-a"


def test_without_a_fault_only_the_leader_is_known() -> None:
    ops = cluster_ops((20, "pg-a"))
    result = check(history(ops, service_ops(20_000, 20_000), fault=False), CONFIG)
    failover = result.failover
    assert failover is not None
    assert failover.leader_before == "pg-a"
    assert failover.leader_after is None and failover.leader_lost_ns is None
    assert failover.parts == parts(None, None, None, None)
    text = render(RunRecord.model_validate(record_of(history(ops, [], fault=False))))
    assert "failover: leader pg-a -> none seen (patroni probe cluster, ±200ms); " in text
    assert "after the fault: nothing seen\n" in text and "RTO in parts" not in text


def test_a_service_that_never_went_down_recovered_at_the_fault() -> None:
    ops = cluster_ops((11, "pg-a"), (3, "pg-b"))
    info = ProbeInfo("cluster", "patroni", 0.2, 0.5, 0.25, START, START + 12_000 * MS)
    found = measure(info, cluster_samples(history(ops, []), "cluster"), FAULT, [], START)
    assert found.service_recovered_ns == FAULT
    assert found.service_last_ok_ns is None


def test_without_a_cluster_probe_nothing_is_measured() -> None:
    found = history([], service_ops(2020, 2400))
    found.probes = [p for p in found.probes if p.kind != "patroni"]
    result = check(found, CONFIG)
    assert result.failover is None and result.two_primaries is None
    assert "split_brain" not in result.by_name
    assert two_primaries([]) is None


def record_of(found: History) -> dict[str, object]:
    info = RunInfo("run-1", "patroni-failover", "s.yaml", "0" * 64, "", 0, 0, {}, {}, None)
    return build_record(info, found, CONFIG, check(found, CONFIG), "h.jsonl").data()


def test_the_record_and_the_summary_carry_the_parts() -> None:
    found = history(NODE_LOST, service_ops(2020, 10_600))
    data = record_of(found)
    assert list(data)[list(data).index("split_brain") + 1] == "failover"
    assert data["failover"] == {
        "probe": "cluster",
        "interval_s": 0.2,
        "leader_before": "pg-a",
        "leader_after": "pg-b",
        "fault_s": 3.01,
        "service_last_ok_after_s": -0.008,
        "leader_lost_after_s": 0.195,
        "leader_key_expired_after_s": 8.195,
        "leader_elected_after_s": 8.395,
        "service_recovered_after_s": 8.592,
        "parts": {"detection_s": 0.195, "election_s": 8.2, "reconnect_s": 0.197},
    }
    assert data["split_brain"] == {"detected": False}
    text = render(RunRecord.model_validate(data))
    assert (
        "failover: leader pg-a -> pg-b (patroni probe cluster, ±200ms); after the fault: "
        "service last ok -0.008s, leader lost 0.195s, leader key expired 8.195s, "
        "new leader elected 8.395s, service recovered 8.592s\n"
        "RTO in parts: detection 0.195s + election 8.200s + reconnect 0.197s"
    ) in text
    row = next(line for line in text.splitlines() if line.startswith("| Split brain"))
    assert [cell.strip() for cell in row.split("|")[3:5]] == [
        "none: one member answered as primary at a time",
        "met",
    ]


def test_the_record_reports_two_primaries_as_split_brain() -> None:
    ops = cluster_ops((11, "pg-a"), (4, "pg-a,pg-b"), (3, "pg-b"))
    data = record_of(history(ops, service_ops(20_000, 20_000)))
    assert data["split_brain"] == {
        "detected": True,
        "two_primaries": {
            "start_s": 3.2,
            "end_s": 3.805,
            "window_s": 0.605,
            "members": ["pg-a", "pg-b"],
            "samples": 4,
        },
    }
    text = render(RunRecord.model_validate(data))
    assert (
        "SPLIT BRAIN: pg-a, pg-b answered as primary at once for 0.605s "
        "(3.200s to 3.805s into the drill, 4 cluster samples)"
    ) in text
    row = next(line for line in text.splitlines() if line.startswith("| Split brain"))
    assert [cell.strip() for cell in row.split("|")[3:5]] == [
        "2 members answered as primary at once in 0.605s",
        "missed",
    ]


def test_a_record_without_a_cluster_probe_has_no_failover_key() -> None:
    found = history([], service_ops(2020, 2400))
    found.probes = [p for p in found.probes if p.kind != "patroni"]
    data = record_of(found)
    assert "failover" not in data and data["split_brain"] is None
