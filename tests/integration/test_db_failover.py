"""The db-failover drill end to end against real PostgreSQL, through the CLI a user runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, drills_env, run_drills

pytestmark = pytest.mark.postgres


def test_db_failover_drill(sandbox: Path, tmp_path: Path) -> None:
    reports = tmp_path / "runs"
    run = run_drills(
        ["run", "scenarios/db-failover.yaml", "--reports-dir", str(reports), "--no-live"],
        sandbox,
        reports,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    assert "verdict: PASS" in run.stdout
    record = run.record()
    m = record["measurements"]
    assert record["verdict"] == "pass"
    assert record["scenario"]["name"] == "db-failover"
    assert len(record["scenario"]["sha256"]) == 64
    # postgres-write tags each write with its lineage (server, timeline): split brain is judged.
    assert set(record["verdicts"]) == {"rto", "rpo", "availability", "split_brain"}
    assert record["split_brain"] == {"detected": False}
    # The scenario kills site A and waits 1 s before promoting site B: the primary is dead by
    # the end of `kill`, and the service cannot be back before `promote` starts. The end of
    # `promote` is no bound: pg_promote(true, ...) polls every 100 ms, so the promotion can be
    # done up to 100 ms before the step returns.
    interval = m["probe_interval_s"]
    assert interval == 0.02
    kill = next(s for s in record["timeline"] if s["kind"] == "kill")
    promote = next(s for s in record["timeline"] if s["kind"] == "promote")
    floor = promote["start_s"] - kill["end_s"]
    assert m["downtime_lower_s"] >= floor - 2 * interval - 0.05
    assert m["downtime_s"] >= m["downtime_lower_s"]
    assert m["downtime_s"] - m["downtime_lower_s"] <= 3 * interval
    assert floor - 0.1 <= m["rto_s"] <= floor + 5
    assert 0 < m["availability"] < 1
    assert m["writes_acked"] > 100
    assert m["lost_writes"] >= 0 and m["rpo_s"] >= 0
    assert record["probes"]["reads"]["recovered_s"] is not None
    assert record["phases_s"]["setup"] > 0 and record["phases_s"]["teardown"] > 0
    history = reports / record["history"]
    assert history.exists()
    import json

    acked = [json.loads(line) for line in history.read_text().splitlines()]
    lineages = [
        (e["tags"]["db"], int(e["tags"]["timeline"]))
        for e in sorted(acked, key=lambda e: e.get("complete_ns", 0))
        if e["type"] == "op" and e["probe"] == "writes" and e["outcome"] == "ok" and e["tags"]
    ]
    distinct = list(dict.fromkeys(lineages))
    assert len(distinct) == 2, distinct  # site A's primary, then site B's promoted standby
    (old_db, old_timeline), (new_db, new_timeline) = distinct
    assert old_db != new_db and new_timeline > old_timeline
    assert old_db.split("@")[0] == new_db.split("@")[0]  # one cluster: the same system id

    # The checker is a pure function of the history: re-running it gives the same figures.
    again = subprocess.run(
        [sys.executable, "-m", "drills", "check", str(run.record_path), "--json"],
        capture_output=True,
        text=True,
        env=drills_env(sandbox),
        cwd=REPO,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr
    rechecked = json.loads(again.stdout)["measurements"]
    for key in ("rto_s", "rpo_s", "downtime_s", "lost_writes", "writes_acked", "availability"):
        assert rechecked[key] == m[key], key
