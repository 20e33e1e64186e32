"""A harness killed with SIGKILL leaves its faults in place; `drills recover` undoes them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import (
    drills_cli,
    drills_env,
    leftover_processes,
    sigkill_drill_at,
    stopped_postgres,
)

pytestmark = pytest.mark.postgres

PAUSED = """
version: 1
name: harness-dies
lab: {kind: postgres-pair}
targets: {site-a: {lab: a}}
probes:
  reads: {kind: postgres-read, dsn: "${lab.a.dsn}", interval: 50ms}
  writes: {kind: postgres-write, dsn: "${lab.a.dsn}", interval: 50ms}
service_probe: reads
write_probe: writes
steps:
  - wait: 500ms
  - pause: site-a
  - wait: 60s
"""


def test_sigkill_during_pause_then_recover(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "paused.yaml"
    scenario.write_text(PAUSED)
    env = drills_env(sandbox) | {"DRILLS_STATE_DIR": str(tmp_path / "state")}
    reports = tmp_path / "runs"
    sigkill_drill_at(scenario, env, reports, "step 3/3")
    # What the dead harness left: a frozen primary and a lab.
    assert stopped_postgres(), "the primary should still be stopped"
    assert leftover_processes(sandbox)
    # A new drill refuses to start until it is recovered.
    refused = drills_cli(["run", "scenarios/db-failover.yaml", "--reports-dir", str(reports)], env)
    assert refused.returncode == 2
    assert "run `drills recover` first" in refused.stderr
    # An operator's shell in the lab's directory is not a lab server: recover leaves it be.
    lab_dir = next(sandbox.glob("drills-lab-*"))
    shell = subprocess.Popen(["sleep", "120"], cwd=lab_dir)
    try:
        recovered = drills_cli(["recover"], env)
        assert shell.poll() is None, "recover killed a process that is not a lab server"
    finally:
        shell.kill()
        shell.wait()
    assert recovered.returncode == 0, recovered.stderr
    assert "resumed site-a" in recovered.stdout and "removed lab" in recovered.stdout
    [record] = reports.glob("*.json")  # the dead drill's record, written by recover
    assert f"wrote {record} (verdict crashed, unsigned)" in recovered.stdout
    assert stopped_postgres() == []
    assert leftover_processes(sandbox) == []
    assert list(sandbox.iterdir()) == []
    assert drills_cli(["recover"], env).stdout == "nothing to recover\n"
