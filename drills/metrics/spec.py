"""The metrics drills exports: name, type, labels and help of each (docs/metrics.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Spec:
    name: str
    kind: Literal["gauge", "counter"]
    labels: tuple[str, ...]
    help: str
    source: Literal["run", "exporter"] = "run"


_S = ("scenario",)
_P = ("scenario", "probe")

# A table, one entry per metric, in the order they are exposed.
SPECS: tuple[Spec, ...] = (
    # One run (registry_for, push, textfile; the exporter gives the latest run per scenario).
    Spec("drills_verdict", "gauge", ("scenario", "verdict"), "Verdict of the run, one-hot."),
    Spec(
        "drills_objective_met",
        "gauge",
        ("scenario", "objective"),
        "1 objective met, 0 missed; absent when unknown.",
    ),
    Spec(
        "drills_probe_objective_met",
        "gauge",
        ("scenario", "probe", "objective"),
        "A probe's own objective (probes.NAME.objectives): 1 met, 0 missed; absent when unknown.",
    ),
    Spec("drills_rto_seconds", "gauge", _S, "Measured recovery time (RTO)."),
    Spec(
        "drills_probe_rto_seconds",
        "gauge",
        _P,
        "Measured RTO of a probe with an RTO objective of its own.",
    ),
    Spec("drills_rpo_seconds", "gauge", _S, "Measured data-loss window (RPO)."),
    Spec("drills_downtime_seconds", "gauge", _S, "Service probe downtime, upper bound."),
    Spec("drills_probe_downtime_seconds", "gauge", _P, "Downtime of each probe, upper bound."),
    Spec("drills_lost_writes", "gauge", _S, "Acknowledged writes missing after recovery."),
    Spec(
        "drills_split_brain_writes",
        "gauge",
        _S,
        "Writes two databases acknowledged at once (0: none); absent when not judged.",
    ),
    Spec(
        "drills_response_seconds",
        "gauge",
        _S,
        "Incident response: first fault to the acknowledged response step; absent without a level.",
    ),
    Spec("drills_availability_ratio", "gauge", _S, "Availability over the drill window."),
    Spec(
        "drills_probe_availability_ratio",
        "gauge",
        _P,
        "Availability over the drill window of a probe with an availability objective.",
    ),
    Spec("drills_error_budget_seconds", "gauge", _S, "Quarterly error budget of the objective."),
    Spec(
        "drills_error_budget_used_ratio",
        "gauge",
        _S,
        "Downtime of the run as a share of the quarterly error budget.",
    ),
    Spec("drills_objective_rto_seconds", "gauge", _S, "RTO objective."),
    Spec("drills_objective_rpo_seconds", "gauge", _S, "RPO objective."),
    Spec("drills_objective_availability_ratio", "gauge", _S, "Availability objective."),
    Spec(
        "drills_probe_interval_seconds",
        "gauge",
        _S,
        "Service probe interval: the resolution of RTO and downtime.",
    ),
    Spec(
        "drills_write_interval_seconds",
        "gauge",
        _S,
        "Write probe interval: the resolution of RPO.",
    ),
    Spec("drills_run_start_timestamp_seconds", "gauge", _S, "Start of the run, Unix time."),
    Spec("drills_run_end_timestamp_seconds", "gauge", _S, "End of the run, Unix time."),
    Spec(
        "drills_run_info",
        "gauge",
        ("scenario", "run_id", "drills_version"),
        "The run record the other metrics come from; always 1.",
    ),
    Spec(
        "drills_last_success_timestamp_seconds",
        "gauge",
        _S,
        "End of the latest passing run, Unix time; absent if none is known.",
    ),
    Spec(
        "drills_chain_head_sequence",
        "gauge",
        (),
        "Sequence number of the newest record in the records directory's chain (the run's own "
        "record when pushed): anchor it outside, check with drills verify --expect-head.",
    ),
    # The exporter only: the records directory and the rehearsal schedule.
    Spec("drills_required", "gauge", _S, "1 for each scenario the schedule requires.", "exporter"),
    Spec(
        "drills_requirement_state",
        "gauge",
        ("scenario", "state"),
        "State of the requirement this quarter (done, upcoming, due, overdue), one-hot.",
        "exporter",
    ),
    Spec(
        "drills_requirement_deadline_timestamp_seconds",
        "gauge",
        _S,
        "End of the requirement's window this quarter, Unix time.",
        "exporter",
    ),
    Spec(
        "drills_coverage_ratio",
        "gauge",
        (),
        "Required drills done this quarter / required drills.",
        "exporter",
    ),
    Spec(
        "drills_quarter_runs",
        "gauge",
        _S,
        "Runs started this quarter, per scenario seen or required.",
        "exporter",
    ),
    Spec(
        "drills_quarter_start_timestamp_seconds",
        "gauge",
        (),
        "Start of the current quarter (UTC), Unix time.",
        "exporter",
    ),
    Spec(
        "drills_quarter_end_timestamp_seconds",
        "gauge",
        (),
        "End of the current quarter (UTC), Unix time.",
        "exporter",
    ),
    Spec(
        "drills_seconds_since_last_success",
        "gauge",
        _S,
        "Seconds since the latest passing run of a required drill ended; absent if none.",
        "exporter",
    ),
    Spec("drills_records", "gauge", (), "Run records read on this scrape.", "exporter"),
    Spec(
        "drills_records_left_out",
        "gauge",
        (),
        "Records left out because they fail verification (chain, signature); see the log.",
        "exporter",
    ),
    Spec(
        "drills_exporter_errors_total",
        "counter",
        (),
        "Unreadable records or schedule, counted once per scrape that met them.",
        "exporter",
    ),
    Spec(
        "drills_exporter_scrape_error",
        "gauge",
        (),
        "1 if this scrape could not read a record or the schedule.",
        "exporter",
    ),
    Spec(
        "drills_exporter_scrape_duration_seconds",
        "gauge",
        (),
        "Time spent reading records and schedule for this scrape.",
        "exporter",
    ),
)
METRICS: dict[str, Spec] = {spec.name: spec for spec in SPECS}
