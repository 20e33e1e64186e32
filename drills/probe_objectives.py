"""RTO and availability of one probe's samples: the service probe's, judged against the
scenario's objectives, and any other probe's that declares `objectives:` of its own.

A probe's RTO is its recovered time minus the start of the first disruptive step (a later
disruptive step, a failback, is a disruption of its own); its availability is judged by its
downtime's share of the quarter's error budget (engineering guide, section 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from drills.downtime import ProbeSummary, recovered_ns, recovery_ops
from drills.history import History
from drills.quarters import Quarter
from drills.verdicts import ObjectiveResult, Verdict, verdict_le


@dataclass(frozen=True)
class ProbeObjectives:
    """What one probe other than the service probe is judged against; None: not judged."""

    rto_s: float | None = None
    availability: float | None = None


@dataclass(frozen=True)
class Availability:
    measured: float | None
    share: float | None  # of the quarter's error budget
    result: ObjectiveResult


def error_budget_s(objective: float, quarter: Quarter) -> float:
    """The downtime an availability `objective` allows over `quarter`, in seconds."""
    return (1 - objective) * quarter.seconds


def recovered_at(
    history: History, probe: ProbeSummary | None, disruptive: list[int], stable: int
) -> int | None:
    """When `probe` recovered from the first disruptive step: the RTO's end."""
    if probe is None or not disruptive:
        return None
    info = history.probe(probe.name)
    assert info is not None
    later = [s for s in disruptive if s > disruptive[0]]
    if not later:
        return probe.recovered_ns
    # A later disruptive step (a failback) is a disruption of its own: the RTO is the
    # recovery from the first, if the probe recovered before the next began.
    before = [op for op in history.ops_of(probe.name) if op.invoke_ns < later[0]]
    return recovered_ns(recovery_ops(before, info), info, stable) or probe.recovered_ns


def rto_of(
    history: History,
    probe: ProbeSummary | None,
    disruptive: list[int],
    recovered: int | None,
    objective_s: float,
    subject: str = "the service probe",
) -> tuple[float | None, str]:
    """Recovered time of `probe` minus the start of the first disruptive step, or None and
    why. Not recovered by the end of a drill that outlasted the objective is a lower bound."""
    if probe is None:
        return None, f"{subject} recorded no samples"
    if not disruptive:
        return None, "the timeline has no disruptive step"
    info = history.probe(probe.name)
    assert info is not None
    start = disruptive[0]
    if recovered is not None:
        return max(0.0, (recovered - start) / 1e9), ""
    elapsed = (info.stopped_ns - start) / 1e9
    reason = f"{subject} had not recovered when the drill ended ({elapsed:.3f}s in)"
    if elapsed > objective_s:
        return elapsed, reason + "; the RTO is at least this"  # a lower bound, already missed
    return None, reason


def availability_of(
    probe: ProbeSummary | None,
    budget: float,
    objective: float,
    name: str = "availability",
    subject: str = "the service probe",
) -> Availability:
    if probe is None or probe.window_s <= 0:
        why = f"{subject} recorded no samples"
        return Availability(
            None, None, ObjectiveResult(name, objective, None, Verdict.UNKNOWN, why)
        )
    downtime = probe.downtime_s
    measured = max(0.0, 1 - downtime / probe.window_s)
    if budget <= 0:  # a 100% objective has no budget: any downtime misses it
        verdict = Verdict.MET if downtime == 0 else Verdict.MISSED
        why = f"a {objective:.0%} objective allows no downtime; measured {downtime:.3f}s"
        return Availability(
            measured, None, ObjectiveResult(name, objective, measured, verdict, why)
        )
    # A short drill window says little about 99.99%; the budget share is what is judged.
    share = downtime / budget
    verdict = Verdict.MET if share <= 1 else Verdict.MISSED
    why = f"downtime {downtime:.3f}s is {share:.2%} of the quarter's error budget {budget:.1f}s"
    return Availability(measured, share, ObjectiveResult(name, objective, measured, verdict, why))


def judge_probes(
    history: History,
    summaries: Mapping[str, ProbeSummary],
    disruptive: list[int],
    objectives: Mapping[str, ProbeObjectives],
    stable: int,
    quarter: Quarter,
) -> list[ObjectiveResult]:
    """The verdicts of every probe with objectives of its own, named `rto:PROBE` and
    `availability:PROBE`, in the order the scenario lists the probes."""
    results = []
    for name, wanted in objectives.items():
        found = summaries.get(name)
        probe = found if found is not None and found.samples else None
        subject = f"probe {name!r}"
        if wanted.rto_s is not None:
            recovered = recovered_at(history, probe, disruptive, stable)
            rto, why = rto_of(history, probe, disruptive, recovered, wanted.rto_s, subject)
            results.append(verdict_le(f"rto:{name}", wanted.rto_s, rto, why))
        if wanted.availability is not None:
            budget = error_budget_s(wanted.availability, quarter)
            judged = availability_of(
                probe, budget, wanted.availability, f"availability:{name}", subject
            )
            results.append(judged.result)
    return results
