"""Ground truth: outages whose true length the test controls, measured within tolerance."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_drills

pytestmark = pytest.mark.postgres

PAUSE = """
version: 1
name: pause-ground-truth
lab: {{kind: postgres-pair}}
targets:
  site-a: {{lab: a}}
probes:
  reads: {{kind: postgres-read, dsn: "${{lab.a.dsn}}", interval: {interval}, timeout: 500ms}}
  writes: {{kind: postgres-write, dsn: "${{lab.a.dsn}}", interval: {interval}, timeout: 500ms}}
service_probe: reads
write_probe: writes
steps:
  - wait: 1s
  - pause: site-a
  - wait: {outage}
  - resume: site-a
  - wait-until: reads
  - wait: 1s
"""


@pytest.mark.parametrize(("interval_ms", "outage_s"), [(20, 2.0)])
def test_pause_of_known_length(
    sandbox: Path, tmp_path: Path, interval_ms: int, outage_s: float
) -> None:
    scenario = tmp_path / "pause.yaml"
    scenario.write_text(PAUSE.format(interval=f"{interval_ms}ms", outage=f"{outage_s}s"))
    reports = tmp_path / "runs"
    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    steps = {s["kind"]: s for s in record["timeline"]}
    # True outage: from the moment every process was stopped to the moment all were resumed.
    truth = steps["resume"]["end_s"] - steps["pause"]["end_s"]
    assert abs(truth - outage_s) < 0.05
    reads = record["probes"]["reads"]
    interval = interval_ms / 1000
    tolerance = 2 * interval + 0.05
    assert len(reads["outages"]) == 1, reads["outages"]
    assert abs(reads["downtime_s"] - truth) <= tolerance, (reads["downtime_s"], truth)
    assert abs(reads["downtime_lower_s"] - truth) <= tolerance, (reads["downtime_lower_s"], truth)
    assert abs(record["measurements"]["rto_s"] - truth) <= tolerance
    # A frozen primary loses nothing: writes in flight are unknown, and none acked is missing.
    assert record["measurements"]["lost_writes"] == 0
    assert record["probes"]["writes"]["unknown"] + record["probes"]["writes"]["fail"] > 0
