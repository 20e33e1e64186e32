"""Drills against containers on a real Docker engine, through the CLI as a user runs them."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import (
    assert_only_writes_acked_before_the_fault_lost,
    drills_cli,
    drills_env,
    failover_bounds,
    run_drills,
    sigkill_drill_at,
    signal_drill_at,
)
from tests.docker_helpers import (
    allow_all,
    client,
    drills_leftovers,
    iptables_rules,
    postgres_container,
)

pytestmark = [pytest.mark.docker, pytest.mark.postgres]

COMPOSE = {"com.docker.compose.project": "drills-test-shop", "com.docker.compose.service": "db"}


def test_db_failover_docker_end_to_end(sandbox: Path, tmp_path: Path) -> None:
    reports = tmp_path / "runs"
    run = run_drills(
        ["run", "scenarios/db-failover-docker.yaml", "--reports-dir", str(reports)],
        sandbox,
        reports,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    assert record["verdict"] == "pass"
    lab = record["lab"]
    assert lab["backend"] == "docker" and lab["kind"] == "docker-postgres-pair"
    assert lab["image"] == "drills/postgres:local"
    assert lab["image_id"].startswith("sha256:")
    assert {c["image_id"] for c in lab["containers"].values()} == {lab["image_id"]}
    # Ground truth: no read succeeds between the kill and the promotion.
    low, high = failover_bounds(record, "kill", 0.02)
    assert low <= record["measurements"]["rto_s"] <= high, (record["measurements"], low, high)
    m = record["measurements"]
    assert m["writes_acked"] > 50
    kill = next(s for s in record["timeline"] if s["kind"] == "kill")
    window = (kill["start_s"] - 1.0, kill["end_s"])
    assert_only_writes_acked_before_the_fault_lost(run.record_path, record, "writes", window)
    assert drills_leftovers() == []


PAUSE = """
version: 1
name: docker-pause-ground-truth
lab: {kind: docker-postgres-pair}
targets:
  site-a: {lab: a}
probes:
  reads: {kind: postgres-read, dsn: "${lab.a.dsn}", interval: 20ms, timeout: 500ms}
  writes: {kind: postgres-write, dsn: "${lab.a.dsn}", interval: 20ms, timeout: 500ms}
service_probe: reads
write_probe: writes
steps:
  - wait: 1s
  - pause: site-a
  - wait: 2s
  - resume: site-a
  - wait-until: reads
  - wait: 1s
"""


def test_container_pause_of_known_length(sandbox: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "pause.yaml"
    scenario.write_text(PAUSE)
    reports = tmp_path / "runs"
    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    steps = {s["kind"]: s for s in record["timeline"]}
    # True outage: from the freezer's pause returning to the unpause returning.
    truth = steps["resume"]["end_s"] - steps["pause"]["end_s"]
    assert abs(truth - 2.0) < 0.1
    reads = record["probes"]["reads"]
    tolerance = 2 * 0.02 + 0.05
    assert len(reads["outages"]) == 1, reads["outages"]
    assert abs(reads["downtime_lower_s"] - truth) <= tolerance, (reads["downtime_lower_s"], truth)
    assert abs(reads["downtime_s"] - truth) <= tolerance, (reads["downtime_s"], truth)
    assert abs(record["measurements"]["rto_s"] - truth) <= tolerance
    # Frozen, not crashed: in-flight writes are unknown and every acked write is present.
    assert record["measurements"]["lost_writes"] == 0
    assert record["probes"]["writes"]["unknown"] + record["probes"]["writes"]["fail"] > 0
    assert drills_leftovers() == []


MIXED = """
version: 1
name: docker-interrupted
lab: {{kind: docker-postgres-pair}}
targets:
  site-a: {{lab: a}}
  shop-db: {{compose: {{project: drills-test-shop, service: db}}}}
probes:
  reads: {{kind: postgres-read, dsn: "${{lab.a.dsn}}", interval: 50ms}}
  shop: {{kind: tcp, host: 127.0.0.1, port: {port}, interval: 50ms}}
service_probe: reads
steps:
  - wait: 500ms
  - partition: {{target: shop-db, from: {gateway}}}
  - pause: site-a
  - pause: shop-db
  - wait: 60s
"""


def _mixed(tmp_path: Path, container: object, port: int) -> Path:
    networks = container.attrs["NetworkSettings"]["Networks"]  # type: ignore[attr-defined]
    gateway = next(iter(networks.values()))["Gateway"]
    scenario = tmp_path / "mixed.yaml"
    scenario.write_text(MIXED.format(port=port, gateway=gateway))
    return scenario


def test_sigterm_mid_fault_leaves_nothing(
    sandbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_CONFIG", str(allow_all(tmp_path)))
    with postgres_container(labels=COMPOSE) as (victim, port):
        scenario = _mixed(tmp_path, victim, port)
        reports = tmp_path / "runs"

        def faults_in_place() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                victim.reload()
                if victim.status == "paused":
                    break
                time.sleep(0.1)
            assert victim.status == "paused"
            assert len(client().containers.list(filters={"status": "paused"})) == 2

        status, out, err = signal_drill_at(
            scenario, sandbox, reports, "step 5/5", signal.SIGTERM, faults_in_place
        )
        assert status == 130, out + err
        assert "reverted: unpause shop-db" in err
        victim.reload()
        assert victim.status == "running"
        assert iptables_rules(str(victim.id)) == []
        assert drills_leftovers() == []
        record = next(reports.glob("*.json")).read_text()
        assert '"id": "' + str(victim.id) in record.replace('"id":"', '"id": "')


def test_sigkill_of_the_harness_then_recover(
    sandbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILLS_CONFIG", str(allow_all(tmp_path)))
    with postgres_container(labels=COMPOSE) as (victim, port):
        scenario = _mixed(tmp_path, victim, port)
        env = drills_env(sandbox)
        reports = tmp_path / "runs"
        sigkill_drill_at(scenario, env, reports, "step 5/5")
        victim.reload()
        assert victim.status == "paused"
        assert any("DROP" in rule for rule in _rules_when_paused(victim))
        assert drills_leftovers(), "the lab should still be there"

        def drills(*args: str) -> subprocess.CompletedProcess[str]:
            return drills_cli(list(args), env)

        refused = drills("run", str(scenario), "--reports-dir", str(reports))
        assert refused.returncode == 2 and "drills recover" in refused.stderr
        recovered = drills("recover")
        assert recovered.returncode == 0, recovered.stderr + recovered.stdout
        assert "unpaused container shop-db" in recovered.stdout
        assert "removed the drill's iptables rules from container shop-db" in recovered.stdout
        assert "removed docker lab" in recovered.stdout
        victim.reload()
        assert victim.status == "running"
        assert iptables_rules(str(victim.id)) == []
        assert drills_leftovers() == []
        assert drills("recover").stdout == "nothing to recover\n"


def _rules_when_paused(victim: object) -> list[str]:
    # The helper joins the namespace of a paused container as well.
    return iptables_rules(str(victim.id))  # type: ignore[attr-defined]


REFUSED = """
version: 1
name: not-allowed
targets:
  shop-db: {{compose: {{project: drills-test-shop, service: db}}}}
probes:
  shop: {{kind: tcp, host: 127.0.0.1, port: {port}, interval: 50ms}}
service_probe: shop
steps:
  - kill: shop-db
"""


def test_a_container_outside_the_allow_list_is_refused(sandbox: Path, tmp_path: Path) -> None:
    with postgres_container(labels=COMPOSE) as (victim, port):
        scenario = tmp_path / "refused.yaml"
        scenario.write_text(REFUSED.format(port=port))
        reports = tmp_path / "runs"
        config = tmp_path / "drills.yaml"
        config.write_text("containers:\n  allow:\n    - name: some-other-*\n")
        args = ["run", str(scenario), "--reports-dir", str(reports), "--config", str(config)]
        run = run_drills(args, sandbox, reports)
        assert run.returncode == 2
        lines = [line for line in run.stderr.splitlines() if str(scenario) in line]
        assert len(lines) == 1, run.stderr
        assert (
            f"{scenario}:5: targets.shop-db: container {victim.name} is not in the allow-list"
            in lines[0]
        )
        victim.reload()
        assert victim.status == "running"  # untouched
        dry = run_drills(
            ["run", str(scenario), "--dry-run", "--config", str(config)], sandbox, reports
        )
        assert dry.returncode == 0, dry.stderr
        assert "REFUSED" in dry.stdout
        config.write_text(
            "containers:\n  allow:\n    - labels: {com.docker.compose.project: drills-test-shop}\n"
        )
        dry = run_drills(
            ["run", str(scenario), "--dry-run", "--config", str(config)], sandbox, reports
        )
        assert f"container {victim.name}" in dry.stdout and "allowed by" in dry.stdout
        victim.reload()
        assert victim.status == "running"
    assert drills_leftovers() == []


EXTRA = """
version: 1
name: docker-extra-container
lab:
  kind: docker-postgres-pair
  containers:
    app:
      image: drills/postgres:local
      entrypoint: [/bin/sh, -c]
      command: [{script}]
      user: postgres
      environment: {{APP_MODE: drill}}
      ports: ["{port}:5432"]
targets:
  app: {{lab: app}}
probes:
  app: {{kind: postgres-read, dsn: "host=127.0.0.1 port={port} user=postgres", interval: 20ms}}
  writes: {{kind: postgres-write, dsn: "${{lab.dsn}}", interval: 50ms}}
service_probe: app
write_probe: writes
steps:
  - wait-until: {{probe: app, timeout: 30s}}
  - wait: 500ms
  - pause: app
  - wait: 1s
  - resume: app
  - wait-until: app
  - wait: 500ms
"""


def test_a_declared_container_joins_the_lab(sandbox: Path, tmp_path: Path) -> None:
    from tests.docker_helpers import PRIMARY

    port = free_port()
    scenario = tmp_path / "extra.yaml"
    script = '"' + PRIMARY.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') + '"'
    scenario.write_text(EXTRA.format(port=port, script=script))
    reports = tmp_path / "runs"
    run = run_drills(["run", str(scenario), "--reports-dir", str(reports)], sandbox, reports)
    assert run.returncode == 0, run.stderr + run.stdout
    record = run.record()
    app = record["lab"]["containers"]["app"]
    assert app["image"] == "drills/postgres:local" and app["image_id"].startswith("sha256:")
    steps = {s["kind"]: s for s in record["timeline"]}
    truth = steps["resume"]["end_s"] - steps["pause"]["end_s"]
    # The pause's outage (the container's server may still have been starting before it).
    paused = steps["pause"]["start_s"]
    outages = [o for o in record["probes"]["app"]["outages"] if o["first_fail_s"] >= paused]
    assert len(outages) == 1, record["probes"]["app"]["outages"]
    assert abs(outages[0]["downtime_lower_s"] - truth) <= 2 * 0.02 + 0.05
    assert drills_leftovers() == []


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
