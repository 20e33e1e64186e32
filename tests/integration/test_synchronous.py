"""With synchronous replication, no acknowledged write is lost across kill and promote."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_drills

pytestmark = pytest.mark.postgres

SYNC = """
version: 1
name: sync-failover
lab: {kind: postgres-pair, synchronous: true}
targets:
  site-a: {lab: a}
  site-b: {lab: b}
probes:
  reads: {kind: postgres-read, dsn: "${lab.dsn}", interval: 20ms, timeout: 500ms}
  writes: {kind: postgres-write, dsn: "${lab.dsn}", interval: 10ms, timeout: 500ms,
           connections: 8}
service_probe: reads
write_probe: writes
steps:
  - wait: 1500ms
  - kill: site-a
  - promote: site-b
  - wait-until: reads
  - wait: 1s
"""


def test_synchronous_replication_loses_no_acknowledged_write(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "sync.yaml"
    scenario.write_text(SYNC)
    reports = tmp_path / "runs"
    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    m = record["measurements"]
    assert record["lab"]["replication"] == "synchronous"
    assert m["writes_acked"] > 50
    assert m["lost_writes"] == 0
    assert m["rpo_s"] == 0
    assert m["unexpected_writes"] == 0 and m["duplicated_writes"] == 0
