"""A restore from backup, measured: pure functions of the history (engineering guide, section 1).

The restore measured is the last step whose facts hold a `restore` that is not a standby
rebuild; every restore step (standby rebuilds too) gets its copy, replay and throughput figures.

- Restore RTO: the disruption start (T0, the checker's first disruptive step) -> the completion
  of the first up sample of the service probe due at or after the restored server was promoted,
  in contiguous parts that add up to it exactly: decision (T0 -> restore step start),
  preparation (-> copy start), restore copy (-> copy end), server start (-> redo start in the
  server log), WAL replay (-> redo done), promotion (-> promoted), first ok (-> that sample).
  A missing inner point merges its two neighbours (said in `notes`); a missing end: no RTO.
- Writes, RPO and the recovery point against the incident: `drills.recovery_writes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from drills.downtime import is_up
from drills.errors import RecordError
from drills.history import History, StepEvent
from drills.recovery_writes import (
    PredictedRpo,
    RestoreRpo,
    RestoreWrites,
    classify_restore_writes,
    predicted_rpo,
    restore_rpo,
)

FACTS_KEY = "restore"
MB = 1_000_000  # bytes: throughput is in MB/s of 10^6 bytes
PROJECTION_LABEL = "projection, not measured"


class _Facts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class RestoreTarget(_Facts):
    type: str
    value: str = ""
    exclusive: bool = False


class IncidentCheck(_Facts):
    """The incident's check, run again on the restored server."""

    query: str = ""
    before: str = ""
    after: str = ""
    undone: bool


class RestoreFacts(_Facts):
    """What a `restore` step recorded (docs/restore.md); `*_ns` on the monotonic clock."""

    node: str = ""
    server: str | None = None  # the lab's name for the restored node (`a`)
    mode: Literal["in-place", "new-directory", "standby"]
    target: RestoreTarget
    before_step: str | None = None
    incident_ns: int | None = None
    # When the incident began: an SQL incident's COMMIT was sent then and returned at
    # incident_ns; a write acknowledged in between may be ordered either side of it.
    incident_start_ns: int | None = None
    backup: str = ""
    backup_end_ns: int | None = None
    start_ns: int | None = None
    copy_start_ns: int | None = None
    copy_end_ns: int | None = None
    pgbackrest_s: float | None = None
    db_bytes: int | None = None
    server_start_ns: int | None = None
    redo_start_ns: int | None = None
    redo_done_ns: int | None = None
    promoted_ns: int | None = None
    verify: dict[str, str] = {}
    check: IncidentCheck | None = None
    project_size_bytes: int | None = None

    @property
    def standby(self) -> bool:
        return self.mode == "standby"

    @property
    def before_incident(self) -> bool:
        """A target "to just before the incident": nothing after it may come back."""
        return self.target.type in ("xid", "time") and self.before_step is not None


@dataclass(frozen=True)
class Projection:
    """The copy time `throughput_mb_s` would give for another size: not measured."""

    size_bytes: int
    copy_s: float
    label: str = PROJECTION_LABEL


@dataclass(frozen=True)
class RestoreStep:
    """One restore step and the figures of its copy and replay."""

    index: int
    name: str
    start_ns: int
    end_ns: int
    facts: RestoreFacts
    copy_s: float | None
    replay_s: float | None
    throughput_mb_s: float | None
    projection: Projection | None
    backup_age_s: float | None  # the backup's end -> the incident


@dataclass(frozen=True)
class RtoPart:
    name: str  # a part, or neighbours merged around a missing point: "server_start+wal_replay"
    start_ns: int
    end_ns: int

    @property
    def seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


@dataclass(frozen=True)
class RestoreRto:
    seconds: float | None
    parts: list[RtoPart]
    first_ok_ns: int | None
    reason: str = ""  # why there is no RTO
    notes: list[str] = field(default_factory=list)  # parts merged or clamped, and why


@dataclass(frozen=True)
class Restore:
    steps: list[RestoreStep]  # every restore step in order, standby rebuilds too
    measured: RestoreStep | None  # the last that was not a standby rebuild
    incident_ns: int | None
    incident_from: str  # "incident" (the restore's facts) or "disruption start"
    rto: RestoreRto | None
    writes: RestoreWrites | None
    writes_reason: str
    rpo: RestoreRpo | None
    predicted: PredictedRpo

    @property
    def reclassifies(self) -> bool:
        """Whether the restore replaces the failover figures and write classification."""
        return self.measured is not None


def measure_restore(
    history: History,
    service_probe: str | None,
    write_probe: str | None,
    disruption_start_ns: int | None,
) -> Restore | None:
    """The restore measured from the history; None when no step restored anything."""
    events = _restore_events(history)
    steps = [
        _restore_step(step, _incident_before(history, step, disruption_start_ns)) for step in events
    ]
    if not steps:
        return None
    measured = next((s for s in reversed(steps) if not s.facts.standby), None)
    chosen = measured or steps[-1]
    incident = _incident(chosen, _incident_before(history, chosen, disruption_start_ns))
    predicted = predicted_rpo(history, incident)
    if measured is None:
        why = "only standby rebuilds: writes are judged as without a restore"
        return Restore(
            steps, None, incident, _incident_from(steps[-1]), None, None, why, None, predicted
        )
    facts = measured.facts
    rto = restore_rto(history, service_probe, _t0(disruption_start_ns, facts), measured)
    writes, writes_reason = None, "the drill has no incident time and no disruptive step"
    rpo = None
    if incident is not None:
        # The restore's window closes when the restored server was started: no write can reach
        # it before, and one may commit on it before the harness sees the promotion.
        promoted = next(
            t for t in (facts.server_start_ns, facts.promoted_ns, measured.end_ns) if t is not None
        )
        start = facts.incident_start_ns if facts.incident_start_ns is not None else incident
        start = min(start, incident)
        writes, writes_reason = classify_restore_writes(
            history, write_probe, (start, incident), promoted
        )
        rpo = restore_rpo(history, write_probe, start) if writes is not None else None
    return Restore(
        steps=steps,
        measured=measured,
        incident_ns=incident,
        incident_from=_incident_from(measured),
        rto=rto,
        writes=writes,
        writes_reason=writes_reason,
        rpo=rpo,
        predicted=predicted,
    )


def _t0(disruption_start_ns: int | None, facts: RestoreFacts) -> int | None:
    """The RTO's start: the disruption start, or the named incident's start when that is
    later (an `sql` step's start includes connecting and its check; its damage begins when
    its COMMIT is sent). A detection step marked `starts_rto`, later still, stays T0."""
    start = facts.incident_start_ns
    if disruption_start_ns is None or start is None:
        return disruption_start_ns
    return max(disruption_start_ns, start)


def _incident_before(history: History, step: Any, disruption_start_ns: int | None) -> int | None:
    """When the data was damaged, for a restore not aimed at a named incident: the newest
    incident step before it that recorded when it took effect (`at_ns`, e.g. when the
    encryption finished: the server acknowledged writes until then); else the disruption
    start."""
    facts = step.facts
    server = facts.server if isinstance(facts, RestoreFacts) else facts[FACTS_KEY].get("server")
    for earlier in reversed([s for s in history.steps if s.index < step.index and s.ok]):
        incident = earlier.facts.get("incident", {})
        if server is not None and incident.get("node") not in (None, server):
            continue  # damage to another node: not what this restore repairs
        at_ns = incident.get("at_ns")
        if isinstance(at_ns, int):
            return at_ns
    return disruption_start_ns


def _restore_events(history: History) -> list[StepEvent]:
    """Restore steps that finished: a failed one's facts stop where it failed (its error is
    the run's verdict)."""
    return [s for s in history.steps if s.ok and FACTS_KEY in s.facts]


def parse_facts(step: StepEvent) -> RestoreFacts:
    raw: Any = step.facts[FACTS_KEY]
    try:
        return RestoreFacts.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RecordError(
            f"step {step.index + 1} ({step.kind}): facts.restore.{where}: {first['msg']}"
        ) from exc


def _incident(step: RestoreStep, disruption_start_ns: int | None) -> int | None:
    return step.facts.incident_ns if step.facts.incident_ns is not None else disruption_start_ns


def _incident_from(step: RestoreStep) -> str:
    return "incident" if step.facts.incident_ns is not None else "disruption start"


def _restore_step(step: StepEvent, disruption_start_ns: int | None) -> RestoreStep:
    facts = parse_facts(step)
    copy_s = _span_s(facts.copy_start_ns, facts.copy_end_ns)
    throughput = None
    if facts.db_bytes is not None and copy_s is not None and copy_s > 0:
        throughput = facts.db_bytes / MB / copy_s
    projection = None
    size = facts.project_size_bytes
    if size is not None and throughput:
        projection = Projection(size, size / MB / throughput)
    incident = facts.incident_ns if facts.incident_ns is not None else disruption_start_ns
    return RestoreStep(
        index=step.index,
        name=step.name,
        start_ns=facts.start_ns if facts.start_ns is not None else step.start_ns,
        end_ns=step.end_ns,
        facts=facts,
        copy_s=copy_s,
        replay_s=_span_s(facts.redo_start_ns, facts.redo_done_ns),
        throughput_mb_s=throughput,
        projection=projection,
        backup_age_s=_span_s(facts.backup_end_ns, incident),
    )


def _span_s(start_ns: int | None, end_ns: int | None) -> float | None:
    return None if start_ns is None or end_ns is None else (end_ns - start_ns) / 1e9


# The RTO's points in order: (the part that ends at the point, what the point is).
_PARTS = (
    ("decision", "restore step start"),
    ("preparation", "copy start"),
    ("restore_copy", "copy end"),
    ("server_start", "redo start in the server log"),
    ("wal_replay", "redo done in the server log"),
    ("promotion", "promotion"),
    ("first_ok", "first ok after promotion"),
)


def restore_rto(
    history: History, service_probe: str | None, t0_ns: int | None, step: RestoreStep
) -> RestoreRto:
    """T0 -> the first up sample of the service probe due at or after the promotion."""
    facts = step.facts
    first_ok = _first_ok_after(history, service_probe, facts.promoted_ns)
    if t0_ns is None:
        return RestoreRto(None, [], first_ok, "the timeline has no disruptive step")
    if facts.promoted_ns is None:
        return RestoreRto(None, [], None, "the restored server was never seen promoted")
    if first_ok is None:
        why = "the service probe had no ok sample due after the restored server's promotion"
        return RestoreRto(None, [], None, why)
    points = [
        step.start_ns,
        facts.copy_start_ns,
        facts.copy_end_ns,
        facts.redo_start_ns,
        facts.redo_done_ns,
        facts.promoted_ns,
        first_ok,
    ]
    parts, notes = _contiguous_parts(t0_ns, points)
    return RestoreRto((first_ok - t0_ns) / 1e9, parts, first_ok, "", notes)


def _contiguous_parts(t0_ns: int, points: list[int | None]) -> tuple[list[RtoPart], list[str]]:
    """Parts between consecutive points; a missing point merges the parts either side of it,
    a point earlier than the one before it (log stamps have millisecond resolution) is
    clamped to it, so the parts always add up to last point - T0."""
    parts: list[RtoPart] = []
    notes: list[str] = []
    start, names, missing = t0_ns, list[str](), list[str]()
    for (name, what), point in zip(_PARTS, points, strict=True):
        names.append(name)
        if point is None:
            missing.append(what)
            continue
        if point < start:
            notes.append(f"{what} came {(start - point) / 1e6:.3f}ms early: {name} counted as 0")
            point = start
        if missing:
            notes.append(f"no {' and no '.join(missing)}: {' and '.join(names)} merged")
        parts.append(RtoPart("+".join(names), start, point))
        start, names, missing = point, [], []
    return parts, notes


def _first_ok_after(
    history: History, service_probe: str | None, promoted_ns: int | None
) -> int | None:
    """Completion of the first up sample (ok within `slow`) due at or after the promotion."""
    info = history.probe(service_probe) if service_probe else None
    if info is None or promoted_ns is None:
        return None
    up = (
        op.complete_ns
        for op in history.ops_of(info.name)
        if op.invoke_ns >= promoted_ns and op.counted and is_up(op, info)
    )
    return next(up, None)
