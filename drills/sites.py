"""Site-level measurements, pure functions of the history like the rest of the checker.

- served_by: which site answered each ok sample (the `site` tag), before and after the first
  fault, which shows both sites carrying traffic in a dual-active steady state;
- split brain: two write lineages (a database on a timeline: tags `db` and `timeline`)
  acknowledging writes over overlapping periods. A failover moves writes from one lineage to
  the next (the promoted standby starts a new timeline), so their periods follow each other;
  a switch back later (A rejoined, then promoted again) is a third lineage, also in sequence.
  Overlapping periods mean both sides accepted writes at once;
- disruptions: the service's downtime after each disruptive step, until the next one, so that
  a failback's second disruption is measured apart from the failover's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from drills.history import History, Op, Outcome

BEFORE = "before_fault"
AFTER = "after_fault"


def served_by(ops: list[Op], fault_ns: int | None) -> dict[str, dict[str, int]]:
    """Ok samples per serving site, before the first fault and after it."""
    counts: dict[str, Counter[str]] = {BEFORE: Counter(), AFTER: Counter()}
    for op in ops:
        site = (op.tags or {}).get("site")
        if op.outcome is Outcome.OK and site:
            phase = BEFORE if fault_ns is None or op.invoke_ns < fault_ns else AFTER
            counts[phase][site] += 1
    return {phase: dict(sorted(c.items())) for phase, c in counts.items() if c}


def lineage(op: Op) -> str | None:
    tags = op.tags or {}
    if "db" not in tags:
        return None
    return f"{tags['db']}/{tags['timeline']}" if tags.get("timeline") else tags["db"]


@dataclass
class SplitBrain:
    start_ns: int  # both lineages acknowledged writes from here...
    end_ns: int  # ...to here
    ids: dict[str, list[int]] = field(default_factory=dict)  # lineage -> ids acked in it

    @property
    def conflicting(self) -> int:
        return sum(len(ids) for ids in self.ids.values())


def split_brain(ops: list[Op]) -> SplitBrain | None:
    """Overlapping acknowledgment periods of two write lineages, or None."""
    acks = sorted(
        (op.complete_ns, name, op.seq)
        for op in ops
        if op.outcome is Outcome.OK and (name := lineage(op)) is not None
    )
    spans: dict[str, tuple[int, int]] = {}
    for at, name, _ in acks:
        first, _last = spans.get(name, (at, at))
        spans[name] = (first, at)
    windows = []
    names = sorted(spans, key=lambda n: spans[n][0])
    for i, one in enumerate(names):
        for other in names[i + 1 :]:
            start = max(spans[one][0], spans[other][0])
            end = min(spans[one][1], spans[other][1])
            if start <= end:  # a lineage with one ack inside the other's period counts
                windows.append((start, end, one, other))
    if not windows:
        return None
    start = min(w[0] for w in windows)
    end = max(w[1] for w in windows)
    involved = {n for w in windows for n in w[2:]}
    found = SplitBrain(start, end)
    for at, name, seq in acks:
        if name in involved and start <= at <= end:
            found.ids.setdefault(name, []).append(seq)
    return found


def has_lineages(ops: list[Op]) -> bool:
    return any(lineage(op) for op in ops if op.outcome is Outcome.OK)


@dataclass
class Disruption:
    step: int
    kind: str
    start_ns: int
    downtime_s: float
    downtime_lower_s: float
    recovered_ns: int | None  # end of its last outage; None: still down at the end
    outages: int


def disruptions(
    history: History, outages: list[tuple[int, int | None, float, float]], stop_ns: int
) -> list[Disruption]:
    """The service's outages grouped by the disruptive step they follow.

    `outages`: (first failing sample's due time, end or None, lower, upper) per outage."""
    steps = sorted((s for s in history.steps if s.disruptive), key=lambda s: s.start_ns)
    found = []
    for index, step in enumerate(steps):
        until = steps[index + 1].start_ns if index + 1 < len(steps) else stop_ns
        mine = [o for o in outages if step.start_ns <= o[0] < until]
        ends = [o[1] for o in mine]
        recovered = (
            None
            if any(e is None for e in ends)
            else max((e for e in ends if e is not None), default=step.start_ns)
        )
        found.append(
            Disruption(
                step=step.index,
                kind=step.kind,
                start_ns=step.start_ns,
                downtime_s=sum(o[3] for o in mine),
                downtime_lower_s=sum(o[2] for o in mine),
                recovered_ns=recovered,
                outages=len(mine),
            )
        )
    return found
