"""The record's `restore` key: a restore from backup as `drills.recovery` measured it.

Written only when a step restored a server; docs/records.md and docs/restore.md define every
figure. Times ending in `_s` are seconds since the history's clock anchor, rounded to
microseconds, except durations (`rto_s`, `copy_s`, ...) and ages.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from drills.history import History
from drills.recovery import Restore, RestoreStep
from drills.recovery_writes import PredictedRpo, RestoreRpo, RestoreWrites, WritePoint

Number = int | float


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class WritePointRecord(_Part):
    write_id: int
    ack_s: Number | None  # seconds since the clock anchor
    ack_at: str  # UTC, ISO 8601 with milliseconds


class RestoreWritesRecord(_Part):
    acked_before_incident: int
    lost: int
    lost_ids: list[int]
    resurrected: int
    resurrected_ids: list[int]
    discarded: int
    straddling: int
    straddling_ids: list[int]
    after_promotion: int


class ProjectionRecord(_Part):
    """What the measured throughput gives for another size: labelled, never measured."""

    size_bytes: int
    copy_s: Number
    label: str


class RestoreStepRecord(_Part):
    """One restore step (standby rebuilds too): its facts and the figures of its copy."""

    index: int
    name: str = ""
    node: str = ""
    mode: str
    target: dict[str, Any] = Field(default_factory=dict)
    before_step: str | None = None
    backup: str = ""
    backup_end_s: Number | None = None
    backup_age_at_incident_s: Number | None = None
    start_s: Number | None = None
    copy_start_s: Number | None = None
    copy_end_s: Number | None = None
    copy_s: Number | None = None
    pgbackrest_s: Number | None = None
    db_bytes: int | None = None
    throughput_mb_s: Number | None = None  # MB of 10^6 bytes, over copy_s
    server_start_s: Number | None = None
    redo_start_s: Number | None = None
    redo_done_s: Number | None = None
    replay_s: Number | None = None
    promoted_s: Number | None = None
    projection: ProjectionRecord | None = None
    verify: dict[str, str] = Field(default_factory=dict)
    check: dict[str, Any] | None = None  # the incident's check, run on the restored server


class RestoreRecord(_Part):
    """`step` is null when every restore was a standby rebuild: then nothing below it but
    `steps` is measured, and the objectives are judged as without a restore."""

    step: int | None = None
    incident_s: Number | None = None
    incident_at: str | None = None
    incident_from: str = ""
    rto_s: Number | None = None
    rto_reason: str = ""
    rto_parts_s: dict[str, Number] = Field(default_factory=dict)
    rto_notes: list[str] = Field(default_factory=list)
    first_ok_s: Number | None = None
    rpo_s: Number | None = None
    rpo_reason: str = ""
    recovery_point: WritePointRecord | None = None
    newest_acked_before_incident: WritePointRecord | None = None
    predicted_rpo_s: Number | None = None
    predicted_rpo_reason: str = ""
    predicted_rpo_sample_s: Number | None = None
    writes: RestoreWritesRecord | None = None
    writes_reason: str = ""
    steps: list[RestoreStepRecord] = Field(default_factory=list)


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


class _Times:
    """Monotonic times of one history as seconds since its anchor and as UTC."""

    def __init__(self, history: History) -> None:
        self.clock = history.clock

    def rel(self, ns: int | None) -> float | None:
        return None if ns is None else round((ns - self.clock.mono_ns) / 1e9, 6)

    def utc(self, ns: int) -> str:
        wall = self.clock.wall_ns_at(ns)
        at = datetime.fromtimestamp(wall / 1e9, tz=UTC).isoformat(timespec="milliseconds")
        return at.replace("+00:00", "Z")

    def point(self, point: WritePoint | None) -> WritePointRecord | None:
        if point is None:
            return None
        return WritePointRecord(
            write_id=point.write_id, ack_s=self.rel(point.ack_ns), ack_at=self.utc(point.ack_ns)
        )


def restore_record(history: History, restore: Restore | None) -> RestoreRecord | None:
    """None when no step restored anything: the record then has no `restore` key."""
    if restore is None:
        return None
    times = _Times(history)
    steps = [_step(times, s) for s in restore.steps]
    measured = restore.measured
    if measured is None:
        return RestoreRecord(steps=steps, **_predicted(times, restore.predicted))
    rto = restore.rto
    incident = restore.incident_ns
    return RestoreRecord(
        step=measured.index,
        incident_s=times.rel(incident),
        incident_at=None if incident is None else times.utc(incident),
        incident_from=restore.incident_from,
        rto_s=_round(rto.seconds) if rto else None,
        rto_reason=rto.reason if rto else "",
        rto_parts_s={p.name: round(p.seconds, 6) for p in rto.parts} if rto else {},
        rto_notes=rto.notes if rto else [],
        first_ok_s=times.rel(rto.first_ok_ns) if rto else None,
        **_rpo(times, restore.rpo, restore.writes_reason),
        **_predicted(times, restore.predicted),
        writes=_writes(restore.writes),
        writes_reason=restore.writes_reason,
        steps=steps,
    )


def _rpo(times: _Times, rpo: RestoreRpo | None, why: str) -> dict[str, Any]:
    if rpo is None:
        return {"rpo_s": None, "rpo_reason": why}
    return {
        "rpo_s": round(rpo.seconds, 6),
        "rpo_reason": rpo.reason,
        "recovery_point": times.point(rpo.recovery_point),
        "newest_acked_before_incident": times.point(rpo.newest_acked),
    }


def _predicted(times: _Times, predicted: PredictedRpo) -> dict[str, Any]:
    return {
        "predicted_rpo_s": _round(predicted.seconds),
        "predicted_rpo_reason": predicted.reason,
        "predicted_rpo_sample_s": times.rel(predicted.at_ns),
    }


def _writes(writes: RestoreWrites | None) -> RestoreWritesRecord | None:
    if writes is None:
        return None
    return RestoreWritesRecord(
        acked_before_incident=writes.acked_before_incident,
        lost=len(writes.lost),
        lost_ids=writes.lost,
        resurrected=len(writes.resurrected),
        resurrected_ids=writes.resurrected,
        discarded=len(writes.discarded),
        straddling=len(writes.straddling),
        straddling_ids=writes.straddling,
        after_promotion=writes.after_promotion,
    )


def _step(times: _Times, step: RestoreStep) -> RestoreStepRecord:
    facts = step.facts
    projection = step.projection
    return RestoreStepRecord(
        index=step.index,
        name=step.name,
        node=facts.node,
        mode=facts.mode,
        target=facts.target.model_dump(),
        before_step=facts.before_step,
        backup=facts.backup,
        backup_end_s=times.rel(facts.backup_end_ns),
        backup_age_at_incident_s=_round(step.backup_age_s),
        start_s=times.rel(step.start_ns),
        copy_start_s=times.rel(facts.copy_start_ns),
        copy_end_s=times.rel(facts.copy_end_ns),
        copy_s=_round(step.copy_s),
        pgbackrest_s=facts.pgbackrest_s,
        db_bytes=facts.db_bytes,
        throughput_mb_s=_round(step.throughput_mb_s, 3),
        server_start_s=times.rel(facts.server_start_ns),
        redo_start_s=times.rel(facts.redo_start_ns),
        redo_done_s=times.rel(facts.redo_done_ns),
        replay_s=_round(step.replay_s),
        promoted_s=times.rel(facts.promoted_ns),
        projection=None
        if projection is None
        else ProjectionRecord(
            size_bytes=projection.size_bytes,
            copy_s=round(projection.copy_s, 3),
            label=projection.label,
        ),
        verify=facts.verify,
        check=None if facts.check is None else facts.check.model_dump(),
    )
