"""Lost writes and the RPO window: every write classified against one final read.

Definitions follow the engineering guide, section 1 (lost, recovered, unexpected, duplicated;
the RPO from the recovery point to the newest lost write). A pure function of the history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drills.history import Op, Outcome


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


def classify_writes(ops: list[Op], counts: dict[int, int], started_ns: int) -> WriteClassification:
    """Classify every write against one final read (write id -> rows found)."""
    acked = sorted((op for op in ops if op.outcome is Outcome.OK), key=lambda o: o.complete_ns)
    lost = [op for op in acked if counts.get(op.seq, 0) == 0]
    window = _rpo_window(acked, lost, counts, started_ns)
    return WriteClassification(
        attempted=len(ops),
        acked=len(acked),
        lost=sorted(op.seq for op in lost),
        recovered=sorted(
            op.seq for op in ops if op.outcome is Outcome.UNKNOWN and counts.get(op.seq, 0) > 0
        ),
        unexpected=_unexpected(ops, counts),
        duplicated=[write_id for write_id, count in sorted(counts.items()) if count > 1],
        lost_ranges=_lost_runs(acked, counts),
        rpo_s=window.rpo_s,
        recovery_point_ns=window.recovery_point_ns,
        newest_lost_ack_ns=window.newest_lost_ack_ns,
    )


@dataclass(frozen=True)
class _Window:
    rpo_s: float = 0.0
    recovery_point_ns: int | None = None
    newest_lost_ack_ns: int | None = None


def _rpo_window(
    acked: list[Op], lost: list[Op], counts: dict[int, int], started_ns: int
) -> _Window:
    """From the newest surviving write acked before the oldest lost one to the newest lost."""
    if not lost:
        return _Window()
    oldest_lost = lost[0].complete_ns
    survivors = [
        op.complete_ns for op in acked if counts.get(op.seq, 0) > 0 and op.complete_ns < oldest_lost
    ]
    recovery_point = max(survivors) if survivors else started_ns
    newest_lost = lost[-1].complete_ns
    return _Window((newest_lost - recovery_point) / 1e9, recovery_point, newest_lost)


def _unexpected(ops: list[Op], counts: dict[int, int]) -> list[int]:
    """Rows present for writes never attempted, or attempted and certainly failed."""
    by_id = {op.seq: op for op in ops}
    found = []
    for write_id, count in sorted(counts.items()):
        op = by_id.get(write_id)
        if count > 0 and (op is None or op.outcome is Outcome.FAIL):
            found.append(write_id)
    return found


def _lost_runs(acked: list[Op], counts: dict[int, int]) -> list[tuple[int, int]]:
    """Runs of lost writes in ack order; each reported as (lowest id, highest id)."""
    runs: list[tuple[int, int]] = []
    run: list[int] = []
    for op in acked:
        if counts.get(op.seq, 0) == 0:
            run.append(op.seq)
        elif run:
            runs.append((min(run), max(run)))
            run = []
    if run:
        runs.append((min(run), max(run)))
    return runs
