"""Manual steps in real drills: acknowledged from a second process after a delay the test
chooses, by `drills ack`, automatically, or never (the drill fails and reverts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from drills.acks import Waiting, acknowledge, waiting_runs
from drills.operator import who
from tests.conftest import REPO, drills_cli, drills_env, run_drills, stopped_postgres

pytestmark = pytest.mark.postgres

PAUSED = """
version: 1
name: game-day-test
lab: {kind: postgres-pair}
targets:
  site-a: {lab: a}
probes:
  reads: {kind: postgres-read, dsn: "${lab.a.dsn}", interval: 20ms}
  writes: {kind: postgres-write, dsn: "${lab.a.dsn}", interval: 50ms}
service_probe: reads
write_probe: writes
level: 1
participants: [{name: ana, role: dba}]
steps:
  - wait: 300ms
  - pause: site-a
  - manual: {instruction: "Confirm site A hangs", role: dba, timeout: 60s, response: true}
  - resume: site-a
  - wait-until: reads
  - manual: {instruction: "Close the incident", role: manager, timeout: 60s}
  - manual: {instruction: "Write the report", role: support, timeout: 60s}
"""


def manual_facts(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [s["facts"]["manual"] for s in record["timeline"] if s["kind"] == "manual"]


def wait_for(state: Path, proc: subprocess.Popen[str], seen: int) -> Waiting:
    """The next manual step the drill waits at (bounded)."""
    give_up = time.monotonic() + 60
    while time.monotonic() < give_up and proc.poll() is None:
        waiting = waiting_runs(state)
        if waiting and waiting[0].step > seen:
            return waiting[0]
        time.sleep(0.005)
    raise AssertionError(f"the drill did not wait (exit {proc.poll()})")


def test_acknowledged_from_another_process_the_operator_time_is_measured(
    sandbox: Path, tmp_path: Path
) -> None:
    scenario, reports = tmp_path / "game.yaml", tmp_path / "runs"
    scenario.write_text(PAUSED)
    env = drills_env(sandbox)
    state = Path(env["DRILLS_STATE_DIR"])
    terminal, drills_terminal = os.openpty()  # the drill's standard input is a terminal
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "drills", "run", str(scenario)),
            *("--reports-dir", str(reports), "--participant", "bo:manager"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=drills_terminal,
        text=True,
        env=env,
        cwd=REPO,
    )
    os.close(drills_terminal)
    try:
        first = wait_for(state, proc, 0)
        seen_at = time.monotonic()
        delay = 1.5
        time.sleep(delay)
        waited = time.monotonic() - seen_at
        acknowledge(state, first.run_id, "ana", "site A confirmed hung")
        second = wait_for(state, proc, first.step)
        ack = drills_cli(["ack", "--note", "closed", "--as", "bo"], env, timeout=60)
        assert ack.returncode == 0, ack.stderr
        assert (
            ack.stdout.strip() == f"acknowledged in {second.run_id}: Close the incident (manager)"
        )
        wait_for(state, proc, second.step)
        os.write(terminal, b"report filed\n")  # Enter, with a note typed first
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
        os.close(terminal)
    assert proc.returncode == 0, err
    assert (
        "MANUAL (dba): Confirm site A hangs -- acknowledge: Enter here (a line typed first is "
        f"the note), or `drills ack --run {first.run_id}`"
    ) in err
    record = json.loads((reports / f"{first.run_id}.json").read_text())
    dba, manager, support = manual_facts(record)
    # The step began at most a poll (5 ms) before the test saw it wait.
    assert abs(dba["operator_time_s"] - waited) < 0.1, (dba, waited)
    assert (dba["by"], dba["via"], dba["note"], dba["role"]) == (
        "ana",
        "drills ack",
        "site A confirmed hung",
        "dba",
    )
    assert (manager["by"], manager["note"], manager["role"]) == ("bo", "closed", "manager")
    assert dba["acknowledged_at"] < manager["acknowledged_at"] and dba["response"] is True
    assert (support["via"], support["note"], support["by"]) == ("terminal", "report filed", who())
    assert record["participants"] == [
        {"name": "ana", "role": "dba"},
        {"name": "bo", "role": "manager"},
    ]
    assert "participants: ana (dba), bo (manager)" in out
    seconds = f"{dba['operator_time_s']:.3f}s"
    assert f"  3. dba: ana (drills ack) after {seconds}: site A confirmed hung" in out
    assert "  6. manager: bo (drills ack) after " in out
    # The primary was frozen while the DBA decided: the RTO includes the operator's time.
    assert record["measurements"]["rto_s"] >= dba["operator_time_s"]
    # Level 1 (the defaults: respond within 15 min, recover within 1 h): the response is the
    # DBA's acknowledgement, counted from the pause; the recovery is the RTO.
    steps = {s["index"]: s for s in record["timeline"]}
    responded = steps[2]["start_s"] + dba["operator_time_s"] - steps[1]["start_s"]
    verdicts = record["verdicts"]
    assert verdicts["response"]["verdict"] == verdicts["recovery"]["verdict"] == "met"
    assert abs(verdicts["response"]["measured"] - responded) < 0.001
    assert verdicts["recovery"]["measured"] == record["measurements"]["rto_s"]
    assert record["check"]["level"] == {"level": 1, "respond_s": 900.0, "recover_s": 3600.0}
    assert "| Response (level 1)" in out


def test_an_unacknowledged_manual_step_fails_the_drill_and_reverts(
    sandbox: Path, tmp_path: Path
) -> None:
    scenario, reports = tmp_path / "late.yaml", tmp_path / "runs"
    scenario.write_text(PAUSED.replace("role: dba, timeout: 60s", "role: dba, timeout: 1s"))
    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 2, run.stderr
    assert "manual (dba): Confirm site A hangs) failed: not acknowledged within 1s" in run.stdout
    record = json.loads(next(reports.glob("*.json")).read_text())
    assert record["verdict"] == "error"
    [dba] = manual_facts(record)
    assert (dba["acknowledged"], dba["operator_time_s"]) == (False, None)
    assert stopped_postgres() == []  # the pause was reverted


def test_the_shipped_game_day_runs_unattended_with_auto_ack(sandbox: Path, tmp_path: Path) -> None:
    reports = tmp_path / "runs"
    args = ["run", str(REPO / "scenarios" / "game-day.yaml"), "--reports-dir", str(reports)]
    run = run_drills([*args, "--auto-ack", "1s"], sandbox, reports)
    assert run.returncode == 0, run.stderr
    record = json.loads(next(reports.glob("*.json")).read_text())
    facts = manual_facts(record)
    assert [f["role"] for f in facts] == ["dba", "support", "manager"]
    assert {(f["by"], f["via"]) for f in facts} == {("auto", "auto")}
    assert all(abs(f["operator_time_s"] - 1.0) < 0.05 for f in facts), facts
    assert record["measurements"]["rto_s"] > 1.0  # the DBA's second before the promote
    response = record["verdicts"]["response"]  # level 1: from the kill to the DBA's ack
    assert response["verdict"] == "met" and 1.0 <= response["measured"] < 1.1
