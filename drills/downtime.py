"""Per-probe measurements: outages with both bounds, downtime, recovered time, latencies.

Definitions follow the engineering guide, section 1. Pure functions of the history, like the
rest of the checker (`drills.checker`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace

from drills.history import History, Op, Outcome, ProbeInfo
from drills.sites import served_by


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
    late: int = 0  # samples the harness was late for (left out of downtime: drills.lateness)


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
        elif found and first_fail is None and _before_its_end(op, found[-1]):
            # Samples in flight together finish out of due order: a failure seen before the
            # ok that ended the previous outage belongs to it, not to a new one.
            found[-1] = replace(found[-1], samples=found[-1].samples + 1)
        else:
            if first_fail is None:
                first_fail, count = op, 0
            count += 1
    if first_fail is not None:
        found.append(
            Outage(first_fail.invoke_ns, min(last_ok_ns, first_fail.invoke_ns), None, count)
        )
    return found


def _before_its_end(op: Op, outage: Outage) -> bool:
    return outage.end_ns is not None and op.complete_ns <= outage.end_ns


def recovery_ops(ops: list[Op], info: ProbeInfo) -> list[Op]:
    """The samples recovery is judged on: a late sample that was down still ends a run of
    ups (recovery is never made earlier by the harness's lateness); a late up does not count."""
    return [op for op in ops if op.counted or (op.late and not op.crashed and not is_up(op, info))]


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


def summarize_probe(
    history: History, info: ProbeInfo, stable: int, disruption_start_ns: int | None = None
) -> ProbeSummary:
    """Everything measured of one probe; `served_by` splits at `disruption_start_ns`."""
    # A crashed or late sample says nothing about the target: it is neither up nor down.
    everything = history.ops_of(info.name)
    ops = [op for op in everything if op.counted]
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
        recovered_ns=recovered_ns(recovery_ops(everything, info), info, stable),
        window_s=(info.stopped_ns - info.started_ns) / 1e9,
        peaks=_peaks(ops),
        served_by=served_by(everything, disruption_start_ns),
        crashed=sum(op.crashed for op in everything),
        late=sum(bool(op.late) and not op.crashed for op in everything),
    )


def _peaks(ops: list[Op]) -> dict[str, float]:
    peaks: dict[str, float] = {}
    for op in ops:
        for key, value in (op.values or {}).items():
            peaks[key] = max(value, peaks.get(key, value))
    return peaks
