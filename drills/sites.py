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
    """Two write lineages accepting writes at once, or None.

    Once a lineage has acknowledged its first write, a write *sent* after that moment and
    acknowledged by another lineage means both were taking writes. Only writes sent after it
    count: a write the old primary committed before the failover may be acknowledged late (a
    held connection released), and that is not a split brain."""
    acked = sorted(
        (op for op in ops if op.outcome is Outcome.OK and lineage(op) is not None),
        key=lambda op: op.complete_ns,
    )
    first: dict[str, int] = {}
    for op in acked:
        first.setdefault(lineage(op) or "", op.complete_ns)
    conflicts: dict[str, set[int]] = {}
    start: int | None = None
    end: int | None = None
    for newer, live_ns in first.items():
        # Older lineages (live before this one) still acknowledging writes sent after it.
        others = [
            op
            for op in acked
            if lineage(op) != newer
            and first[lineage(op) or ""] < live_ns
            and op.invoke_ns > live_ns
        ]
        if not others:
            continue
        window_end = max(op.complete_ns for op in others)
        start = live_ns if start is None else min(start, live_ns)
        end = window_end if end is None else max(end, window_end)
        for op in others:
            conflicts.setdefault(lineage(op) or "", set()).add(op.seq)
        for op in acked:
            if lineage(op) == newer and live_ns <= op.complete_ns <= window_end:
                conflicts.setdefault(newer, set()).add(op.seq)
    if start is None or end is None:
        return None
    return SplitBrain(start, end, {name: sorted(ids) for name, ids in sorted(conflicts.items())})


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
    down_already: bool = False  # an earlier disruption's outage still ran when this began


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
        ongoing = any(
            o[0] < step.start_ns and (o[1] is None or o[1] > step.start_ns) for o in outages
        )
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
                down_already=ongoing,
            )
        )
    return found
