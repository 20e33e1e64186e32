"""Objectives of probes other than the service probe (`probes.NAME.objectives`).

Two synthetic probes sample every 20 ms from START: `db`, the service probe, and `shop`; sample
`seq` is due at START + seq x 20 ms, an ok takes 2 ms, a refusal 1 ms. The fault is injected
10 ms before sample 5 is due.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from drills.checker import CheckConfig, Objectives, Overall, ProbeObjectives, Verdict, check
from drills.history import Clock, History, Op, Outcome, ProbeInfo, StepEvent
from drills.metrics.samples import run_samples
from drills.records import RunInfo, build_record
from drills.records.model import RunRecord
from drills.summary import render

MS = 1_000_000
START = 10_000 * MS
INTERVAL = 20 * MS
FAULT = START + 5 * INTERVAL - 10 * MS
WALL = int(datetime(2026, 11, 23, 12, tzinfo=UTC).timestamp()) * 1_000_000_000


def due(seq: int) -> int:
    return START + seq * INTERVAL


def ops(probe: str, text: str) -> list[Op]:
    """One sample per character: `.` ok, `x` refused."""
    return [
        Op(
            probe,
            seq,
            due(seq),
            due(seq) + (2 if c == "." else 1) * MS,
            Outcome.OK if c == "." else Outcome.FAIL,
        )
        for seq, c in enumerate(text)
    ]


def drill(db: str, shop: str) -> History:
    stop = due(max(len(db), len(shop)))
    return History(
        clock=Clock(mono_ns=START - 100 * MS, wall_ns=WALL),
        ops=ops("db", db) + ops("shop", shop),
        steps=[StepEvent(1, "kill", "kill the primary", FAULT, FAULT + 3 * MS, disruptive=True)],
        probes=[
            ProbeInfo("db", "tcp", 0.02, 0.1, 0.05, START, stop),
            ProbeInfo("shop", "http", 0.02, 0.1, 0.05, START, stop),
        ],
    )


def config(**shop: float) -> CheckConfig:
    own = {"shop": ProbeObjectives(**shop)} if shop else {}
    return CheckConfig(Objectives(30.0, 300.0, 0.9999), "db", None, probe_objectives=own)


DB = "....." + "xx" + "." * 23  # recovers at sample 7
SHOP = "....." + "x" * 15 + "." * 10  # recovers at sample 20


def test_each_judged_probe_gets_its_own_rto_from_its_own_samples() -> None:
    history = drill(DB, SHOP)
    result = check(history, config(rto_s=30.0))
    assert result.rto_s == pytest.approx((due(7) + 2 * MS - FAULT) / 1e9)  # the service probe
    shop = result.by_name["rto:shop"]
    assert shop.measured == pytest.approx((due(20) + 2 * MS - FAULT) / 1e9)
    assert shop.measured == pytest.approx(0.312)
    assert (shop.objective, shop.verdict) == (30.0, Verdict.MET)
    assert [r.name for r in result.results if r.verdict is not Verdict.MET] == ["rpo"]  # no writes


def test_two_probes_with_different_verdicts() -> None:
    result = check(drill(DB, SHOP), config(rto_s=0.2))
    assert result.by_name["rto"].verdict is Verdict.MET
    assert result.by_name["rto:shop"].verdict is Verdict.MISSED
    assert result.verdict is Overall.FAIL  # a missed probe objective fails the drill


def test_only_the_objectives_a_probe_names_are_judged() -> None:
    assert "rto:shop" not in check(drill(DB, SHOP), config()).by_name
    result = check(drill(DB, SHOP), config(availability=0.9999))
    assert "rto:shop" not in result.by_name
    judged = result.by_name["availability:shop"]
    downtime = result.probes["shop"].downtime_s
    assert judged.measured == pytest.approx(1 - downtime / result.probes["shop"].window_s)
    assert judged.verdict is Verdict.MET
    assert f"downtime {downtime:.3f}s" in judged.reason


def test_a_100_percent_probe_objective_allows_no_downtime() -> None:
    result = check(drill(DB, SHOP), config(availability=1.0))
    assert result.by_name["availability:shop"].verdict is Verdict.MISSED
    assert result.by_name["availability"].verdict is Verdict.MET  # the service probe's 99.99%


def test_a_judged_probe_without_samples_is_unknown_and_says_which() -> None:
    history = drill(DB, SHOP)
    history.ops = [op for op in history.ops if op.probe != "shop"]
    result = check(history, config(rto_s=30.0, availability=0.999))
    for name in ("rto:shop", "availability:shop"):
        assert result.by_name[name].verdict is Verdict.UNKNOWN
        assert result.by_name[name].reason == "probe 'shop' recorded no samples"
    assert result.verdict is Overall.ERROR


def test_a_probe_not_recovered_past_its_objective_misses_with_a_lower_bound() -> None:
    history = drill(DB, "....." + "x" * 25)
    result = check(history, config(rto_s=0.1))
    shop = result.by_name["rto:shop"]
    assert shop.verdict is Verdict.MISSED
    assert shop.measured == pytest.approx((due(30) - FAULT) / 1e9)
    assert "probe 'shop' had not recovered" in shop.reason


def record_of(history: History, cfg: CheckConfig) -> RunRecord:
    info = RunInfo("run-1", "two-probes", "s.yaml", "0" * 64, "", WALL, WALL, {}, {}, None)
    return build_record(info, history, cfg, check(history, cfg), "h.jsonl")


def test_the_record_keeps_the_objectives_and_rechecks_to_the_same_verdicts() -> None:
    history = drill(DB, SHOP)
    cfg = config(rto_s=0.2, availability=0.999)
    record = record_of(history, cfg)
    data = record.data()
    assert data["check"]["probe_objectives"] == {"shop": {"rto_s": 0.2, "availability": 0.999}}
    assert data["verdicts"]["rto:shop"]["verdict"] == "missed"
    assert data["verdict"] == "fail"
    again = RunRecord.model_validate(data)
    assert again.check_config() == cfg
    assert "probe_objectives" not in record_of(history, config()).data()["check"]


def test_the_summary_and_the_metrics_show_each_probe_objective() -> None:
    record = record_of(drill(DB, SHOP), config(rto_s=0.2, availability=0.999))
    text = render(record)
    assert "| RTO of shop" in text
    assert "0.312s (±20ms)" in text
    assert "| Availability of shop" in text
    samples = {(name, tuple(sorted(labels.items()))): v for name, v, labels in run_samples(record)}
    shop = (("probe", "shop"), ("scenario", "two-probes"))
    assert samples[("drills_probe_rto_seconds", shop)] == pytest.approx(0.312)
    met = ("drills_probe_objective_met", (("objective", "rto"), *shop))
    assert samples[met] == 0.0
    assert samples[("drills_probe_objective_met", (("objective", "availability"), *shop))] == 1.0
    assert (
        "drills_probe_downtime_seconds",
        (("probe", "db"), ("scenario", "two-probes")),
    ) in samples

