"""The checker: a pure function from a history to measurements and verdicts.

Definitions follow the engineering guide, section 1: downtime with both bounds, recovered time,
RTO, lost / recovered / unexpected / duplicated writes, the RPO window and its holes,
availability and the error-budget share. Nothing here touches a server or the clock. Per-probe
figures are measured in `drills.downtime`, lost writes in `drills.dataloss`, site-level ones in
`drills.sites`; this module judges them against the objectives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from drills.dataloss import WriteClassification, classify_writes
from drills.downtime import (
    Outage,
    ProbeSummary,
    is_up,
    outages,
    recovered_ns,
    summarize_probe,
)
from drills.failover import Failover, TwoPrimaries, cluster_probe, cluster_samples, measure
from drills.failover import two_primaries as find_two_primaries
from drills.history import History
from drills.lateness import HarnessLag, between, harness_lag, overload_error
from drills.levels import Level, judge_level
from drills.probe_objectives import (
    ProbeObjectives,
    availability_of,
    error_budget_s,
    judge_probes,
    recovered_at,
    rto_of,
)
from drills.quarters import Quarter
from drills.recovery import Restore, measure_restore
from drills.sites import (
    Disruption,
    SplitBrain,
    disruptions,
    has_lineages,
    split_brain,
)
from drills.verdicts import ObjectiveResult, Verdict, verdict_le

DEFAULT_STABLE = 3


class Overall(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    ABORTED = "aborted"
    CRASHED = "crashed"  # the harness died; the record is written by `drills recover`


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
    probe_objectives: dict[str, ProbeObjectives] = field(default_factory=dict)
    level: Level | None = None  # the incident level judged (response, recovery)


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
    failover: Failover | None = None  # measured when the drill has a `patroni` probe
    two_primaries: TwoPrimaries | None = None
    restore: Restore | None = None  # measured when a step restored a server from backup
    rpo_s: float | None = None  # the writes' RPO, or the restore's when it reclassifies them
    harness: HarnessLag | None = None  # the harness's own lateness (drills.lateness)
    harness_error: str | None = None  # set when too many samples were late to judge the run

    @property
    def by_name(self) -> dict[str, ObjectiveResult]:
        return {r.name: r for r in self.results}


def quarter_seconds(wall_ns: int) -> float:
    """Length of the calendar quarter (UTC) that contains `wall_ns`, in seconds."""
    return _quarter_of(wall_ns).seconds


def _quarter_of(wall_ns: int) -> Quarter:
    return Quarter.of(datetime.fromtimestamp(wall_ns / 1e9, tz=UTC))


def check(history: History, config: CheckConfig) -> CheckResult:
    disruptive = sorted(s.start_ns for s in history.steps if s.disruptive)
    disruption_start = disruptive[0] if disruptive else None
    summaries = {
        info.name: summarize_probe(history, info, config.stable, disruption_start)
        for info in history.probes
    }
    service = summaries.get(config.service_probe or "")
    measured = service if service is not None and service.samples else None
    recovered = recovered_at(history, measured, disruptive, config.stable)
    rto, rto_reason = rto_of(history, measured, disruptive, recovered, config.objectives.rto_s)
    writes, writes_reason = _writes(history, config.write_probe)
    quarter = _quarter_of(history.clock.wall_ns)
    budget = error_budget_s(config.objectives.availability, quarter)
    availability = availability_of(measured, budget, config.objectives.availability)
    failover, two = _failover(history, measured, disruption_start, recovered)
    brain, brain_result = _split_brain(history, config.write_probe, failover, two)
    rpo, rpo_reason = writes.rpo_s if writes else None, writes_reason
    restore = measure_restore(history, config.service_probe, config.write_probe, disruption_start)
    if restore is not None and restore.reclassifies:
        rto, rto_reason = _restore_rto(restore)
        rpo, rpo_reason = _restore_rpo(restore)
    results = [
        verdict_le("rto", config.objectives.rto_s, rto, rto_reason),
        verdict_le("rpo", config.objectives.rpo_s, rpo, rpo_reason),
        availability.result,
        *([brain_result] if brain_result is not None else []),
        *_restore_results(restore),
        *judge_probes(
            history, summaries, disruptive, config.probe_objectives, config.stable, quarter
        ),
        *_level(config.level, history, disruption_start, rto, rto_reason),
    ]
    lag = harness_lag(history.ops, sum(p.skipped for p in history.probes))
    during = between(history.ops, disruption_start, recovered)
    overloaded = overload_error(lag, during)  # cannot be judged: error, never a missed objective
    return CheckResult(
        probes=summaries,
        writes=writes,
        writes_reason=writes_reason,
        disruption_start_ns=disruption_start,
        rto_s=rto,
        downtime_s=measured.downtime_s if measured else None,
        downtime_lower_s=measured.downtime_lower_s if measured else None,
        availability=availability.measured,
        error_budget_s=budget,
        error_budget_share=availability.share,
        results=results,
        verdict=Overall.ERROR if overloaded else _overall(results),
        split_brain=brain,
        disruptions=_disruptions(history, measured),
        failover=failover,
        two_primaries=two,
        restore=restore,
        rpo_s=rpo,
        harness=lag,
        harness_error=overloaded,
    )


def _level(
    level: Level | None, history: History, start: int | None, rto: float | None, why: str
) -> list[ObjectiveResult]:
    return [] if level is None else judge_level(level, history, start, rto, why)


def _restore_rto(restore: Restore) -> tuple[float | None, str]:
    if restore.rto is None:
        return None, "the restore's RTO was not measured"
    return restore.rto.seconds, restore.rto.reason


def _restore_rpo(restore: Restore) -> tuple[float | None, str]:
    if restore.rpo is None:
        return None, restore.writes_reason
    return restore.rpo.seconds, restore.rpo.reason


def _restore_results(restore: Restore | None) -> list[ObjectiveResult]:
    """A restore to just before the incident brings nothing after it back; the incident's
    check, when it has one, must find the damage undone."""
    if restore is None or restore.measured is None:
        return []
    facts = restore.measured.facts
    found = []
    if facts.before_incident:
        writes = restore.writes
        count = None if writes is None else len(writes.resurrected)
        why = restore.writes_reason or f"present after a restore to before {facts.before_step!r}"
        found.append(verdict_le("resurrected_writes", 0, count, why))
    if facts.check is not None:
        undone = facts.check.undone
        verdict = Verdict.MET if undone else Verdict.MISSED
        why = f"{facts.check.query!r} gave {facts.check.after!r} (before: {facts.check.before!r})"
        found.append(ObjectiveResult("incident_undone", 1, int(undone), verdict, why))
    amcheck = facts.verify.get("amcheck")
    if amcheck is not None:  # the restored data itself is sound (checked, not assumed)
        sound = amcheck == "ok"
        verdict = Verdict.MET if sound else Verdict.MISSED
        found.append(ObjectiveResult("restored_data_sound", 1, int(sound), verdict, amcheck))
    return found


def _writes(history: History, write_probe: str | None) -> tuple[WriteClassification | None, str]:
    if write_probe is None:
        return None, "the scenario has no write probe"
    final = history.final_read(write_probe)
    info = history.probe(write_probe)
    if info is None:
        return None, f"write probe {write_probe!r} did not run"
    if final is None or not final.ok:
        detail = final.detail if final is not None else "no final read was made"
        return None, f"the final read failed: {detail}"
    return classify_writes(history.ops_of(write_probe), final.counts, info.started_ns), ""


def _failover(
    history: History, service: ProbeSummary | None, fault_ns: int | None, recovered: int | None
) -> tuple[Failover | None, TwoPrimaries | None]:
    """Measured from the drill's `patroni` probe, if it has one."""
    probe = cluster_probe(history)
    if probe is None:
        return None, None
    samples = cluster_samples(history, probe.name)
    outages = service.outages if service is not None else []
    failover = measure(probe, samples, fault_ns, outages, recovered if service else None)
    return failover, find_two_primaries(samples)


def _split_brain(
    history: History,
    write_probe: str | None,
    failover: Failover | None,
    two: TwoPrimaries | None,
) -> tuple[SplitBrain | None, ObjectiveResult | None]:
    """Judged when the write probe says which database lineage acked each write, or when a
    cluster probe says which members answered as primary."""
    write_ops = history.ops_of(write_probe) if write_probe else []
    lineages = has_lineages(write_ops)
    if not lineages and failover is None:
        return None, None
    brain = split_brain(write_ops) if lineages else None
    if brain is None and two is None:
        said = ["one database acknowledged writes at a time"] if lineages else []
        said += ["one member answered as primary at a time"] if failover is not None else []
        return None, ObjectiveResult("split_brain", 0, 0, Verdict.MET, "; ".join(said))
    why = []
    if brain is not None:
        window = (brain.end_ns - brain.start_ns) / 1e9
        why.append(
            f"{' and '.join(sorted(brain.ids))} both acknowledged writes for "
            f"{window:.3f}s ({brain.conflicting} writes)"
        )
    if two is not None:
        why.append(
            f"{' and '.join(two.members)} answered as primary at once for "
            f"{(two.end_ns - two.start_ns) / 1e9:.3f}s ({two.samples} cluster samples)"
        )
    conflicting = brain.conflicting if brain is not None else 0
    return brain, ObjectiveResult("split_brain", 0, conflicting, Verdict.MISSED, "; ".join(why))


def _disruptions(history: History, service: ProbeSummary | None) -> list[Disruption]:
    if service is None:
        return []
    info = history.probe(service.name)
    assert info is not None
    spans = []
    for outage in service.outages:
        lower, upper = outage.bounds_s(info.stopped_ns)
        spans.append((outage.first_fail_invoke_ns, outage.end_ns, lower, upper))
    return disruptions(history, spans, info.stopped_ns)


def _overall(results: list[ObjectiveResult]) -> Overall:
    verdicts = {r.verdict for r in results}
    if Verdict.MISSED in verdicts:
        return Overall.FAIL
    if Verdict.UNKNOWN in verdicts:
        return Overall.ERROR
    return Overall.PASS


__all__ = [
    "DEFAULT_STABLE",
    "CheckConfig",
    "CheckResult",
    "ObjectiveResult",
    "Objectives",
    "Outage",
    "Overall",
    "ProbeObjectives",
    "ProbeSummary",
    "Verdict",
    "WriteClassification",
    "check",
    "classify_writes",
    "error_budget_s",
    "is_up",
    "outages",
    "quarter_seconds",
    "recovered_ns",
    "summarize_probe",
]
