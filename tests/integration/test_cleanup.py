"""Every exit path reverts faults and removes the lab: signals, failing steps, errors."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.conftest import leftover_processes, run_drills, signal_drill_at, stopped_postgres

pytestmark = pytest.mark.postgres

LONG_PAUSE = """
version: 1
name: long-pause
lab: {kind: postgres-pair}
targets:
  site-a: {lab: a}
probes:
  reads: {kind: postgres-read, dsn: "${lab.a.dsn}", interval: 50ms}
  writes: {kind: postgres-write, dsn: "${lab.a.dsn}", interval: 50ms}
service_probe: reads
write_probe: writes
steps:
  - wait: 500ms
  - pause: site-a
  - wait: 60s
  - resume: site-a
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_pause_reverts_and_removes_lab(
    sandbox: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(LONG_PAUSE)
    reports = tmp_path / "runs"

    def paused() -> None:
        assert stopped_postgres(), "the pause should have stopped the primary"

    code, out, err = signal_drill_at(scenario, sandbox, reports, "step 3/4", sig, paused)
    assert code == 130, err
    assert stopped_postgres() == []
    assert leftover_processes(sandbox) == []
    record = json.loads(next(reports.glob("*.json")).read_text())
    assert record["verdict"] == "error"
    assert sig.name in record["error"]
    assert "verdict: ERROR" in out


def test_failing_step_reverts_pause_and_removes_lab(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "fail.yaml"
    scenario.write_text(
        LONG_PAUSE.replace("  - wait: 60s\n", "  - exec: 'echo boom >&2; exit 3'\n")
    )
    reports = tmp_path / "runs"
    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 2, run.stderr
    assert stopped_postgres() == []
    record = run.record()
    assert record["verdict"] == "error"
    assert "exec exited 3" in record["error"] and "boom" in record["error"]
    failed = [s for s in record["timeline"] if not s["ok"]]
    assert [s["kind"] for s in failed] == ["exec"]


def test_lab_failure_is_exit_2_and_leaves_nothing(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "bad-setting.yaml"
    text = LONG_PAUSE.replace(
        "lab: {kind: postgres-pair}", "lab: {kind: postgres-pair, settings: {no_such_setting: 1}}"
    )
    scenario.write_text(text)
    reports = tmp_path / "runs"
    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 2
    assert "no_such_setting" in run.stdout + run.stderr


def test_stop_condition_aborts_and_reverts(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "abort.yaml"
    text = LONG_PAUSE.replace(
        "service_probe: reads\n",
        "service_probe: reads\nabort_if:\n  - {probe: reads, down_for: 1s}\n",
    )
    scenario.write_text(text)
    reports = tmp_path / "runs"
    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 3, run.stderr
    assert stopped_postgres() == []
    record = run.record()
    assert record["verdict"] == "aborted"
    assert record["aborted"] == "reads down for more than 1s"
    assert "verdict: ABORTED: reads down for more than 1s" in run.stdout
    # It stopped soon after the condition held, not after the 60 s wait.
    downtime = record["probes"]["reads"]["downtime_s"]
    assert 1.0 <= downtime < 2.5, downtime
    assert "reverted: resume site-a" in run.stderr


def test_max_downtime_guard(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(LONG_PAUSE)
    reports = tmp_path / "runs"
    run = run_drills(
        ["run", str(scenario), "--reports-dir", str(reports), "--max-downtime", "800ms"],
        sandbox,
        reports,
    )
    assert run.returncode == 3, run.stderr
    assert run.record()["aborted"] == "--max-downtime: reads down over 0.8s"
    assert stopped_postgres() == []
