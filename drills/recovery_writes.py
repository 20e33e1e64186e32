"""Writes against a restore: lost, resurrected, discarded; the RPO and the recovery point.

Pure functions of the history (engineering guide, section 1, "Restore from backup"). Every
write of the write probe is classified against the incident time and the restored server's
promotion, from the one final read:

- acknowledged before the incident (completed before it, outcome ok): must be present,
  missing = lost;
- straddling the incident (due before it, completed at or after it): outcome unknown,
  counted apart, never lost;
- due at or after the incident and completed before the promotion (the restore step's end
  when no promotion was seen): present = resurrected (whatever its outcome), acknowledged
  and absent = discarded by the restore (expected);
- due at or after the incident and completed at or after the promotion: ordinary writes to
  the restored server, acknowledged and missing = lost too.

The recovery point is the newest present write acknowledged before the incident (by ack
time); RPO = ack time of the newest write acknowledged before the incident - ack time of the
recovery point. The predicted RPO is the archive lag (`archive_lag_s`) of the last ok sample
completed at or before the incident.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from drills.history import History, Op, Outcome

ARCHIVE_LAG_KEY = "archive_lag_s"


@dataclass
class RestoreWrites:
    acked_before_incident: int = 0
    lost: list[int] = field(default_factory=list)
    resurrected: list[int] = field(default_factory=list)
    discarded: list[int] = field(default_factory=list)
    straddling: list[int] = field(default_factory=list)
    after_promotion: int = 0  # writes served by the restored server, classified as usual


@dataclass(frozen=True)
class WritePoint:
    write_id: int
    ack_ns: int


@dataclass(frozen=True)
class RestoreRpo:
    seconds: float
    recovery_point: WritePoint | None
    newest_acked: WritePoint | None  # the newest write acknowledged before the incident
    reason: str = ""  # why it is 0 or only a lower bound


@dataclass(frozen=True)
class PredictedRpo:
    seconds: float | None
    at_ns: int | None = None  # completion of the sample it comes from
    reason: str = ""


def _acked(op: Op) -> bool:
    return op.outcome is Outcome.OK


def classify_restore_writes(
    history: History, write_probe: str | None, incident: tuple[int, int], promoted_ns: int
) -> tuple[RestoreWrites | None, str]:
    """Every write of `write_probe` against the incident (when it began, when it took effect)
    and the promotion; None and why when there is no final read to classify them against."""
    began_ns, incident_ns = incident
    counts, why = _final_counts(history, write_probe)
    if counts is None or write_probe is None:
        return None, why
    found = RestoreWrites()
    for op in history.ops_of(write_probe):
        present = counts.get(op.seq, 0) > 0
        if op.complete_ns < began_ns:
            found.acked_before_incident += _acked(op)
            if _acked(op) and not present:
                found.lost.append(op.seq)
        elif op.invoke_ns < incident_ns:
            found.straddling.append(op.seq)
        elif op.complete_ns < promoted_ns:
            if present:
                found.resurrected.append(op.seq)
            elif _acked(op):
                found.discarded.append(op.seq)
        else:
            found.after_promotion += 1
            if _acked(op) and not present:
                found.lost.append(op.seq)
    return found, ""


def restore_rpo(history: History, write_probe: str | None, incident_ns: int) -> RestoreRpo | None:
    """Newest ack before the incident - the recovery point; None when writes cannot be read."""
    counts, _ = _final_counts(history, write_probe)
    info = history.probe(write_probe) if write_probe else None
    if counts is None or info is None:
        return None
    acked = sorted(
        (op for op in history.ops_of(info.name) if _acked(op) and op.complete_ns < incident_ns),
        key=lambda op: op.complete_ns,
    )
    if not acked:
        return RestoreRpo(0.0, None, None, "no write was acknowledged before the incident")
    newest = _point(acked[-1])
    survivors = [op for op in acked if counts.get(op.seq, 0) > 0]
    if not survivors:
        why = (
            "no write acknowledged before the incident is present: measured from the write "
            "probe's start, a lower bound"
        )
        return RestoreRpo((newest.ack_ns - info.started_ns) / 1e9, None, newest, why)
    point = _point(survivors[-1])
    return RestoreRpo((newest.ack_ns - point.ack_ns) / 1e9, point, newest)


def _point(op: Op) -> WritePoint:
    return WritePoint(op.seq, op.complete_ns)


def _final_counts(history: History, write_probe: str | None) -> tuple[dict[int, int] | None, str]:
    if write_probe is None:
        return None, "the scenario has no write probe"
    if history.probe(write_probe) is None:
        return None, f"write probe {write_probe!r} did not run"
    final = history.final_read(write_probe)
    if final is None or not final.ok:
        detail = final.detail if final is not None else "no final read was made"
        return None, f"the final read failed: {detail}"
    return final.counts, ""


def predicted_rpo(history: History, incident_ns: int | None) -> PredictedRpo:
    """The archive lag of the last ok sample completed at or before the incident."""
    sampled = [op for op in history.ops if op.values and ARCHIVE_LAG_KEY in op.values]
    if not sampled:
        return PredictedRpo(None, None, "no probe sampled the archive lag (pg_stat_archiver)")
    if incident_ns is None:
        return PredictedRpo(None, None, "the drill has no incident time and no disruptive step")
    before = [op for op in sampled if _acked(op) and op.complete_ns <= incident_ns]
    if not before:
        return PredictedRpo(None, None, "no ok archive-lag sample at or before the incident")
    last = max(before, key=lambda op: op.complete_ns)
    assert last.values is not None
    return PredictedRpo(last.values[ARCHIVE_LAG_KEY], last.complete_ns)
