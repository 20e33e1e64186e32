"""Network faults through the lab's fault proxy, against real PostgreSQL."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import REPO, leftover_processes, run_drills, signal_drill_at

pytestmark = pytest.mark.postgres

SCENARIO = REPO / "scenarios" / "network-partition.yaml"


def _partition_truth(record: dict[str, Any]) -> float:
    """True length of the cut: from the moment the proxy took the replication link down to the
    start of the kill of site A (everything acknowledged in between never reached B)."""
    down = next(
        e for e in record["events"] if e["subject"] == "replication" and e["change"] == "down"
    )
    kill = next(s for s in record["timeline"] if s["kind"] == "kill")
    return float(kill["start_s"]) - float(down["at_s"])


def test_network_partition_loses_the_writes_of_the_cut(sandbox: Path, tmp_path: Path) -> None:
    reports = tmp_path / "runs"
    run = run_drills(
        ["run", str(SCENARIO), "--reports-dir", str(reports), "--no-live"], sandbox, reports
    )
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    m = record["measurements"]
    truth = _partition_truth(record)
    assert 2.9 < truth < 3.3
    tolerance = 2 * m["write_interval_s"] + 0.05
    assert abs(m["rpo_s"] - truth) <= tolerance, (m["rpo_s"], truth)
    assert m["lost_writes"] > 100
    assert m["holes"] == 0  # one contiguous run of lost writes
    # The partition did not touch clients: the RTO clock starts at the kill.
    assert m["rto_s"] < 2
    changes = [(e["subject"], e["change"]) for e in record["events"]]
    assert ("replication", "down") in changes
    assert changes.index(("replication", "up")) > changes.index(("replication", "down"))


def test_tight_rpo_objective_is_missed_with_exit_1(sandbox: Path, tmp_path: Path) -> None:
    text = (
        SCENARIO.read_text()
        .replace("rpo: 5m", "rpo: 1s")
        .replace("  - wait: 3s\n", "  - wait: 4s\n")
    )
    scenario = tmp_path / "tight.yaml"
    scenario.write_text(text)
    reports = tmp_path / "runs"
    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 1, run.stderr + run.stdout
    record = run.record()
    assert record["verdict"] == "fail"
    assert record["verdicts"]["rpo"]["verdict"] == "missed"
    assert record["verdicts"]["rto"]["verdict"] == "met"
    truth = _partition_truth(record)
    assert abs(record["measurements"]["rpo_s"] - truth) <= 2 * 0.02 + 0.05
    assert "| RPO (data-loss window) | <= 1s" in run.stdout and "missed" in run.stdout


BLACKHOLE = """
version: 1
name: blackhole-interrupted
lab: {kind: postgres-pair}
targets: {site-a: {lab: a}}
probes:
  reads: {kind: postgres-read, dsn: "${lab.a.dsn}", interval: 50ms}
  writes: {kind: postgres-write, dsn: "${lab.a.dsn}", interval: 50ms}
service_probe: reads
write_probe: writes
steps:
  - wait: 500ms
  - blackhole: clients-a
  - link-down: replication
  - wait: 60s
"""


def test_sigint_during_link_faults_restores_links_and_removes_lab(
    sandbox: Path, tmp_path: Path
) -> None:
    scenario = tmp_path / "blackhole.yaml"
    scenario.write_text(BLACKHOLE)
    reports = tmp_path / "runs"
    code, _, err = signal_drill_at(scenario, sandbox, reports, "step 4/4", signal.SIGINT)
    assert code == 130, err
    assert "reverted: link replication up" in err
    assert "reverted: link clients-a without blackhole" in err
    assert leftover_processes(sandbox) == []
    record = json.loads(next(reports.glob("*.json")).read_text())
    changes = [(e["subject"], e["change"]) for e in record["events"]]
    assert ("replication", "up") in changes
    assert any(c.startswith("-blackhole") for s, c in changes if s == "clients-a")
    # While the client link held every byte, the read probe was down.
    assert record["probes"]["reads"]["fail"] > 5


def test_replication_lag_peak_follows_the_link_latency(sandbox: Path, tmp_path: Path) -> None:
    reports = tmp_path / "runs"
    scenario = REPO / "scenarios" / "replication-lag.yaml"
    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    m = record["measurements"]
    # WAL reaches the standby 500 ms late: the standby is that far behind, plus at most one
    # write interval, and less than one lag-probe interval can be missed at the peak.
    assert 0.5 - 0.05 - 0.01 <= m["replication_lag_peak_s"] <= 0.5 + 0.1, m
    assert m["replication_lag_peak_bytes"] > 0
    lag = record["probes"]["lag"]
    assert lag["fail"] == 0 and lag["peaks"]["lag_s"] == m["replication_lag_peak_s"]
    assert m["lost_writes"] == 0
    assert "replication lag peak" in run.stdout


TOXIPROXY = """
version: 1
name: toxiproxy-blackhole
lab: {{kind: postgres-pair, proxy: false}}
network:
  toxiproxy: {url}
  links:
    db:
      client: clients
      server: a
      listen: "127.0.0.1:{port}"
      upstream: "${{lab.a.host}}:${{lab.a.port}}"
probes:
  reads: {{kind: postgres-read, dsn: "{dsn}", interval: 20ms, timeout: 500ms}}
  writes: {{kind: postgres-write, dsn: "{dsn}", interval: 20ms, timeout: 500ms}}
service_probe: reads
write_probe: writes
steps:
  - wait: 1s
  - blackhole: db
  - wait: 1500ms
  - heal: db
  - wait-until: reads
  - wait: 500ms
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_drill_through_a_toxiproxy_compatible_server(
    sandbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, link = _free_port(), _free_port()
    token = "integration-test-proxy-token"
    monkeypatch.setenv("DRILLS_PROXY_TOKEN", token)  # the server's and the drill's
    server = subprocess.Popen(
        [sys.executable, "-m", "drills", "proxy", "--api", f"127.0.0.1:{api}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    auth = {"Authorization": f"Bearer {token}"}
    try:
        assert server.stdout is not None
        assert "API on" in server.stdout.readline()
        assert requests.get(f"http://127.0.0.1:{api}/proxies", timeout=5).status_code == 401
        scenario = tmp_path / "toxiproxy.yaml"
        # The lab's password reaches the probes through its password file, as for any client.
        dsn = f"host=127.0.0.1 port={link} user=postgres dbname=postgres passfile=${{lab.passfile}}"
        scenario.write_text(TOXIPROXY.format(url=f"http://127.0.0.1:{api}", port=link, dsn=dsn))
        reports = tmp_path / "runs"
        run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
        assert run.returncode == 0, run.stderr + run.stdout
        record = run.record()
        # Ground truth: the server confirmed the blackhole and the heal at these times.
        changes = {e["change"].split()[0]: e["at_s"] for e in record["events"]}
        start = next(v for k, v in changes.items() if k.startswith("+timeout"))
        end = max(v for k, v in changes.items() if k.startswith("-blackhole"))
        truth = end - start
        reads = record["probes"]["reads"]
        assert abs(reads["downtime_s"] - truth) <= 2 * 0.02 + 0.05, (reads, truth)
        assert record["measurements"]["lost_writes"] == 0
        # The link the drill created is gone again.
        assert requests.get(f"http://127.0.0.1:{api}/proxies", headers=auth, timeout=5).json() == {}
    finally:
        server.terminate()
        server.wait(timeout=10)
