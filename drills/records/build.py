"""Building a run record from the checker's result: every figure comes from recorded samples.

Times ending in `_s` are seconds since the history's clock anchor, rounded to microseconds.
"""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from drills import __version__
from drills.checker import CheckConfig, CheckResult, Overall, ProbeSummary
from drills.failover import Failover
from drills.history import History
from drills.lateness import HarnessLag
from drills.participants import Participant
from drills.records.model import (
    CheckRecord,
    Disruption,
    Event,
    FailoverParts,
    FailoverRecord,
    HarnessRecord,
    Host,
    Measurements,
    ObjectivesRecord,
    ObjectiveVerdict,
    OutageRecord,
    ParticipantRecord,
    ProbeRecord,
    RunRecord,
    ScenarioRef,
    SplitBrainRecord,
    StepRecord,
    TwoPrimariesRecord,
)
from drills.records.restore import restore_record


def utc_iso(wall_ns: int) -> str:
    return (
        datetime.fromtimestamp(wall_ns / 1e9, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def utc_basic(wall_ns: int) -> str:
    """ISO 8601 basic format, for file names: 20261123T201500Z."""
    return datetime.fromtimestamp(wall_ns / 1e9, tz=UTC).strftime("%Y%m%dT%H%M%SZ")


def host_facts() -> Host:
    return Host(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        python=platform.python_version(),
        cpus=os.cpu_count(),
        drills_version=__version__,
    )


@dataclass
class RunInfo:
    """What the runner knows about a run beyond its history."""

    run_id: str
    scenario_name: str
    scenario_file: str
    scenario_sha256: str
    description: str
    started_wall_ns: int
    finished_wall_ns: int
    phases_s: dict[str, float]
    lab: dict[str, Any]
    error: str | None
    targets: dict[str, Any] = field(default_factory=dict)  # containers acted on: ids, images
    aborted: str | None = None  # the stop condition that fired, if one did
    participants: list[Participant] = field(default_factory=list)
    store: str | None = None  # the results store the record is sent to (no password)


def _rel(history: History, ns: int | None) -> float | None:
    return None if ns is None else round((ns - history.clock.mono_ns) / 1e9, 6)


def _verdict(info: RunInfo, result: CheckResult) -> Overall:
    if info.aborted is not None:
        return Overall.ABORTED
    return Overall.ERROR if info.error or result.harness_error else result.verdict


def build_record(
    info: RunInfo, history: History, config: CheckConfig, result: CheckResult, history_file: str
) -> RunRecord:
    return RunRecord(
        run_id=info.run_id,
        scenario=ScenarioRef(
            name=info.scenario_name,
            file=info.scenario_file,
            sha256=info.scenario_sha256,
            description=info.description,
        ),
        started_at=utc_iso(info.started_wall_ns),
        finished_at=utc_iso(info.finished_wall_ns),
        verdict=_verdict(info, result),
        error=info.error or result.harness_error,
        objectives=ObjectivesRecord(
            rto_s=config.objectives.rto_s,
            rpo_s=config.objectives.rpo_s,
            availability=config.objectives.availability,
        ),
        check=CheckRecord.of(config),
        measurements=_measurements(history, config, result),
        split_brain=_split_brain(history, result),
        failover=_failover(history, result.failover),
        restore=restore_record(history, result.restore),
        disruptions=_disruptions(history, result),
        verdicts={
            r.name: ObjectiveVerdict(
                verdict=r.verdict, objective=r.objective, measured=r.measured, reason=r.reason
            )
            for r in result.results
        },
        timeline=_timeline(history),
        probes={name: _probe(history, s) for name, s in result.probes.items()},
        harness=_harness(result.harness) if _timed(history) else None,
        events=[
            Event(at_s=_rel(history, e.at_ns), source=e.source, subject=e.subject, change=e.change)
            for e in history.events
        ],
        phases_s={k: round(v, 3) for k, v in info.phases_s.items()},
        lab=info.lab,
        targets=info.targets,
        host=host_facts(),
        history=history_file,
        aborted=info.aborted,
        participants=[ParticipantRecord(name=p.name, role=p.role) for p in info.participants],
        store=info.store,
    )


def _peak(result: CheckResult, key: str) -> float | None:
    found = [p.peaks[key] for p in result.probes.values() if key in p.peaks]
    return max(found) if found else None


def _measurements(history: History, config: CheckConfig, result: CheckResult) -> Measurements:
    writes = result.writes
    service = result.probes.get(config.service_probe or "")
    write_summary = result.probes.get(config.write_probe or "")
    measured = Measurements(
        rto_s=result.rto_s,
        rpo_s=result.rpo_s,
        downtime_s=result.downtime_s,
        downtime_lower_s=result.downtime_lower_s,
        availability=result.availability,
        error_budget_s=round(result.error_budget_s, 6),
        error_budget_share=result.error_budget_share,
        lost_writes=len(writes.lost) if writes else None,
        writes_acked=writes.acked if writes else None,
        writes_attempted=writes.attempted if writes else None,
        writes_recovered=len(writes.recovered) if writes else None,
        unexpected_writes=len(writes.unexpected) if writes else None,
        duplicated_writes=len(writes.duplicated) if writes else None,
        lost_write_ids=writes.lost if writes else None,
        lost_ranges=[list(r) for r in writes.lost_ranges] if writes else None,
        holes=max(0, len(writes.lost_ranges) - 1) if writes else None,
        recovery_point_s=_rel(history, writes.recovery_point_ns) if writes else None,
        probe_interval_s=service.interval_s if service else None,
        write_interval_s=write_summary.interval_s if write_summary else None,
        disruption_start_s=_rel(history, result.disruption_start_ns),
        replication_lag_peak_bytes=_peak(result, "lag_bytes"),
        replication_lag_peak_s=_peak(result, "lag_s"),
    )
    return _restore_writes(history, result, measured)


def _restore_writes(history: History, result: CheckResult, measured: Measurements) -> Measurements:
    """With a restore measured, lost writes are those its classification loses: writes it
    was meant to discard (made after the incident) are not lost (docs/restore.md)."""
    restore = result.restore
    if restore is None or not restore.reclassifies or restore.writes is None:
        return measured
    lost = sorted(restore.writes.lost)
    runs: list[list[int]] = []
    for write_id in lost:
        if runs and write_id == runs[-1][1] + 1:
            runs[-1][1] = write_id
        else:
            runs.append([write_id, write_id])
    point = restore.rpo.recovery_point if restore.rpo else None
    return measured.model_copy(
        update={
            "lost_writes": len(lost),
            "lost_write_ids": lost,
            "lost_ranges": runs,
            "holes": max(0, len(runs) - 1),
            "recovery_point_s": _rel(history, point.ack_ns) if point else None,
        }
    )


def _split_brain(history: History, result: CheckResult) -> SplitBrainRecord | None:
    """None when the writes say nothing about database lineages."""
    if not any(r.name == "split_brain" for r in result.results):
        return None
    brain, two = result.split_brain, result.two_primaries
    if brain is None and two is None:
        return SplitBrainRecord(detected=False)
    primaries = None
    if two is not None:
        primaries = TwoPrimariesRecord(
            start_s=_rel(history, two.start_ns),
            end_s=_rel(history, two.end_ns),
            window_s=_seconds(two.end_ns - two.start_ns),
            members=two.members,
            samples=two.samples,
        )
    if brain is None:
        return SplitBrainRecord(detected=True, two_primaries=primaries)
    return SplitBrainRecord(
        detected=True,
        start_s=_rel(history, brain.start_ns),
        end_s=_rel(history, brain.end_ns),
        window_s=_seconds(brain.end_ns - brain.start_ns),
        conflicting_ids=brain.ids,
        two_primaries=primaries,
    )


def _seconds(ns: int) -> float:
    return round(ns / 1e9, 6)


def _failover(history: History, failover: Failover | None) -> FailoverRecord | None:
    """None when the drill had no `patroni` probe."""
    if failover is None:
        return None
    fault = failover.fault_ns

    def after(ns: int | None) -> float | None:
        return None if ns is None or fault is None else _seconds(ns - fault)

    def part(value: float | None) -> float | None:
        return None if value is None else round(value, 6)

    return FailoverRecord(
        probe=failover.probe,
        interval_s=failover.interval_s,
        leader_before=failover.leader_before,
        leader_after=failover.leader_after,
        fault_s=_rel(history, fault),
        service_last_ok_after_s=after(failover.service_last_ok_ns),
        leader_lost_after_s=after(failover.leader_lost_ns),
        leader_key_expired_after_s=after(failover.leader_key_expired_ns),
        leader_elected_after_s=after(failover.leader_elected_ns),
        service_recovered_after_s=after(failover.service_recovered_ns),
        parts=FailoverParts(
            detection_s=part(failover.parts.detection_s),
            election_s=part(failover.parts.election_s),
            reconnect_s=part(failover.parts.reconnect_s),
        ),
    )


def _disruptions(history: History, result: CheckResult) -> list[Disruption]:
    return [
        Disruption(
            step=d.step,
            kind=d.kind,
            at_s=_rel(history, d.start_ns),
            downtime_s=round(d.downtime_s, 6),
            downtime_lower_s=round(d.downtime_lower_s, 6),
            outages=d.outages,
            down_already=d.down_already,
            recovered_after_s=None
            if d.recovered_ns is None
            else round(max(0, d.recovered_ns - d.start_ns) / 1e9, 6),
        )
        for d in result.disruptions
    ]


def _timeline(history: History) -> list[StepRecord]:
    return [
        StepRecord(
            index=s.index,
            kind=s.kind,
            description=s.description,
            disruptive=s.disruptive,
            start_s=_rel(history, s.start_ns),
            end_s=_rel(history, s.end_ns),
            at=utc_iso(history.clock.wall_ns_at(s.start_ns)),
            ok=s.ok,
            detail=s.detail,
            name=s.name,
            facts=s.facts,
        )
        for s in history.steps
    ]


def _probe(history: History, summary: ProbeSummary) -> ProbeRecord:
    info = history.probe(summary.name)
    assert info is not None
    outages = []
    for outage in summary.outages:
        lower, upper = outage.bounds_s(info.stopped_ns)
        outages.append(
            OutageRecord(
                start_s=_rel(history, outage.last_ok_ns),
                first_fail_s=_rel(history, outage.first_fail_invoke_ns),
                end_s=_rel(history, outage.end_ns),
                downtime_lower_s=round(lower, 6),
                downtime_s=round(upper, 6),
                samples=outage.samples,
                recovered=outage.end_ns is not None,
            )
        )
    return ProbeRecord(
        kind=summary.kind,
        interval_s=summary.interval_s,
        timeout_s=info.timeout_s,
        slow_s=info.slow_s,
        started_s=_rel(history, info.started_ns),
        stopped_s=_rel(history, info.stopped_ns),
        samples=summary.samples,
        skipped=info.skipped,
        crashed=summary.crashed,
        late=summary.late if _timed(history) else None,
        ok=summary.ok,
        fail=summary.fail,
        unknown=summary.unknown,
        slow=summary.slow,
        served_by=summary.served_by,
        latency_p50_ms=summary.latency_p50_ms,
        latency_p99_ms=summary.latency_p99_ms,
        latency_max_ms=summary.latency_max_ms,
        downtime_s=round(summary.downtime_s, 6),
        downtime_lower_s=round(summary.downtime_lower_s, 6),
        recovered_s=_rel(history, summary.recovered_ns),
        peaks=summary.peaks,
        outages=outages,
    )


def _timed(history: History) -> bool:
    """Whether the history records when samples were issued (older ones do not)."""
    return any(op.issued_ns is not None or op.late for op in history.ops)


def _harness(lag: HarnessLag | None) -> HarnessRecord | None:
    if lag is None:
        return None
    return HarnessRecord(
        samples=lag.samples,
        late=lag.late,
        late_share=round(lag.late_share, 6),
        lag_p50_ms=lag.lag_p50_ms,
        lag_p99_ms=lag.lag_p99_ms,
        lag_max_ms=lag.lag_max_ms,
    )
