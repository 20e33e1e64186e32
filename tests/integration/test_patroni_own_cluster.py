"""A Patroni cluster of the user's own (started here by the test, not by the lab code): the
scenario docs/patroni.md documents switches it over, a failover goes to the named candidate,
maintenance mode is taken back at the end of a drill and by `drills recover` after SIGKILL.
The test reads the cluster's REST API itself to check what each record claims."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, Run, drills_env, sigkill_drill_at
from tests.patroni_cluster import PASSWORD, PatroniCluster, missing, running_cluster

pytestmark = [
    pytest.mark.patroni,
    pytest.mark.skipif(missing() is not None, reason=f"no Patroni cluster: {missing()}"),
]

PG_PASSWORD = "pg-password-unused"  # trust authentication: only checked for masking


@pytest.fixture(scope="module")
def cluster() -> Iterator[PatroniCluster]:
    with running_cluster() as started:
        yield started


@pytest.fixture
def healthy(cluster: PatroniCluster) -> PatroniCluster:
    """The cluster with a running leader, a streaming replica and no maintenance mode."""
    cluster.wait_healthy()
    return cluster


def documented_scenario(cluster: PatroniCluster) -> str:
    """The complete scenario of docs/patroni.md, aimed at the test's cluster."""
    doc = (REPO / "docs" / "patroni.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", doc, re.S)
    text = next(b for b in blocks if b.startswith("# A Patroni cluster you run"))
    (first, second), (pg1, pg2) = cluster.urls, cluster.members
    text = text.replace("http://10.0.0.1:8008", first).replace("http://10.0.0.2:8008", second)
    text = text.replace("/run/patroni/pg1.pid", str(pg1.pid_file))
    text = text.replace("/run/patroni/pg2.pid", str(pg2.pid_file))
    text = text.replace("host=10.0.0.1,10.0.0.2", "host=127.0.0.1,127.0.0.1")
    text = text.replace("port=5432,5432", f"port={pg1.pg_port},{pg2.pg_port}")
    values = re.sub(r"#.*", "", text)
    assert "10.0.0." not in values and "/run/patroni" not in values
    return text


def own_targets(cluster: PatroniCluster) -> dict[str, Any]:
    return {
        "pg": {
            "patroni": {
                "urls": cluster.urls,
                "auth": {"username": "drills", "password": "${env:PATRONI_PASSWORD}"},
                "members": {m.name: {"pid_file": str(m.pid_file)} for m in cluster.members},
            }
        },
        "leader": {"role": "leader", "cluster": "pg"},
        "replica": {"role": "replica", "cluster": "pg"},
    }


def scenario(cluster: PatroniCluster, name: str, steps: list[Any]) -> str:
    return yaml.safe_dump(
        {
            "version": 1,
            "name": name,
            "targets": own_targets(cluster),
            "probes": {
                "writes": {"kind": "postgres-write", "dsn": cluster.dsn, "interval": "100ms"}
            },
            "service_probe": "writes",
            "write_probe": "writes",
            "settle": "500ms",
            "steps": steps,
        },
        sort_keys=False,
    )


def env(sandbox: Path) -> dict[str, str]:
    return drills_env(sandbox) | {"PATRONI_PASSWORD": PASSWORD, "PGPASSWORD": PG_PASSWORD}


def drill(text: str, sandbox: Path, tmp_path: Path) -> Run:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    reports = tmp_path / "runs"
    result = subprocess.run(
        [sys.executable, "-m", "drills", "run", str(path), "--reports-dir", str(reports)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env(sandbox),
        cwd=REPO,
    )
    run = Run(result.returncode, result.stdout, result.stderr, reports)
    assert PASSWORD not in run.stdout + run.stderr + run.record_path.read_text()
    return run


def step_detail(record: dict[str, Any], kind: str) -> str:
    return str(next(s for s in record["timeline"] if s["kind"] == kind)["detail"])


def test_the_documented_scenario_switches_over_to_the_member_the_record_names(
    healthy: PatroniCluster, sandbox: Path, tmp_path: Path
) -> None:
    before = healthy.leader()
    run = drill(documented_scenario(healthy), sandbox, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    record = run.record()
    detail = step_detail(record, "switchover")
    moved = re.search(r"leader (\S+) -> (\S+) \(running [0-9.]+s after the request\)", detail)
    assert moved, step_detail(record, "switchover")
    assert moved.group(1) == before
    assert moved.group(2) != before
    assert healthy.leader() == moved.group(2)  # the test's own reading of the REST API
    # The cluster probe saw the same change of leader.
    failover = record["failover"]
    assert (failover["leader_before"], failover["leader_after"]) == (before, moved.group(2))
    assert failover["leader_elected_after_s"] <= record["measurements"]["rto_s"] + 0.25
    assert record["verdicts"]["split_brain"]["verdict"] == "met"
    assert record["measurements"]["lost_writes"] == 0, record["measurements"]
    assert record["measurements"]["rto_s"] < 30


def test_failover_to_the_named_candidate(
    healthy: PatroniCluster, sandbox: Path, tmp_path: Path
) -> None:
    before = healthy.leader()
    candidate = next(m.name for m in healthy.members if m.name != before)
    steps = [
        {"wait": "1s"},
        {"failover": {"target": "pg", "candidate": candidate}},
        {"wait-until": {"probe": "writes", "timeout": "30s"}},
    ]
    run = drill(scenario(healthy, "own-failover", steps), sandbox, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"leader {before} -> {candidate} (" in step_detail(run.record(), "failover")
    assert healthy.leader() == candidate


def test_maintenance_mode_on_off_and_taken_back_when_a_step_fails(
    healthy: PatroniCluster, sandbox: Path, tmp_path: Path
) -> None:
    steps: list[Any] = [
        {"pause-cluster": "pg"},
        {"pause": "replica"},  # a role target: the replica's Patroni and PostgreSQL, SIGSTOP
        {"resume": "replica"},
        {"resume-cluster": "pg"},
        {"pause-cluster": "pg"},
        {"exec": "echo failing on purpose; exit 3"},  # ends the drill: everything is reverted
    ]
    run = drill(scenario(healthy, "own-maintenance", steps), sandbox, tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    timeline = run.record()["timeline"]
    assert [s["ok"] for s in timeline] == [True] * 5 + [False]
    assert timeline[0]["detail"].startswith("maintenance mode on after")
    replica = next(m.name for m in healthy.members if m.name != healthy.leader())
    assert timeline[1]["detail"].startswith(f"replica = {replica}: SIGSTOP sent to")
    assert timeline[3]["detail"].startswith("maintenance mode off after")
    assert "reverted: resume pg" in run.stdout + run.stderr
    assert not healthy.paused()


def test_sigkill_in_maintenance_mode_then_recover(
    healthy: PatroniCluster, sandbox: Path, tmp_path: Path
) -> None:
    path = tmp_path / "paused.yaml"
    steps = [{"pause-cluster": "pg"}, {"wait": "60s"}]
    path.write_text(scenario(healthy, "own-harness-dies", steps))
    state = tmp_path / "state"
    environment = env(sandbox) | {"DRILLS_STATE_DIR": str(state)}
    sigkill_drill_at(path, environment, tmp_path / "runs", "step 2/2")
    assert healthy.paused(), "the dead harness left the cluster in maintenance mode"
    journal = "".join(p.read_text() for p in (state / "journal").glob("*.jsonl"))
    assert "${env:PATRONI_PASSWORD}" in journal and PASSWORD not in journal
    without_password = {k: v for k, v in environment.items() if k != "PATRONI_PASSWORD"}
    refused = recover(without_password)
    assert refused.returncode == 2 and "set PATRONI_PASSWORD" in refused.stdout + refused.stderr
    assert healthy.paused()
    recovered = recover(environment)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert "took pg out of maintenance mode" in recovered.stdout
    assert not healthy.paused()
    assert recover(environment).stdout == "nothing to recover\n"


def recover(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drills", "recover"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO,
        timeout=60,
        check=False,
    )
