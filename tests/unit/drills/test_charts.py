"""What the timeline chart shades: each fault until what ended it, each action over its step."""

from __future__ import annotations

from drills.charts import Interval, fault_intervals, timeline_samples
from drills.history_file import load_history
from drills.records import load_record
from drills.records.model import StepRecord
from tests import paths


def step(index: int, kind: str, start: float, end: float) -> StepRecord:
    return StepRecord(
        index=index,
        kind=kind,
        description=f"{kind} x",
        disruptive=False,
        start_s=start,
        end_s=end,
        at="2026-12-03T00:00:00.000Z",
    )


def test_site_faults_container_faults_and_actions_are_all_shaded() -> None:
    timeline = [
        step(0, "wait", 0, 1),
        step(1, "site-down", 1, 1.2),
        step(2, "stop", 1.2, 1.5),
        step(3, "disconnect", 1.5, 1.6),
        step(4, "site-isolate", 1.6, 1.7),
        step(5, "promote", 2, 2.4),
        step(6, "manual", 2.4, 5),
        step(7, "connect", 5, 5.1),
        step(8, "start", 5.1, 5.5),
        step(9, "heal", 6, 6.1),
        step(10, "rejoin", 7, 9),
        step(11, "restore", 9, 12),
    ]
    found = {(i.label, i.action): (i.start, i.end) for i in fault_intervals(timeline, 20)}
    assert found == {
        ("site-down x", False): (1, 7),  # until the rejoin
        ("stop x", False): (1.2, 5.1),  # until the start
        ("disconnect x", False): (1.5, 5),  # until the connect
        ("site-isolate x", False): (1.6, 6),  # until the heal
        ("promote x", True): (2, 2.4),
        ("manual x", True): (2.4, 5),  # the people's time
        ("rejoin x", True): (7, 9),
        ("restore x", True): (9, 12),
    }


def test_a_fault_never_ended_lasts_to_the_end_and_an_incident_until_the_restore() -> None:
    timeline = [step(0, "pause", 1, 1.1), step(1, "sql", 2, 2.1), step(2, "restore", 5, 8)]
    assert Interval(1, 20, "pause x") in fault_intervals(timeline, 20)
    assert Interval(2, 5, "sql x") in fault_intervals(timeline, 20)


def test_acknowledged_writes_found_lost_are_marked_on_the_writes_lane() -> None:
    record = load_record(paths.DATA / "records" / "20261123T200200Z-simple-lost.json")
    history = load_history(paths.DATA / "records" / record.history)
    lanes = {lane.probe: lane for lane in timeline_samples(record, history)}
    writes = lanes[str(record.check.write_probe)]
    assert writes.lost is not None and sum(writes.lost) == record.measurements.lost_writes > 0
    assert all(lane.lost is None for name, lane in lanes.items() if lane is not writes)
