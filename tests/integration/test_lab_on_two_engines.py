"""A `docker-postgres-pair` lab with each site on its own Docker engine: site A (the primary) on
the machine's engine, site B (the standby) on a second engine the tests start
(tests/second_engine.py), streaming from A's published port across the two. A freeze of each
site of a known length is measured through each site's own address; the lab is removed from
both engines at the end, and by `drills recover` after SIGKILL."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from drills.containers.local_image import ensure
from drills.labs.docker_containers import LAB_LABEL
from tests.conftest import drills_cli, drills_env, sigkill_drill_at
from tests.second_engine import Engine

pytestmark = pytest.mark.docker

SCENARIO = """
name: lab-on-two-engines
engines:
  dc1: {{host: "unix:///var/run/docker.sock"}}
  dc2: {{host: "{dc2.host}"}}
lab:
  kind: docker-postgres-pair
  sites:
    a: {{engine: dc1, publish: {dc2.here}}}
    b: {{engine: dc2, publish: {dc2.address}}}
targets:
  site-a: {{lab: a}}
  site-b: {{lab: b}}
probes:
  standby: {{kind: postgres-read, dsn: "${{lab.b.dsn}}", interval: 20ms, timeout: 500ms}}
  primary: {{kind: postgres-read, dsn: "${{lab.a.dsn}}", interval: 20ms, timeout: 500ms}}
  writes: {{kind: postgres-write, dsn: "${{lab.a.dsn}}", interval: 20ms, timeout: 500ms}}
service_probe: standby
write_probe: writes
steps:
  - wait: 1s
  - pause: site-b
  - wait: {b_frozen}
  - resume: site-b
  - wait-until: standby
  - pause: site-a
  - wait: {a_frozen}
  - resume: site-a
  - wait-until: primary
  - wait: 500ms
"""


@pytest.fixture(scope="module")
def dc2(dc2_engine: Engine) -> Engine:
    ensure(dc2_engine.client)  # the PostgreSQL image, built from this host as `make docker` does
    return dc2_engine


def scenario(tmp_path: Path, dc2: Engine, b_frozen: str = "1500ms", a_frozen: str = "1s") -> Path:
    path = tmp_path / "lab-on-two-engines.yaml"
    path.write_text(SCENARIO.format(dc2=dc2, b_frozen=b_frozen, a_frozen=a_frozen))
    return path


def lab_containers(dc2: Engine) -> tuple[list[str], list[str]]:
    label = {"label": [LAB_LABEL]}
    here = docker.from_env().containers.list(all=True, filters=label)
    there = dc2.client.containers.list(all=True, filters=label)
    return [str(c.name) for c in here], [str(c.name) for c in there]


def test_each_site_on_its_engine_with_freezes_of_known_length(
    sandbox: Path, tmp_path: Path, dc2: Engine
) -> None:
    reports = tmp_path / "runs"
    run = drills_cli(
        ["run", str(scenario(tmp_path, dc2)), "--reports-dir", str(reports)],
        drills_env(sandbox),
        timeout=300,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    record = json.loads(next(reports.glob("*.json")).read_text())
    engines = record["lab"]["engine"]
    assert engines == {"a": "unix:///var/run/docker.sock", "b": dc2.host}, engines
    assert record["lab"]["containers"]["b"]["engine"] == dc2.host
    steps = [s for s in record["timeline"] if s["kind"] in ("pause", "resume")]
    b_truth = steps[1]["end_s"] - steps[0]["end_s"]
    a_truth = steps[3]["end_s"] - steps[2]["end_s"]
    tolerance = 2 * 0.02 + 0.05
    standby, primary = record["probes"]["standby"], record["probes"]["primary"]
    assert len(standby["outages"]) == 1 and len(primary["outages"]) == 1
    assert abs(standby["downtime_lower_s"] - b_truth) <= tolerance, (standby, b_truth)
    assert abs(primary["downtime_lower_s"] - a_truth) <= tolerance, (primary, a_truth)
    assert abs(record["measurements"]["rto_s"] - b_truth) <= tolerance
    assert record["measurements"]["lost_writes"] == 0
    assert lab_containers(dc2) == ([], [])


def test_sigkill_then_recover_removes_the_lab_from_both_engines(
    sandbox: Path, tmp_path: Path, dc2: Engine
) -> None:
    path = scenario(tmp_path, dc2, b_frozen="60s")
    env = drills_env(sandbox) | {"DRILLS_STATE_DIR": str(tmp_path / "state")}
    sigkill_drill_at(path, env, tmp_path / "runs", "step 3/")
    here, there = lab_containers(dc2)
    assert len(here) == 1 and len(there) == 1, (here, there)
    recovered = drills_cli(["recover"], env)
    assert recovered.returncode == 0, recovered.stderr
    assert recovered.stdout.count("removed docker lab") == 2, recovered.stdout
    assert lab_containers(dc2) == ([], [])
