"""Metrics from run records: absent when not measured, one-hot verdicts, atomic textfiles, an
exporter that survives broken records. No servers."""

from __future__ import annotations

import importlib
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from drills import metrics
from drills.errors import DrillsError
from drills.metrics import RecordsCollector, registry_for, write_textfile
from drills.metrics.samples import run_samples
from drills.records import RunRecord, load_record, write_chained
from drills.records.model import ObjectiveVerdict
from drills.verdicts import Verdict
from tests import paths
from tests.paths import REPO

SCHEDULE = REPO / "scenarios" / "schedule.yaml"


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def synthetic_record(
    scenario: str,
    verdict: str,
    started: datetime,
    *,
    rto_s: float | None = 2.5,
    rpo_s: float | None = 0.0,
    lost_writes: int | None = 0,
) -> dict[str, Any]:
    """A run record with the keys of docs/records.md that metrics read."""
    missed = verdict == "fail"
    stamp = started.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    def judged(name: str, objective: float, measured: float | None) -> dict[str, Any]:
        state = "unknown" if measured is None else ("missed" if missed and name == "rto" else "met")
        return {"verdict": state, "objective": objective, "measured": measured, "reason": ""}

    return {
        "schema_version": 1,
        "run_id": f"{stamp}-{scenario}",
        "scenario": {
            "name": scenario,
            "file": f"scenarios/{scenario}.yaml",
            "sha256": "0" * 64,
            "description": "synthetic",
        },
        "started_at": iso(started),
        "finished_at": iso(started + timedelta(seconds=12)),
        "verdict": verdict,
        "error": "lab failed" if verdict == "error" else None,
        "objectives": {"rto_s": 30.0, "rpo_s": 0.0, "availability": 0.9999},
        "check": {"service_probe": "reads", "write_probe": "writes", "stable": 3},
        "measurements": {
            "rto_s": rto_s,
            "rpo_s": rpo_s,
            "downtime_s": 2.6,
            "downtime_lower_s": 2.58,
            "availability": 0.78,
            "error_budget_s": 794.88,
            "error_budget_share": 2.6 / 794.88,
            "lost_writes": lost_writes,
            "probe_interval_s": 0.02,
            "write_interval_s": 0.02 if lost_writes is not None else None,
        },
        "verdicts": {
            "rto": judged("rto", 30.0, rto_s),
            "rpo": judged("rpo", 0.0, rpo_s),
            "availability": judged("availability", 0.9999, 0.78),
        },
        "host": {"drills_version": "0.1.0"},
        "history": f"{stamp}-{scenario}.history.jsonl",
    }


def typed(record: dict[str, Any]) -> RunRecord:
    return RunRecord.model_validate(record)


def write_record(directory: Path, record: dict[str, Any]) -> Path:
    """A record as drills writes it: chained (the exporter leaves out what fails verification)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{record['run_id']}.json"
    write_chained(path, record)
    return path


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of `registry`, as parsed back from the text format."""
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def names(registry: CollectorRegistry) -> set[str]:
    return {name for name, _ in samples(registry)}


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found[(name, frozenset(labels.items()))]


NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # month 2 of 2026-Q4


def test_registry_has_every_measurement_of_a_complete_record() -> None:
    record = synthetic_record("db-failover", "pass", NOW - timedelta(hours=1))
    found = samples(registry_for(typed(record)))
    assert value(found, "drills_rto_seconds", scenario="db-failover") == 2.5
    assert value(found, "drills_rpo_seconds", scenario="db-failover") == 0.0
    assert value(found, "drills_lost_writes", scenario="db-failover") == 0.0
    assert value(found, "drills_objective_availability_ratio", scenario="db-failover") == 0.9999
    assert value(found, "drills_objective_met", scenario="db-failover", objective="rto") == 1.0
    end = (NOW - timedelta(hours=1) + timedelta(seconds=12)).timestamp()
    assert value(found, "drills_run_end_timestamp_seconds", scenario="db-failover") == end
    assert value(found, "drills_last_success_timestamp_seconds", scenario="db-failover") == end
    assert names(registry_for(typed(record))) <= set(metrics.METRICS)


def test_null_measurements_are_absent_not_zero() -> None:
    record = synthetic_record(
        "primary-hang", "error", NOW, rto_s=None, rpo_s=None, lost_writes=None
    )
    found = names(registry_for(typed(record)))
    for absent in (
        "drills_rto_seconds",
        "drills_rpo_seconds",
        "drills_lost_writes",
        "drills_write_interval_seconds",
    ):
        assert absent not in found
    assert "drills_downtime_seconds" in found
    # unknown verdicts: no met/missed sample for them
    objectives = {
        dict(labels)["objective"]
        for name, labels in samples(registry_for(typed(record)))
        if name == "drills_objective_met"
    }
    assert objectives == {"availability"}


def test_verdict_is_one_hot_and_does_not_stick() -> None:
    verdicts = ("pass", "fail", "error", "aborted", "crashed")
    for verdict in verdicts:
        found = samples(registry_for(typed(synthetic_record("db-failover", verdict, NOW))))
        hot = {
            dict(labels)["verdict"]: v
            for (name, labels), v in found.items()
            if name == "drills_verdict"
        }
        assert hot == {v: (1.0 if v == verdict else 0.0) for v in verdicts}


def test_missed_objective_is_zero() -> None:
    found = samples(registry_for(typed(synthetic_record("db-failover", "fail", NOW))))
    assert value(found, "drills_objective_met", scenario="db-failover", objective="rto") == 0.0
    assert value(found, "drills_objective_met", scenario="db-failover", objective="rpo") == 1.0


def test_last_success_only_when_passed_or_known() -> None:
    failed = synthetic_record("db-failover", "fail", NOW)
    assert "drills_last_success_timestamp_seconds" not in names(registry_for(typed(failed)))
    earlier = (NOW - timedelta(days=3)).timestamp()
    found = samples(registry_for(typed(failed), last_success=earlier))
    assert value(found, "drills_last_success_timestamp_seconds", scenario="db-failover") == earlier


def test_last_success_in_directory(tmp_path: Path) -> None:
    passed = synthetic_record("db-failover", "pass", NOW - timedelta(days=2))
    write_record(tmp_path, passed)
    write_record(tmp_path, synthetic_record("db-failover", "fail", NOW))
    write_record(tmp_path, synthetic_record("primary-hang", "pass", NOW))
    expected = (NOW - timedelta(days=2) + timedelta(seconds=12)).timestamp()
    assert metrics.last_success_in(tmp_path, "db-failover") == expected
    assert metrics.last_success_in(tmp_path, "replication-lag") is None


def test_textfile_is_written_atomically_and_parses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "textfile" / "drills-db-failover.prom"
    write_textfile(typed(synthetic_record("db-failover", "pass", NOW)), path)
    families = {f.name: f for f in text_string_to_metric_families(path.read_text())}
    assert families["drills_rto_seconds"].samples[0].value == 2.5
    assert families["drills_verdict"].type == "gauge"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left

    # The new file appears by rename over the old one: a reader never sees a partial file.
    renames: list[tuple[str, str]] = []
    real_replace = os.replace

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        renames.append((os.fspath(src), os.fspath(dst)))
        assert Path(dst).read_text().startswith("# HELP")  # the old file, complete
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    write_textfile(typed(synthetic_record("db-failover", "fail", NOW)), path)
    assert len(renames) == 1 and renames[0][1] == str(path)
    assert Path(renames[0][0]).parent == path.parent
    families = {f.name: f for f in text_string_to_metric_families(path.read_text())}
    fail = [s for s in families["drills_verdict"].samples if s.labels["verdict"] == "fail"]
    assert fail[0].value == 1.0


def test_textfile_must_end_in_prom(tmp_path: Path) -> None:
    with pytest.raises(DrillsError, match=r"\*\.prom"):
        write_textfile(typed(synthetic_record("db-failover", "pass", NOW)), tmp_path / "drills.txt")


def test_after_drill_without_a_pushgateway_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.PUSHGATEWAY_ENV, raising=False)
    assert metrics.after_drill(typed(synthetic_record("db-failover", "pass", NOW)), None) is None


def test_push_errors_are_one_line_drills_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(metrics.PUSHGATEWAY_ENV, "http://127.0.0.1:1")  # nothing listens on 1
    with pytest.raises(DrillsError, match=r"^cannot push metrics to http://127.0.0.1:1: ") as exc:
        metrics.after_drill(typed(synthetic_record("db-failover", "pass", NOW)), None)
    assert "\n" not in str(exc.value)
    with pytest.raises(DrillsError, match="http or https"):
        metrics.push(typed(synthetic_record("db-failover", "pass", NOW)), "ftp://127.0.0.1:1")


def exporter_samples(
    reports: Path, now: datetime = NOW
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry()
    registry.register(RecordsCollector(reports, SCHEDULE, now=lambda: now))
    return samples(registry)


def test_exporter_latest_run_per_scenario_and_schedule(tmp_path: Path) -> None:
    write_record(tmp_path, synthetic_record("replication-lag", "fail", NOW - timedelta(days=5)))
    write_record(tmp_path, synthetic_record("replication-lag", "pass", NOW - timedelta(days=1)))
    write_record(tmp_path, synthetic_record("primary-hang", "fail", NOW - timedelta(hours=2)))
    found = exporter_samples(tmp_path)
    assert value(found, "drills_records") == 3
    assert value(found, "drills_verdict", scenario="replication-lag", verdict="pass") == 1
    assert value(found, "drills_verdict", scenario="primary-hang", verdict="fail") == 1
    assert value(found, "drills_coverage_ratio") == 1 / 9  # replication-lag of 9 required
    state = {
        (dict(labels)["scenario"], dict(labels)["state"]): v
        for (name, labels), v in found.items()
        if name == "drills_requirement_state"
    }
    # 2026-11-23 is in month 2 of Q4: month 1 closed, month 2 open, month 3 not yet
    assert state[("db-failover", "overdue")] == 1
    assert state[("network-partition", "due")] == 1
    assert state[("primary-hang", "upcoming")] == 1
    assert state[("replication-lag", "done")] == 1
    assert state[("operator-error", "overdue")] == state[("ransomware", "due")] == 1
    assert state[("intrusion", "upcoming")] == 1
    assert sum(state.values()) == 9
    assert value(found, "drills_required", scenario="db-failover") == 1
    since = value(found, "drills_seconds_since_last_success", scenario="replication-lag")
    assert since == pytest.approx(timedelta(days=1).total_seconds() - 12)
    assert ("drills_seconds_since_last_success", frozenset({("scenario", "primary-hang")})) not in (
        found
    )
    assert value(found, "drills_quarter_runs", scenario="replication-lag") == 2
    assert value(found, "drills_quarter_runs", scenario="db-failover") == 0
    assert value(found, "drills_exporter_scrape_error") == 0


def test_broken_record_does_not_crash_the_exporter(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_record(tmp_path, synthetic_record("replication-lag", "pass", NOW - timedelta(days=1)))
    (tmp_path / "20261122T000000Z-broken.json").write_text("{not json")
    lacking = synthetic_record("primary-hang", "pass", NOW)
    del lacking["started_at"]
    write_record(tmp_path, lacking)
    registry = CollectorRegistry()
    registry.register(RecordsCollector(tmp_path, SCHEDULE, now=lambda: NOW))
    with caplog.at_level(logging.WARNING, logger="drills.metrics"):
        first = samples(registry)
        second = samples(registry)
    assert value(first, "drills_records") == 1
    assert value(first, "drills_verdict", scenario="replication-lag", verdict="pass") == 1
    assert value(first, "drills_exporter_scrape_error") == 1
    assert value(first, "drills_exporter_errors_total") == 2
    assert value(second, "drills_exporter_errors_total") == 4
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # one line per broken file, not one per scrape
    assert any("broken.json" in line and "not JSON" in line for line in lines)
    assert any("started_at" in line for line in lines)


def test_exporter_without_records_or_schedule(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    registry.register(RecordsCollector(tmp_path / "missing", None, now=lambda: NOW))
    found = samples(registry)
    assert value(found, "drills_records") == 0
    assert "drills_coverage_ratio" not in {name for name, _ in found}


def test_every_metric_is_documented() -> None:
    text = (REPO / "docs" / "metrics.md").read_text()
    missing = [name for name in metrics.METRICS if f"`{name}`" not in text]
    assert missing == []


def test_the_exporter_reads_the_schedule_once_and_again_only_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from drills.metrics import exporter

    schedule = tmp_path / "schedule.yaml"
    schedule.write_text(SCHEDULE.read_text())
    reads: list[Path] = []
    real = exporter.load_schedule

    def counted(path: Path) -> Any:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(exporter, "load_schedule", counted)
    records = tmp_path / "runs"
    records.mkdir()
    registry = CollectorRegistry()
    registry.register(RecordsCollector(records, schedule, now=lambda: NOW))
    for _ in range(3):
        assert value(samples(registry), "drills_required", scenario="db-failover") == 1
    assert len(reads) == 1  # not once per scrape
    schedule.write_text("version: 1\nrequired:\n  - scenario: only-this\n")
    os.utime(schedule, ns=(1, 1))  # a new modification time, whatever the clock's resolution
    found = samples(registry)
    assert value(found, "drills_required", scenario="only-this") == 1
    assert ("drills_required", frozenset({("scenario", "db-failover")})) not in found
    samples(registry)
    assert len(reads) == 2
    schedule.write_text("version: 1\nrequired: [{scenario: x, cadence: nonsense}]\n")
    os.utime(schedule, ns=(2, 2))
    broken = samples(registry), samples(registry)
    assert all(value(found, "drills_exporter_scrape_error") == 1 for found in broken)
    assert len(reads) == 3  # an invalid schedule is not parsed again at every scrape either


def test_the_chain_head_is_published_with_each_run(tmp_path: Path) -> None:
    first = write_record(tmp_path, synthetic_record("db-failover", "pass", NOW))
    second = write_record(tmp_path, synthetic_record("db-failover", "fail", NOW + timedelta(1)))
    assert value(samples(registry_for(load_record(second))), "drills_chain_head_sequence") == 2
    assert value(samples(registry_for(load_record(first))), "drills_chain_head_sequence") == 1
    unchained = samples(registry_for(typed(synthetic_record("db-failover", "pass", NOW))))
    assert "drills_chain_head_sequence" not in {name for name, _ in unchained}


def test_the_chain_head_is_pushed_in_the_runs_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pushed: list[tuple[dict[str, str], CollectorRegistry]] = []

    def fake_push(url: str, **kwargs: Any) -> None:
        pushed.append((kwargs["grouping_key"], kwargs["registry"]))

    module = importlib.import_module("drills.metrics.push")  # `metrics.push` is the function
    monkeypatch.setattr(module, "push_to_gateway", fake_push)
    path = write_record(tmp_path, synthetic_record("db-failover", "fail", NOW))
    metrics.push(load_record(path), "http://127.0.0.1:9")
    [(group, registry)] = pushed
    assert group == {"scenario": "db-failover"}
    assert value(samples(registry), "drills_chain_head_sequence") == 1


def test_an_incident_levels_response_and_recovery_are_exported() -> None:
    record = load_record(paths.DATA / "records" / "20261123T200100Z-simple-pass.json")
    verdicts = record.verdicts | {
        "response": ObjectiveVerdict(verdict=Verdict.MET, objective=900, measured=41.5),
        "recovery": ObjectiveVerdict(verdict=Verdict.MISSED, objective=1, measured=3.2),
    }
    found = run_samples(record.model_copy(update={"verdicts": verdicts}))
    labels = {"scenario": record.scenario.name}
    assert ("drills_response_seconds", 41.5, labels) in found
    assert ("drills_objective_met", 1.0, labels | {"objective": "response"}) in found
    assert ("drills_objective_met", 0.0, labels | {"objective": "recovery"}) in found
