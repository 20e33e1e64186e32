"""Site measurements on hand-built histories: served-by counts, split brain, disruptions."""

from __future__ import annotations

from dataclasses import replace

from drills.checker import CheckConfig, Objectives, Verdict, check
from drills.history import Clock, History, Op, Outcome, ProbeInfo, StepEvent
from drills.sites import disruptions, served_by, split_brain

MS = 1_000_000


def ack(seq: int, at_ms: int, db: str, timeline: int, site: str = "a") -> Op:
    return Op(
        "orders",
        seq,
        at_ms * MS - 5 * MS,
        at_ms * MS,
        Outcome.OK,
        tags={"site": site, "db": db, "timeline": str(timeline)},
    )


def failed(seq: int, at_ms: int) -> Op:
    return Op("orders", seq, at_ms * MS - 5 * MS, at_ms * MS, Outcome.FAIL)


def test_a_clean_failover_is_not_split_brain() -> None:
    ops = [ack(i, 20 * i, "a", 1) for i in range(50)]
    ops += [failed(i, 20 * i) for i in range(50, 100)]
    ops += [ack(i, 20 * i, "b", 2, site="b") for i in range(100, 150)]
    assert split_brain(ops) is None


def test_a_switch_back_on_a_new_timeline_is_not_split_brain() -> None:
    # A (timeline 1), then B promoted (2), then A rejoined and promoted again (3).
    ops = [ack(i, 20 * i, "a", 1) for i in range(50)]
    ops += [ack(i, 20 * i, "b", 2) for i in range(60, 110)]
    ops += [ack(i, 20 * i, "a", 3) for i in range(120, 170)]
    assert split_brain(ops) is None


def test_two_lineages_acking_at_once_are_split_brain() -> None:
    ops = [ack(i, 20 * i, "a", 1) for i in range(100)]  # A never stops: 0..1980 ms
    ops += [ack(i, 20 * i + 10, "b", 2, site="b") for i in range(60, 120)]  # B from 1210 ms
    found = split_brain(ops)
    assert found is not None
    assert found.start_ns == 1210 * MS and found.end_ns == 1980 * MS
    assert found.ids["a/1"] == list(range(61, 100))
    assert found.ids["b/2"] == list(range(60, 99))
    assert found.conflicting == 39 + 39


def test_writes_without_lineage_tags_say_nothing() -> None:
    ops = [Op("orders", i, 0, i * MS, Outcome.OK) for i in range(10)]
    assert split_brain(ops) is None


def test_served_by_splits_at_the_first_fault() -> None:
    ops = [ack(i, 20 * i, "a", 1, site="ab"[i % 2]) for i in range(10)]
    ops.append(failed(10, 200))
    counts = served_by(ops, fault_ns=100 * MS)
    assert counts == {"before_fault": {"a": 3, "b": 3}, "after_fault": {"a": 2, "b": 2}}


def test_disruptions_are_grouped_by_the_step_they_follow() -> None:
    history = History(Clock(0, 0))
    history.steps = [
        StepEvent(1, "site-down", "", 1000 * MS, 1001 * MS, True),
        StepEvent(3, "promote", "", 2000 * MS, 2100 * MS, False),
        StepEvent(6, "rejoin", "", 5000 * MS, 6000 * MS, True),
    ]
    outages = [
        (1010 * MS, 2200 * MS, 1.15, 1.19),
        (5500 * MS, 5600 * MS, 0.08, 0.1),
        (5800 * MS, 5900 * MS, 0.08, 0.1),
    ]
    found = disruptions(history, outages, stop_ns=9000 * MS)
    assert [(d.step, d.outages) for d in found] == [(1, 1), (6, 2)]
    assert abs(found[0].downtime_s - 1.19) < 1e-9
    assert abs(found[1].downtime_s - 0.2) < 1e-9 and found[1].recovered_ns == 5900 * MS
    still_down = disruptions(history, [(5500 * MS, None, 1.0, 1.0)], stop_ns=9000 * MS)
    assert still_down[1].recovered_ns is None and still_down[0].outages == 0


def test_one_write_on_the_other_side_is_split_brain_too() -> None:
    ops = [ack(i, 20 * i, "a", 1) for i in range(50)]
    ops.append(ack(99, 500, "b", 2, site="b"))  # a single order committed on B meanwhile
    found = split_brain(ops)
    assert found is not None and found.ids["b/2"] == [99]


def test_a_late_answer_from_the_old_primary_is_not_split_brain() -> None:
    # Order 49 was committed on A before the failover; its answer was held (a blackhole that
    # healed) and arrived after B's first acknowledgment. It was sent before B was live.
    ops = [ack(i, 20 * i, "a", 1) for i in range(49)]
    ops.append(Op("orders", 49, 975 * MS, 2500 * MS, Outcome.OK, tags={"db": "a", "timeline": "1"}))
    ops += [ack(i, 20 * i, "b", 2, site="b") for i in range(100, 150)]  # B live at 2000 ms
    assert split_brain(ops) is None


def test_postgres_write_lineages_judge_split_brain_without_the_order_service() -> None:
    # The same cluster (one system identifier) on two servers: the old leader on timeline 1
    # keeps acknowledging writes after the promoted one (timeline 2) went live.
    old, new = "7312345678901234567@127.0.0.1:5433", "7312345678901234567@127.0.0.1:5434"
    history = History(Clock(0, 0))
    history.probes = [ProbeInfo("writes", "postgres-write", 0.02, 0.5, 0.25, 0, 3000 * MS)]
    history.ops = [ack(i, 20 * i, old, 1) for i in range(100)]
    history.ops += [ack(i, 20 * i + 10, new, 2) for i in range(60, 120)]
    history.ops = [replace(op, probe="writes") for op in history.ops]
    config = CheckConfig(Objectives(30.0, 300.0, 0.9999), service_probe=None, write_probe="writes")
    judged = check(history, config).by_name["split_brain"]
    assert judged.verdict is Verdict.MISSED and judged.measured == 78
    assert judged.reason.startswith(f"{old}/1 and {new}/2 both acknowledged writes for 0.770s")
