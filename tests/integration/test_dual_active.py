"""Dual-active sites behind a real HAProxy over real PostgreSQL: client-visible downtime,
lost orders, failback and split brain, measured through the load balancer."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import count_colour, screenshot
from tests.conftest import (
    assert_only_writes_acked_before_the_fault_lost,
    failover_bounds,
    run_drills,
    signal_drill_at,
)

pytestmark = [pytest.mark.postgres, pytest.mark.haproxy]

INTERVAL = 0.02


def _steps(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["kind"]: s for s in record["timeline"]}


def _history(run_record: Path) -> list[dict[str, Any]]:
    record = json.loads(run_record.read_text())
    lines = (run_record.parent / record["history"]).read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_site_failover(sandbox: Path, tmp_path: Path) -> None:
    reports = tmp_path / "runs"
    run = run_drills(
        ["run", "scenarios/site-failover.yaml", "--reports-dir", str(reports)],
        sandbox,
        reports,
        report=True,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    orders = record["probes"]["orders"]
    # Dual-active: both sites served orders before the fault; only B after it.
    before = orders["served_by"]["before_fault"]
    assert before["a"] > 10 and before["b"] > 10, before
    assert set(orders["served_by"]["after_fault"]) == {"b"}
    # Ground truth: no order can succeed between the loss of site A and B's promotion.
    low, high = failover_bounds(record, "site-down", INTERVAL)
    rto = record["measurements"]["rto_s"]
    assert low <= rto <= high, (rto, low, high)
    assert abs(orders["downtime_lower_s"] - rto) <= 2 * INTERVAL + 0.5
    m = record["measurements"]
    assert m["writes_acked"] > 150
    # Only orders site A acknowledged just before it was lost; none that B committed.
    fault_s = _steps(record)["site-down"]["start_s"]
    window = (fault_s - 1.0, fault_s + 0.05)
    assert_only_writes_acked_before_the_fault_lost(run.record_path, record, "orders", window, "a")
    assert record["split_brain"] == {"detected": False}
    assert record["verdicts"]["split_brain"]["verdict"] == "met"
    assert record["lab"]["kind"] == "dual-active" and record["lab"]["haproxy"]["port"] > 0
    _assert_run_report_shades_the_site_down(run.record_path, run.stdout, tmp_path)


def _assert_run_report_shades_the_site_down(record: Path, stdout: str, work: Path) -> None:
    """The run's own report, written after the drill: in Chromium, the site-down fault is
    shaded (#f2b84b at 25% over white) on its timeline chart."""
    page = record.with_suffix(".html")
    assert f"report: {page}" in stdout
    assert record.with_suffix(".md").exists() and record.with_suffix(".png").exists()
    pixels = screenshot(page, work, height=1600)
    shaded = count_colour(pixels, (252, 237, 210), within=0.03)
    assert shaded > 2000, f"no shaded fault on the run's timeline ({shaded} pixels)"


PAUSE = """
version: 1
name: dual-active-pause
lab: {kind: dual-active}
targets:
  db-a: {lab: a}
probes:
  orders:
    kind: http-write
    url: ${lab.url}/orders
    verify_dsn: ${lab.dsn}
    interval: 20ms
    timeout: 1s
service_probe: orders
write_probe: orders
steps:
  - wait: 1s
  - pause: db-a          # the primary both sites write to freezes
  - wait: 2s
  - resume: db-a
  - wait-until: orders
  - wait: 1s
"""


def test_client_visible_downtime_of_a_known_outage(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "pause.yaml"
    scenario.write_text(PAUSE)
    reports = tmp_path / "runs"
    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    steps = _steps(record)
    truth = steps["resume"]["end_s"] - steps["pause"]["end_s"]
    assert abs(truth - 2.0) < 0.05
    orders = record["probes"]["orders"]
    assert len(orders["outages"]) == 1, orders["outages"]
    # Orders in flight when the database froze complete once it resumes: they are late, not
    # lost. The service's statement timeout (1s) and the probe's (1s) bound the edges.
    tolerance = 2 * INTERVAL + 0.1
    assert abs(orders["downtime_lower_s"] - truth) <= tolerance, (orders, truth)
    assert abs(orders["downtime_s"] - truth) <= tolerance, (orders, truth)
    assert record["measurements"]["lost_writes"] == 0
    assert set(orders["served_by"]["before_fault"]) == {"a", "b"}


def test_site_failback_measures_the_second_disruption(sandbox: Path, tmp_path: Path) -> None:
    reports = tmp_path / "runs"
    run = run_drills(
        ["run", "scenarios/site-failback.yaml", "--reports-dir", str(reports)], sandbox, reports
    )
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    kinds = [d["kind"] for d in record["disruptions"]]
    assert kinds == ["site-down", "rejoin", "restart"]
    first, *later = record["disruptions"]
    assert first["downtime_s"] > 0.5  # the failover
    for disruption in later:  # measured, whatever they are
        assert disruption["downtime_s"] >= 0 and disruption["recovered_after_s"] is not None
    steps = _steps(record)
    low, high = failover_bounds(record, "site-down", INTERVAL)
    assert low <= record["measurements"]["rto_s"] <= high
    assert record["measurements"]["lost_writes"] == 0
    # Traffic returned to site A: orders served by A after its service was restarted.
    restarted = steps["restart"]["end_s"]
    started_ns = next(e for e in _history(run.record_path) if e["type"] == "clock")["mono_ns"]
    after = [
        e
        for e in _history(run.record_path)
        if e["type"] == "op"
        and e["probe"] == "orders"
        and e["outcome"] == "ok"
        and (e["invoke_ns"] - started_ns) / 1e9 > restarted
    ]
    sites = {e["tags"]["site"] for e in after}
    assert sites == {"a", "b"}, sites
    # A's service now commits to B (A's database is B's standby): one lineage only.
    assert {e["tags"]["db"] for e in after} == {"b"}
    assert record["split_brain"] == {"detected": False}


def test_split_brain_is_detected(sandbox: Path, tmp_path: Path) -> None:
    reports = tmp_path / "runs"
    run = run_drills(
        ["run", "scenarios/split-brain.yaml", "--reports-dir", str(reports)], sandbox, reports
    )
    assert run.returncode == 1, run.stderr + run.stdout
    record = run.record()
    assert record["verdict"] == "fail"
    assert record["verdicts"]["split_brain"]["verdict"] == "missed"
    brain = record["split_brain"]
    assert brain["detected"] is True
    assert set(brain["conflicting_ids"]) == {"a/1", "b/2"}
    assert all(len(ids) > 20 for ids in brain["conflicting_ids"].values())
    steps = _steps(record)
    # Both sides took orders from B's promotion until the drill ended.
    assert steps["promote"]["start_s"] <= brain["start_s"] <= steps["promote"]["end_s"] + 0.5
    assert brain["window_s"] > 3.0
    # The orders B took are not in A's database, which the final read reaches first.
    lost = set(record["measurements"]["lost_write_ids"])
    assert set(brain["conflicting_ids"]["b/2"]) <= lost
    assert "SPLIT BRAIN" in run.stdout


def test_sigterm_leaves_no_service_balancer_or_database(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(PAUSE.replace("  - wait: 2s\n", "  - wait: 60s\n"))
    reports = tmp_path / "runs"
    status, out, err = signal_drill_at(scenario, sandbox, reports, "step 3/6", signal.SIGTERM)
    assert status == 130, out + err
    assert "reverted: resume db-a" in err
    # The sandbox fixture checks that no process (HAProxy, services, PostgreSQL) is left
    # running with its files under the lab directory, and that the directory is gone.


ONE_SERVICE = """
version: 1
name: one-service-lost
lab: {kind: dual-active}
targets:
  service-a: {lab: a-service}
probes:
  orders:
    kind: http-write
    url: ${lab.url}/orders
    verify_url: ${lab.b.url}/orders   # every order looked up through the surviving service
    interval: 20ms
    timeout: 1s
service_probe: orders
write_probe: orders
steps:
  - wait: 1s
  - kill: service-a      # one service; its database stays the primary
  - wait: 2s
"""


def test_losing_one_service_is_absorbed_by_the_balancer(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "one-service.yaml"
    scenario.write_text(ONE_SERVICE)
    reports = tmp_path / "runs"
    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    orders = record["probes"]["orders"]
    # HAProxy retries a refused connection on the other site: clients see (almost) nothing.
    assert orders["downtime_s"] < 0.5, orders["outages"]
    assert set(orders["served_by"]["after_fault"]) == {"b"}
    m = record["measurements"]
    assert m["lost_writes"] == 0 and m["writes_acked"] > 100
    assert m["unexpected_writes"] == 0  # the service found exactly the orders acknowledged


ISOLATE = """
version: 1
name: site-isolated
lab: {kind: dual-active}
targets:
  db-b: {lab: b}
probes:
  orders:
    kind: http-write
    url: ${lab.url}/orders
    verify_dsn: ${lab.b.dsn}    # B is the primary after the drill
    interval: 20ms
    timeout: 1s
service_probe: orders
write_probe: orders
steps:
  - wait: 1s
  - site-isolate: a      # site A cut from clients and from site B, still running
  - wait: 1s
  - promote: db-b
  - wait-until: {probe: orders, timeout: 30s}
  - wait: 1s
"""


def test_an_isolated_site_is_failed_over_without_split_brain(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "isolate.yaml"
    scenario.write_text(ISOLATE)
    reports = tmp_path / "runs"
    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    low, high = failover_bounds(record, "site-isolate", INTERVAL)
    assert low <= record["measurements"]["rto_s"] <= high
    assert set(record["probes"]["orders"]["served_by"]["after_fault"]) == {"b"}
    assert record["split_brain"] == {"detected": False}  # A still runs, but no client reaches it
    assert "reverted: link lb-a up" in run.stderr
