"""The run record as a typed model: the keys of docs/records.md, in the order they are written.

Figures keep the type the checker gave them (`Number`): a downtime of `0` is written `0` and
`0.25` is `0.25`, so a record dumps to the same JSON as the dictionaries written before this
model. Keys added after the first records (`split_brain`, `disruptions`, `targets`, `events`,
`chain`, `failover`, a probe's `served_by` ...) default to empty, so older records still load.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from drills.checker import (
    DEFAULT_STABLE,
    CheckConfig,
    Objectives,
    Overall,
    ProbeObjectives,
    Verdict,
)
from drills.levels import Level
from drills.records.restore import RestoreRecord

SCHEMA_VERSION: Final = 1

Number = int | float  # a figure as measured: integers stay integers in the JSON


class RecordPart(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


def _without_none(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not (k in keys and v is None)}


class ScenarioRef(RecordPart):
    name: str = Field(min_length=1)
    file: str
    sha256: str
    description: str = ""


class ObjectivesRecord(RecordPart):
    rto_s: Number
    rpo_s: Number
    availability: Number


class ProbeObjectivesRecord(RecordPart):
    """A probe's own objectives (`probes.NAME.objectives`); null: not judged."""

    rto_s: Number | None = None
    availability: Number | None = None


class LevelRecord(RecordPart):
    level: int
    respond_s: Number
    recover_s: Number


class CheckRecord(RecordPart):
    """What the checker was told."""

    service_probe: str | None
    write_probe: str | None
    stable: int = DEFAULT_STABLE
    probe_objectives: dict[str, ProbeObjectivesRecord] = Field(default_factory=dict)
    level: LevelRecord | None = None  # written only for a scenario with `level:`

    @model_serializer(mode="wrap")
    def _present_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if k not in ("probe_objectives", "level") or v}

    @classmethod
    def of(cls, config: CheckConfig) -> CheckRecord:
        return cls(
            service_probe=config.service_probe,
            write_probe=config.write_probe,
            stable=config.stable,
            probe_objectives={
                name: ProbeObjectivesRecord(rto_s=o.rto_s, availability=o.availability)
                for name, o in config.probe_objectives.items()
            },
            level=None
            if (lv := config.level) is None
            else LevelRecord(level=lv.number, respond_s=lv.respond_s, recover_s=lv.recover_s),
        )


class Measurements(RecordPart):
    """Null (None) means not measured; the verdicts say why."""

    rto_s: Number | None = None
    rpo_s: Number | None = None
    downtime_s: Number | None = None
    downtime_lower_s: Number | None = None
    availability: Number | None = None
    error_budget_s: Number | None = None
    error_budget_share: Number | None = None
    lost_writes: int | None = None
    writes_acked: int | None = None
    writes_attempted: int | None = None
    writes_recovered: int | None = None
    unexpected_writes: int | None = None
    duplicated_writes: int | None = None
    lost_write_ids: list[int] | None = None
    lost_ranges: list[list[int]] | None = None  # [lowest id, highest id] per run of lost writes
    holes: int | None = None
    recovery_point_s: Number | None = None
    probe_interval_s: Number | None = None
    write_interval_s: Number | None = None
    disruption_start_s: Number | None = None
    replication_lag_peak_bytes: Number | None = None
    replication_lag_peak_s: Number | None = None


class TwoPrimariesRecord(RecordPart):
    """Cluster samples in which several members answered as primary."""

    start_s: Number | None
    end_s: Number | None
    window_s: Number
    members: list[str]
    samples: int


class SplitBrainRecord(RecordPart):
    """`{"detected": false}` alone, or the window two write lineages overlapped."""

    detected: bool
    start_s: Number | None = None
    end_s: Number | None = None
    window_s: Number | None = None
    conflicting_ids: dict[str, list[int]] | None = None  # lineage -> ids acked in the window
    two_primaries: TwoPrimariesRecord | None = None  # from a `patroni` probe

    @model_serializer(mode="wrap")
    def _detected_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_none(
            handler(self), ("start_s", "end_s", "window_s", "conflicting_ids", "two_primaries")
        )


class FailoverParts(RecordPart):
    """The RTO in parts (seconds); null when a point was not seen."""

    detection_s: Number | None = None  # fault -> leader lost
    election_s: Number | None = None  # leader lost (or the fault) -> new leader elected
    reconnect_s: Number | None = None  # new leader elected -> service recovered


class FailoverRecord(RecordPart):
    """A failover by an HA manager, from the drill's `patroni` probe. Times ending in
    `_after_s` are seconds after the fault (the first disruptive step)."""

    probe: str
    interval_s: Number
    leader_before: str | None = None
    leader_after: str | None = None
    fault_s: Number | None = None
    service_last_ok_after_s: Number | None = None
    leader_lost_after_s: Number | None = None
    leader_key_expired_after_s: Number | None = None
    leader_elected_after_s: Number | None = None
    service_recovered_after_s: Number | None = None
    parts: FailoverParts = Field(default_factory=FailoverParts)


class Disruption(RecordPart):
    """The service's downtime after one disruptive step, until the next one."""

    step: int
    kind: str
    at_s: Number | None
    downtime_s: Number
    downtime_lower_s: Number
    outages: int
    down_already: bool = False
    recovered_after_s: Number | None = None


class ObjectiveVerdict(RecordPart):
    verdict: Verdict
    objective: Number
    measured: Number | None = None
    reason: str = ""


class StepRecord(RecordPart):
    """One step of the timeline; times in seconds since the clock anchor."""

    index: int
    kind: str
    description: str
    disruptive: bool
    start_s: Number | None
    end_s: Number | None
    at: str  # UTC, ISO 8601 with milliseconds
    ok: bool = True
    detail: str = ""
    name: str = ""
    facts: dict[str, Any] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if k not in ("name", "facts") or v}


class OutageRecord(RecordPart):
    start_s: Number | None  # last ok before
    first_fail_s: Number | None
    end_s: Number | None  # first ok after; None: never
    downtime_lower_s: Number
    downtime_s: Number
    samples: int
    recovered: bool


class ProbeRecord(RecordPart):
    kind: str
    interval_s: Number
    timeout_s: Number
    slow_s: Number
    started_s: Number | None
    stopped_s: Number | None
    samples: int
    skipped: int = 0
    crashed: int = 0
    late: int | None = None  # samples the harness was late for, left out of downtime
    ok: int
    fail: int
    unknown: int
    slow: int = 0
    served_by: dict[str, dict[str, int]] = Field(default_factory=dict)  # phase -> site -> ok
    latency_p50_ms: Number | None = None
    latency_p99_ms: Number | None = None
    latency_max_ms: Number | None = None
    downtime_s: Number
    downtime_lower_s: Number
    recovered_s: Number | None = None
    peaks: dict[str, Number] = Field(default_factory=dict)
    outages: list[OutageRecord] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _present_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_none(handler(self), ("late",))


class Event(RecordPart):
    at_s: Number | None
    source: str
    subject: str
    change: str


class Host(RecordPart):
    hostname: str | None = None
    platform: str | None = None
    python: str | None = None
    cpus: int | None = None
    drills_version: str | None = None


class Chain(RecordPart):
    """The record's link in its directory's hash chain."""

    seq: int = 0  # records chained before numbering count as 0
    previous: str | None = None
    previous_sha256: str | None = None
    history_sha256: str | None = None


class Signature(RecordPart):
    """HMAC of the record's canonical JSON without this key (`records.signing`)."""

    alg: str
    key_id: str  # the first 16 hex digits of the key's sha256: names it, does not reveal it
    value: str


class HarnessRecord(RecordPart):
    """The harness's own lateness over every probe (drills.lateness): samples issued later
    than the tolerance, or not at all for want of a thread, are `late` and left out of
    downtime; lag is issue time - due time."""

    samples: int
    late: int
    late_share: Number
    lag_p50_ms: Number | None = None
    lag_p99_ms: Number | None = None
    lag_max_ms: Number | None = None


class ParticipantRecord(RecordPart):
    name: str
    role: str


class RunRecord(RecordPart):
    """One drill's record. `data()` is what is written; the file's JSON is the contract."""

    schema_version: Literal[1] = SCHEMA_VERSION
    run_id: str
    scenario: ScenarioRef
    started_at: str  # UTC, ISO 8601 with milliseconds
    finished_at: str
    verdict: Overall
    error: str | None = None
    objectives: ObjectivesRecord
    check: CheckRecord
    measurements: Measurements = Field(default_factory=Measurements)
    split_brain: SplitBrainRecord | None = None
    failover: FailoverRecord | None = None  # written only for a drill with a `patroni` probe
    restore: RestoreRecord | None = None  # written only when a step restored from backup
    disruptions: list[Disruption] = Field(default_factory=list)
    verdicts: dict[str, ObjectiveVerdict] = Field(default_factory=dict)
    timeline: list[StepRecord] = Field(default_factory=list)
    probes: dict[str, ProbeRecord] = Field(default_factory=dict)
    harness: HarnessRecord | None = None
    events: list[Event] = Field(default_factory=list)
    phases_s: dict[str, Number] = Field(default_factory=dict)
    lab: dict[str, Any] = Field(default_factory=dict)
    targets: dict[str, Any] = Field(default_factory=dict)
    host: Host | None = None
    history: str = ""  # file name of the history, in the same directory
    aborted: str | None = None  # the stop condition that fired; written only when aborted
    participants: list[ParticipantRecord] = Field(default_factory=list)  # written when any
    store: str | None = None  # the results store it was sent to; written only with one
    chain: Chain | None = None  # written by `write_chained`
    self_sha256: str | None = None
    signature: Signature | None = None  # written by `write_chained` when given a key

    @model_serializer(mode="wrap")
    def _present_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        present_only = (
            *("failover", "restore", "aborted", "harness", "store"),
            *("chain", "self_sha256", "signature"),
        )
        data = _without_none(handler(self), present_only)
        return {k: v for k, v in data.items() if k != "participants" or v}

    def data(self) -> dict[str, Any]:
        """The record as JSON-ready data, keys in the documented order."""
        return self.model_dump(mode="json")

    @property
    def passed(self) -> bool:
        return self.verdict is Overall.PASS

    def judged(self, objective: str) -> str:
        """The objective's verdict (`met`, `missed`, `unknown`), or `n/a` when not judged."""
        found = self.verdicts.get(objective)
        return "n/a" if found is None else found.verdict.value

    def check_config(self) -> CheckConfig:
        """What the checker was told, to re-run it on the saved history."""
        objectives = self.objectives
        return CheckConfig(
            objectives=Objectives(
                rto_s=float(objectives.rto_s),
                rpo_s=float(objectives.rpo_s),
                availability=float(objectives.availability),
            ),
            service_probe=self.check.service_probe,
            write_probe=self.check.write_probe,
            stable=self.check.stable,
            probe_objectives={
                name: ProbeObjectives(
                    rto_s=None if o.rto_s is None else float(o.rto_s),
                    availability=None if o.availability is None else float(o.availability),
                )
                for name, o in self.check.probe_objectives.items()
            },
            level=None
            if (lv := self.check.level) is None
            else Level(lv.level, float(lv.respond_s), float(lv.recover_s)),
        )
