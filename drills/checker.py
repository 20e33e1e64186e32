"""The checker: a pure function from a history to measurements and verdicts.

Definitions follow the engineering guide, section 1: downtime with both bounds, recovered time,
RTO, lost / recovered / unexpected / duplicated writes, the RPO window and its holes,
availability and the error-budget share. Nothing here touches a server or the clock.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from drills.history import History, Op, Outcome, ProbeInfo
from drills.quarters import Quarter
from drills.sites import (
    Disruption,
    SplitBrain,
    disruptions,
    has_lineages,
    served_by,
    split_brain,
)

DEFAULT_STABLE = 3


class Verdict(StrEnum):
    MET = "met"
    MISSED = "missed"
    UNKNOWN = "unknown"


class Overall(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    ABORTED = "aborted"


@dataclass(frozen=True)
class Objectives:
    rto_s: float
    rpo_s: float
    availability: float


@dataclass(frozen=True)
class CheckConfig:
    objectives: Objectives
    service_probe: str | None
    write_probe: str | None
    stable: int = DEFAULT_STABLE


@dataclass(frozen=True)
class Outage:
    """A maximal run of samples that were not ok (failed, unknown or slower than `slow`)."""

    first_fail_invoke_ns: int  # start of the lower bound
    last_ok_ns: int  # start of the upper bound: the last time the probe saw the target up
    end_ns: int | None  # completion of the first ok sample after the run; None: not recovered
    samples: int

    def bounds_s(self, until_ns: int) -> tuple[float, float]:
        end = self.end_ns if self.end_ns is not None else until_ns
        return (end - self.first_fail_invoke_ns) / 1e9, (end - self.last_ok_ns) / 1e9


@dataclass
class ProbeSummary:
    name: str
    kind: str
    interval_s: float
    samples: int
    ok: int
    fail: int
    unknown: int
    slow: int
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    latency_max_ms: float | None
    outages: list[Outage]
    downtime_s: float  # upper bound, summed over outages
    downtime_lower_s: float
    recovered_ns: int | None
    window_s: float
    peaks: dict[str, float] = field(default_factory=dict)  # largest recorded value per key
    served_by: dict[str, dict[str, int]] = field(default_factory=dict)  # phase -> site -> ok
    crashed: int = 0  # samples whose probe raised (left out of every figure)


@dataclass
class WriteClassification:
    attempted: int = 0
    acked: int = 0
    lost: list[int] = field(default_factory=list)
    recovered: list[int] = field(default_factory=list)  # outcome unknown, row present
    unexpected: list[int] = field(default_factory=list)  # present, never attempted or failed
    duplicated: list[int] = field(default_factory=list)
    lost_ranges: list[tuple[int, int]] = field(default_factory=list)
    rpo_s: float = 0.0
    recovery_point_ns: int | None = None
    newest_lost_ack_ns: int | None = None


@dataclass
class ObjectiveResult:
    name: str
    objective: float
    measured: float | None
    verdict: Verdict
    reason: str = ""


@dataclass
class CheckResult:
    probes: dict[str, ProbeSummary]
    writes: WriteClassification | None
    writes_reason: str
    disruption_start_ns: int | None
    rto_s: float | None
    downtime_s: float | None
    downtime_lower_s: float | None
    availability: float | None
    error_budget_s: float
    error_budget_share: float | None
    results: list[ObjectiveResult]
    verdict: Overall
    split_brain: SplitBrain | None = None
    disruptions: list[Disruption] = field(default_factory=list)

    @property
    def by_name(self) -> dict[str, ObjectiveResult]:
        return {r.name: r for r in self.results}


def is_up(op: Op, info: ProbeInfo) -> bool:
    """A sample counts as up when it succeeded within the probe's `slow` threshold."""
    return op.outcome is Outcome.OK and op.latency_s <= info.slow_s


def outages(ops: list[Op], info: ProbeInfo) -> list[Outage]:
    found: list[Outage] = []
    last_ok_ns = info.started_ns
    first_fail: Op | None = None
    count = 0
    for op in ops:
        if is_up(op, info):
            if first_fail is not None:
                start_upper = min(last_ok_ns, first_fail.invoke_ns)
                found.append(Outage(first_fail.invoke_ns, start_upper, op.complete_ns, count))
                first_fail = None
            last_ok_ns = max(last_ok_ns, op.complete_ns)
        else:
            if first_fail is None:
                first_fail, count = op, 0
            count += 1
    if first_fail is not None:
        found.append(
            Outage(first_fail.invoke_ns, min(last_ok_ns, first_fail.invoke_ns), None, count)
        )
    return found


def recovered_ns(ops: list[Op], info: ProbeInfo, stable: int) -> int | None:
    """Completion of the first ok of the final run of ok samples, if that run is `stable` long."""
    run_start: Op | None = None
    run = 0
    for op in ops:
        if is_up(op, info):
            if run == 0:
                run_start = op
            run += 1
        else:
            run, run_start = 0, None
    if run_start is None or run < stable:
        return None
    return run_start.complete_ns


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summarize_probe(history: History, info: ProbeInfo, stable: int) -> ProbeSummary:
    # A crashed sample says nothing about the target: it is neither up nor down.
    everything = history.ops_of(info.name)
    ops = [op for op in everything if not op.crashed]
    latencies = [op.latency_s * 1000 for op in ops if op.outcome is Outcome.OK]
    found = outages(ops, info)
    bounds = [o.bounds_s(info.stopped_ns) for o in found]
    return ProbeSummary(
        name=info.name,
        kind=info.kind,
        interval_s=info.interval_s,
        samples=len(ops),
        ok=sum(op.outcome is Outcome.OK for op in ops),
        fail=sum(op.outcome is Outcome.FAIL for op in ops),
        unknown=sum(op.outcome is Outcome.UNKNOWN for op in ops),
        slow=sum(op.outcome is Outcome.OK and not is_up(op, info) for op in ops),
        latency_p50_ms=statistics.median(latencies) if latencies else None,
        latency_p99_ms=_percentile(latencies, 0.99) if latencies else None,
        latency_max_ms=max(latencies) if latencies else None,
        outages=found,
        downtime_s=sum(upper for _, upper in bounds),
        downtime_lower_s=sum(lower for lower, _ in bounds),
        recovered_ns=recovered_ns(ops, info, stable),
        window_s=(info.stopped_ns - info.started_ns) / 1e9,
        peaks=_peaks(ops),
        crashed=len(everything) - len(ops),
    )


def _peaks(ops: list[Op]) -> dict[str, float]:
    peaks: dict[str, float] = {}
    for op in ops:
        for key, value in (op.values or {}).items():
            peaks[key] = max(value, peaks.get(key, value))
    return peaks


def classify_writes(ops: list[Op], counts: dict[int, int], started_ns: int) -> WriteClassification:
    """Classify every write against one final read (write id -> rows found)."""
    result = WriteClassification(attempted=len(ops))
    by_id = {op.seq: op for op in ops}
    for write_id, count in sorted(counts.items()):
        op = by_id.get(write_id)
        if count > 0 and (op is None or op.outcome is Outcome.FAIL):
            result.unexpected.append(write_id)
        if count > 1:
            result.duplicated.append(write_id)
    acked = sorted((op for op in ops if op.outcome is Outcome.OK), key=lambda o: o.complete_ns)
    result.acked = len(acked)
    result.recovered = sorted(
        op.seq for op in ops if op.outcome is Outcome.UNKNOWN and counts.get(op.seq, 0) > 0
    )
    lost = [op for op in acked if counts.get(op.seq, 0) == 0]
    result.lost = sorted(op.seq for op in lost)
    # Runs of lost writes in ack order; each reported as (lowest id, highest id).
    run: list[int] = []
    for op in acked:
        if counts.get(op.seq, 0) == 0:
            run.append(op.seq)
        elif run:
            result.lost_ranges.append((min(run), max(run)))
            run = []
    if run:
        result.lost_ranges.append((min(run), max(run)))
    if lost:
        oldest_lost = lost[0].complete_ns
        survivors = [
            op.complete_ns
            for op in acked
            if counts.get(op.seq, 0) > 0 and op.complete_ns < oldest_lost
        ]
        result.recovery_point_ns = max(survivors) if survivors else started_ns
        result.newest_lost_ack_ns = lost[-1].complete_ns
        result.rpo_s = (result.newest_lost_ack_ns - result.recovery_point_ns) / 1e9
    return result


def quarter_seconds(wall_ns: int) -> float:
    """Length of the calendar quarter (UTC) that contains `wall_ns`, in seconds."""
    return Quarter.of(datetime.fromtimestamp(wall_ns / 1e9, tz=UTC)).seconds


def _verdict_le(name: str, objective: float, measured: float | None, why: str) -> ObjectiveResult:
    if measured is None:
        return ObjectiveResult(name, objective, None, Verdict.UNKNOWN, why)
    verdict = Verdict.MET if measured <= objective else Verdict.MISSED
    return ObjectiveResult(name, objective, measured, verdict)


def check(history: History, config: CheckConfig) -> CheckResult:
    summaries = {
        info.name: summarize_probe(history, info, config.stable) for info in history.probes
    }
    disruptive = [s.start_ns for s in history.steps if s.disruptive]
    disruption_start = min(disruptive) if disruptive else None
    for summary in summaries.values():
        summary.served_by = served_by(history.ops_of(summary.name), disruption_start)

    service = summaries.get(config.service_probe or "")
    rto: float | None = None
    rto_reason = ""
    if service is None or service.samples == 0:
        rto_reason = "the service probe recorded no samples"
    elif disruption_start is None:
        rto_reason = "the timeline has no disruptive step"
    else:
        info = history.probe(service.name)
        assert info is not None
        recovered = service.recovered_ns
        later = sorted(s for s in disruptive if s > disruption_start)
        if later:
            # A later disruptive step (a failback) is a disruption of its own: the RTO is the
            # recovery from the first, if the service recovered before the next began.
            before = [
                op
                for op in history.ops_of(service.name)
                if op.invoke_ns < later[0] and not op.crashed
            ]
            recovered = recovered_ns(before, info, config.stable) or recovered
        if recovered is None:
            elapsed = (info.stopped_ns - disruption_start) / 1e9
            rto_reason = f"the service had not recovered when the drill ended ({elapsed:.3f}s in)"
            if elapsed > config.objectives.rto_s:
                rto = elapsed  # a lower bound, already longer than the objective: missed
                rto_reason += "; the RTO is at least this"
        else:
            rto = max(0.0, (recovered - disruption_start) / 1e9)

    writes: WriteClassification | None = None
    writes_reason = ""
    if config.write_probe is None:
        writes_reason = "the scenario has no write probe"
    else:
        final = history.final_read(config.write_probe)
        info = history.probe(config.write_probe)
        if info is None:
            writes_reason = f"write probe {config.write_probe!r} did not run"
        elif final is None or not final.ok:
            detail = final.detail if final is not None else "no final read was made"
            writes_reason = f"the final read failed: {detail}"
        else:
            writes = classify_writes(
                history.ops_of(config.write_probe), final.counts, info.started_ns
            )

    budget = (1 - config.objectives.availability) * quarter_seconds(history.clock.wall_ns)
    downtime = service.downtime_s if service and service.samples else None
    downtime_lower = service.downtime_lower_s if service and service.samples else None
    availability = None
    share = None
    if service is not None and downtime is not None and service.window_s > 0:
        availability = max(0.0, 1 - downtime / service.window_s)
        share = downtime / budget if budget > 0 else None

    results = [
        _verdict_le("rto", config.objectives.rto_s, rto, rto_reason),
        _verdict_le(
            "rpo", config.objectives.rpo_s, writes.rpo_s if writes else None, writes_reason
        ),
    ]
    objective = config.objectives.availability
    if availability is None or downtime is None:
        availability_result = ObjectiveResult(
            "availability",
            objective,
            None,
            Verdict.UNKNOWN,
            "the service probe recorded no samples",
        )
    elif share is not None:
        # A short drill window says little about 99.99%; the budget share is what is judged.
        availability_result = ObjectiveResult(
            "availability",
            objective,
            availability,
            Verdict.MET if share <= 1 else Verdict.MISSED,
            f"downtime {downtime:.3f}s is {share:.2%} of the quarter's error budget {budget:.1f}s",
        )
    else:  # a 100% objective has no budget: any downtime misses it
        availability_result = ObjectiveResult(
            "availability",
            objective,
            availability,
            Verdict.MET if downtime == 0 else Verdict.MISSED,
            f"a {objective:.0%} objective allows no downtime; measured {downtime:.3f}s",
        )
    results.append(availability_result)

    # Split brain: judged when the write probe says which database lineage acked each write.
    brain = None
    write_ops = history.ops_of(config.write_probe) if config.write_probe else []
    if has_lineages(write_ops):
        brain = split_brain(write_ops)
        if brain is None:
            results.append(
                ObjectiveResult(
                    "split_brain", 0, 0, Verdict.MET, "one database acknowledged writes at a time"
                )
            )
        else:
            window = (brain.end_ns - brain.start_ns) / 1e9
            results.append(
                ObjectiveResult(
                    "split_brain",
                    0,
                    brain.conflicting,
                    Verdict.MISSED,
                    f"{' and '.join(sorted(brain.ids))} both acknowledged writes for "
                    f"{window:.3f}s ({brain.conflicting} writes)",
                )
            )
    found_disruptions: list[Disruption] = []
    if service is not None and service.samples:
        info = history.probe(service.name)
        assert info is not None
        spans = []
        for outage in service.outages:
            lower, upper = outage.bounds_s(info.stopped_ns)
            spans.append((outage.first_fail_invoke_ns, outage.end_ns, lower, upper))
        found_disruptions = disruptions(history, spans, info.stopped_ns)

    verdicts = {r.verdict for r in results}
    if Verdict.MISSED in verdicts:
        overall = Overall.FAIL
    elif Verdict.UNKNOWN in verdicts:
        overall = Overall.ERROR
    else:
        overall = Overall.PASS
    return CheckResult(
        probes=summaries,
        writes=writes,
        writes_reason=writes_reason,
        disruption_start_ns=disruption_start,
        rto_s=rto,
        downtime_s=downtime,
        downtime_lower_s=downtime_lower,
        availability=availability,
        error_budget_s=budget,
        error_budget_share=share,
        results=results,
        verdict=overall,
        split_brain=brain,
        disruptions=found_disruptions,
    )
